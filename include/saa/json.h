/* JSON file loading (cJSON) with saa errors. */
#ifndef SAA_JSON_H
#define SAA_JSON_H

#include <cjson/cJSON.h>

/* Reads and parses a JSON file; NULL with the error set (naming the file) on failure. */
cJSON *saa_json_load(const char *path);
/* Reads a whole file (NUL-terminated); NULL with the error set. */
char *saa_read_file(const char *path, size_t *len);

#endif
