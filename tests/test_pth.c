/* .pth reader tests: hand-built torch.save-style archives (zip64, unaligned storages, strided views,
 * tied tensors, nn.Parameter) with hand-checked values; corrupt variants (truncated, bad magic,
 * compressed entry, bad opcode, unknown global, storage shorter than the view) must each fail with one
 * clear line naming the file; then every golden .pth is loaded and compared with stored references. */
#include <dirent.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "saa/weights.h"
#include "test.h"

/* ---------- byte buffer ---------- */
typedef struct {
    unsigned char *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}
static void put1(bytes *b, unsigned v) { unsigned char c = (unsigned char)v; put(b, &c, 1); }
static void putle(bytes *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++) put1(b, (unsigned)(v >> (8 * i)) & 0xff);
}

/* ---------- pickle writer (the opcodes torch.save emits) ---------- */
static void p_str(bytes *b, const char *s)
{
    put1(b, 'X');
    putle(b, strlen(s), 4);
    put(b, s, strlen(s));
}
static void p_global(bytes *b, const char *module, const char *name)
{
    put1(b, 'c');
    put(b, module, strlen(module));
    put1(b, '\n');
    put(b, name, strlen(name));
    put1(b, '\n');
}
static void p_int(bytes *b, unsigned v) /* BININT1 */
{
    put1(b, 'K');
    put1(b, v);
}
static void p_storage(bytes *b, const char *key, unsigned numel)
{
    put1(b, '(');
    p_str(b, "storage");
    p_global(b, "torch", "FloatStorage");
    p_str(b, key);
    p_str(b, "cpu");
    p_int(b, numel);
    put1(b, 't');
    put1(b, 'Q'); /* BINPERSID */
}
static void p_empty_ordered_dict(bytes *b)
{
    p_global(b, "collections", "OrderedDict");
    put1(b, ')');
    put1(b, 'R');
}

typedef struct {
    const char *bad_global;   /* inserted before the state dict */
    int bad_opcode;           /* replaces the SETITEMS of the state dict */
    unsigned storage_numel;   /* numel in the persistent id (6 is right) */
    unsigned a_rows;          /* rows of the 'a' view (2 is right; 3 overruns the storage) */
    int truncate_pickle;      /* drop the STOP */
} pickle_opts;

/* {"model": OrderedDict{"a": t(2x3 of s0), "b": Parameter(s0[1::3], 2 elems), "c": a (tied), "n": -5},
 *  "epoch": -10}   with s0 = [0, 1, 2, 3, 4, 5] */
static void make_pickle(bytes *b, pickle_opts o)
{
    put1(b, 0x80);
    put1(b, 2);
    put1(b, '}');
    put1(b, '(');
    if (o.bad_global) {
        p_str(b, "payload");
        p_global(b, o.bad_global, "system");
        p_str(b, "echo ran > saa-test-pwned.txt");
        put1(b, 0x85);
        put1(b, 'R');
    }
    p_str(b, "model");
    p_empty_ordered_dict(b);
    put1(b, 'q');
    put1(b, 0); /* BINPUT 0 */
    put1(b, '(');
    p_str(b, "a");
    p_global(b, "torch._utils", "_rebuild_tensor_v2");
    put1(b, 'q');
    put1(b, 1);
    put1(b, '(');
    p_storage(b, "0", o.storage_numel);
    p_int(b, 0);
    p_int(b, o.a_rows);
    p_int(b, 3);
    put1(b, 0x86);
    p_int(b, 3);
    p_int(b, 1);
    put1(b, 0x86);
    put1(b, 0x89);
    p_empty_ordered_dict(b);
    put1(b, 't');
    put1(b, 'R');
    put1(b, 'r');
    putle(b, 2, 4); /* LONG_BINPUT 2 */
    p_str(b, "b");
    p_global(b, "torch._utils", "_rebuild_parameter");
    put1(b, 'h');
    put1(b, 1); /* BINGET 1: _rebuild_tensor_v2 */
    put1(b, '(');
    p_storage(b, "0", o.storage_numel);
    p_int(b, 1);
    p_int(b, 2);
    put1(b, 0x85);
    p_int(b, 3);
    put1(b, 0x85);
    put1(b, 0x89);
    put1(b, 'N');
    put1(b, 't');
    put1(b, 'R');
    put1(b, 0x88);
    p_empty_ordered_dict(b);
    put1(b, 0x87);
    put1(b, 'R');
    p_str(b, "c");
    put1(b, 'j');
    putle(b, 2, 4); /* LONG_BINGET 2: the same tensor as "a" */
    p_str(b, "n");
    put1(b, 'J');
    putle(b, (uint32_t)-5, 4);
    put1(b, o.bad_opcode ? (unsigned)o.bad_opcode : 'u');
    /* state_dict._metadata, as nn.Module.state_dict() attaches it */
    put1(b, '}');
    put1(b, '(');
    p_str(b, "_metadata");
    put1(b, '}');
    put1(b, 'u');
    put1(b, 'b'); /* BUILD */
    put1(b, '0'); /* POP the metadata-carrying dict (leaves "model"'s OrderedDict via memo) */
    put1(b, 'h');
    put1(b, 0);
    p_str(b, "epoch");
    put1(b, 0x8a);
    put1(b, 2);
    put1(b, 0xf6);
    put1(b, 0xff); /* LONG1 -10 */
    put1(b, 'u');
    if (!o.truncate_pickle) put1(b, '.');
}

/* ---------- zip writer ---------- */
typedef struct {
    const char *name;
    const void *data;
    size_t size;
} zentry;

/* method: value written in the headers (8 = deflate, data left as is); misalign: the local extra
 * field pads each entry's data to 64 bytes like torch.save does, plus one byte when set; zip64: 64-bit sizes/offsets in extra fields + zip64 end records. */
static void make_zip(bytes *z, const zentry *e, int n, unsigned method, unsigned misalign, int zip64)
{
    size_t lho[16];
    for (int i = 0; i < n; i++) {
        lho[i] = z->n;
        unsigned pad = (unsigned)((64 - (z->n + 30 + strlen(e[i].name)) % 64) % 64) + (misalign ? 1 : 0);
        putle(z, 0x04034b50, 4);
        putle(z, 20, 2);
        putle(z, 0, 2);
        putle(z, method, 2);
        putle(z, 0, 4);
        putle(z, 0, 4); /* crc: not checked by the reader */
        putle(z, e[i].size, 4);
        putle(z, e[i].size, 4);
        putle(z, strlen(e[i].name), 2);
        putle(z, pad, 2);
        put(z, e[i].name, strlen(e[i].name));
        for (unsigned k = 0; k < pad; k++) put1(z, 'Z');
        put(z, e[i].data, e[i].size);
    }
    size_t cd = z->n;
    for (int i = 0; i < n; i++) {
        putle(z, 0x02014b50, 4);
        putle(z, 45, 2);
        putle(z, 45, 2);
        putle(z, 0, 2);
        putle(z, method, 2);
        putle(z, 0, 4);
        putle(z, 0, 4);
        putle(z, zip64 ? 0xffffffffu : e[i].size, 4);
        putle(z, zip64 ? 0xffffffffu : e[i].size, 4);
        putle(z, strlen(e[i].name), 2);
        putle(z, zip64 ? 28 : 0, 2);
        putle(z, 0, 2);
        putle(z, 0, 2);
        putle(z, 0, 2);
        putle(z, 0, 4);
        putle(z, zip64 ? 0xffffffffu : lho[i], 4);
        put(z, e[i].name, strlen(e[i].name));
        if (zip64) {
            putle(z, 1, 2);
            putle(z, 24, 2);
            putle(z, e[i].size, 8);
            putle(z, e[i].size, 8);
            putle(z, lho[i], 8);
        }
    }
    size_t cd_size = z->n - cd;
    if (zip64) {
        size_t rec = z->n;
        putle(z, 0x06064b50, 4);
        putle(z, 44, 8);
        putle(z, 45, 2);
        putle(z, 45, 2);
        putle(z, 0, 4);
        putle(z, 0, 4);
        putle(z, (uint64_t)n, 8);
        putle(z, (uint64_t)n, 8);
        putle(z, cd_size, 8);
        putle(z, cd, 8);
        putle(z, 0x07064b50, 4);
        putle(z, 0, 4);
        putle(z, rec, 8);
        putle(z, 1, 4);
    }
    putle(z, 0x06054b50, 4);
    putle(z, 0, 2);
    putle(z, 0, 2);
    putle(z, zip64 ? 0xffff : (unsigned)n, 2);
    putle(z, zip64 ? 0xffff : (unsigned)n, 2);
    putle(z, zip64 ? 0xffffffffu : cd_size, 4);
    putle(z, zip64 ? 0xffffffffu : cd, 4);
    putle(z, 0, 2);
}

static char tmpdir[64];

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

/* Builds the synthetic checkpoint into *out. */
static void make_archive(bytes *out, pickle_opts po, unsigned method, unsigned misalign, int zip64)
{
    bytes pk = {0};
    make_pickle(&pk, po);
    float s0[6] = {0, 1, 2, 3, 4, 5};
    zentry e[3] = {{"mymodel/data.pkl", pk.p, pk.n}, {"mymodel/data/0", s0, sizeof s0}, {"mymodel/version", "3\n", 2}};
    make_zip(out, e, 3, method, misalign, zip64);
    free(pk.p);
}

static pickle_opts good_opts(void) { return (pickle_opts){NULL, 0, 6, 2, 0}; }

/* The checkpoint in buf must load and hold a, b, c with the hand-checked values. */
static void check_good(const char *label, const bytes *buf, int expect_zero_copy)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s.pth", tmpdir, label);
    write_file(path, buf->p, buf->n);
    saa_weights *w = NULL;
    int rc = saa_weights_open(path, &w);
    if (rc != SAA_OK) fprintf(stderr, "%s: %s\n", label, saa_last_error());
    CHECK(rc == SAA_OK);
    if (rc != SAA_OK) return;
    CHECK(saa_weights_count(w) == 3); /* "n" (an int) and "epoch" are not tensors */
    const saa_tensor *a = saa_weights_find(w, "a"), *b = saa_weights_find(w, "b"), *c = saa_weights_find(w, "c");
    CHECK(a && b && c);
    if (a && b && c) {
        CHECK(a->dtype == SAA_F32 && a->ndim == 2 && a->shape[0] == 2 && a->shape[1] == 3);
        for (int i = 0; i < 6; i++) CHECK(((const float *)a->data)[i] == (float)i);
        CHECK(b->ndim == 1 && b->shape[0] == 2);
        CHECK(((const float *)b->data)[0] == 1.0f && ((const float *)b->data)[1] == 4.0f);
        CHECK(c->ndim == 2 && c->shape[0] == 2 && c->shape[1] == 3);
        for (int i = 0; i < 6; i++) CHECK(((const float *)c->data)[i] == (float)i);
        CHECK(b->owns_data); /* a strided view is always gathered into a copy */
        CHECK(a->owns_data == !expect_zero_copy);
        if (expect_zero_copy) CHECK((uintptr_t)a->data % 4 == 0);
    }
    saa_weights_close(w);
    unlink(path);
}

/* The bytes must be refused with one line that names the file and contains `mention`. */
static void check_bad(const char *label, const void *p, size_t n, const char *mention)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s.pth", tmpdir, label);
    write_file(path, p, n);
    saa_weights *w = NULL;
    int rc = saa_weights_open(path, &w);
    CHECK(rc != SAA_OK && w == NULL);
    if (rc == SAA_OK) {
        fprintf(stderr, "%s: was loaded but must be refused\n", label);
        saa_weights_close(w);
    } else {
        const char *msg = saa_last_error();
        int ok = strstr(msg, path) && !strchr(msg, '\n') && (!mention || strstr(msg, mention));
        if (!ok) fprintf(stderr, "%s: unclear error (want '%s'): %s\n", label, mention ? mention : "", msg);
        CHECK(ok);
    }
    unlink(path);
}

static void synthetic_tests(void)
{
    bytes z = {0};
    make_archive(&z, good_opts(), 0, 0, 0);
    check_good("good", &z, 1);

    bytes z64 = {0};
    make_archive(&z64, good_opts(), 0, 0, 1);
    check_good("zip64", &z64, 1);
    free(z64.p);

    bytes un = {0};
    make_archive(&un, good_opts(), 0, 1, 1); /* the storage lands 1 byte past a 64-byte boundary */
    check_good("unaligned", &un, 0);
    free(un.p);

    /* truncated at several points: every cut must be refused cleanly */
    size_t cuts[] = {0, 4, 30, z.n / 3, z.n / 2, z.n - 40, z.n - 22, z.n - 1};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char label[32];
        snprintf(label, sizeof label, "truncated_%zu", cuts[i]);
        check_bad(label, z.p, cuts[i], NULL);
    }
    /* central directory offset pointing past the end */
    bytes moved = {0};
    put(&moved, z.p, z.n);
    uint32_t far = (uint32_t)z.n + 1000;
    memcpy(moved.p + moved.n - 6, &far, 4);
    check_bad("cd_outside", moved.p, moved.n, "central directory");
    free(moved.p);

    static const char not_ckpt[] = "this is not a checkpoint at all";
    static const char bare_eocd_sig[] = "PK\x05\x06 but nothing else here..";
    check_bad("wrong_magic", not_ckpt, sizeof not_ckpt - 1, "not a checkpoint");
    check_bad("zip_wrong_magic", bare_eocd_sig, sizeof bare_eocd_sig - 1, NULL);

    bytes comp = {0};
    make_archive(&comp, good_opts(), 8, 0, 0);
    check_bad("compressed", comp.p, comp.n, "compressed");
    free(comp.p);

    pickle_opts po = good_opts();
    po.bad_global = "posix";
    bytes mal = {0};
    make_archive(&mal, po, 0, 0, 0);
    check_bad("unknown_global", mal.p, mal.n, "unknown global posix.system");
    CHECK(!test_exists("saa-test-pwned.txt"));
    free(mal.p);

    po = good_opts();
    po.bad_opcode = 0xfe;
    bytes op = {0};
    make_archive(&op, po, 0, 0, 0);
    check_bad("bad_opcode", op.p, op.n, "opcode 0xfe");
    free(op.p);

    po = good_opts();
    po.a_rows = 3; /* a 3x3 view of a 6-element storage */
    bytes shortst = {0};
    make_archive(&shortst, po, 0, 0, 0);
    check_bad("storage_short_of_view", shortst.p, shortst.n, "holds only 6");
    free(shortst.p);

    po = good_opts();
    po.storage_numel = 100; /* persistent id claims more than the entry's 24 bytes */
    bytes bigst = {0};
    make_archive(&bigst, po, 0, 0, 0);
    check_bad("storage_numel_too_large", bigst.p, bigst.n, "holds only 24 bytes");
    free(bigst.p);

    po = good_opts();
    po.truncate_pickle = 1;
    bytes nostop = {0};
    make_archive(&nostop, po, 0, 0, 0);
    check_bad("pickle_without_stop", nostop.p, nostop.n, "truncated");
    free(nostop.p);

    /* a zip without data.pkl */
    bytes nopkl = {0};
    make_zip(&nopkl, (zentry[]){{"x/version", "3\n", 2}}, 1, 0, 0, 0);
    check_bad("no_data_pkl", nopkl.p, nopkl.n, "data.pkl");
    free(nopkl.p);
    free(z.p);
}

/* ---------- golden checkpoints ---------- */

/* Every tensor of ref must be in w with exactly the same values (compared as doubles). */
static int compare_all(const saa_weights *w, const saa_weights *ref, const char *label)
{
    int compared = 0;
    for (int i = 0; i < saa_weights_count(ref); i++) {
        const char *name = saa_weights_name(ref, i);
        const saa_tensor *r = saa_weights_at(ref, i), *t = saa_weights_find(w, name);
        CHECK(t != NULL);
        if (!t) {
            fprintf(stderr, "%s: missing %s\n", label, name);
            continue;
        }
        int64_t n = saa_tensor_numel(r);
        CHECK(saa_tensor_numel(t) == n);
        if (saa_tensor_numel(t) != n) continue;
        int64_t bad = 0;
        for (int64_t k = 0; k < n; k++) bad += saa_tensor_get(t, k) != saa_tensor_get(r, k);
        if (bad) fprintf(stderr, "%s: %s differs in %lld elements\n", label, name, (long long)bad);
        CHECK(bad == 0);
        compared++;
    }
    return compared;
}

static void golden_tests(const char *golden_dir)
{
    /* wrn_tiny ships the same weights as .pth and .safetensors */
    char pth[1200], st[512];
    snprintf(pth, sizeof pth, "%s/wrn_tiny/weights.pth", golden_dir);
    snprintf(st, sizeof st, "%s/wrn_tiny/weights.safetensors", golden_dir);
    saa_weights *w = NULL, *ref = NULL;
    CHECK(saa_weights_open(pth, &w) == SAA_OK);
    CHECK(saa_weights_open(st, &ref) == SAA_OK);
    if (w && ref) {
        int n = compare_all(w, ref, pth);
        CHECK(n == saa_weights_count(ref) && n > 100);
        const saa_tensor *c1 = saa_weights_find(w, "conv1.weight"), *nbt = saa_weights_find(w, "bn1.num_batches_tracked");
        CHECK(c1 && c1->dtype == SAA_F32 && c1->ndim == 4 && c1->shape[1] == 3 && c1->shape[2] == 7);
        CHECK(nbt && nbt->dtype == SAA_I64 && nbt->ndim == 0);
        CHECK(c1 && !c1->owns_data); /* torch aligns storages: zero copy */
    }
    saa_weights_close(w);
    saa_weights_close(ref);

    /* checkpoint_formats: nested and flat against expected.safetensors */
    const char *files[] = {"nested.pth", "flat.pth"};
    char exp[512];
    snprintf(exp, sizeof exp, "%s/checkpoint_formats/expected.safetensors", golden_dir);
    CHECK(saa_weights_open(exp, &ref) == SAA_OK);
    for (int f = 0; f < 2 && ref; f++) {
        snprintf(pth, sizeof pth, "%s/checkpoint_formats/%s", golden_dir, files[f]);
        w = NULL;
        CHECK(saa_weights_open(pth, &w) == SAA_OK);
        if (w) CHECK(compare_all(w, ref, pth) == 12);
        const saa_tensor *h = w ? saa_weights_find(w, "half_f16") : NULL;
        CHECK(h && h->dtype == SAA_F16);
        saa_weights_close(w);
    }
    saa_weights_close(ref);

    /* every other golden .pth must load (legacy_format and malicious must be refused) */
    DIR *d = opendir(golden_dir);
    struct dirent *de;
    int loaded = 0;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        char sub[512];
        snprintf(sub, sizeof sub, "%s/%s", golden_dir, de->d_name);
        DIR *sd = opendir(sub);
        struct dirent *fe;
        while (sd && (fe = readdir(sd))) {
            size_t l = strlen(fe->d_name);
            if (l < 4 || strcmp(fe->d_name + l - 4, ".pth")) continue;
            snprintf(pth, sizeof pth, "%s/%s", sub, fe->d_name);
            int must_refuse = !strcmp(fe->d_name, "legacy_format.pth") || !strcmp(fe->d_name, "malicious.pth");
            w = NULL;
            int rc = saa_weights_open(pth, &w);
            if ((rc == SAA_OK) == must_refuse) fprintf(stderr, "%s: %s\n", pth, rc ? saa_last_error() : "loaded");
            CHECK((rc == SAA_OK) != must_refuse);
            if (rc == SAA_OK) {
                CHECK(saa_weights_count(w) > 0);
                loaded++;
            } else {
                CHECK(strstr(saa_last_error(), pth) != NULL);
            }
            saa_weights_close(w);
        }
        if (sd) closedir(sd);
    }
    if (d) closedir(d);
    CHECK(loaded >= 6);
    printf("golden .pth files loaded: %d\n", loaded);
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/saa_test_pth_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    synthetic_tests();
    rmdir(tmpdir);
    const char *golden_dir = SAA_SHARED_DIR "/golden";
    char probe[512];
    snprintf(probe, sizeof probe, "%s/wrn_tiny/weights.pth", golden_dir);
    if (!test_exists(probe)) {
        printf("golden checkpoints not found under %s: golden part skipped\n", golden_dir);
        if (test_failed) TEST_MAIN_END();
        printf("%d passed (synthetic only)\n", test_passed);
        return 77;
    }
    golden_tests(golden_dir);
    TEST_MAIN_END();
}
