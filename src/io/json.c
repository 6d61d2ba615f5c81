/* Whole-file reading and JSON parsing with clear errors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saa/json.h"
#include "saa/tensor.h"

char *saa_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        saa_set_error(SAA_EIO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (n < cap - 1) break;
        char *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int err = ferror(f);
    fclose(f);
    if (!buf) {
        saa_set_error(SAA_ENOMEM, "%s: out of memory reading the file", path);
        return NULL;
    }
    if (err) {
        free(buf);
        saa_set_error(SAA_EIO, "%s: read error", path);
        return NULL;
    }
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

cJSON *saa_json_load(const char *path)
{
    size_t n;
    char *text = saa_read_file(path, &n);
    if (!text) return NULL;
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!j) {
        long off = end ? (long)(end - text) : -1;
        free(text);
        saa_set_error(SAA_EFORMAT, "%s: invalid JSON near byte %ld", path, off);
        return NULL;
    }
    free(text);
    return j;
}
