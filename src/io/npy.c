/* NumPy .npy reading and writing (format description: numpy/lib/format.py). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saa/npy.h"

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* mirrors numpy/lib/format.py: _write_array_header (version 1.0, 64-byte alignment) */
static int npy_save(const char *path, const void *data, size_t elem, const char *descr, int ndim,
                    const int64_t *shape)
{
    if (ndim < 0 || ndim > SAA_MAX_DIMS) return saa_set_error(SAA_EINVAL, "%s: cannot write %d dimensions", path, ndim);
    if (!host_is_little_endian()) return saa_set_error(SAA_EUNSUPPORTED, "%s: .npy writing needs a little-endian host", path);
    char dict[512];
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return saa_set_error(SAA_EINVAL, "%s: negative dimension", path);
        len += snprintf(dict + len, sizeof dict - len, i ? ", %lld" : "%lld", (long long)shape[i]);
        count *= (size_t)shape[i];
    }
    len += snprintf(dict + len, sizeof dict - len, "%s), }", ndim == 1 ? "," : "");
    /* magic(6) + version(2) + header length(2) + dict + padding spaces + '\n' = multiple of 64 */
    int total = 10 + len + 1;
    int pad = (64 - total % 64) % 64;
    unsigned char head[10];
    memcpy(head, npy_magic, 6);
    head[6] = 1, head[7] = 0;
    int hlen = len + pad + 1;
    head[8] = (unsigned char)(hlen & 0xFF), head[9] = (unsigned char)(hlen >> 8);

    FILE *f = fopen(path, "wb");
    if (!f) return saa_set_error(SAA_EIO, "%s: cannot create file (%s)", path, strerror(errno));
    int ok = fwrite(head, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)len, f) == (size_t)len;
    for (int i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && (count == 0 || fwrite(data, elem, count, f) == count);
    if (fclose(f) != 0) ok = 0;
    if (!ok) return saa_set_error(SAA_EIO, "%s: write failed (%s)", path, strerror(errno));
    return SAA_OK;
}

int saa_npy_save_f32(const char *path, const float *data, int ndim, const int64_t *shape)
{
    return npy_save(path, data, sizeof(float), "<f4", ndim, shape);
}

int saa_npy_save_f64(const char *path, const double *data, int ndim, const int64_t *shape)
{
    return npy_save(path, data, sizeof(double), "<f8", ndim, shape);
}

int saa_npy_save_u8(const char *path, const uint8_t *data, int ndim, const int64_t *shape)
{
    return npy_save(path, data, 1, "|u1", ndim, shape);
}

/* Finds the value text after 'key': in the header dict; NULL if absent. */
static const char *dict_value(const char *dict, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *p = strstr(dict, pat);
    if (!p) {
        snprintf(pat, sizeof pat, "\"%s\"", key);
        if (!(p = strstr(dict, pat))) return NULL;
    }
    p += strlen(pat);
    while (isspace((unsigned char)*p)) p++;
    if (*p != ':') return NULL;
    p++;
    while (isspace((unsigned char)*p)) p++;
    return p;
}

static int parse_header(const char *path, const char *dict, saa_dtype *dtype, int *ndim, int64_t *shape)
{
    const char *d = dict_value(dict, "descr");
    if (!d || (*d != '\'' && *d != '"')) return saa_set_error(SAA_EFORMAT, "%s: .npy header has no 'descr'", path);
    char descr[16] = {0};
    size_t n = strcspn(d + 1, "'\"");
    if (n >= sizeof descr) return saa_set_error(SAA_EFORMAT, "%s: unsupported .npy dtype", path);
    memcpy(descr, d + 1, n);
    if (!strcmp(descr, "<f4"))
        *dtype = SAA_F32;
    else if (!strcmp(descr, "<f8"))
        *dtype = SAA_F64;
    else if (!strcmp(descr, "|u1") || !strcmp(descr, "u1") || !strcmp(descr, "<u1"))
        *dtype = SAA_U8;
    else if (!strcmp(descr, "|b1") || !strcmp(descr, "b1"))
        *dtype = SAA_BOOL;
    else
        return saa_set_error(SAA_EUNSUPPORTED, "%s: .npy dtype '%s' is not supported (expected '<f4', '<f8', '|u1' or '|b1')",
                             path, descr);

    const char *fo = dict_value(dict, "fortran_order");
    if (!fo) return saa_set_error(SAA_EFORMAT, "%s: .npy header has no 'fortran_order'", path);
    if (!strncmp(fo, "True", 4)) return saa_set_error(SAA_EUNSUPPORTED, "%s: Fortran-order .npy is not supported", path);
    if (strncmp(fo, "False", 5)) return saa_set_error(SAA_EFORMAT, "%s: bad 'fortran_order' in .npy header", path);

    const char *s = dict_value(dict, "shape");
    if (!s || *s != '(') return saa_set_error(SAA_EFORMAT, "%s: .npy header has no 'shape' tuple", path);
    s++;
    *ndim = 0;
    for (;;) {
        while (isspace((unsigned char)*s)) s++;
        if (*s == ')') break;
        if (!isdigit((unsigned char)*s)) return saa_set_error(SAA_EFORMAT, "%s: bad 'shape' in .npy header", path);
        if (*ndim >= SAA_MAX_DIMS) return saa_set_error(SAA_EUNSUPPORTED, "%s: .npy has too many dimensions", path);
        char *end;
        long long v = strtoll(s, &end, 10);
        if (v < 0 || v > (1LL << 40)) return saa_set_error(SAA_EFORMAT, "%s: bad dimension in .npy header", path);
        shape[(*ndim)++] = v;
        s = end;
        while (isspace((unsigned char)*s)) s++;
        if (*s == ',') s++;
        else if (*s != ')') return saa_set_error(SAA_EFORMAT, "%s: bad 'shape' in .npy header", path);
    }
    return SAA_OK;
}

int saa_npy_load(const char *path, saa_tensor **out)
{
    *out = NULL;
    if (!host_is_little_endian()) return saa_set_error(SAA_EUNSUPPORTED, "%s: .npy reading needs a little-endian host", path);
    FILE *f = fopen(path, "rb");
    if (!f) return saa_set_error(SAA_EIO, "%s: cannot open (%s)", path, strerror(errno));
    unsigned char pre[12];
    char *dict = NULL;
    int rc = SAA_OK;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, npy_magic, 6) != 0) {
        rc = saa_set_error(SAA_EFORMAT, "%s: not a .npy file (bad magic)", path);
        goto done;
    }
    size_t hlen;
    if (pre[6] == 1) {
        hlen = pre[8] | (size_t)pre[9] << 8;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            rc = saa_set_error(SAA_EFORMAT, "%s: truncated .npy header", path);
            goto done;
        }
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        rc = saa_set_error(SAA_EUNSUPPORTED, "%s: .npy format version %d.%d is not supported", path, pre[6], pre[7]);
        goto done;
    }
    if (hlen == 0 || hlen > (1u << 20) || !(dict = malloc(hlen + 1))) {
        rc = saa_set_error(SAA_EFORMAT, "%s: bad .npy header length %zu", path, hlen);
        goto done;
    }
    if (fread(dict, 1, hlen, f) != hlen) {
        rc = saa_set_error(SAA_EFORMAT, "%s: truncated .npy header", path);
        goto done;
    }
    dict[hlen] = 0;
    saa_dtype dtype = SAA_F32;
    int ndim = 0;
    int64_t shape[SAA_MAX_DIMS];
    if ((rc = parse_header(path, dict, &dtype, &ndim, shape)) != SAA_OK) goto done;
    double numel = 1;
    for (int i = 0; i < ndim; i++) numel *= (double)shape[i];
    if (numel > (double)(1LL << 40)) {
        rc = saa_set_error(SAA_EFORMAT, "%s: .npy shape too large", path);
        goto done;
    }
    saa_tensor *t = saa_tensor_new(dtype, ndim, shape);
    if (!t) {
        rc = saa_set_error(SAA_ENOMEM, "%s: out of memory for the .npy data", path);
        goto done;
    }
    size_t nbytes = saa_tensor_nbytes(t);
    if (nbytes && fread(t->data, 1, nbytes, f) != nbytes) {
        saa_tensor_free(t);
        rc = saa_set_error(SAA_EFORMAT, "%s: truncated .npy data (expected %zu bytes)", path, nbytes);
        goto done;
    }
    *out = t;
done:
    free(dict);
    fclose(f);
    return rc;
}
