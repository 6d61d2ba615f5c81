/* The name -> tensor map behind every checkpoint format, file mapping, and the binding helper. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "saa/weights.h"

typedef struct {
    char *name;
    saa_tensor *tensor;
    saa_tensor *as_f32; /* lazily converted copy, NULL if the tensor is already f32 */
} weight_entry;

typedef struct {
    void *addr;
    size_t len;
} mapping;

struct saa_weights {
    char *path;
    weight_entry *entries;
    int count, cap;
    int *hash; /* open addressing over entries, -1 = empty */
    int hash_cap;
    mapping *maps;
    int nmaps;
};

static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h;
}

saa_weights *saa_weights_alloc(const char *path)
{
    saa_weights *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path ? path : ""))) {
        free(w);
        saa_set_error(SAA_ENOMEM, "out of memory");
        return NULL;
    }
    return w;
}

static int rehash(saa_weights *w, int cap)
{
    int *h = malloc(sizeof(int) * (size_t)cap);
    if (!h) return saa_set_error(SAA_ENOMEM, "out of memory");
    for (int i = 0; i < cap; i++) h[i] = -1;
    for (int i = 0; i < w->count; i++) {
        size_t j = name_hash(w->entries[i].name) & (size_t)(cap - 1);
        while (h[j] >= 0) j = (j + 1) & (size_t)(cap - 1);
        h[j] = i;
    }
    free(w->hash);
    w->hash = h;
    w->hash_cap = cap;
    return SAA_OK;
}

static int find_index(const saa_weights *w, const char *name)
{
    if (!w->hash_cap) return -1;
    size_t j = name_hash(name) & (size_t)(w->hash_cap - 1);
    while (w->hash[j] >= 0) {
        if (!strcmp(w->entries[w->hash[j]].name, name)) return w->hash[j];
        j = (j + 1) & (size_t)(w->hash_cap - 1);
    }
    return -1;
}

int saa_weights_add(saa_weights *w, const char *name, saa_tensor *t)
{
    if (find_index(w, name) >= 0) {
        saa_tensor_free(t);
        return saa_set_error(SAA_EFORMAT, "%s: tensor '%s' appears twice", w->path, name);
    }
    if (w->count == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        weight_entry *e = realloc(w->entries, sizeof *e * (size_t)cap);
        if (!e) {
            saa_tensor_free(t);
            return saa_set_error(SAA_ENOMEM, "out of memory");
        }
        w->entries = e;
        w->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy) {
        saa_tensor_free(t);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    w->entries[w->count++] = (weight_entry){copy, t, NULL};
    if (2 * w->count > w->hash_cap) return rehash(w, w->hash_cap ? 2 * w->hash_cap : 128);
    size_t j = name_hash(copy) & (size_t)(w->hash_cap - 1);
    while (w->hash[j] >= 0) j = (j + 1) & (size_t)(w->hash_cap - 1);
    w->hash[j] = w->count - 1;
    return SAA_OK;
}

void saa_weights_keep_mapping(saa_weights *w, void *addr, size_t len)
{
    mapping *m = realloc(w->maps, sizeof *m * (size_t)(w->nmaps + 1));
    if (!m) { /* cannot record it: leak the mapping rather than unmap live data */
        return;
    }
    w->maps = m;
    w->maps[w->nmaps++] = (mapping){addr, len};
}

void saa_weights_close(saa_weights *w)
{
    if (!w) return;
    for (int i = 0; i < w->count; i++) {
        free(w->entries[i].name);
        saa_tensor_free(w->entries[i].tensor);
        saa_tensor_free(w->entries[i].as_f32);
    }
    for (int i = 0; i < w->nmaps; i++) munmap(w->maps[i].addr, w->maps[i].len);
    free(w->maps);
    free(w->entries);
    free(w->hash);
    free(w->path);
    free(w);
}

const char *saa_weights_path(const saa_weights *w) { return w->path; }
int saa_weights_count(const saa_weights *w) { return w->count; }
const char *saa_weights_name(const saa_weights *w, int i) { return w->entries[i].name; }
const saa_tensor *saa_weights_at(const saa_weights *w, int i) { return w->entries[i].tensor; }

const saa_tensor *saa_weights_find(const saa_weights *w, const char *name)
{
    int i = find_index(w, name);
    return i < 0 ? NULL : w->entries[i].tensor;
}

const saa_tensor *saa_weights_find_f32(saa_weights *w, const char *name)
{
    int i = find_index(w, name);
    if (i < 0) return NULL;
    weight_entry *e = &w->entries[i];
    if (e->tensor->dtype == SAA_F32) return e->tensor;
    if (!e->as_f32) e->as_f32 = saa_tensor_to_f32(e->tensor);
    return e->as_f32;
}

int saa_weights_open(const char *path, saa_weights **out)
{
    *out = NULL;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return saa_set_error(SAA_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return saa_set_error(SAA_EIO, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    if (len < 8) {
        close(fd);
        return saa_set_error(SAA_EFORMAT, "%s: file too short (%zu bytes) to be a checkpoint", path, len);
    }
    void *addr = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (addr == MAP_FAILED) return saa_set_error(SAA_EIO, "%s: cannot map: %s", path, strerror(errno));
    saa_weights *w = saa_weights_alloc(path);
    if (!w) {
        munmap(addr, len);
        return SAA_ENOMEM;
    }
    saa_weights_keep_mapping(w, addr, len);
    const unsigned char *buf = addr;
    int rc;
    if (buf[0] == 'P' && buf[1] == 'K' && buf[2] == 3 && buf[3] == 4) {
        rc = saa_pth_read(w, buf, len, "model");
    } else if (buf[0] == 0x80 && buf[1] <= 5) {
        rc = saa_set_error(SAA_EUNSUPPORTED,
                           "%s: legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it "
                           "with torch.save(obj, path) from torch >= 1.6",
                           path);
    } else {
        uint64_t hlen = 0;
        for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
        if (hlen >= 2 && hlen <= len - 8 && buf[8] == '{')
            rc = saa_safetensors_read(w, buf, len);
        else
            rc = saa_set_error(SAA_EFORMAT,
                               "%s: not a checkpoint (expected a torch.save zip archive or a safetensors file)",
                               path);
    }
    if (rc != SAA_OK) {
        saa_weights_close(w);
        return rc;
    }
    *out = w;
    return SAA_OK;
}

/* ---------- binder ---------- */

struct saa_binder {
    saa_weights *w;
    char *prefix;
    char *problems;
    size_t problems_len;
    int nproblems;
};

saa_binder *saa_binder_new(saa_weights *w, const char *prefix)
{
    saa_binder *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->w = w;
    b->prefix = strdup(prefix ? prefix : "");
    return b;
}

int saa_binder_set_prefix(saa_binder *b, const char *prefix)
{
    char *p = strdup(prefix ? prefix : "");
    if (!p) return saa_set_error(SAA_ENOMEM, "out of memory");
    free(b->prefix);
    b->prefix = p;
    return SAA_OK;
}

static void add_problem(saa_binder *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t n = strlen(line);
    char *p = realloc(b->problems, b->problems_len + n + 3);
    if (!p) return;
    b->problems = p;
    if (b->problems_len) {
        memcpy(p + b->problems_len, "; ", 2);
        b->problems_len += 2;
    }
    memcpy(p + b->problems_len, line, n + 1);
    b->problems_len += n;
    b->nproblems++;
}

static void shape_text(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)(shape[i] < 0 ? snprintf(buf + k, n - k, i ? ", *" : "*")
                                   : snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]));
    if (k < n) snprintf(buf + k, n - k, "]");
}

static const saa_tensor *bind_v(saa_binder *b, int optional, int ndim, const int64_t *shape, const char *fmt,
                                va_list ap)
{
    if (!b) return NULL;
    char rel[384], name[512];
    vsnprintf(rel, sizeof rel, fmt, ap);
    snprintf(name, sizeof name, "%s%s", b->prefix, rel);
    const saa_tensor *t = saa_weights_find(b->w, name);
    char want[160], got[160];
    if (!t) {
        if (!optional) {
            shape_text(ndim, shape, want, sizeof want);
            add_problem(b, "missing %s (expected shape %s)", name, want);
        }
        return NULL;
    }
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++)
        if (shape[i] >= 0 && shape[i] != t->shape[i]) ok = 0;
    if (!ok) {
        shape_text(ndim, shape, want, sizeof want);
        add_problem(b, "%s has shape %s, expected %s", name, saa_shape_str(t, got, sizeof got), want);
        return NULL;
    }
    const saa_tensor *f = saa_weights_find_f32(b->w, name);
    if (!f) add_problem(b, "%s: cannot convert to float32 (%s)", name, saa_last_error());
    return f;
}

const saa_tensor *saa_bind_tensor(saa_binder *b, int ndim, const int64_t *shape, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const saa_tensor *t = bind_v(b, 0, ndim, shape, fmt, ap);
    va_end(ap);
    return t;
}

const saa_tensor *saa_bind_optional(saa_binder *b, int ndim, const int64_t *shape, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const saa_tensor *t = bind_v(b, 1, ndim, shape, fmt, ap);
    va_end(ap);
    return t;
}

const float *saa_bind(saa_binder *b, int ndim, const int64_t *shape, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const saa_tensor *t = bind_v(b, 0, ndim, shape, fmt, ap);
    va_end(ap);
    return t ? t->data : NULL;
}

int saa_binder_finish(saa_binder *b)
{
    if (!b) return saa_set_error(SAA_ENOMEM, "out of memory");
    int rc = SAA_OK;
    if (b->nproblems)
        rc = saa_set_error(SAA_ESHAPE, "%s: %d tensor problem%s: %s", saa_weights_path(b->w), b->nproblems,
                           b->nproblems > 1 ? "s" : "", b->problems);
    free(b->problems);
    free(b->prefix);
    free(b);
    return rc;
}
