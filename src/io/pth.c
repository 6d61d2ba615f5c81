/* PyTorch checkpoint reader for the torch.save zip format (torch >= 1.6):
 *   <folder>/data.pkl      the pickled object (protocol 2), tensors as persistent ids
 *   <folder>/data/<key>    one raw little-endian storage per key
 * The pickle is interpreted by a strict whitelist: only the opcodes torch.save emits and only the
 * globals that rebuild tensors and state dicts (collections.OrderedDict, torch._utils._rebuild_*,
 * torch.*Storage). Nothing is ever called: REDUCE of a whitelisted callable is interpreted here, and
 * any other global (os.system, builtins.eval, ...) stops the load before it is reached.
 * Mirrors torch/serialization.py: _load / persistent_load and torch/_utils.py: _rebuild_tensor_v2. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saa/weights.h"
#include "zip.h"

typedef enum { P_NONE, P_BOOL, P_INT, P_FLOAT, P_STR, P_TUPLE, P_LIST, P_DICT, P_GLOBAL, P_STORAGE, P_TENSOR } pkind;

typedef enum { G_ORDERED_DICT, G_REBUILD_TENSOR_V2, G_REBUILD_PARAMETER, G_REBUILD_PARAMETER_WITH_STATE,
               G_STORAGE_TYPE } global_id;

typedef struct pobj pobj;
struct pobj {
    pkind kind;
    pobj *arena_next;        /* every object is owned by the unpickler's arena */
    int64_t i;               /* P_INT/P_BOOL value, P_GLOBAL id */
    double f;                /* P_FLOAT */
    char *s;                 /* P_STR (NUL-terminated copy), P_STORAGE key */
    size_t slen;
    pobj **items;            /* P_TUPLE/P_LIST items; P_DICT key,value pairs */
    size_t n, cap;           /* item count (P_DICT: 2 * pairs) */
    saa_dtype dtype;         /* P_GLOBAL storage type, P_STORAGE */
    const unsigned char *data; /* P_STORAGE bytes inside the mapping */
    size_t nbytes;
    int64_t numel;
    saa_tensor *tensor;      /* P_TENSOR */
    int given;               /* tensor ownership moved to the weights map */
};

typedef struct {
    const char *path;
    const unsigned char *start, *p, *end;
    const saa_zip *zip;
    const char *prefix; /* "<folder>/" of data.pkl */
    size_t prefix_len;
    pobj *arena;
    pobj **stack;
    size_t sp, scap;
    size_t *marks;
    size_t nmarks, mcap;
    pobj **memo;
    size_t memo_cap;
} unpickler;

static int perr(unpickler *u, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int perr(unpickler *u, int code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return saa_set_error(code, "%s: %.*sdata.pkl at byte %zu: %s", u->path, (int)u->prefix_len, u->prefix,
                         (size_t)(u->p - u->start), msg);
}

static pobj *new_obj(unpickler *u, pkind kind)
{
    pobj *o = calloc(1, sizeof *o);
    if (!o) {
        saa_set_error(SAA_ENOMEM, "out of memory");
        return NULL;
    }
    o->kind = kind;
    o->arena_next = u->arena;
    u->arena = o;
    return o;
}

static void free_arena(unpickler *u)
{
    pobj *o = u->arena;
    while (o) {
        pobj *next = o->arena_next;
        free(o->s);
        free(o->items);
        if (!o->given) saa_tensor_free(o->tensor);
        free(o);
        o = next;
    }
    u->arena = NULL;
    free(u->stack);
    free(u->marks);
    free(u->memo);
}

static int push(unpickler *u, pobj *o)
{
    if (!o) return SAA_ENOMEM;
    if (u->sp == u->scap) {
        size_t cap = u->scap ? 2 * u->scap : 64;
        pobj **s = realloc(u->stack, cap * sizeof *s);
        if (!s) return saa_set_error(SAA_ENOMEM, "out of memory");
        u->stack = s;
        u->scap = cap;
    }
    u->stack[u->sp++] = o;
    return SAA_OK;
}

/* Items above the topmost mark: they must not cross it. */
static size_t stack_floor(const unpickler *u) { return u->nmarks ? u->marks[u->nmarks - 1] : 0; }

static pobj *pop(unpickler *u)
{
    if (u->sp <= stack_floor(u)) {
        perr(u, SAA_EFORMAT, "pickle stack underflow (malformed pickle)");
        return NULL;
    }
    return u->stack[--u->sp];
}

static pobj *top(unpickler *u)
{
    if (u->sp <= stack_floor(u)) {
        perr(u, SAA_EFORMAT, "pickle stack underflow (malformed pickle)");
        return NULL;
    }
    return u->stack[u->sp - 1];
}

static int add_item(pobj *o, pobj *item)
{
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 8;
        pobj **it = realloc(o->items, cap * sizeof *it);
        if (!it) return saa_set_error(SAA_ENOMEM, "out of memory");
        o->items = it;
        o->cap = cap;
    }
    o->items[o->n++] = item;
    return SAA_OK;
}

/* Pops the topmost mark; *first is the stack index of the first item above it. */
static int pop_mark(unpickler *u, size_t *first)
{
    if (!u->nmarks) return perr(u, SAA_EFORMAT, "no MARK on the pickle stack (malformed pickle)");
    *first = u->marks[--u->nmarks];
    return SAA_OK;
}

static int need(unpickler *u, size_t n)
{
    if ((size_t)(u->end - u->p) < n) return perr(u, SAA_EFORMAT, "pickle ends in the middle of an opcode (truncated)");
    return SAA_OK;
}

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

static pobj *make_str(unpickler *u, const unsigned char *s, size_t n)
{
    pobj *o = new_obj(u, P_STR);
    if (!o) return NULL;
    o->s = malloc(n + 1);
    if (!o->s) {
        saa_set_error(SAA_ENOMEM, "out of memory");
        return NULL;
    }
    if (n) memcpy(o->s, s, n);
    o->s[n] = 0;
    o->slen = n;
    return o;
}

static pobj *make_int(unpickler *u, int64_t v)
{
    pobj *o = new_obj(u, P_INT);
    if (o) o->i = v;
    return o;
}

static int memo_put(unpickler *u, uint64_t idx)
{
    pobj *o = top(u);
    if (!o) return SAA_EFORMAT;
    /* torch numbers memo slots sequentially; an index beyond the pickle size cannot be legitimate */
    if (idx > (uint64_t)(u->end - u->start)) return perr(u, SAA_EFORMAT, "memo index %llu out of range", (unsigned long long)idx);
    if (idx >= u->memo_cap) {
        size_t cap = u->memo_cap ? u->memo_cap : 256;
        while (cap <= idx) cap *= 2;
        pobj **m = realloc(u->memo, cap * sizeof *m);
        if (!m) return saa_set_error(SAA_ENOMEM, "out of memory");
        memset(m + u->memo_cap, 0, (cap - u->memo_cap) * sizeof *m);
        u->memo = m;
        u->memo_cap = cap;
    }
    u->memo[idx] = o;
    return SAA_OK;
}

static int memo_get(unpickler *u, uint64_t idx)
{
    if (idx >= u->memo_cap || !u->memo[idx])
        return perr(u, SAA_EFORMAT, "memo slot %llu read before it was written", (unsigned long long)idx);
    return push(u, u->memo[idx]);
}

/* ---------- globals whitelist ---------- */

static const struct {
    const char *module, *name;
    global_id id;
    saa_dtype dtype;
} allowed_globals[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, SAA_F32},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2, SAA_F32},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER, SAA_F32},
    {"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAMETER_WITH_STATE, SAA_F32},
    {"torch", "FloatStorage", G_STORAGE_TYPE, SAA_F32},
    {"torch", "HalfStorage", G_STORAGE_TYPE, SAA_F16},
    {"torch", "BFloat16Storage", G_STORAGE_TYPE, SAA_BF16},
    {"torch", "DoubleStorage", G_STORAGE_TYPE, SAA_F64},
    {"torch", "LongStorage", G_STORAGE_TYPE, SAA_I64},
    {"torch", "IntStorage", G_STORAGE_TYPE, SAA_I32},
    {"torch", "ShortStorage", G_STORAGE_TYPE, SAA_I16},
    {"torch", "CharStorage", G_STORAGE_TYPE, SAA_I8},
    {"torch", "ByteStorage", G_STORAGE_TYPE, SAA_U8},
    {"torch", "BoolStorage", G_STORAGE_TYPE, SAA_BOOL},
    {"torch", "UntypedStorage", G_STORAGE_TYPE, SAA_U8},
};

static int push_global(unpickler *u, const char *module, size_t mlen, const char *name, size_t nlen)
{
    for (size_t i = 0; i < sizeof allowed_globals / sizeof allowed_globals[0]; i++) {
        if (strlen(allowed_globals[i].module) == mlen && !memcmp(allowed_globals[i].module, module, mlen) &&
            strlen(allowed_globals[i].name) == nlen && !memcmp(allowed_globals[i].name, name, nlen)) {
            pobj *o = new_obj(u, P_GLOBAL);
            if (!o) return SAA_ENOMEM;
            o->i = allowed_globals[i].id;
            o->dtype = allowed_globals[i].dtype;
            return push(u, o);
        }
    }
    /* printable rendering only: the name comes from an untrusted file */
    char shown[160];
    size_t k = 0;
    for (size_t i = 0; i < mlen + 1 + nlen && k + 1 < sizeof shown; i++) {
        char c = i < mlen ? module[i] : i == mlen ? '.' : name[i - mlen - 1];
        shown[k++] = (c >= 32 && c < 127) ? c : '?';
    }
    shown[k] = 0;
    return perr(u, SAA_EFORMAT,
                "unknown global %s: refusing to load (a checkpoint may only reference torch tensor and storage "
                "types; nothing was executed)",
                shown);
}

/* ---------- tensors ---------- */

static int get_int(const pobj *o, int64_t *v)
{
    if (!o || (o->kind != P_INT && o->kind != P_BOOL)) return 0;
    *v = o->i;
    return 1;
}

/* mirrors torch/serialization.py: persistent_load — ('storage', storage_type, key, location, numel) */
static int persistent_load(unpickler *u, pobj *pid, pobj **out)
{
    if (pid->kind != P_TUPLE || pid->n != 5 || pid->items[0]->kind != P_STR || strcmp(pid->items[0]->s, "storage") ||
        pid->items[1]->kind != P_GLOBAL || pid->items[1]->i != G_STORAGE_TYPE || pid->items[2]->kind != P_STR ||
        pid->items[4]->kind != P_INT)
        return perr(u, SAA_EFORMAT, "persistent id is not ('storage', <torch storage type>, key, location, numel)");
    const char *key = pid->items[2]->s;
    int64_t numel = pid->items[4]->i;
    saa_dtype dtype = pid->items[1]->dtype;
    size_t esize = saa_dtype_size(dtype);
    char name[512];
    int n = snprintf(name, sizeof name, "%.*sdata/%s", (int)u->prefix_len, u->prefix, key);
    if (n < 0 || (size_t)n >= sizeof name) return perr(u, SAA_EFORMAT, "storage key too long");
    const saa_zip_entry *e = saa_zip_find(u->zip, name, (size_t)n);
    if (!e) return perr(u, SAA_EFORMAT, "storage '%s' is missing from the archive (no entry %s)", key, name);
    if (numel < 0 || (uint64_t)numel > e->size / esize)
        return perr(u, SAA_EFORMAT, "storage '%s' declares %lld %s elements but its entry holds only %zu bytes", key,
                    (long long)numel, saa_dtype_name(dtype), e->size);
    pobj *o = new_obj(u, P_STORAGE);
    if (!o) return SAA_ENOMEM;
    o->dtype = dtype;
    o->data = e->data;
    o->nbytes = e->size;
    o->numel = numel;
    o->s = strdup(key);
    if (!o->s) return saa_set_error(SAA_ENOMEM, "out of memory");
    *out = o;
    return SAA_OK;
}

/* mirrors torch/_utils.py: _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata]) — the view is bounds-checked against the storage, then either borrowed
 * from the mapping (contiguous and aligned) or gathered into a contiguous copy. */
static int rebuild_tensor(unpickler *u, pobj *args, pobj **out)
{
    if (args->kind != P_TUPLE || (args->n != 6 && args->n != 7))
        return perr(u, SAA_EFORMAT, "_rebuild_tensor_v2 expects 6 or 7 arguments");
    pobj *st = args->items[0], *size = args->items[2], *stride = args->items[3];
    int64_t offset;
    if (st->kind != P_STORAGE || !get_int(args->items[1], &offset) || size->kind != P_TUPLE ||
        stride->kind != P_TUPLE)
        return perr(u, SAA_EFORMAT, "_rebuild_tensor_v2 expects (storage, offset, size tuple, stride tuple, ...)");
    if (size->n != stride->n || size->n > SAA_MAX_DIMS)
        return perr(u, SAA_EFORMAT, "tensor has %zu sizes and %zu strides (at most %d dimensions supported)", size->n,
                    stride->n, SAA_MAX_DIMS);
    int ndim = (int)size->n;
    int64_t shape[SAA_MAX_DIMS], strides[SAA_MAX_DIMS];
    const int64_t limit = (int64_t)1 << 48;
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (!get_int(size->items[d], &shape[d]) || !get_int(stride->items[d], &strides[d]) || shape[d] < 0 ||
            shape[d] > limit || strides[d] < 0 || strides[d] > limit)
            return perr(u, SAA_EFORMAT, "tensor size/stride entry %d is not a valid integer", d);
        if (shape[d] && numel > limit / shape[d]) return perr(u, SAA_EFORMAT, "tensor has too many elements");
        numel *= shape[d];
    }
    if (offset < 0 || offset > limit) return perr(u, SAA_EFORMAT, "invalid storage offset %lld", (long long)offset);
    size_t esize = saa_dtype_size(st->dtype);
    int contiguous = 1;
    if (numel > 0) {
        int64_t extent = offset + 1, expect = 1; /* elements of storage the view reaches */
        for (int d = ndim - 1; d >= 0; d--) {
            if (shape[d] - 1 > 0 && strides[d] > (limit - extent) / (shape[d] - 1))
                return perr(u, SAA_EFORMAT, "tensor view extent overflows");
            extent += (shape[d] - 1) * strides[d];
            if (shape[d] != 1 && strides[d] != expect) contiguous = 0;
            expect *= shape[d];
        }
        if (extent > st->numel)
            return perr(u, SAA_EFORMAT,
                        "tensor view (offset %lld) needs %lld elements of storage '%s', which holds only %lld", (long long)offset,
                        (long long)extent, st->s, (long long)st->numel);
    }
    saa_tensor *t;
    const unsigned char *base = st->data + (size_t)(numel > 0 ? offset : 0) * esize;
    if (contiguous && (numel == 0 || (uintptr_t)base % esize == 0)) {
        t = saa_tensor_wrap(st->dtype, ndim, shape, (void *)base);
    } else {
        t = saa_tensor_new(st->dtype, ndim, shape);
        if (t) {
            /* gather: walk the view in row-major order, advancing the storage index by the strides */
            unsigned char *dst = t->data;
            int64_t idx[SAA_MAX_DIMS] = {0}, src = offset;
            for (int64_t k = 0; k < numel; k++) {
                memcpy(dst + (size_t)k * esize, st->data + (size_t)src * esize, esize);
                for (int d = ndim - 1; d >= 0; d--) {
                    if (++idx[d] < shape[d]) {
                        src += strides[d];
                        break;
                    }
                    src -= (shape[d] - 1) * strides[d];
                    idx[d] = 0;
                }
            }
        }
    }
    if (!t) return SAA_ENOMEM;
    pobj *o = new_obj(u, P_TENSOR);
    if (!o) {
        saa_tensor_free(t);
        return SAA_ENOMEM;
    }
    o->tensor = t;
    *out = o;
    return SAA_OK;
}

static int reduce(unpickler *u)
{
    pobj *args = pop(u);
    if (!args) return SAA_EFORMAT;
    pobj *fn = pop(u);
    if (!fn) return SAA_EFORMAT;
    if (fn->kind != P_GLOBAL) return perr(u, SAA_EFORMAT, "REDUCE of something that is not a whitelisted global");
    if (args->kind != P_TUPLE) return perr(u, SAA_EFORMAT, "REDUCE arguments are not a tuple");
    pobj *res = NULL;
    int rc = SAA_OK;
    switch ((global_id)fn->i) {
    case G_ORDERED_DICT:
        if (args->n != 0) return perr(u, SAA_EFORMAT, "OrderedDict called with arguments (not a torch.save pickle)");
        res = new_obj(u, P_DICT);
        if (!res) return SAA_ENOMEM;
        break;
    case G_REBUILD_TENSOR_V2:
        rc = rebuild_tensor(u, args, &res);
        break;
    case G_REBUILD_PARAMETER:
    case G_REBUILD_PARAMETER_WITH_STATE: /* nn.Parameter(data, requires_grad, hooks[, state]): the data */
        if (args->n != (fn->i == G_REBUILD_PARAMETER ? 3u : 4u) || args->items[0]->kind != P_TENSOR)
            return perr(u, SAA_EFORMAT, "_rebuild_parameter expects (tensor, requires_grad, hooks)");
        res = args->items[0];
        break;
    case G_STORAGE_TYPE:
        return perr(u, SAA_EFORMAT, "storage types may only appear in persistent ids");
    }
    if (rc != SAA_OK) return rc;
    return push(u, res);
}

/* ---------- interpreter ---------- */

static int run_pickle(unpickler *u, pobj **result)
{
    int rc = SAA_OK;
    while (rc == SAA_OK) {
        if (u->p >= u->end) return perr(u, SAA_EFORMAT, "pickle ends without STOP (truncated)");
        unsigned char op = *u->p++;
        switch (op) {
        case 0x80: /* PROTO */
            if ((rc = need(u, 1))) break;
            if (*u->p > 5) return perr(u, SAA_EFORMAT, "unsupported pickle protocol %d", *u->p);
            u->p++;
            break;
        case 0x95: /* FRAME (protocol 4): length prefix only */
            if ((rc = need(u, 8))) break;
            u->p += 8;
            break;
        case '.': /* STOP */
            *result = pop(u);
            return *result ? SAA_OK : SAA_EFORMAT;
        case '(': /* MARK */
            if (u->nmarks == u->mcap) {
                size_t cap = u->mcap ? 2 * u->mcap : 16;
                size_t *m = realloc(u->marks, cap * sizeof *m);
                if (!m) return saa_set_error(SAA_ENOMEM, "out of memory");
                u->marks = m;
                u->mcap = cap;
            }
            u->marks[u->nmarks++] = u->sp;
            break;
        case '}': rc = push(u, new_obj(u, P_DICT)); break;
        case ']': rc = push(u, new_obj(u, P_LIST)); break;
        case ')': rc = push(u, new_obj(u, P_TUPLE)); break;
        case 't': { /* TUPLE */
            size_t first = 0;
            if ((rc = pop_mark(u, &first))) break;
            pobj *t = new_obj(u, P_TUPLE);
            if (!t) return SAA_ENOMEM;
            for (size_t i = first; i < u->sp && rc == SAA_OK; i++) rc = add_item(t, u->stack[i]);
            u->sp = first;
            if (rc == SAA_OK) rc = push(u, t);
            break;
        }
        case 0x85: case 0x86: case 0x87: { /* TUPLE1/2/3 */
            size_t n = (size_t)(op - 0x84);
            if (u->sp < stack_floor(u) + n) return perr(u, SAA_EFORMAT, "pickle stack underflow (malformed pickle)");
            pobj *t = new_obj(u, P_TUPLE);
            if (!t) return SAA_ENOMEM;
            for (size_t i = u->sp - n; i < u->sp && rc == SAA_OK; i++) rc = add_item(t, u->stack[i]);
            u->sp -= n;
            if (rc == SAA_OK) rc = push(u, t);
            break;
        }
        case 'X': case 0x8c: case 0x8d: case 'T': case 'U': { /* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8,
                                                                BINSTRING, SHORT_BINSTRING */
            int w = (op == 0x8c || op == 'U') ? 1 : op == 0x8d ? 8 : 4;
            if ((rc = need(u, (size_t)w))) break;
            uint64_t n = le(u->p, w);
            u->p += w;
            if (n > (uint64_t)(u->end - u->p)) return perr(u, SAA_EFORMAT, "string runs past the end of the pickle");
            rc = push(u, make_str(u, u->p, (size_t)n));
            u->p += n;
            break;
        }
        case 'J': /* BININT: signed 32-bit */
            if ((rc = need(u, 4))) break;
            rc = push(u, make_int(u, (int32_t)(uint32_t)le(u->p, 4)));
            u->p += 4;
            break;
        case 'K': /* BININT1 */
            if ((rc = need(u, 1))) break;
            rc = push(u, make_int(u, *u->p++));
            break;
        case 'M': /* BININT2 */
            if ((rc = need(u, 2))) break;
            rc = push(u, make_int(u, (int64_t)le(u->p, 2)));
            u->p += 2;
            break;
        case 0x8a: { /* LONG1: n bytes, little-endian two's complement */
            if ((rc = need(u, 1))) break;
            int n = *u->p++;
            if (n > 8) return perr(u, SAA_EFORMAT, "integer of %d bytes is too large", n);
            if ((rc = need(u, (size_t)n))) break;
            uint64_t v = le(u->p, n);
            if (n > 0 && n < 8 && (u->p[n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);
            int64_t sv;
            memcpy(&sv, &v, sizeof sv);
            rc = push(u, make_int(u, sv));
            u->p += n;
            break;
        }
        case 'G': { /* BINFLOAT: big-endian double */
            if ((rc = need(u, 8))) break;
            uint64_t bits = 0;
            for (int i = 0; i < 8; i++) bits = bits << 8 | u->p[i];
            u->p += 8;
            pobj *o = new_obj(u, P_FLOAT);
            if (!o) return SAA_ENOMEM;
            memcpy(&o->f, &bits, sizeof o->f);
            rc = push(u, o);
            break;
        }
        case 'N': rc = push(u, new_obj(u, P_NONE)); break;
        case 0x88: case 0x89: { /* NEWTRUE, NEWFALSE */
            pobj *o = new_obj(u, P_BOOL);
            if (!o) return SAA_ENOMEM;
            o->i = op == 0x88;
            rc = push(u, o);
            break;
        }
        case 'q': /* BINPUT */
            if ((rc = need(u, 1))) break;
            rc = memo_put(u, *u->p++);
            break;
        case 'r': /* LONG_BINPUT */
            if ((rc = need(u, 4))) break;
            rc = memo_put(u, le(u->p, 4));
            u->p += 4;
            break;
        case 0x94: /* MEMOIZE */
            rc = memo_put(u, u->memo_cap); /* next free slot: torch never mixes it with explicit indices */
            break;
        case 'h': /* BINGET */
            if ((rc = need(u, 1))) break;
            rc = memo_get(u, *u->p++);
            break;
        case 'j': /* LONG_BINGET */
            if ((rc = need(u, 4))) break;
            rc = memo_get(u, le(u->p, 4));
            u->p += 4;
            break;
        case 'c': { /* GLOBAL "module\nname\n" */
            const unsigned char *m = u->p, *nl1 = memchr(m, '\n', (size_t)(u->end - m));
            if (!nl1) return perr(u, SAA_EFORMAT, "GLOBAL without a newline-terminated module name");
            const unsigned char *nm = nl1 + 1, *nl2 = memchr(nm, '\n', (size_t)(u->end - nm));
            if (!nl2) return perr(u, SAA_EFORMAT, "GLOBAL without a newline-terminated name");
            u->p = nl2 + 1;
            rc = push_global(u, (const char *)m, (size_t)(nl1 - m), (const char *)nm, (size_t)(nl2 - nm));
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            pobj *name = pop(u), *module = name ? pop(u) : NULL;
            if (!module) return SAA_EFORMAT;
            if (name->kind != P_STR || module->kind != P_STR)
                return perr(u, SAA_EFORMAT, "STACK_GLOBAL operands are not strings");
            rc = push_global(u, module->s, module->slen, name->s, name->slen);
            break;
        }
        case 'R': rc = reduce(u); break;
        case 'Q': { /* BINPERSID */
            pobj *pid = pop(u), *st = NULL;
            if (!pid) return SAA_EFORMAT;
            if ((rc = persistent_load(u, pid, &st))) break;
            rc = push(u, st);
            break;
        }
        case 's': case 'u': { /* SETITEM, SETITEMS */
            size_t first = 0;
            if (op == 's') {
                if (u->sp < stack_floor(u) + 3) return perr(u, SAA_EFORMAT, "pickle stack underflow (malformed pickle)");
                first = u->sp - 2;
            } else if ((rc = pop_mark(u, &first))) {
                break;
            }
            if (first == 0 || (u->sp - first) % 2) return perr(u, SAA_EFORMAT, "SETITEMS with unpaired keys");
            pobj *d = u->stack[first - 1];
            if (d->kind != P_DICT) return perr(u, SAA_EFORMAT, "SETITEM on something that is not a dict");
            for (size_t i = first; i < u->sp && rc == SAA_OK; i++) rc = add_item(d, u->stack[i]);
            u->sp = first;
            break;
        }
        case 'a': case 'e': { /* APPEND, APPENDS */
            size_t first = 0;
            if (op == 'a') {
                if (u->sp < stack_floor(u) + 2) return perr(u, SAA_EFORMAT, "pickle stack underflow (malformed pickle)");
                first = u->sp - 1;
            } else if ((rc = pop_mark(u, &first))) {
                break;
            }
            if (first == 0 || u->stack[first - 1]->kind != P_LIST)
                return perr(u, SAA_EFORMAT, "APPEND on something that is not a list");
            pobj *l = u->stack[first - 1];
            for (size_t i = first; i < u->sp && rc == SAA_OK; i++) rc = add_item(l, u->stack[i]);
            u->sp = first;
            break;
        }
        case 'b': { /* BUILD: only an OrderedDict's instance state (state_dict._metadata), ignored */
            pobj *state = pop(u), *obj = state ? top(u) : NULL;
            if (!obj) return SAA_EFORMAT;
            if (obj->kind != P_DICT || (state->kind != P_DICT && state->kind != P_NONE && state->kind != P_TUPLE))
                return perr(u, SAA_EFORMAT, "BUILD is only accepted on an OrderedDict");
            break;
        }
        case '0': /* POP */
            if (!pop(u)) return SAA_EFORMAT;
            break;
        case '1': { /* POP_MARK */
            size_t first = 0;
            if ((rc = pop_mark(u, &first))) break;
            u->sp = first;
            break;
        }
        case '2': { /* DUP */
            pobj *o = top(u);
            if (!o) return SAA_EFORMAT;
            rc = push(u, o);
            break;
        }
        default:
            u->p--;
            return perr(u, SAA_EFORMAT, "pickle opcode 0x%02x is not allowed in a torch checkpoint", op);
        }
    }
    return rc;
}

static pobj *dict_get(const pobj *d, const char *key)
{
    pobj *found = NULL; /* a later SETITEM of the same key wins, as in Python */
    for (size_t i = 0; i + 1 < d->n; i += 2)
        if (d->items[i]->kind == P_STR && !strcmp(d->items[i]->s, key)) found = d->items[i + 1];
    return found;
}

/* Finds "<folder>/data.pkl" (the folder is named after the saved file, not always "archive"). */
static const saa_zip_entry *find_data_pkl(const saa_zip *z)
{
    for (size_t i = 0; i < z->count; i++) {
        const saa_zip_entry *e = &z->entries[i];
        if (e->name_len < 8 || memcmp(e->name + e->name_len - 8, "data.pkl", 8)) continue;
        size_t slashes = 0;
        for (size_t k = 0; k < e->name_len; k++) slashes += e->name[k] == '/';
        if (e->name_len == 8 || (slashes == 1 && e->name[e->name_len - 9] == '/')) return e;
    }
    return NULL;
}

int saa_pth_read(saa_weights *w, const unsigned char *buf, size_t len, const char *nested_key)
{
    const char *path = saa_weights_path(w);
    saa_zip z;
    int rc = saa_zip_open(&z, buf, len, path);
    if (rc != SAA_OK) return rc;
    const saa_zip_entry *pkl = find_data_pkl(&z);
    if (!pkl) {
        saa_zip_close(&z);
        return saa_set_error(SAA_EFORMAT, "%s: zip archive has no <folder>/data.pkl (not a torch.save checkpoint)",
                             path);
    }
    unpickler u = {0};
    u.path = path;
    u.start = u.p = pkl->data;
    u.end = pkl->data + pkl->size;
    u.zip = &z;
    u.prefix = pkl->name;
    u.prefix_len = pkl->name_len - 8;
    /* torch >= 2.1 records the byte order; storages are read as little-endian */
    char bo_name[512];
    int bn = snprintf(bo_name, sizeof bo_name, "%.*sbyteorder", (int)u.prefix_len, u.prefix);
    const saa_zip_entry *bo = bn > 0 && (size_t)bn < sizeof bo_name ? saa_zip_find(&z, bo_name, (size_t)bn) : NULL;
    if (bo && !(bo->size == 6 && !memcmp(bo->data, "little", 6))) {
        saa_zip_close(&z);
        return saa_set_error(SAA_EUNSUPPORTED, "%s: checkpoint was saved on a big-endian machine (unsupported)", path);
    }
    pobj *root = NULL;
    rc = run_pickle(&u, &root);
    if (rc == SAA_OK && root->kind != P_DICT)
        rc = perr(&u, SAA_EFORMAT, "top-level object is not a dict (expected a state dict or {\"%s\": state_dict})",
                  nested_key ? nested_key : "model");
    if (rc == SAA_OK) {
        pobj *sd = root, *v;
        if (nested_key && (v = dict_get(root, nested_key)) && v->kind == P_DICT)
            sd = v;
        else if ((v = dict_get(root, "state_dict")) && v->kind == P_DICT)
            sd = v;
        int added = 0;
        for (size_t i = 0; i + 1 < sd->n && rc == SAA_OK; i += 2) {
            pobj *k = sd->items[i], *val = sd->items[i + 1];
            if (k->kind != P_STR || val->kind != P_TENSOR) continue; /* metadata, counters, notes */
            saa_tensor *t = val->tensor;
            if (val->given) { /* the same tensor under two names (tied weights): share or copy */
                t = t->owns_data ? saa_tensor_copy(t) : saa_tensor_wrap(t->dtype, t->ndim, t->shape, t->data);
                if (!t) rc = SAA_ENOMEM;
            }
            if (rc == SAA_OK) {
                val->given = 1;
                rc = saa_weights_add(w, k->s, t);
                added++;
            }
        }
        if (rc == SAA_OK && !added) {
            char keys[256] = "";
            size_t kl = 0;
            for (size_t i = 0; i + 1 < root->n && kl + 1 < sizeof keys; i += 2)
                if (root->items[i]->kind == P_STR)
                    kl += (size_t)snprintf(keys + kl, sizeof keys - kl, "%s%s", kl ? ", " : "", root->items[i]->s);
            rc = saa_set_error(SAA_EFORMAT, "%s: checkpoint holds no tensors (top-level keys: %s)", path,
                               kl ? keys : "none");
        }
    }
    free_arena(&u);
    saa_zip_close(&z);
    return rc;
}
