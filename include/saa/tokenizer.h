/* Text front-end of SAA+ / Grounding DINO: SAA+ caption normalisation, the BERT uncased WordPiece
 * tokenizer (HuggingFace BertTokenizer on a vocab.txt), the Grounding DINO sub-sentence masks, and
 * the token decoding used for phrases.
 *
 * Typical use (what GroundingDINO.forward does with one caption):
 *
 *   saa_tokenizer *tok;  saa_tokenizer_load("vocab.txt", &tok);
 *   char *cap; size_t cap_len;
 *   saa_caption_normalize(raw, strlen(raw), &cap, &cap_len);      // "Crack. Black hole" -> "crack. black hole."
 *   saa_text_input in;
 *   saa_text_encode(tok, cap, cap_len, SAA_MAX_TEXT_LEN, &in);     // ids, position ids, masks
 *   ... BERT(in.ids, in.position_ids, in.self_attention_mask, in.len) ...
 *   char *phrase = saa_tokenizer_decode(tok, ids_above_threshold, n);
 *   saa_text_input_free(&in); free(cap); saa_tokenizer_free(tok);
 *
 * Strings are UTF-8 with an explicit byte length (a caption may contain U+0000, which the tokenizer
 * deletes). Unicode properties (categories, case mapping, NFD, bidi class) come from utf8proc. */
#ifndef SAA_TOKENIZER_H
#define SAA_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "saa/tensor.h" /* SAA_OK / SAA_E* status codes, saa_last_error */

#ifdef __cplusplus
extern "C" {
#endif

#define SAA_MAX_TEXT_LEN 256 /* GroundingDINO max_text_len */

typedef struct saa_tokenizer saa_tokenizer;

/* Reads a BERT vocab.txt (one token per line, id = line number; like HF load_vocab, a token listed
 * twice maps to its last line). [UNK], [CLS], [SEP] must be present. */
int saa_tokenizer_load(const char *vocab_path, saa_tokenizer **out);
/* Same from a buffer (the test writes its own small vocabulary). */
int saa_tokenizer_load_buffer(const char *data, size_t len, saa_tokenizer **out);
void saa_tokenizer_free(saa_tokenizer *tok);

int saa_tokenizer_vocab_size(const saa_tokenizer *tok);
/* Token string of an id ("[UNK]" for ids outside the vocabulary, as HF _convert_id_to_token). */
const char *saa_tokenizer_token(const saa_tokenizer *tok, int32_t id);
/* Id of a token string, or -1 when absent. */
int32_t saa_tokenizer_id(const saa_tokenizer *tok, const char *token);

/* SAA+ Model caption normalisation (SAA/model.py): Python caption.lower().strip(), then append "."
 * unless it ends with ".". Python semantics: full lower-casing (U+0130 -> "i" U+0307, final sigma),
 * strip() of the str.isspace() characters. *out is malloc'd and NUL-terminated (*out_len excludes it). */
int saa_caption_normalize(const char *caption, size_t len, char **out, size_t *out_len);

/* tokenizer(text)["input_ids"] for one text: [CLS] + WordPiece ids + [SEP], no truncation, no padding.
 * *ids is malloc'd, *n its length. */
int saa_tokenize(const saa_tokenizer *tok, const char *text, size_t len, int32_t **ids, int *n);

/* Everything GroundingDINO derives from one (already normalised) caption. */
typedef struct {
    int len_full;                /* tokens incl. [CLS]/[SEP], before truncation */
    int32_t *ids_full;           /* [len_full]: tokenizer(caption).input_ids (decode phrases from these) */
    int len;                     /* min(len_full, max_text_len): what BERT sees */
    int32_t *ids;                /* [len] = ids_full[:len] */
    int32_t *position_ids;       /* [len] sub-sentence position ids (restart at 0 after each special token) */
    uint8_t *self_attention_mask;/* [len*len] row-major, 1 = query row may attend to key column */
    int num_phrases;             /* rows of cate_to_token_mask */
    uint8_t *cate_to_token_mask; /* [num_phrases * len_full], NOT truncated (as the official code) */
} saa_text_input;

/* Tokenizes `caption` (normalise it first) and builds the masks exactly as
 * groundingdino/models/GroundingDINO/bertwarper.py generate_masks_with_special_tokens_and_transfer_map
 * with the specials [CLS], [SEP], ".", "?", then slices to max_text_len as GroundingDINO.forward.
 * Free with saa_text_input_free (also safe on a zeroed struct). */
int saa_text_encode(const saa_tokenizer *tok, const char *caption, size_t len, int max_text_len,
                    saa_text_input *out);
void saa_text_input_free(saa_text_input *in);

/* tokenizer.decode(ids) of the slow HF tokenizer: tokens joined by single spaces, " ##" removed,
 * strip(), then clean_up_tokenization (" ." -> ".", " ?" -> "?", " !" -> "!", " ," -> ",", " ' " -> "'",
 * " n't", " 'm", " 's", " 've", " 're"). Special tokens are kept. malloc'd, NULL on ENOMEM. */
char *saa_tokenizer_decode(const saa_tokenizer *tok, const int32_t *ids, int n);

/* get_phrases_from_posmap (groundingdino/util/utils.py): decode of ids[i] for every i < n with posmap[i]. */
char *saa_phrase_from_posmap(const saa_tokenizer *tok, const uint8_t *posmap, const int32_t *ids, int n);

#ifdef __cplusplus
}
#endif
#endif
