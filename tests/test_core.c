/* Core: tensor container, f16/bf16 conversion, safetensors round trip, weight binding, and the
 * check-golden comparison rules on a folder written by this test. */
#include <string.h>
#include <unistd.h>

#include "golden/golden.h"
#include "saa/weights.h"
#include "test.h"

static void test_half(void)
{
    CHECK(saa_f16_to_f32(0x3c00) == 1.0f);
    CHECK(saa_f16_to_f32(0xc000) == -2.0f);
    CHECK(saa_f16_to_f32(0x7bff) == 65504.0f);
    CHECK(saa_f16_to_f32(0x0001) == 5.9604644775390625e-08f); /* smallest subnormal 2^-24 */
    CHECK(saa_f16_to_f32(0x0200) == 3.0517578125e-05f);      /* subnormal 2^-15 */
    CHECK(isinf(saa_f16_to_f32(0x7c00)));
    CHECK(isnan(saa_f16_to_f32(0x7e00)));
    CHECK(saa_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(saa_bf16_to_f32(0xc0a0) == -5.0f);
}

static char tmpdir[] = "/tmp/saa_test_core_XXXXXX";

static void test_safetensors_and_binding(void)
{
    char path[256];
    snprintf(path, sizeof path, "%s/w.safetensors", tmpdir);
    float a[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[2] = {0x3c00, 0xc000};
    int64_t sa[2] = {2, 3}, sh[1] = {2};
    saa_tensor *ta = saa_tensor_wrap(SAA_F32, 2, sa, a), *th = saa_tensor_wrap(SAA_F16, 1, sh, h);
    const char *names[2] = {"layer.weight", "layer.bias"};
    const saa_tensor *ts[2] = {ta, th};
    CHECK(saa_safetensors_write(path, 2, names, ts) == SAA_OK);
    saa_weights *w = NULL;
    CHECK(saa_weights_open(path, &w) == SAA_OK);
    if (!w) return;
    CHECK(saa_weights_count(w) == 2);
    const saa_tensor *t = saa_weights_find(w, "layer.bias");
    CHECK(t && t->dtype == SAA_F16 && t->shape[0] == 2);
    saa_binder *b = saa_binder_new(w, "layer.");
    const float *pw = saa_bind(b, 2, (int64_t[]){2, 3}, "weight");
    const float *pb = saa_bind(b, 1, (int64_t[]){-1}, "bias");
    CHECK(saa_binder_finish(b) == SAA_OK);
    CHECK(pw && pw[5] == 6.0f);
    CHECK(pb && pb[0] == 1.0f && pb[1] == -2.0f);
    /* one error listing every problem */
    b = saa_binder_new(w, "layer.");
    saa_bind(b, 2, (int64_t[]){3, 2}, "weight");
    saa_bind(b, 1, (int64_t[]){4}, "missing");
    CHECK(saa_binder_finish(b) == SAA_ESHAPE);
    CHECK(strstr(saa_last_error(), "layer.weight has shape [2, 3], expected [3, 2]") != NULL);
    CHECK(strstr(saa_last_error(), "missing layer.missing (expected shape [4])") != NULL);
    CHECK(strstr(saa_last_error(), "2 tensor problems") != NULL);
    saa_weights_close(w);
    saa_tensor_free(ta);
    saa_tensor_free(th);

    /* corrupt files */
    snprintf(path, sizeof path, "%s/bad.safetensors", tmpdir);
    FILE *f = fopen(path, "wb");
    fwrite("\x40\x00\x00\x00\x00\x00\x00\x00{\"x\":", 1, 13, f);
    fclose(f);
    CHECK(saa_weights_open(path, &w) != SAA_OK && w == NULL);
    CHECK(strstr(saa_last_error(), "bad.safetensors") != NULL);
    CHECK(saa_weights_open("/nonexistent/file.pth", &w) == SAA_EIO);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

/* Golden comparison: tolerance rules (first match), rel-to-std, integer exactness and mismatch
 * fraction, non-finite positions, sampled tensors. Uses the "checkpoint"-independent API directly. */
static void test_golden_rules(void)
{
    char path[256];
    float ref_a[4] = {0, 1, 2, 3};        /* std = 1.118 */
    float ref_nan[3] = {1, NAN, INFINITY};
    int64_t ref_i[4] = {1, 2, 3, 4};
    float ref_s[2] = {10, 30};            /* full[1, 2, 2] sampled every other row of a [4, 2]... */
    saa_tensor *t1 = saa_tensor_wrap(SAA_F32, 1, (int64_t[]){4}, ref_a);
    saa_tensor *t2 = saa_tensor_wrap(SAA_F32, 1, (int64_t[]){3}, ref_nan);
    saa_tensor *t3 = saa_tensor_wrap(SAA_I64, 1, (int64_t[]){4}, ref_i);
    saa_tensor *t4 = saa_tensor_wrap(SAA_F32, 1, (int64_t[]){2}, ref_s);
    /* e.samp = FULL[-3:None, ::2] of a [4, 3] result (Python slice semantics: negative start, null stop) */
    float ref_e[6] = {3, 5, 6, 8, 9, 11};
    saa_tensor *t5 = saa_tensor_wrap(SAA_F32, 2, (int64_t[]){3, 2}, ref_e);
    const char *names[5] = {"a.x", "b.nan", "c.int", "d.samp", "e.samp"};
    const saa_tensor *ts[5] = {t1, t2, t3, t4, t5};
    snprintf(path, sizeof path, "%s/golden.safetensors", tmpdir);
    CHECK(saa_safetensors_write(path, 5, names, ts) == SAA_OK);
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    write_text(path, "{\"kind\": \"test\", \"tolerances\": ["
                     "{\"match\": \"a.*\", \"max_abs\": 0.01, \"max_rel\": 0.1},"
                     "{\"match\": \"c.*\", \"max_mismatch_frac\": 0.25},"
                     "{\"match\": \"*\", \"max_abs\": 0.001}],"
                     "\"sampled\": {\"d.samp\": {\"full_shape\": [4], \"slice\": [[1, 4, 2]]},"
                     "\"e.samp\": {\"full_shape\": [4, 3], \"slice\": [[-3, null, 1], [null, null, 2]]}}}");
    FILE *devnull = fopen("/dev/null", "w");
    golden *g = NULL;
    CHECK(golden_open(tmpdir, devnull, &g) == SAA_OK);
    if (!g) return;
    float got[4] = {0.05f, 1, 2, 3}; /* abs 0.05 > 0.01 but rel 0.045 < 0.1: pass */
    CHECK(golden_check_f32(g, "a.x", got, 1, (int64_t[]){4}) == 1);
    got[0] = 0.2f; /* rel 0.18: fail */
    CHECK(golden_check_f32(g, "a.x", got, 1, (int64_t[]){4}) == 0);
    CHECK(golden_check_f32(g, "a.x", got, 1, (int64_t[]){3}) == 0); /* shape */
    float nanok[3] = {1.0005f, NAN, INFINITY}, nanbad[3] = {1, 0, INFINITY};
    CHECK(golden_check_f32(g, "b.nan", nanok, 1, (int64_t[]){3}) == 1);
    CHECK(golden_check_f32(g, "b.nan", nanbad, 1, (int64_t[]){3}) == 0);
    int64_t i1[4] = {1, 2, 3, 5}, i2[4] = {1, 9, 3, 5};
    saa_tensor *ti = saa_tensor_wrap(SAA_I64, 1, (int64_t[]){4}, i1);
    CHECK(golden_check(g, "c.int", ti) == 1); /* 1/4 mismatching <= 0.25 */
    ti->data = i2;
    CHECK(golden_check(g, "c.int", ti) == 0);
    saa_tensor_free(ti);
    float full[4] = {99, 10, 98, 30};
    CHECK(golden_check_f32(g, "d.samp", full, 1, (int64_t[]){4}) == 1);
    full[3] = 31;
    CHECK(golden_check_f32(g, "d.samp", full, 1, (int64_t[]){4}) == 0);
    float full2[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
    CHECK(golden_check_f32(g, "e.samp", full2, 2, (int64_t[]){4, 3}) == 1);
    full2[4] = 4.5f; /* not sampled (column 1) */
    CHECK(golden_check_f32(g, "e.samp", full2, 2, (int64_t[]){4, 3}) == 1);
    full2[11] = 12; /* sampled (row 3, column 2) */
    CHECK(golden_check_f32(g, "e.samp", full2, 2, (int64_t[]){4, 3}) == 0);
    CHECK(g->passed == 6 && g->failed == 6);
    golden_close(g);
    fclose(devnull);
    saa_tensor_free(t1);
    saa_tensor_free(t2);
    saa_tensor_free(t3);
    saa_tensor_free(t4);
    saa_tensor_free(t5);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) return 1;
    test_half();
    test_safetensors_and_binding();
    test_golden_rules();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
    TEST_MAIN_END();
}
