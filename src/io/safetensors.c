/* safetensors reader: 8-byte little-endian header length, JSON header, raw little-endian data.
 * Data stays in the mapping when aligned for its dtype; otherwise it is copied. */
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "saa/weights.h"

static int dtype_from_name(const char *s, saa_dtype *out)
{
    static const struct { const char *name; saa_dtype t; } table[] = {
        {"F32", SAA_F32}, {"F16", SAA_F16}, {"BF16", SAA_BF16}, {"F64", SAA_F64}, {"I64", SAA_I64},
        {"I32", SAA_I32}, {"I16", SAA_I16}, {"I8", SAA_I8},     {"U8", SAA_U8},   {"U16", SAA_U16},
        {"BOOL", SAA_BOOL}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (!strcmp(s, table[i].name)) {
            *out = table[i].t;
            return 1;
        }
    return 0;
}

int saa_safetensors_read(saa_weights *w, const unsigned char *buf, size_t len)
{
    const char *path = saa_weights_path(w);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (len < 8 || hlen > len - 8)
        return saa_set_error(SAA_EFORMAT, "%s: safetensors header length %llu exceeds the file size %zu", path,
                             (unsigned long long)hlen, len);
    cJSON *root = cJSON_ParseWithLength((const char *)buf + 8, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return saa_set_error(SAA_EFORMAT, "%s: safetensors header is not a JSON object", path);
    }
    const unsigned char *data = buf + 8 + hlen;
    size_t data_len = len - 8 - (size_t)hlen;
    int rc = SAA_OK;
    for (cJSON *item = root->child; item && rc == SAA_OK; item = item->next) {
        if (!strcmp(item->string, "__metadata__")) continue;
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
        cJSON *shape = cJSON_GetObjectItemCaseSensitive(item, "shape");
        cJSON *offs = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
        saa_dtype dtype;
        if (!cJSON_IsString(dt) || !dtype_from_name(dt->valuestring, &dtype) || !cJSON_IsArray(shape) ||
            !cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 || cJSON_GetArraySize(shape) > SAA_MAX_DIMS) {
            rc = saa_set_error(SAA_EFORMAT, "%s: tensor '%s' has a malformed or unsupported header entry", path,
                               item->string);
            break;
        }
        int64_t dims[SAA_MAX_DIMS];
        int ndim = 0;
        int64_t numel = 1;
        for (cJSON *d = shape->child; d; d = d->next) {
            if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e15) {
                rc = saa_set_error(SAA_EFORMAT, "%s: tensor '%s' has an invalid shape", path, item->string);
                break;
            }
            dims[ndim] = (int64_t)d->valuedouble;
            numel *= dims[ndim++];
        }
        if (rc != SAA_OK) break;
        double b0 = cJSON_GetArrayItem(offs, 0)->valuedouble, b1 = cJSON_GetArrayItem(offs, 1)->valuedouble;
        size_t nbytes = (size_t)numel * saa_dtype_size(dtype);
        if (b0 < 0 || b1 < b0 || b1 > (double)data_len || (size_t)(b1 - b0) != nbytes) {
            rc = saa_set_error(SAA_EFORMAT,
                               "%s: tensor '%s' data offsets [%.0f, %.0f) do not fit its shape or the file", path,
                               item->string, b0, b1);
            break;
        }
        const unsigned char *p = data + (size_t)b0;
        saa_tensor *t;
        if (((uintptr_t)p % saa_dtype_size(dtype)) == 0) {
            t = saa_tensor_wrap(dtype, ndim, dims, (void *)p);
        } else {
            t = saa_tensor_new(dtype, ndim, dims);
            if (t && nbytes) memcpy(t->data, p, nbytes);
        }
        if (!t) {
            rc = SAA_ENOMEM;
            break;
        }
        rc = saa_weights_add(w, item->string, t);
    }
    cJSON_Delete(root);
    return rc;
}

static const char *dtype_tag(saa_dtype t)
{
    static const char *tags[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "U16", "BOOL"};
    return tags[t];
}

int saa_safetensors_write(const char *path, int count, const char *const *names, const saa_tensor *const *tensors)
{
    cJSON *root = cJSON_CreateObject();
    size_t off = 0;
    for (int i = 0; i < count; i++) {
        cJSON *e = cJSON_AddObjectToObject(root, names[i]);
        cJSON_AddStringToObject(e, "dtype", dtype_tag(tensors[i]->dtype));
        cJSON *sh = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < tensors[i]->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)tensors[i]->shape[d]));
        cJSON *o = cJSON_AddArrayToObject(e, "data_offsets");
        size_t nb = saa_tensor_nbytes(tensors[i]);
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(o, cJSON_CreateNumber((double)(off + nb)));
        off += nb;
    }
    char *hdr = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!hdr) return saa_set_error(SAA_ENOMEM, "out of memory");
    size_t hlen = strlen(hdr), padded = (hlen + 7) / 8 * 8;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hdr);
        return saa_set_error(SAA_EIO, "%s: cannot create", path);
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(len8, 1, 8, f) == 8 && fwrite(hdr, 1, hlen, f) == hlen;
    for (size_t i = hlen; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (int i = 0; ok && i < count; i++) {
        size_t nb = saa_tensor_nbytes(tensors[i]);
        ok = !nb || fwrite(tensors[i]->data, 1, nb, f) == nb;
    }
    free(hdr);
    if (fclose(f) != 0 || !ok) {
        remove(path);
        return saa_set_error(SAA_EIO, "%s: write failed", path);
    }
    return SAA_OK;
}
