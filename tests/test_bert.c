/* BERT encoder + feat_map on a tiny random BERT written by this test, compared with a plain
 * double-precision re-implementation of HF BertModel in the test (the gdino_tiny golden comparison is
 * tests/test_bert_gdino_tiny.c). */
#include <float.h>
#include <string.h>
#include <unistd.h>

#include "models/bert.h"
#include "saa/weights.h"
#include "test.h"

enum { V = 20, P = 16, H = 8, NH = 2, I = 12, NL = 2, TT = 2, OUT = 5, T = 7 };

static uint32_t rng = 12345u;
static float frand(void) /* uniform in [-1, 1) */
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffff) / 32768.0f - 1.0f;
}

#define MAXT 64
static char names[MAXT][96];
static saa_tensor *tensors[MAXT];
static int ntensors;

static float *add(const char *name, int ndim, int64_t d0, int64_t d1, float scale, float offset)
{
    int64_t shape[2] = {d0, d1};
    saa_tensor *t = saa_tensor_new(SAA_F32, ndim, shape);
    float *d = t->data;
    for (int64_t i = 0; i < saa_tensor_numel(t); i++) d[i] = offset + scale * frand();
    snprintf(names[ntensors], sizeof names[0], "%s", name);
    tensors[ntensors++] = t;
    return d;
}

/* reference weights (pointers into the tensors written to the file) */
static float *word, *pos, *type, *eln_w, *eln_b, *fm_w, *fm_b;
static float *qw[NL], *qb[NL], *kw[NL], *kb[NL], *vw[NL], *vb[NL], *aow[NL], *aob[NL], *aolw[NL], *aolb[NL];
static float *iw[NL], *ib[NL], *ow[NL], *ob[NL], *olw[NL], *olb[NL];

static void make_weights(void)
{
    word = add("bert.embeddings.word_embeddings.weight", 2, V, H, 1.0f, 0);
    pos = add("bert.embeddings.position_embeddings.weight", 2, P, H, 0.5f, 0);
    type = add("bert.embeddings.token_type_embeddings.weight", 2, TT, H, 0.5f, 0);
    eln_w = add("bert.embeddings.LayerNorm.weight", 1, H, 1, 0.2f, 1.0f);
    eln_b = add("bert.embeddings.LayerNorm.bias", 1, H, 1, 0.2f, 0);
    char n[96];
#define W(dst, suffix, ndim, d0, d1, sc, off) \
    (snprintf(n, sizeof n, "bert.encoder.layer.%d.%s", l, suffix), dst[l] = add(n, ndim, d0, d1, sc, off))
    for (int l = 0; l < NL; l++) {
        W(qw, "attention.self.query.weight", 2, H, H, 0.5f, 0);
        W(qb, "attention.self.query.bias", 1, H, 1, 0.1f, 0);
        W(kw, "attention.self.key.weight", 2, H, H, 0.5f, 0);
        W(kb, "attention.self.key.bias", 1, H, 1, 0.1f, 0);
        W(vw, "attention.self.value.weight", 2, H, H, 0.5f, 0);
        W(vb, "attention.self.value.bias", 1, H, 1, 0.1f, 0);
        W(aow, "attention.output.dense.weight", 2, H, H, 0.4f, 0);
        W(aob, "attention.output.dense.bias", 1, H, 1, 0.1f, 0);
        W(aolw, "attention.output.LayerNorm.weight", 1, H, 1, 0.2f, 1.0f);
        W(aolb, "attention.output.LayerNorm.bias", 1, H, 1, 0.2f, 0);
        W(iw, "intermediate.dense.weight", 2, I, H, 0.5f, 0);
        W(ib, "intermediate.dense.bias", 1, I, 1, 0.1f, 0);
        W(ow, "output.dense.weight", 2, H, I, 0.4f, 0);
        W(ob, "output.dense.bias", 1, H, 1, 0.1f, 0);
        W(olw, "output.LayerNorm.weight", 1, H, 1, 0.2f, 1.0f);
        W(olb, "output.LayerNorm.bias", 1, H, 1, 0.2f, 0);
    }
#undef W
    add("bert.pooler.dense.weight", 2, H, H, 0.5f, 0); /* present in checkpoints, unused */
    add("bert.pooler.dense.bias", 1, H, 1, 0.1f, 0);
    fm_w = add("feat_map.weight", 2, OUT, H, 0.5f, 0);
    fm_b = add("feat_map.bias", 1, OUT, 1, 0.1f, 0);
}

/* ---------- reference (double, straight from the HF formulas) ---------- */

static void ref_linear(const double *x, int rows, int in, const float *w, const float *b, int out, double *y)
{
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double s = b[o];
            for (int i = 0; i < in; i++) s += x[r * in + i] * w[o * in + i];
            y[r * out + o] = s;
        }
}

static void ref_layer_norm(double *x, int rows, int dim, const float *w, const float *b)
{
    for (int r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int j = 0; j < dim; j++) m += x[r * dim + j];
        m /= dim;
        for (int j = 0; j < dim; j++) v += (x[r * dim + j] - m) * (x[r * dim + j] - m);
        v /= dim;
        for (int j = 0; j < dim; j++) x[r * dim + j] = (x[r * dim + j] - m) / sqrt(v + 1e-12) * w[j] + b[j];
    }
}

static void ref_bert(const int32_t *ids, const int32_t *pids, const uint8_t *mask, double *x)
{
    double q[T * H], k[T * H], v[T * H], ctx[T * H], att[T * H], inter[T * I], o[T * H];
    for (int t = 0; t < T; t++)
        for (int j = 0; j < H; j++) x[t * H + j] = word[ids[t] * H + j] + type[j] + pos[pids[t] * H + j];
    ref_layer_norm(x, T, H, eln_w, eln_b);
    const int dh = H / NH;
    for (int l = 0; l < NL; l++) {
        ref_linear(x, T, H, qw[l], qb[l], H, q);
        ref_linear(x, T, H, kw[l], kb[l], H, k);
        ref_linear(x, T, H, vw[l], vb[l], H, v);
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < T; i++) {
                double s[T], mx = -1e300, sum = 0;
                for (int j = 0; j < T; j++) {
                    double d = 0;
                    for (int e = 0; e < dh; e++) d += q[i * H + h * dh + e] * k[j * H + h * dh + e];
                    s[j] = d / sqrt((double)dh) + (mask[i * T + j] ? 0.0 : -FLT_MAX);
                    if (s[j] > mx) mx = s[j];
                }
                for (int j = 0; j < T; j++) sum += (s[j] = exp(s[j] - mx));
                for (int e = 0; e < dh; e++) {
                    double c = 0;
                    for (int j = 0; j < T; j++) c += s[j] / sum * v[j * H + h * dh + e];
                    ctx[i * H + h * dh + e] = c;
                }
            }
        ref_linear(ctx, T, H, aow[l], aob[l], H, att);
        for (int i = 0; i < T * H; i++) att[i] += x[i];
        ref_layer_norm(att, T, H, aolw[l], aolb[l]);
        ref_linear(att, T, H, iw[l], ib[l], I, inter);
        for (int i = 0; i < T * I; i++) inter[i] = 0.5 * inter[i] * (1.0 + erf(inter[i] / sqrt(2.0)));
        ref_linear(inter, T, I, ow[l], ob[l], H, o);
        for (int i = 0; i < T * H; i++) x[i] = o[i] + att[i];
        ref_layer_norm(x, T, H, olw[l], olb[l]);
    }
}

static void test_random_bert(void)
{
    make_weights();
    char path[] = "/tmp/saa_test_bert_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    const char *nm[MAXT];
    const saa_tensor *ts[MAXT];
    for (int i = 0; i < ntensors; i++) nm[i] = names[i], ts[i] = tensors[i];
    CHECK(saa_safetensors_write(path, ntensors, nm, ts) == SAA_OK);
    saa_weights *w = NULL;
    CHECK(saa_weights_open(path, &w) == SAA_OK);
    unlink(path);
    if (!w) return;

    saa_bert *bert = NULL;
    CHECK(saa_bert_load(w, "bert.", 3, &bert) != SAA_OK); /* 3 heads do not divide 8 */
    CHECK(saa_bert_load(w, "nothing.", 2, &bert) != SAA_OK);
    CHECK(saa_bert_load(w, "bert.", NH, &bert) == SAA_OK);
    if (!bert) goto done;
    CHECK(saa_bert_hidden(bert) == H && saa_bert_layers(bert) == NL);

    /* [CLS] a b . c d [SEP]-like sequence: blocks {0}, {1,2,3}, {4,5}, {6} with sub-sentence positions */
    const int32_t ids[T] = {1, 7, 3, 4, 19, 0, 2};
    const int32_t pids[T] = {0, 0, 1, 2, 0, 1, 0};
    const int block[T] = {0, 1, 1, 1, 2, 2, 3};
    uint8_t mask[T * T];
    for (int i = 0; i < T; i++)
        for (int j = 0; j < T; j++) mask[i * T + j] = block[i] == block[j];
    float out[T * H];
    double ref[T * H];
    CHECK(saa_bert_forward(bert, ids, pids, mask, T, out) == SAA_OK);
    ref_bert(ids, pids, mask, ref);
    double err = 0;
    for (int i = 0; i < T * H; i++) err = fmax(err, fabs(out[i] - ref[i]));
    CHECK_NEAR(err, 0.0, 2e-5);
    /* the mask matters: a full mask gives a different result for the first block's rows */
    uint8_t full[T * T];
    memset(full, 1, sizeof full);
    float out_full[T * H];
    CHECK(saa_bert_forward(bert, ids, pids, full, T, out_full) == SAA_OK);
    CHECK(fabs(out_full[1 * H] - out[1 * H]) > 1e-4);

    saa_feat_map fm;
    CHECK(saa_feat_map_load(w, "feat_map.", H, &fm) == SAA_OK);
    CHECK(fm.out_dim == OUT);
    float y[T * OUT];
    saa_feat_map_forward(&fm, out, T, y);
    double fm_err = 0;
    for (int t = 0; t < T; t++)
        for (int o = 0; o < OUT; o++) {
            double s = fm_b[o];
            for (int i = 0; i < H; i++) s += (double)out[t * H + i] * fm_w[o * H + i];
            fm_err = fmax(fm_err, fabs(s - y[t * OUT + o]));
        }
    CHECK_NEAR(fm_err, 0.0, 1e-5);
    CHECK(saa_feat_map_load(w, "feat_map.", H + 1, &fm) != SAA_OK); /* wrong input width */

    const int32_t bad_ids[T] = {1, 7, 3, 4, 19, V, 2};
    CHECK(saa_bert_forward(bert, bad_ids, pids, mask, T, out) == SAA_EINVAL);
    const int32_t bad_pos[T] = {0, 0, 1, 2, 0, P, 0};
    CHECK(saa_bert_forward(bert, ids, bad_pos, mask, T, out) == SAA_EINVAL);
done:
    saa_bert_free(bert);
    saa_weights_close(w);
    for (int i = 0; i < ntensors; i++) saa_tensor_free(tensors[i]);
}

int main(void)
{
    test_random_bert();
    TEST_MAIN_END();
}
