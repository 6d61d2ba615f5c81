/* .npy writing/reading: a header checked byte for byte against numpy.save's, round trips, errors. */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "saa/npy.h"
#include "test.h"

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
    static char buf[512];
    snprintf(buf, sizeof buf, "%s/%s", tmpdir, name);
    return buf;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *b = malloc(1 << 16);
    *n = fread(b, 1, 1 << 16, f);
    fclose(f);
    return b;
}

static void spit(const char *path, const void *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) exit(1);
    fwrite(d, 1, n, f);
    fclose(f);
}

/* What numpy 1.24 writes for np.save(p, np.arange(6, dtype=np.float32).reshape(2, 3)): magic, version
 * 1.0, header length 118 (0x76), the dict, spaces up to byte 127, '\n' at byte 127, then the data. */
static void test_header_by_hand(void)
{
    float v[6] = {0, 1, 2, 3, 4, 5};
    CHECK(saa_npy_save_f32(tmp_path("a.npy"), v, 2, (int64_t[]){2, 3}) == SAA_OK);
    size_t n = 0;
    unsigned char *b = slurp(tmp_path("a.npy"), &n);
    CHECK(b && n == 128 + 24);
    if (!b || n != 152) {
        free(b);
        return;
    }
    const char dict[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    CHECK(memcmp(b, "\x93NUMPY\x01\x00\x76\x00", 10) == 0);
    CHECK(memcmp(b + 10, dict, sizeof dict - 1) == 0);
    int spaces = 1;
    for (size_t i = 10 + sizeof dict - 1; i < 127; i++) spaces &= b[i] == ' ';
    CHECK(spaces);
    CHECK(b[127] == '\n');
    CHECK(memcmp(b + 128, v, sizeof v) == 0);
    free(b);

    /* 1-D uint8 -> "(5,)", 0-D -> "()" */
    uint8_t u[5] = {1, 2, 3, 250, 255};
    CHECK(saa_npy_save_u8(tmp_path("b.npy"), u, 1, (int64_t[]){5}) == SAA_OK);
    b = slurp(tmp_path("b.npy"), &n);
    const char dict_b[] = "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }";
    CHECK(b && n == 133 && memcmp(b + 10, dict_b, sizeof dict_b - 1) == 0 && b[127] == '\n' &&
          memcmp(b + 128, u, 5) == 0);
    free(b);
    float s = 3.0f;
    CHECK(saa_npy_save_f32(tmp_path("c.npy"), &s, 0, NULL) == SAA_OK);
    b = slurp(tmp_path("c.npy"), &n);
    const char dict_c[] = "{'descr': '<f4', 'fortran_order': False, 'shape': (), }";
    CHECK(b && n == 132 && memcmp(b + 10, dict_c, sizeof dict_c - 1) == 0 && b[127] == '\n');
    free(b);
}

static void test_round_trip(void)
{
    enum { H = 37, W = 53 };
    float *m = malloc(sizeof(float) * H * W);
    for (int i = 0; i < H * W; i++) m[i] = (float)i * 0.001f - 1.5f;
    m[7] = -0.0f;
    CHECK(saa_npy_save_f32(tmp_path("map.npy"), m, 2, (int64_t[]){H, W}) == SAA_OK);
    saa_tensor *t = NULL;
    CHECK(saa_npy_load(tmp_path("map.npy"), &t) == SAA_OK);
    CHECK(t && t->dtype == SAA_F32 && t->ndim == 2 && t->shape[0] == H && t->shape[1] == W);
    if (t) CHECK(memcmp(t->data, m, sizeof(float) * H * W) == 0);
    saa_tensor_free(t);

    uint8_t *mask = malloc(2 * H * W);
    for (int i = 0; i < 2 * H * W; i++) mask[i] = (uint8_t)(i * 31);
    CHECK(saa_npy_save_u8(tmp_path("mask.npy"), mask, 3, (int64_t[]){2, H, W}) == SAA_OK);
    CHECK(saa_npy_load(tmp_path("mask.npy"), &t) == SAA_OK);
    CHECK(t && t->dtype == SAA_U8 && t->ndim == 3 && t->shape[0] == 2 && t->shape[2] == W);
    if (t) CHECK(memcmp(t->data, mask, 2 * H * W) == 0);
    saa_tensor_free(t);

    double dm[6] = {0.1, -2.5, 1e-300, 3.0, 0.3333333333333333, -0.0};
    CHECK(saa_npy_save_f64(tmp_path("d.npy"), dm, 2, (int64_t[]){3, 2}) == SAA_OK);
    CHECK(saa_npy_load(tmp_path("d.npy"), &t) == SAA_OK);
    CHECK(t && t->dtype == SAA_F64 && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 2);
    if (t) CHECK(memcmp(t->data, dm, sizeof dm) == 0);
    saa_tensor_free(t);

    /* empty array */
    CHECK(saa_npy_save_f32(tmp_path("empty.npy"), m, 2, (int64_t[]){0, 4}) == SAA_OK);
    CHECK(saa_npy_load(tmp_path("empty.npy"), &t) == SAA_OK);
    CHECK(t && t->ndim == 2 && t->shape[0] == 0 && t->shape[1] == 4);
    saa_tensor_free(t);
    free(m), free(mask);
}

/* Files written by hand the way other numpy versions / options do. */
static void test_foreign_headers(void)
{
    /* version 2.0 header (4-byte length), double quotes, extra spaces, bool data */
    const char dict[] = "{\"descr\":\"|b1\", \"fortran_order\" : False, \"shape\": ( 2 , 2 ) }          \n";
    unsigned char b[256];
    size_t hl = sizeof dict - 1;
    memcpy(b, "\x93NUMPY\x02\x00", 8);
    b[8] = (unsigned char)hl, b[9] = 0, b[10] = 0, b[11] = 0;
    memcpy(b + 12, dict, hl);
    memcpy(b + 12 + hl, "\x01\x00\x00\x01", 4);
    spit(tmp_path("v2.npy"), b, 12 + hl + 4);
    saa_tensor *t = NULL;
    CHECK(saa_npy_load(tmp_path("v2.npy"), &t) == SAA_OK);
    CHECK(t && t->dtype == SAA_BOOL && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 2);
    if (t) CHECK(((uint8_t *)t->data)[0] == 1 && ((uint8_t *)t->data)[3] == 1 && ((uint8_t *)t->data)[1] == 0);
    saa_tensor_free(t);
}

static void expect_error(const char *name, const void *bytes, size_t n, const char *what)
{
    spit(tmp_path(name), bytes, n);
    saa_tensor *t = (saa_tensor *)1;
    int rc = saa_npy_load(tmp_path(name), &t);
    CHECK(rc != SAA_OK && t == NULL);
    CHECK(strstr(saa_last_error(), name) != NULL);
    if (rc == SAA_OK) fprintf(stderr, "%s: accepted\n", what);
}

static void test_errors(void)
{
    saa_tensor *t = (saa_tensor *)1;
    CHECK(saa_npy_load(tmp_path("missing.npy"), &t) != SAA_OK && t == NULL);
    expect_error("garbage.npy", "hello world, not numpy", 22, "garbage");
    size_t n = 0;
    unsigned char *b = slurp(tmp_path("map.npy"), &n);
    if (b) {
        expect_error("trunc_data.npy", b, n - 1, "truncated data");
        expect_error("trunc_head.npy", b, 60, "truncated header");
        unsigned char *f8 = malloc(n);
        memcpy(f8, b, n);
        memcpy(f8 + 10 + 11, "<i8", 3);
        expect_error("i8.npy", f8, n, "int64");
        memcpy(f8 + 10 + 11, ">f4", 3);
        expect_error("bigendian.npy", f8, n, "big-endian float32");
        memcpy(f8, b, n);
        memcpy(f8 + 10 + 36, "True ", 5);
        expect_error("fortran.npy", f8, n, "fortran order");
        free(f8);
        free(b);
    }
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/saa_test_npy_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    test_header_by_hand();
    test_round_trip();
    test_foreign_headers();
    test_errors();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    TEST_MAIN_END();
}
