/* Helpers shared by the check-golden text checkers (kinds "tokenizer" and "gdino"). */
#ifndef SAA_GOLDEN_TEXT_H
#define SAA_GOLDEN_TEXT_H

#include <cjson/cJSON.h>

#include "golden.h"
#include "saa/tokenizer.h"

/* Parses a JSON file whose strings may contain "\u0000" (cJSON alone would cut them short). */
cJSON *golden_json_load_nul(const char *path);
/* Bytes of a string item of such a document (malloc'd, NUL-terminated, *len may count inner NULs). */
int golden_json_bytes(const cJSON *s, char **out, size_t *len);
/* Checks PREFIX{input_ids,attention_mask,token_type_ids,position_ids,self_attention_mask,
 * cate_to_token_mask} against the encoded caption. Returns 1 when all passed. */
int golden_check_text_tensors(golden *g, const char *prefix, const saa_text_input *in);

#endif
