/* STORED-only zip reader for torch.save archives (PKWARE APPNOTE 6.3: end of central directory,
 * zip64 locator/record, central directory headers, zip64 extra field, local headers). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "saa/tensor.h"
#include "zip.h"

static uint32_t rd16(const unsigned char *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const unsigned char *p) { return rd16(p) | rd16(p + 2) << 16; }
static uint64_t rd64(const unsigned char *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

/* 1 when [off, off+n) lies inside a buffer of len bytes (overflow-safe). */
static int fits(uint64_t off, uint64_t n, size_t len) { return off <= len && n <= (uint64_t)len - off; }

static int entry_cmp(const void *a, const void *b)
{
    const saa_zip_entry *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c) return c;
    return x->name_len < y->name_len ? -1 : x->name_len > y->name_len;
}

/* Reads the zip64 extra field of a central directory entry, replacing the saturated 32-bit values. */
static int read_zip64_extra(const unsigned char *extra, size_t n, uint64_t *usize, uint64_t *csize,
                            uint64_t *offset, int need_u, int need_c, int need_o)
{
    size_t i = 0;
    while (i + 4 <= n) {
        uint32_t id = rd16(extra + i), sz = rd16(extra + i + 2);
        if (i + 4 + sz > n) return 0;
        if (id == 0x0001) {
            const unsigned char *p = extra + i + 4;
            size_t k = 0;
            if (need_u) {
                if (k + 8 > sz) return 0;
                *usize = rd64(p + k);
                k += 8;
            }
            if (need_c) {
                if (k + 8 > sz) return 0;
                *csize = rd64(p + k);
                k += 8;
            }
            if (need_o) {
                if (k + 8 > sz) return 0;
                *offset = rd64(p + k);
            }
            return 1;
        }
        i += 4 + sz;
    }
    return !(need_u || need_c || need_o);
}

int saa_zip_open(saa_zip *z, const unsigned char *buf, size_t len, const char *path)
{
    z->entries = NULL;
    z->count = 0;
    /* End of central directory: 22 bytes plus a comment of up to 65535 bytes, scanned from the end. */
    if (len < 22) return saa_set_error(SAA_EFORMAT, "%s: truncated zip archive (%zu bytes)", path, len);
    size_t eocd = (size_t)-1;
    size_t lowest = len - 22 > 65535 ? len - 22 - 65535 : 0;
    for (size_t p = len - 22 + 1; p-- > lowest;) {
        if (rd32(buf + p) == 0x06054b50 && p + 22 + rd16(buf + p + 20) <= len) {
            eocd = p;
            break;
        }
    }
    if (eocd == (size_t)-1)
        return saa_set_error(SAA_EFORMAT,
                             "%s: zip end-of-central-directory record not found (file truncated or not a zip)", path);
    uint64_t count = rd16(buf + eocd + 10), cd_size = rd32(buf + eocd + 12), cd_off = rd32(buf + eocd + 16);
    if (rd16(buf + eocd + 4) != 0 || rd16(buf + eocd + 6) != 0)
        return saa_set_error(SAA_EUNSUPPORTED, "%s: multi-disk zip archives are not supported", path);
    /* zip64: a locator just before the EOCD points at the zip64 EOCD record holding 64-bit fields. */
    if (eocd >= 20 && rd32(buf + eocd - 20) == 0x07064b50) {
        uint64_t rec = rd64(buf + eocd - 20 + 8);
        if (!fits(rec, 56, len) || rd32(buf + rec) != 0x06064b50)
            return saa_set_error(SAA_EFORMAT, "%s: zip64 end-of-central-directory record is missing or out of bounds",
                                 path);
        count = rd64(buf + rec + 32);
        cd_size = rd64(buf + rec + 40);
        cd_off = rd64(buf + rec + 48);
    }
    if (!fits(cd_off, cd_size, len))
        return saa_set_error(SAA_EFORMAT,
                             "%s: zip central directory (offset %llu, %llu bytes) lies outside the %zu-byte file "
                             "(truncated?)",
                             path, (unsigned long long)cd_off, (unsigned long long)cd_size, len);
    if (count > cd_size / 46)
        return saa_set_error(SAA_EFORMAT, "%s: zip central directory claims %llu entries in %llu bytes", path,
                             (unsigned long long)count, (unsigned long long)cd_size);
    z->entries = calloc(count ? (size_t)count : 1, sizeof *z->entries);
    if (!z->entries) return saa_set_error(SAA_ENOMEM, "out of memory");
    const unsigned char *cd = buf + cd_off;
    size_t pos = 0;
    for (uint64_t i = 0; i < count; i++) {
        if (pos + 46 > cd_size || rd32(cd + pos) != 0x02014b50) {
            saa_zip_close(z);
            return saa_set_error(SAA_EFORMAT, "%s: zip central directory entry %llu is malformed", path,
                                 (unsigned long long)i);
        }
        const unsigned char *h = cd + pos;
        uint32_t flags = rd16(h + 8), method = rd16(h + 10);
        uint64_t csize = rd32(h + 20), usize = rd32(h + 24), lho = rd32(h + 42);
        size_t nlen = rd16(h + 28), xlen = rd16(h + 30), clen = rd16(h + 32);
        if (pos + 46 + nlen + xlen + clen > cd_size) {
            saa_zip_close(z);
            return saa_set_error(SAA_EFORMAT, "%s: zip central directory entry %llu overruns the directory", path,
                                 (unsigned long long)i);
        }
        const char *name = (const char *)h + 46;
        if (!read_zip64_extra(h + 46 + nlen, xlen, &usize, &csize, &lho, usize == 0xffffffffu,
                              csize == 0xffffffffu, lho == 0xffffffffu)) {
            saa_zip_close(z);
            return saa_set_error(SAA_EFORMAT, "%s: zip entry '%.*s' has a malformed zip64 extra field", path,
                                 (int)nlen, name);
        }
        if (flags & 1) {
            saa_zip_close(z);
            return saa_set_error(SAA_EUNSUPPORTED, "%s: zip entry '%.*s' is encrypted", path, (int)nlen, name);
        }
        if (method != 0 || csize != usize) {
            saa_zip_close(z);
            return saa_set_error(SAA_EUNSUPPORTED,
                                 "%s: zip entry '%.*s' is compressed (method %u); torch.save archives store entries "
                                 "uncompressed",
                                 path, (int)nlen, name, (unsigned)method);
        }
        if (!fits(lho, 30, len) || rd32(buf + lho) != 0x04034b50) {
            saa_zip_close(z);
            return saa_set_error(SAA_EFORMAT, "%s: zip entry '%.*s' has no local header at offset %llu (truncated?)",
                                 path, (int)nlen, name, (unsigned long long)lho);
        }
        uint64_t data_off = lho + 30 + rd16(buf + lho + 26) + rd16(buf + lho + 28);
        if (!fits(data_off, usize, len)) {
            saa_zip_close(z);
            return saa_set_error(SAA_EFORMAT,
                                 "%s: zip entry '%.*s' (%llu bytes at offset %llu) extends past the end of the "
                                 "%zu-byte file (truncated?)",
                                 path, (int)nlen, name, (unsigned long long)usize, (unsigned long long)data_off, len);
        }
        z->entries[i] = (saa_zip_entry){name, nlen, buf + data_off, (size_t)usize};
        pos += 46 + nlen + xlen + clen;
    }
    z->count = (size_t)count;
    qsort(z->entries, z->count, sizeof *z->entries, entry_cmp);
    return SAA_OK;
}

void saa_zip_close(saa_zip *z)
{
    free(z->entries);
    z->entries = NULL;
    z->count = 0;
}

const saa_zip_entry *saa_zip_find(const saa_zip *z, const char *name, size_t name_len)
{
    saa_zip_entry key = {name, name_len, NULL, 0};
    if (!z->count) return NULL;
    return bsearch(&key, z->entries, z->count, sizeof *z->entries, entry_cmp);
}
