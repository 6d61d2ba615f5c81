/* Minimal reader for STORED (uncompressed) zip archives such as torch.save writes, zip64 included.
 * Internal to src/io. Every offset and length is validated against the buffer. */
#ifndef SAA_IO_ZIP_H
#define SAA_IO_ZIP_H

#include <stddef.h>

typedef struct {
    const char *name;          /* points into the central directory (not NUL-terminated) */
    size_t name_len;
    const unsigned char *data; /* entry contents inside the buffer */
    size_t size;
} saa_zip_entry;

typedef struct {
    saa_zip_entry *entries; /* sorted by name */
    size_t count;
} saa_zip;

/* Parses the central directory of buf[0..len). path names the file in error messages.
 * Refuses compressed or encrypted entries. Returns SAA_OK or a negative code with the error set. */
int saa_zip_open(saa_zip *z, const unsigned char *buf, size_t len, const char *path);
void saa_zip_close(saa_zip *z);
/* Entry with exactly this name (name_len bytes), or NULL. */
const saa_zip_entry *saa_zip_find(const saa_zip *z, const char *name, size_t name_len);

#endif
