/* WideResNet-50-2 saliency of SAA+: the timm wide_resnet50_2 feature extractor (features_only,
 * out_indices (1,2,3)) with BatchNorm folded into the convolutions, ModelINet preprocessing and
 * feature fusion, and the single-/multi-instance saliency maps of SAA/model.py. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saa/image.h"
#include "saa/tensor.h"
#include "saa/wrn.h"

typedef struct {
    float *w, *b; /* folded weights [O, C, K, K] and bias [O] (owned) */
    int64_t O, C, K;
    int stride, pad;
    /* borrowed from the checkpoint until folding */
    const float *src_w, *gamma, *beta, *mean, *var;
} wrn_conv;

typedef struct {
    wrn_conv c1, c2, c3, down;
    int has_down;
} wrn_block;

struct saa_wrn {
    wrn_conv stem;
    wrn_block *blocks[3];
    int nblocks[3];
};

/* ---------- loading ---------- */

/* Declares conv `conv`.weight (no bias) and BatchNorm `bn`.* to the binder; shapes from the checkpoint. */
static void bind_conv_bn(saa_binder *b, wrn_conv *c, const char *conv, const char *bn, int64_t in_ch, int64_t k,
                         int stride, int pad)
{
    const saa_tensor *t = saa_bind_tensor(b, 4, (int64_t[]){-1, in_ch, k, k}, "%s.weight", conv);
    c->O = t ? t->shape[0] : -1;
    c->C = in_ch;
    c->K = k;
    c->stride = stride;
    c->pad = pad;
    c->src_w = t ? t->data : NULL;
    int64_t o = c->O;
    c->gamma = saa_bind(b, 1, &o, "%s.weight", bn);
    c->beta = saa_bind(b, 1, &o, "%s.bias", bn);
    c->mean = saa_bind(b, 1, &o, "%s.running_mean", bn);
    c->var = saa_bind(b, 1, &o, "%s.running_var", bn);
}

static int fold_conv(wrn_conv *c)
{
    int64_t per = c->C * c->K * c->K;
    c->w = malloc(sizeof(float) * (size_t)(c->O * per));
    c->b = malloc(sizeof(float) * (size_t)c->O);
    if (!c->w || !c->b) return saa_set_error(SAA_ENOMEM, "out of memory");
    memcpy(c->w, c->src_w, sizeof(float) * (size_t)(c->O * per));
    /* torchvision/timm BatchNorm2d default eps */
    saa_fold_batch_norm(c->w, c->b, c->O, per, c->mean, c->var, c->gamma, c->beta, 1e-5f);
    c->src_w = c->gamma = c->beta = c->mean = c->var = NULL;
    return SAA_OK;
}

static void free_conv(wrn_conv *c)
{
    free(c->w);
    free(c->b);
}

void saa_wrn_free(saa_wrn *m)
{
    if (!m) return;
    free_conv(&m->stem);
    for (int l = 0; l < 3; l++) {
        for (int i = 0; m->blocks[l] && i < m->nblocks[l]; i++) {
            free_conv(&m->blocks[l][i].c1);
            free_conv(&m->blocks[l][i].c2);
            free_conv(&m->blocks[l][i].c3);
            free_conv(&m->blocks[l][i].down);
        }
        free(m->blocks[l]);
    }
    free(m);
}

static int has_tensor(saa_weights *w, const char *prefix, const char *fmt, int a, int b)
{
    char rel[128], name[512];
    snprintf(rel, sizeof rel, fmt, a, b);
    snprintf(name, sizeof name, "%s%s", prefix, rel);
    return saa_weights_find(w, name) != NULL;
}

/* mirrors torchvision resnet.py _make_layer / Bottleneck (timm's ResNet has the same graph and names):
 * the block count and the downsample branches are read from the checkpoint. */
int saa_wrn_load(saa_weights *w, const char *prefix, saa_wrn **out)
{
    *out = NULL;
    if (!prefix) prefix = "";
    saa_wrn *m = calloc(1, sizeof *m);
    if (!m) return saa_set_error(SAA_ENOMEM, "out of memory");
    for (int l = 0; l < 3; l++) {
        while (has_tensor(w, prefix, "layer%d.%d.conv1.weight", l + 1, m->nblocks[l])) m->nblocks[l]++;
        if (!m->nblocks[l]) {
            saa_wrn_free(m);
            return saa_set_error(SAA_ESHAPE, "%s: no %slayer%d.0.conv1.weight: not a ResNet/WideResNet checkpoint",
                                 saa_weights_path(w), prefix, l + 1);
        }
        m->blocks[l] = calloc((size_t)m->nblocks[l], sizeof(wrn_block));
        if (!m->blocks[l]) {
            saa_wrn_free(m);
            return saa_set_error(SAA_ENOMEM, "out of memory");
        }
    }
    saa_binder *b = saa_binder_new(w, prefix);
    bind_conv_bn(b, &m->stem, "conv1", "bn1", 3, 7, 2, 3);
    int64_t ch = m->stem.O;
    char n1[64], n2[64];
    for (int l = 0; l < 3; l++) {
        for (int i = 0; i < m->nblocks[l]; i++) {
            wrn_block *blk = &m->blocks[l][i];
            int stride = (l > 0 && i == 0) ? 2 : 1;
#define BIND(field, conv, bn, in, k, s, p)                                  \
    snprintf(n1, sizeof n1, "layer%d.%d.%s", l + 1, i, conv);              \
    snprintf(n2, sizeof n2, "layer%d.%d.%s", l + 1, i, bn);                \
    bind_conv_bn(b, &blk->field, n1, n2, in, k, s, p)
            BIND(c1, "conv1", "bn1", ch, 1, 1, 0);
            BIND(c2, "conv2", "bn2", blk->c1.O, 3, stride, 1);
            BIND(c3, "conv3", "bn3", blk->c2.O, 1, 1, 0);
            blk->has_down = has_tensor(w, prefix, "layer%d.%d.downsample.0.weight", l + 1, i);
            if (blk->has_down) {
                BIND(down, "downsample.0", "downsample.1", ch, 1, stride, 0);
            }
#undef BIND
            ch = blk->c3.O;
        }
    }
    int rc = saa_binder_finish(b);
    /* a block without downsample adds its input: it must already have the block's output shape */
    for (int l = 0; rc == SAA_OK && l < 3; l++) {
        int64_t in = l == 0 ? m->stem.O : m->blocks[l - 1][m->nblocks[l - 1] - 1].c3.O;
        for (int i = 0; rc == SAA_OK && i < m->nblocks[l]; i++) {
            wrn_block *blk = &m->blocks[l][i];
            if (!blk->has_down && (blk->c3.O != in || blk->c2.stride != 1))
                rc = saa_set_error(SAA_ESHAPE,
                                   "%s: %slayer%d.%d has no downsample branch but changes the shape (%lld -> %lld "
                                   "channels, stride %d)",
                                   saa_weights_path(w), prefix, l + 1, i, (long long)in, (long long)blk->c3.O,
                                   blk->c2.stride);
            in = blk->c3.O;
        }
    }
    if (rc == SAA_OK) rc = fold_conv(&m->stem);
    for (int l = 0; l < 3; l++)
        for (int i = 0; rc == SAA_OK && i < m->nblocks[l]; i++) {
            wrn_block *blk = &m->blocks[l][i];
            if ((rc = fold_conv(&blk->c1)) || (rc = fold_conv(&blk->c2)) || (rc = fold_conv(&blk->c3))) break;
            if (blk->has_down) rc = fold_conv(&blk->down);
        }
    if (rc != SAA_OK) {
        saa_wrn_free(m);
        return rc;
    }
    *out = m;
    return SAA_OK;
}

/* ---------- preprocessing ---------- */

/* mirrors SAA/modelinet.py: ModelINet.preprocess (ResizeLongestSide.apply_image, normalise, pad) */
int saa_wrn_preprocess(const uint8_t *img, int w, int h, int img_size, float *x, double ratio_hw[2])
{
    if (w <= 0 || h <= 0 || img_size <= 0) return saa_set_error(SAA_EINVAL, "wrn preprocess: empty image");
    double scale = img_size * 1.0 / (h > w ? h : w);
    int nh = (int)(h * scale + 0.5), nw = (int)(w * scale + 0.5);
    if (nh > img_size || nw > img_size)
        return saa_set_error(SAA_EINVAL, "wrn preprocess: resized %dx%d exceeds %d", nw, nh, img_size);
    const uint8_t *src = img;
    uint8_t *resized = NULL;
    if (nh != h || nw != w) { /* PIL returns a copy when the size is unchanged */
        resized = malloc((size_t)nh * (size_t)nw * 3);
        if (!resized) return saa_set_error(SAA_ENOMEM, "out of memory");
        int rc = saa_resize_pil_bilinear_u8(img, w, h, 3, resized, nw, nh);
        if (rc != SAA_OK) {
            free(resized);
            return rc;
        }
        src = resized;
    }
    /* torch.tensor([0.485 * 255, ...]) in float32; uint8 - float32 promotes to float32 */
    const float mean[3] = {(float)(0.485 * 255), (float)(0.456 * 255), (float)(0.406 * 255)};
    const float stdv[3] = {(float)(0.229 * 255), (float)(0.224 * 255), (float)(0.225 * 255)};
    int64_t S = img_size;
    memset(x, 0, sizeof(float) * (size_t)(3 * S * S));
    for (int c = 0; c < 3; c++)
        for (int yy = 0; yy < nh; yy++)
            for (int xx = 0; xx < nw; xx++)
                x[(c * S + yy) * S + xx] = ((float)src[((size_t)yy * nw + xx) * 3 + c] - mean[c]) / stdv[c];
    free(resized);
    if (ratio_hw) {
        ratio_hw[0] = (double)nh / img_size;
        ratio_hw[1] = (double)nw / img_size;
    }
    return SAA_OK;
}

/* ---------- backbone ---------- */

static void conv_out_hw(const wrn_conv *c, int64_t H, int64_t W, int64_t *OH, int64_t *OW)
{
    *OH = saa_conv_out_size(H, (int)c->K, c->stride, c->pad, 1);
    *OW = saa_conv_out_size(W, (int)c->K, c->stride, c->pad, 1);
}

static void conv_run(const wrn_conv *c, const float *x, int64_t H, int64_t W, float *y)
{
    saa_conv_params p = {c->stride, c->stride, c->pad, c->pad, 1, 1, 1};
    saa_conv2d(x, 1, c->C, H, W, c->w, c->O, c->K, c->K, c->b, p, y);
}

void saa_wrn_features_free(saa_wrn_features *f)
{
    if (!f) return;
    for (int l = 0; l < 3; l++) {
        free(f->layer[l]);
        free(f->pixel_major[l]);
    }
    free(f->norm);
    memset(f, 0, sizeof *f);
}

/* torch nearest_idx (aten/src/ATen/native/UpSample.h) for F.interpolate(size=...), mode 'nearest' */
static int64_t nearest_src(int64_t dst, int64_t in, int64_t out)
{
    if (out == in) return dst;
    if (out == 2 * in) return dst >> 1;
    float scale = (float)in / (float)out;
    int64_t s = (int64_t)floorf((float)dst * scale);
    return s < in - 1 ? s : in - 1;
}

/* mirrors SAA/modelinet.py: ModelINet.forward up to the concatenation (timm FeatureListNet:
 * conv1, bn1, act1, maxpool, layer1..3), plus the per-pixel norms of F.normalize(dim=1). */
int saa_wrn_features_compute(const saa_wrn *m, const float *x, int H, int W, saa_wrn_features *f)
{
    memset(f, 0, sizeof *f);
    /* shape pass: the largest activation sizes every scratch buffer */
    int64_t h, w, oh, ow, maxsz;
    conv_out_hw(&m->stem, H, W, &h, &w);
    if (h <= 0 || w <= 0) return saa_set_error(SAA_EINVAL, "wrn: input %dx%d too small", W, H);
    maxsz = m->stem.O * h * w;
    int64_t ph = saa_conv_out_size(h, 3, 2, 1, 1), pw = saa_conv_out_size(w, 3, 2, 1, 1);
    h = ph;
    w = pw;
    for (int l = 0; l < 3; l++)
        for (int i = 0; i < m->nblocks[l]; i++) {
            const wrn_block *b = &m->blocks[l][i];
            int64_t s1 = b->c1.O * h * w;
            conv_out_hw(&b->c2, h, w, &oh, &ow);
            if (oh <= 0 || ow <= 0) return saa_set_error(SAA_EINVAL, "wrn: input %dx%d too small", W, H);
            int64_t s2 = b->c2.O * oh * ow, s3 = b->c3.O * oh * ow, s0 = b->c1.C * h * w;
            if (s1 > maxsz) maxsz = s1;
            if (s2 > maxsz) maxsz = s2;
            if (s3 > maxsz) maxsz = s3;
            if (s0 > maxsz) maxsz = s0;
            h = oh;
            w = ow;
        }
    float *cur = malloc(sizeof(float) * (size_t)maxsz), *t1 = malloc(sizeof(float) * (size_t)maxsz),
          *t2 = malloc(sizeof(float) * (size_t)maxsz), *outb = malloc(sizeof(float) * (size_t)maxsz);
    int rc = SAA_OK;
    if (!cur || !t1 || !t2 || !outb) {
        rc = saa_set_error(SAA_ENOMEM, "wrn: out of memory for %lld-float activations", (long long)maxsz);
        goto done;
    }
    /* stem: conv1 + bn1 (folded) + ReLU + maxpool 3x3/2 pad 1 */
    conv_out_hw(&m->stem, H, W, &h, &w);
    conv_run(&m->stem, x, H, W, t1);
    saa_relu(t1, m->stem.O * h * w);
    saa_max_pool2d(t1, m->stem.O, h, w, 3, 2, 1, cur);
    h = ph;
    w = pw;
    int64_t ch = m->stem.O;
    for (int l = 0; l < 3; l++) {
        for (int i = 0; i < m->nblocks[l]; i++) {
            /* mirrors torchvision resnet.py: Bottleneck.forward */
            const wrn_block *b = &m->blocks[l][i];
            conv_run(&b->c1, cur, h, w, t1);
            saa_relu(t1, b->c1.O * h * w);
            conv_out_hw(&b->c2, h, w, &oh, &ow);
            conv_run(&b->c2, t1, h, w, t2);
            saa_relu(t2, b->c2.O * oh * ow);
            conv_run(&b->c3, t2, oh, ow, outb);
            const float *identity = cur;
            if (b->has_down) {
                conv_run(&b->down, cur, h, w, t1); /* t1 is free again */
                identity = t1;
            }
            int64_t n = b->c3.O * oh * ow;
#pragma omp parallel for if (n > 65536) schedule(static)
            for (int64_t k = 0; k < n; k++) {
                float v = outb[k] + identity[k];
                outb[k] = v > 0.0f ? v : 0.0f;
            }
            float *tmp = cur;
            cur = outb;
            outb = tmp;
            h = oh;
            w = ow;
            ch = b->c3.O;
        }
        f->C[l] = ch;
        f->H[l] = h;
        f->W[l] = w;
        f->layer[l] = malloc(sizeof(float) * (size_t)(ch * h * w));
        if (!f->layer[l]) {
            rc = saa_set_error(SAA_ENOMEM, "out of memory");
            goto done;
        }
        memcpy(f->layer[l], cur, sizeof(float) * (size_t)(ch * h * w));
    }
    /* the scratch buffers go before the pixel-major copies are made: lower peak memory */
    free(cur);
    free(t1);
    free(t2);
    free(outb);
    cur = t1 = t2 = outb = NULL;
    for (int l = 0; l < 3; l++) {
        /* [C, HW] -> [HW, C] for the per-pixel gathers */
        int64_t cl = f->C[l], hw = f->H[l] * f->W[l];
        float *pm = f->pixel_major[l] = malloc(sizeof(float) * (size_t)(cl * hw));
        const float *src = f->layer[l];
        if (!pm) {
            rc = saa_set_error(SAA_ENOMEM, "out of memory");
            goto done;
        }
#pragma omp parallel for if (cl * hw > 65536) schedule(static)
        for (int64_t p = 0; p < hw; p++)
            for (int64_t c = 0; c < cl; c++) pm[p * cl + c] = src[c * hw + p];
    }
    f->fused_C = f->C[0] + f->C[1] + f->C[2];
    /* F.normalize(dim=1): x / max(||x||_2, 1e-12) over the concatenated channels */
    int64_t hw0 = f->H[0] * f->W[0];
    f->norm = malloc(sizeof(float) * (size_t)hw0);
    if (!f->norm) {
        rc = saa_set_error(SAA_ENOMEM, "out of memory");
        goto done;
    }
#pragma omp parallel for if (hw0 > 1024) schedule(static)
    for (int64_t p = 0; p < hw0; p++) {
        int64_t y = p / f->W[0], xx = p % f->W[0];
        double ss = 0;
        for (int l = 0; l < 3; l++) {
            int64_t q = nearest_src(y, f->H[l], f->H[0]) * f->W[l] + nearest_src(xx, f->W[l], f->W[0]);
            const float *v = f->pixel_major[l] + q * f->C[l];
            for (int64_t c = 0; c < f->C[l]; c++) ss += (double)v[c] * v[c];
        }
        float nrm = (float)sqrt(ss);
        f->norm[p] = nrm > 1e-12f ? nrm : 1e-12f;
    }
done:
    free(cur);
    free(t1);
    free(t2);
    free(outb);
    if (rc != SAA_OK) saa_wrn_features_free(f);
    return rc;
}

/* ---------- fused features ---------- */

void saa_wrn_fused_gather(const saa_wrn_features *f, const int64_t *pix, int64_t first, int64_t n, float *out)
{
    int64_t C = f->fused_C;
#pragma omp parallel for if (n * C > 65536) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        int64_t p = pix ? pix[i] : first + i;
        int64_t y = p / f->W[0], xx = p % f->W[0];
        float *o = out + i * C, nrm = f->norm[p];
        for (int l = 0; l < 3; l++) {
            int64_t q = nearest_src(y, f->H[l], f->H[0]) * f->W[l] + nearest_src(xx, f->W[l], f->W[0]);
            const float *v = f->pixel_major[l] + q * f->C[l];
            for (int64_t c = 0; c < f->C[l]; c++) o[c] = v[c] / nrm;
            o += f->C[l];
        }
    }
}

/* ---------- single instance ---------- */

/* Gathers every fused pixel vector [HW, C]. */
static float *gather_all(const saa_wrn_features *f)
{
    int64_t hw = f->H[0] * f->W[0];
    float *F = malloc(sizeof(float) * (size_t)(hw * f->fused_C));
    if (!F) {
        saa_set_error(SAA_ENOMEM, "out of memory");
        return NULL;
    }
    saa_wrn_fused_gather(f, NULL, 0, hw, F);
    return F;
}

/* out[nrows, hw] = 0.5 * (1 - F[row0..] F^T), float32 as torch computes it */
static void self_sim_block(const float *F, int64_t hw, int64_t C, int64_t row0, int64_t nrows, float *out)
{
    saa_gemm(0, 1, nrows, hw, C, 1.0f, F + row0 * C, C, F, C, 0.0f, out, hw);
    int64_t n = nrows * hw;
#pragma omp parallel for if (n > 65536) schedule(static)
    for (int64_t k = 0; k < n; k++) out[k] = 0.5f * (1.0f - out[k]);
}

int saa_wrn_self_similarity_rows(const saa_wrn_features *f, int64_t row0, int64_t nrows, float *out)
{
    int64_t hw = f->H[0] * f->W[0];
    if (row0 < 0 || nrows < 0 || row0 + nrows > hw) return saa_set_error(SAA_EINVAL, "self-similarity rows out of range");
    float *F = gather_all(f);
    if (!F) return SAA_ENOMEM;
    self_sim_block(F, hw, f->fused_C, row0, nrows, out);
    free(F);
    return SAA_OK;
}

/* Mean of the k largest of v[n] (v is reordered): quickselect puts them in v[0..k). */
static float topk_mean(float *v, int64_t n, int64_t k)
{
    if (k > n) k = n;
    int64_t lo = 0, hi = n - 1, target = k - 1;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        float a = v[lo], b = v[mid], c = v[hi];
        float pivot = a > b ? (b > c ? b : (a > c ? c : a)) : (a > c ? a : (b > c ? c : b));
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (v[i] > pivot) i++;
            while (v[j] < pivot) j--;
            if (i <= j) {
                float t = v[i];
                v[i] = v[j];
                v[j] = t;
                i++;
                j--;
            }
        }
        if (target <= j)
            hi = j;
        else if (target >= i)
            lo = i;
        else
            break;
    }
    double s = 0;
    for (int64_t i = 0; i < k; i++) s += v[i];
    return (float)(s / (double)k);
}

/* mirrors SAA/model.py: single_object_similarity (sort(descending)[:, :top_n].mean(1)), one block
 * of rows of the self-similarity at a time */
int saa_wrn_single_heat(const saa_wrn_features *f, int top_n, float *heat)
{
    int64_t hw = f->H[0] * f->W[0], C = f->fused_C;
    if (top_n <= 0) return saa_set_error(SAA_EINVAL, "single heat: top_n must be positive");
    int64_t block = 256;
    while (block > 16 && block * hw > ((int64_t)16 << 20)) block /= 2; /* <= 64 MB of scores */
    float *F = gather_all(f), *S = malloc(sizeof(float) * (size_t)(block * hw));
    if (!F || !S) {
        free(F);
        free(S);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    for (int64_t r0 = 0; r0 < hw; r0 += block) {
        int64_t n = hw - r0 < block ? hw - r0 : block;
        self_sim_block(F, hw, C, r0, n, S);
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < n; i++) heat[r0 + i] = topk_mean(S + i * hw, hw, top_n);
    }
    free(F);
    free(S);
    return SAA_OK;
}

/* ---------- multi instance ---------- */

/* Running maxima of one block T[rn, cn] of products between union pixels u (rows, mask bits bu_blk) and
 * v (columns, bv_blk), nw words each: a product updates object i of u when i holds u but not v, and
 * object i of v when i holds v but not u. best_u / best_v: [n_masks][nu] rows offset to the block. */
static inline void multi_block_maxima(const float *T, int64_t rn, int64_t cn, const uint64_t *bu_blk,
                                      const uint64_t *bv_blk, const int nw, float *best_u, float *best_v, int64_t nu)
{
#pragma omp parallel for if (rn * cn > 65536) schedule(static)
    for (int64_t r = 0; r < rn; r++) {
        const uint64_t *bu = bu_blk + r * nw;
        const float *t = T + r * cn;
        for (int64_t c = 0; c < cn; c++)
            for (int w = 0; w < nw; w++) {
                uint64_t m = bu[w] & ~bv_blk[c * nw + w];
                while (m) {
                    float *bp = best_u + (int64_t)(64 * w + __builtin_ctzll(m)) * nu + r;
                    if (t[c] > *bp) *bp = t[c];
                    m &= m - 1;
                }
            }
    }
    /* the same products seen from v; each thread owns a slice of columns, rows read in order */
    int64_t nchunks = (cn + 63) / 64;
#pragma omp parallel for if (rn * cn > 65536) schedule(static)
    for (int64_t ch = 0; ch < nchunks; ch++) {
        int64_t ca = ch * 64, cb = ca + 64 < cn ? ca + 64 : cn;
        for (int64_t r = 0; r < rn; r++) {
            const uint64_t *bu = bu_blk + r * nw;
            const float *t = T + r * cn;
            for (int64_t c = ca; c < cb; c++)
                for (int w = 0; w < nw; w++) {
                    uint64_t m = bv_blk[c * nw + w] & ~bu[w];
                    while (m) {
                        float *bp = best_v + (int64_t)(64 * w + __builtin_ctzll(m)) * nu + c;
                        if (t[c] > *bp) *bp = t[c];
                        m &= m - 1;
                    }
                }
        }
    }
}

/* mirrors SAA/model.py: visual_saliency_calculation (object_number > 1) and region_feature_extraction.
 * For object i the official code takes, per pixel p of mask i, the max of f_p . g_q over the pixels q
 * of every other mask, where g_q = 0 when q lies in mask i (features_clone zeroes mask i) and f_q
 * otherwise. A max ignores duplicates, so this is the max over q in U \ mask_i (U = union of all masks)
 * of f_p . f_q, joined with 0 if some other mask overlaps mask i. Each dot product is symmetric, so the
 * union is swept once in blocks of the upper triangle of U x U (a pair seen twice is harmless for a
 * max), and every product updates the running maxima of both of its pixels: memory O(N * |U|).
 * Mask membership is a bitset of nw 64-bit words per pixel (any number of objects). */
int saa_wrn_multi_map(const saa_wrn_features *f, const uint8_t *masks, int n_masks, double *object_scores,
                      double *max_map)
{
    int64_t hw = f->H[0] * f->W[0], C = f->fused_C;
    if (n_masks < 2)
        return saa_set_error(SAA_EINVAL, "multi-instance saliency needs at least 2 object masks (got %d)", n_masks);
    for (int i = 0; i < n_masks; i++) {
        int64_t cnt = 0;
        for (int64_t p = 0; p < hw; p++) cnt += masks[(int64_t)i * hw + p] != 0;
        if (!cnt)
            return saa_set_error(SAA_EINVAL, "object mask %d is empty on the %lldx%lld feature grid", i,
                                 (long long)f->W[0], (long long)f->H[0]);
    }
    const int nw = (n_masks + 63) / 64;
    uint64_t *bits = calloc((size_t)(hw * nw), sizeof *bits);
    uint64_t *overlapped = calloc((size_t)nw, sizeof *overlapped); /* mask i: another mask has a pixel inside it
                                                                      (a zero vector in its list) */
    int64_t *U = malloc(sizeof(int64_t) * (size_t)hw);
    if (!bits || !overlapped || !U) {
        free(bits);
        free(overlapped);
        free(U);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    int64_t nu = 0;
    for (int64_t p = 0; p < hw; p++) {
        uint64_t *bp = bits + p * nw;
        int count = 0;
        for (int i = 0; i < n_masks; i++)
            if (masks[(int64_t)i * hw + p]) bp[i / 64] |= (uint64_t)1 << (i % 64), count++;
        if (count) U[nu++] = p;
        for (int w = 0; count > 1 && w < nw; w++) overlapped[w] |= bp[w];
    }
    const int64_t RB = 256, CB = 1024; /* similarity block held at once */
    float *A = malloc(sizeof(float) * (size_t)(RB * C)), *B = malloc(sizeof(float) * (size_t)(CB * C)),
          *T = malloc(sizeof(float) * (size_t)(RB * CB)), *best = malloc(sizeof(float) * (size_t)(n_masks * nu));
    uint64_t *ubits = malloc(sizeof(uint64_t) * (size_t)((nu ? nu : 1) * nw)); /* mask bits of U[k], contiguous */
    int rc = SAA_OK;
    if (!A || !B || !T || !best || !ubits) {
        rc = saa_set_error(SAA_ENOMEM, "out of memory");
        goto done;
    }
    for (int64_t k = 0; k < n_masks * nu; k++) best[k] = -INFINITY;
    for (int64_t k = 0; k < nu; k++) memcpy(ubits + k * nw, bits + U[k] * nw, sizeof(uint64_t) * (size_t)nw);
    for (int64_t r0 = 0; r0 < nu; r0 += RB) {
        int64_t rn = nu - r0 < RB ? nu - r0 : RB;
        saa_wrn_fused_gather(f, U + r0, 0, rn, A);
        for (int64_t c0 = r0; c0 < nu; c0 += CB) {
            int64_t cn = nu - c0 < CB ? nu - c0 : CB;
            saa_wrn_fused_gather(f, U + c0, 0, cn, B);
            saa_gemm(0, 1, rn, cn, C, 1.0f, A, C, B, C, 0.0f, T, cn);
            const uint64_t *bu_blk = ubits + r0 * nw, *bv_blk = ubits + c0 * nw;
            if (nw == 1) /* constant word count: the common case compiles to one AND-NOT per product */
                multi_block_maxima(T, rn, cn, bu_blk, bv_blk, 1, best + r0, best + c0, nu);
            else
                multi_block_maxima(T, rn, cn, bu_blk, bv_blk, nw, best + r0, best + c0, nu);
        }
    }
    /* per-object map: float64 zeros with the float32 scores 0.5 * (1 - max) at mask-i pixels; max over objects */
    for (int64_t p = 0; p < hw; p++) max_map[p] = -INFINITY;
    if (object_scores) memset(object_scores, 0, sizeof(double) * (size_t)(n_masks * hw));
    for (int i = 0; i < n_masks; i++) {
        const int w = i / 64;
        const uint64_t bit = (uint64_t)1 << (i % 64);
        int64_t k = 0;
        for (int64_t p = 0; p < hw; p++) {
            const uint64_t *bp = bits + p * nw;
            double s = 0.0;
            if (bp[w] & bit) {
                float mx = best[(int64_t)i * nu + k];
                if ((overlapped[w] & bit) && mx < 0.0f) mx = 0.0f;
                s = (double)(0.5f * (1.0f - mx));
            }
            int any = 0;
            for (int ww = 0; ww < nw && !any; ww++) any = bp[ww] != 0;
            if (any) k++;
            if (object_scores) object_scores[(int64_t)i * hw + p] = s;
            if (s > max_map[p]) max_map[p] = s;
        }
    }
done:
    free(ubits);
    free(bits);
    free(overlapped);
    free(U);
    free(A);
    free(B);
    free(T);
    free(best);
    return rc;
}

/* ---------- whole saliency ---------- */

/* mirrors SAA/model.py: Model.visual_saliency_calculation */
int saa_wrn_saliency(const saa_wrn *m, const uint8_t *bgr, int w, int h, const uint8_t *masks, int n_masks,
                     int object_number, double *out, int *is_f32)
{
    int single = object_number == 1;
    int size = single ? 256 : 1024; /* cv2.resize target; ModelINet.img_size (set_img_size(256) / default 1024) */
    uint8_t *resized = malloc((size_t)size * size * 3);
    float *x = malloc(sizeof(float) * 3 * (size_t)size * size);
    saa_wrn_features f;
    memset(&f, 0, sizeof f);
    int rc = SAA_OK;
    if (!resized || !x) {
        rc = saa_set_error(SAA_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = saa_resize_cv_u8(bgr, w, h, 3, resized, size, size, SAA_CV_INTER_LINEAR))) goto done;
    if ((rc = saa_wrn_preprocess(resized, size, size, size, x, NULL))) goto done;
    if ((rc = saa_wrn_features_compute(m, x, size, size, &f))) goto done;
    int64_t fh = f.H[0], fw = f.W[0];
    if (single) {
        float *heat = malloc(sizeof(float) * (size_t)(fh * fw)), *sal = malloc(sizeof(float) * (size_t)w * h);
        if (!heat || !sal || (rc = saa_wrn_single_heat(&f, 400, heat))) {
            if (rc == SAA_OK) rc = saa_set_error(SAA_ENOMEM, "out of memory");
        } else {
            rc = saa_resize_cv_f32(heat, (int)fw, (int)fh, 1, sal, w, h, SAA_CV_INTER_LINEAR);
            for (int64_t p = 0; rc == SAA_OK && p < (int64_t)w * h; p++) out[p] = sal[p];
        }
        free(heat);
        free(sal);
        if (is_f32) *is_f32 = 1;
    } else {
        if (fh != fw) {
            rc = saa_set_error(SAA_EINVAL, "multi-instance saliency: feature grid %lldx%lld is not square",
                               (long long)fw, (long long)fh);
            goto done;
        }
        /* cv2.resize(mask.astype(int32), feature_size, INTER_NEAREST); masks are 0/1 so uint8 is the same */
        uint8_t *small = malloc((size_t)n_masks * (size_t)(fh * fw) + 1), *bin = malloc((size_t)w * h + 1);
        double *map = malloc(sizeof(double) * (size_t)(fh * fw));
        if (!small || !bin || !map) {
            rc = saa_set_error(SAA_ENOMEM, "out of memory");
        } else {
            for (int i = 0; i < n_masks && rc == SAA_OK; i++) {
                for (int64_t p = 0; p < (int64_t)w * h; p++) bin[p] = masks[(int64_t)i * w * h + p] != 0;
                rc = saa_resize_cv_u8(bin, w, h, 1, small + (int64_t)i * fh * fw, (int)fh, (int)fw,
                                      SAA_CV_INTER_NEAREST);
            }
            if (rc == SAA_OK) rc = saa_wrn_multi_map(&f, small, n_masks, NULL, map);
            if (rc == SAA_OK) rc = saa_resize_cv_f64(map, (int)fw, (int)fh, 1, out, w, h, SAA_CV_INTER_LINEAR);
        }
        free(small);
        free(bin);
        free(map);
        if (is_f32) *is_f32 = 0;
    }
done:
    saa_wrn_features_free(&f);
    free(resized);
    free(x);
    return rc;
}
