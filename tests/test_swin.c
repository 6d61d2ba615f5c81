/* Swin / Grounding DINO image side: unit tests against brute-force constructions that follow the
 * official Python code literally, hand-checked resize sizes, and the gdino_tiny golden image stage. */
#include <stdint.h>
#include <string.h>

#include "golden/golden.h"
#include "saa/weights.h"
#include "models/swin.h"
#include "test.h"

/* WindowAttention.__init__ literally: coords = stack(meshgrid(arange(ws), arange(ws))), flatten,
 * relative = flat[:, :, None] - flat[:, None, :], permute, += ws-1, [0] *= 2ws-1, sum. */
static void test_relative_position_index(void)
{
    for (int ws = 1; ws <= 12; ws++) {
        int n = ws * ws;
        int64_t *got = malloc(sizeof(int64_t) * n * n);
        int *coords = malloc(sizeof(int) * 2 * n); /* [2, n] */
        for (int h = 0; h < ws; h++)
            for (int w = 0; w < ws; w++) {
                coords[0 * n + h * ws + w] = h; /* meshgrid "ij": first output varies along rows */
                coords[1 * n + h * ws + w] = w;
            }
        swin_relative_position_index(ws, got);
        int bad = 0, maxv = 0;
        for (int a = 0; a < n; a++)
            for (int b = 0; b < n; b++) {
                int r0 = coords[a] - coords[b], r1 = coords[n + a] - coords[n + b];
                r0 += ws - 1;
                r1 += ws - 1;
                r0 *= 2 * ws - 1;
                int expect = r0 + r1;
                if (got[a * n + b] != expect) bad++;
                if (expect > maxv) maxv = expect;
            }
        CHECK(bad == 0);
        CHECK(maxv == (2 * ws - 1) * (2 * ws - 1) - 1); /* the table has (2ws-1)^2 rows, all reachable */
        free(got);
        free(coords);
    }
    /* hand-checked: ws = 2, token 0 (0,0) vs token 3 (1,1): (-1+1)*3 + (-1+1) = 0; token 3 vs 0: 2*3+2 = 8 */
    int64_t idx[16];
    swin_relative_position_index(2, idx);
    CHECK(idx[0 * 4 + 3] == 0);
    CHECK(idx[3 * 4 + 0] == 8);
    CHECK(idx[0 * 4 + 0] == 4);
}

/* BasicLayer.forward literally: img_mask[Hp, Wp] filled with cnt over the 3x3 slice grid, window_partition,
 * mask_windows[:, None, :] - mask_windows[:, :, None] != 0 -> -100. Python slices with negative bounds. */
static int py_slice_lo(int v, int P) { return v < 0 ? (P + v < 0 ? 0 : P + v) : (v > P ? P : v); }

static void test_shift_mask(void)
{
    static const int cases[][4] = {{8, 8, 4, 2}, {8, 12, 4, 2}, {4, 8, 4, 2}, {14, 21, 7, 3},
                                   {7, 7, 7, 3}, {24, 36, 12, 6}, {6, 9, 3, 1}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int Hp = cases[c][0], Wp = cases[c][1], ws = cases[c][2], shift = cases[c][3], n = ws * ws;
        float *img_mask = calloc((size_t)Hp * Wp, sizeof(float));
        /* slices (0, -ws), (-ws, -shift), (-shift, None) */
        int lo[3] = {0, -ws, -shift}, hi_is_none[3] = {0, 0, 1}, hi[3] = {-ws, -shift, 0};
        int cnt = 0;
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++) {
                int h0 = py_slice_lo(lo[a], Hp), h1 = hi_is_none[a] ? Hp : py_slice_lo(hi[a], Hp);
                int w0 = py_slice_lo(lo[b], Wp), w1 = hi_is_none[b] ? Wp : py_slice_lo(hi[b], Wp);
                for (int y = h0; y < h1; y++)
                    for (int x = w0; x < w1; x++) img_mask[y * Wp + x] = (float)cnt;
                cnt++;
            }
        int nwh = Hp / ws, nww = Wp / ws, bad = 0, n_masked = 0;
        float *got = malloc(sizeof(float) * n * n);
        for (int win = 0; win < nwh * nww; win++) {
            int wy = win / nww, wx = win % nww;
            swin_shift_window_mask(Hp, Wp, ws, shift, win, got);
            for (int i = 0; i < n; i++)
                for (int j = 0; j < n; j++) {
                    float mi = img_mask[(wy * ws + i / ws) * Wp + wx * ws + i % ws];
                    float mj = img_mask[(wy * ws + j / ws) * Wp + wx * ws + j % ws];
                    float expect = (mj - mi) != 0 ? -100.0f : 0.0f;
                    if (got[i * n + j] != expect) bad++;
                    if (expect != 0) n_masked++;
                }
        }
        CHECK(bad == 0);
        CHECK(n_masked > 0); /* the last window row/column always mixes regions */
        free(got);
        free(img_mask);
    }
}

/* window_partition(roll(pad(x), -shift)) literally, compared with swin_window_partition; then the reverse
 * (window_reverse, roll +shift, crop) added onto zeros must give x back. */
static void test_window_round_trip(void)
{
    static const int cases[][5] = {{5, 7, 3, 4, 2}, {8, 8, 2, 4, 0}, {3, 5, 4, 4, 2}, {12, 17, 5, 7, 3}, {1, 1, 2, 4, 2}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int H = cases[c][0], W = cases[c][1], C = cases[c][2], ws = cases[c][3], shift = cases[c][4];
        int Hp = (H + ws - 1) / ws * ws, Wp = (W + ws - 1) / ws * ws, n = ws * ws;
        float *x = malloc(sizeof(float) * H * W * C);
        for (int i = 0; i < H * W * C; i++) x[i] = (float)(i % 97) * 0.25f - 7.0f + (float)i * 1e-3f;
        float *padded = calloc((size_t)Hp * Wp * C, sizeof(float));
        for (int y = 0; y < H; y++)
            for (int xx = 0; xx < W; xx++)
                memcpy(padded + ((size_t)y * Wp + xx) * C, x + ((size_t)y * W + xx) * C, sizeof(float) * C);
        /* torch.roll(shifts=-shift): rolled[p] = padded[(p + shift) mod P] */
        float *rolled = malloc(sizeof(float) * Hp * Wp * C);
        for (int y = 0; y < Hp; y++)
            for (int xx = 0; xx < Wp; xx++)
                memcpy(rolled + ((size_t)y * Wp + xx) * C, padded + ((size_t)((y + shift) % Hp) * Wp + (xx + shift) % Wp) * C,
                       sizeof(float) * C);
        /* view(B, H/ws, ws, W/ws, ws, C).permute(0, 1, 3, 2, 4, 5) */
        float *expect = malloc(sizeof(float) * Hp * Wp * C);
        int nww = Wp / ws;
        for (int wy = 0; wy < Hp / ws; wy++)
            for (int wx = 0; wx < nww; wx++)
                for (int iy = 0; iy < ws; iy++)
                    for (int ix = 0; ix < ws; ix++)
                        memcpy(expect + ((size_t)(wy * nww + wx) * n + iy * ws + ix) * C,
                               rolled + ((size_t)(wy * ws + iy) * Wp + wx * ws + ix) * C, sizeof(float) * C);
        float *got = malloc(sizeof(float) * Hp * Wp * C);
        swin_window_partition(x, H, W, C, ws, shift, got);
        CHECK(memcmp(got, expect, sizeof(float) * Hp * Wp * C) == 0);
        float *back = calloc((size_t)H * W * C, sizeof(float));
        swin_window_reverse_add(got, H, W, C, ws, shift, back);
        CHECK(memcmp(back, x, sizeof(float) * H * W * C) == 0);
        free(x);
        free(padded);
        free(rolled);
        free(expect);
        free(got);
        free(back);
    }
}

static void test_target_size(void)
{
    int oh, ow;
    /* gdino_tiny: 203x150 (w x h), 96 / 160: uncapped, short side 96, long int(96*203/150) = 129 */
    gdino_image_target_size(203, 150, 96, 160, &oh, &ow);
    CHECK(oh == 96 && ow == 129);
    /* README example: 2000x1000, 800 / 1333: capped, round(666.5) = 666 (half to even), ow = 1332 */
    gdino_image_target_size(2000, 1000, 800, 1333, &oh, &ow);
    CHECK(oh == 666 && ow == 1332);
    /* capped with round half up to an odd value: 3000x1000 -> 1333*1000/3000 = 444.33 -> 444, ow 1332 */
    gdino_image_target_size(3000, 1000, 800, 1333, &oh, &ow);
    CHECK(oh == 444 && ow == 1332);
    /* 1000x2000 (portrait) capped: S = 666, ow = 666, oh = int(666*2000/1000) = 1332 */
    gdino_image_target_size(1000, 2000, 800, 1333, &oh, &ow);
    CHECK(oh == 1332 && ow == 666);
    /* 1067x800 is the early return (h == S): unchanged */
    gdino_image_target_size(1067, 800, 800, 1333, &oh, &ow);
    CHECK(oh == 800 && ow == 1067);
    /* MVTec 1024x1024: square -> 800x800 */
    gdino_image_target_size(1024, 1024, 800, 1333, &oh, &ow);
    CHECK(oh == 800 && ow == 800);
    /* 640x480: uncapped (640/480*800 = 1066.7), ow = int(800*640/480) = int(1066.67) = 1066 */
    gdino_image_target_size(640, 480, 800, 1333, &oh, &ow);
    CHECK(oh == 800 && ow == 1066);
    /* 700x1000 portrait uncapped: ow = 800, oh = int(800*1000/700) = int(1142.86) = 1142 */
    gdino_image_target_size(700, 1000, 800, 1333, &oh, &ow);
    CHECK(oh == 1142 && ow == 800);
    /* capped, half-to-even at .5 going down: 1333*600/1200 = 666.5 -> 666; and 1333*200/400 = 666.5 too.
     * 1334x... exercise an odd half: max 1335, 1335*1000/2000 = 667.5 -> 668 (even) */
    gdino_image_target_size(2000, 1000, 800, 1335, &oh, &ow);
    CHECK(oh == 668 && ow == 1336);
    /* no max size */
    gdino_image_target_size(4000, 1000, 800, 0, &oh, &ow);
    CHECK(oh == 800 && ow == 3200);
}

static void test_normalisation(void)
{
    /* 1x2 image, no resize (h == size): ToTensor + Normalize of known pixels */
    uint8_t px[6] = {0, 128, 255, 10, 20, 30};
    saa_image img = {.w = 2, .h = 1, .c = 3, .data = px};
    uint8_t *resized = NULL;
    float *t = NULL;
    int oh = 0, ow = 0;
    CHECK(gdino_image_preprocess(&img, 1, 0, &resized, &t, &oh, &ow) == SAA_OK);
    CHECK(oh == 1 && ow == 2);
    if (t && resized) {
        CHECK(memcmp(resized, px, 6) == 0);
        /* (0/255 - 0.485) / 0.229 and (128/255 - 0.456) / 0.224 in float32 */
        CHECK(t[0] == (0.0f - 0.485f) / 0.229f);
        CHECK(t[2 + 0] == ((float)128 / 255.0f - 0.456f) / 0.224f);
        CHECK(t[4 + 1] == ((float)30 / 255.0f - 0.406f) / 0.225f);
        CHECK_NEAR(t[4 + 0], (1.0 - 0.406) / 0.225, 1e-6);
    }
    free(resized);
    free(t);
}

static void test_configs(void)
{
    swin_config c;
    swin_config_swin_t(&c);
    CHECK(c.embed_dim == 96 && c.window_size == 7 && c.depths[2] == 6 && c.num_heads[3] == 24);
    CHECK(c.num_out == 3 && c.out_indices[0] == 1 && c.out_indices[2] == 3 && c.pretrain_img_size == 224);
    swin_config_swin_b(&c);
    CHECK(c.embed_dim == 128 && c.window_size == 12 && c.depths[2] == 18 && c.num_heads[0] == 4 &&
          c.pretrain_img_size == 384);
    cJSON *j = cJSON_Parse("{\"embed_dim\": 8, \"depths\": [1, 1, 2, 1], \"num_heads\": [1, 1, 2, 2], "
                           "\"window_size\": 4, \"mlp_ratio\": 4.0, \"patch_size\": 4, \"out_indices\": [1, 2, 3], "
                           "\"patch_norm\": true, \"ape\": false, \"layer_norm_eps\": 1e-05}");
    CHECK(swin_config_from_json(j, &c) == SAA_OK);
    CHECK(c.embed_dim == 8 && c.num_stages == 4 && c.depths[2] == 2 && c.num_heads[3] == 2 && c.window_size == 4);
    CHECK(c.num_out == 3 && c.out_indices[1] == 2 && c.patch_norm == 1 && c.ln_eps == 1e-5f);
    cJSON_Delete(j);
    j = cJSON_Parse("{\"embed_dim\": 8, \"depths\": [1, 1], \"num_heads\": [1], \"window_size\": 4}");
    CHECK(swin_config_from_json(j, &c) != SAA_OK);
    cJSON_Delete(j);
    /* a Grounding DINO tiny config (saa_e2e tiny_cfg style) on top of the backbone preset */
    j = cJSON_Parse("{\"backbone\": \"swin_T_224_1k\", \"swin_embed_dim\": 8, \"swin_depths\": [1, 1, 2, 1], "
                    "\"swin_heads\": [1, 1, 2, 2], \"swin_window\": 4, \"swin_mlp_ratio\": 4.0, "
                    "\"return_interm_indices\": [1, 2, 3]}");
    CHECK(swin_config_from_json(j, &c) == SAA_OK);
    CHECK(c.embed_dim == 8 && c.window_size == 4 && c.depths[2] == 2 && c.num_heads[1] == 1 && c.num_out == 3 &&
          c.pretrain_img_size == 224);
    cJSON_Delete(j);
    /* a preset name alone */
    j = cJSON_Parse("{\"backbone\": \"swin_L_384_22k\"}");
    CHECK(swin_config_from_json(j, &c) == SAA_OK);
    CHECK(c.embed_dim == 192 && c.window_size == 12 && c.num_heads[3] == 48 && c.pretrain_img_size == 384);
    cJSON_Delete(j);
    CHECK(swin_config_from_name("swin_X", &c) != SAA_OK);
}


/* ---------- the forward against a literal double-precision port of swin_transformer.py ---------- */

static uint32_t rng_state = 2024;
static float rnd(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 8388608.0f - 1.0f;
}

static const float *add_tensor(saa_weights *w, const char *name, int ndim, const int64_t *shape, float scale,
                               float offset)
{
    saa_tensor *t = saa_tensor_new(SAA_F32, ndim, shape);
    float *d = t->data;
    for (int64_t i = 0; i < saa_tensor_numel(t); i++) d[i] = offset + scale * rnd();
    saa_weights_add(w, name, t);
    return d;
}

static const float *wget(saa_weights *w, const char *fmt, int a, int b)
{
    char name[160];
    snprintf(name, sizeof name, fmt, a, b);
    const saa_tensor *t = saa_weights_find(w, name);
    return t ? t->data : NULL;
}

static saa_weights *random_swin(const swin_config *c)
{
    saa_weights *w = saa_weights_alloc("random-swin");
    int64_t E = c->embed_dim, ws = c->window_size, ps = c->patch_size;
    char nm[160];
    add_tensor(w, "b.patch_embed.proj.weight", 4, (int64_t[]){E, 3, ps, ps}, 0.3f, 0);
    add_tensor(w, "b.patch_embed.proj.bias", 1, (int64_t[]){E}, 0.2f, 0);
    add_tensor(w, "b.patch_embed.norm.weight", 1, (int64_t[]){E}, 0.3f, 1);
    add_tensor(w, "b.patch_embed.norm.bias", 1, (int64_t[]){E}, 0.2f, 0);
    for (int s = 0; s < c->num_stages; s++) {
        int64_t d = E << s, hd = (int64_t)(d * c->mlp_ratio), nh = c->num_heads[s];
        float sc = 1.5f / sqrtf((float)d);
        for (int i = 0; i < c->depths[s]; i++) {
#define N(x) (snprintf(nm, sizeof nm, "b.layers.%d.blocks.%d." x, s, i), nm)
            add_tensor(w, N("norm1.weight"), 1, (int64_t[]){d}, 0.3f, 1);
            add_tensor(w, N("norm1.bias"), 1, (int64_t[]){d}, 0.2f, 0);
            add_tensor(w, N("attn.relative_position_bias_table"), 2, (int64_t[]){(2 * ws - 1) * (2 * ws - 1), nh},
                       1.0f, 0);
            add_tensor(w, N("attn.qkv.weight"), 2, (int64_t[]){3 * d, d}, sc, 0);
            add_tensor(w, N("attn.qkv.bias"), 1, (int64_t[]){3 * d}, 0.3f, 0);
            add_tensor(w, N("attn.proj.weight"), 2, (int64_t[]){d, d}, sc, 0);
            add_tensor(w, N("attn.proj.bias"), 1, (int64_t[]){d}, 0.2f, 0);
            add_tensor(w, N("norm2.weight"), 1, (int64_t[]){d}, 0.3f, 1);
            add_tensor(w, N("norm2.bias"), 1, (int64_t[]){d}, 0.2f, 0);
            add_tensor(w, N("mlp.fc1.weight"), 2, (int64_t[]){hd, d}, sc, 0);
            add_tensor(w, N("mlp.fc1.bias"), 1, (int64_t[]){hd}, 0.2f, 0);
            add_tensor(w, N("mlp.fc2.weight"), 2, (int64_t[]){d, hd}, 1.5f / sqrtf((float)hd), 0);
            add_tensor(w, N("mlp.fc2.bias"), 1, (int64_t[]){d}, 0.2f, 0);
#undef N
        }
        if (s < c->num_stages - 1) {
            snprintf(nm, sizeof nm, "b.layers.%d.downsample.reduction.weight", s);
            add_tensor(w, nm, 2, (int64_t[]){2 * d, 4 * d}, 1.0f / sqrtf((float)d), 0);
            snprintf(nm, sizeof nm, "b.layers.%d.downsample.norm.weight", s);
            add_tensor(w, nm, 1, (int64_t[]){4 * d}, 0.3f, 1);
            snprintf(nm, sizeof nm, "b.layers.%d.downsample.norm.bias", s);
            add_tensor(w, nm, 1, (int64_t[]){4 * d}, 0.2f, 0);
        }
        snprintf(nm, sizeof nm, "b.norm%d.weight", s);
        add_tensor(w, nm, 1, (int64_t[]){d}, 0.3f, 1);
        snprintf(nm, sizeof nm, "b.norm%d.bias", s);
        add_tensor(w, nm, 1, (int64_t[]){d}, 0.2f, 0);
    }
    return w;
}

static void naive_ln(double *x, int64_t rows, int dim, const float *g, const float *b)
{
    for (int64_t r = 0; r < rows; r++) {
        double *v = x + r * dim, m = 0, var = 0;
        for (int i = 0; i < dim; i++) m += v[i];
        m /= dim;
        for (int i = 0; i < dim; i++) var += (v[i] - m) * (v[i] - m);
        var /= dim;
        for (int i = 0; i < dim; i++) v[i] = (v[i] - m) / sqrt(var + 1e-5) * g[i] + b[i];
    }
}

/* y[out] = W[out, in] x[in] + b */
static void naive_linear(const double *x, int in, const float *W, const float *b, int out, double *y)
{
    for (int o = 0; o < out; o++) {
        double s = b ? b[o] : 0;
        for (int i = 0; i < in; i++) s += (double)W[(int64_t)o * in + i] * x[i];
        y[o] = s;
    }
}

/* SwinTransformerBlock.forward, literally: x[H*W, C] in place */
static void naive_block(saa_weights *w, int s, int i, double *x, int H, int W, int C, int heads, int ws, int shift,
                        int hid)
{
    const float *n1w = wget(w, "b.layers.%d.blocks.%d.norm1.weight", s, i), *n1b = wget(w, "b.layers.%d.blocks.%d.norm1.bias", s, i);
    const float *table = wget(w, "b.layers.%d.blocks.%d.attn.relative_position_bias_table", s, i);
    const float *qw = wget(w, "b.layers.%d.blocks.%d.attn.qkv.weight", s, i), *qb = wget(w, "b.layers.%d.blocks.%d.attn.qkv.bias", s, i);
    const float *pw = wget(w, "b.layers.%d.blocks.%d.attn.proj.weight", s, i), *pb = wget(w, "b.layers.%d.blocks.%d.attn.proj.bias", s, i);
    const float *n2w = wget(w, "b.layers.%d.blocks.%d.norm2.weight", s, i), *n2b = wget(w, "b.layers.%d.blocks.%d.norm2.bias", s, i);
    const float *f1w = wget(w, "b.layers.%d.blocks.%d.mlp.fc1.weight", s, i), *f1b = wget(w, "b.layers.%d.blocks.%d.mlp.fc1.bias", s, i);
    const float *f2w = wget(w, "b.layers.%d.blocks.%d.mlp.fc2.weight", s, i), *f2b = wget(w, "b.layers.%d.blocks.%d.mlp.fc2.bias", s, i);
    int Hp = (H + ws - 1) / ws * ws, Wp = (W + ws - 1) / ws * ws, n = ws * ws, d = C / heads;
    /* img_mask region ids, as BasicLayer builds them */
    int *region = malloc(sizeof(int) * Hp * Wp);
    for (int y = 0; y < Hp; y++)
        for (int xx = 0; xx < Wp; xx++) {
            int ry = y < Hp - ws ? 0 : (y < Hp - shift ? 1 : 2), rx = xx < Wp - ws ? 0 : (xx < Wp - shift ? 1 : 2);
            region[y * Wp + xx] = ry * 3 + rx;
        }
    double *xn = malloc(sizeof(double) * H * W * C);
    memcpy(xn, x, sizeof(double) * H * W * C);
    naive_ln(xn, (int64_t)H * W, C, n1w, n1b);
    double *pad = calloc((size_t)Hp * Wp * C, sizeof(double)), *rolled = malloc(sizeof(double) * Hp * Wp * C);
    for (int y = 0; y < H; y++) memcpy(pad + (size_t)y * Wp * C, xn + (size_t)y * W * C, sizeof(double) * W * C);
    for (int y = 0; y < Hp; y++)
        for (int xx = 0; xx < Wp; xx++)
            memcpy(rolled + ((size_t)y * Wp + xx) * C, pad + ((size_t)((y + shift) % Hp) * Wp + (xx + shift) % Wp) * C,
                   sizeof(double) * C);
    double *outmap = calloc((size_t)Hp * Wp * C, sizeof(double));
    double *qkv = malloc(sizeof(double) * n * 3 * C), *o = malloc(sizeof(double) * n * C), *att = malloc(sizeof(double) * n);
    for (int wy = 0; wy < Hp / ws; wy++)
        for (int wx = 0; wx < Wp / ws; wx++) {
            for (int t = 0; t < n; t++)
                naive_linear(rolled + ((size_t)(wy * ws + t / ws) * Wp + wx * ws + t % ws) * C, C, qw, qb, 3 * C, qkv + t * 3 * C);
            for (int h = 0; h < heads; h++)
                for (int a = 0; a < n; a++) {
                    double mx = -1e300, sum = 0;
                    for (int b = 0; b < n; b++) {
                        double dot = 0;
                        for (int k = 0; k < d; k++) dot += qkv[a * 3 * C + h * d + k] / sqrt((double)d) * qkv[b * 3 * C + C + h * d + k];
                        int dy = a / ws - b / ws + ws - 1, dx = a % ws - b % ws + ws - 1;
                        dot += table[(dy * (2 * ws - 1) + dx) * heads + h];
                        if (shift > 0) {
                            int ra = region[(wy * ws + a / ws) * Wp + wx * ws + a % ws];
                            int rb = region[(wy * ws + b / ws) * Wp + wx * ws + b % ws];
                            if (ra != rb) dot += -100.0;
                        }
                        att[b] = dot;
                        if (dot > mx) mx = dot;
                    }
                    for (int b = 0; b < n; b++) sum += (att[b] = exp(att[b] - mx));
                    for (int k = 0; k < d; k++) {
                        double acc = 0;
                        for (int b = 0; b < n; b++) acc += att[b] / sum * qkv[b * 3 * C + 2 * C + h * d + k];
                        o[a * C + h * d + k] = acc;
                    }
                }
            for (int t = 0; t < n; t++)
                naive_linear(o + t * C, C, pw, pb, C, outmap + ((size_t)(wy * ws + t / ws) * Wp + wx * ws + t % ws) * C);
        }
    /* roll back by +shift, crop, residual */
    for (int y = 0; y < H; y++)
        for (int xx = 0; xx < W; xx++) {
            const double *src = outmap + ((size_t)((y - shift + Hp) % Hp) * Wp + (xx - shift + Wp) % Wp) * C;
            for (int c = 0; c < C; c++) x[((size_t)y * W + xx) * C + c] += src[c];
        }
    double *hbuf = malloc(sizeof(double) * hid), *tmp = malloc(sizeof(double) * C);
    memcpy(xn, x, sizeof(double) * H * W * C);
    naive_ln(xn, (int64_t)H * W, C, n2w, n2b);
    for (int64_t t = 0; t < (int64_t)H * W; t++) {
        naive_linear(xn + t * C, C, f1w, f1b, hid, hbuf);
        for (int k = 0; k < hid; k++) hbuf[k] = 0.5 * hbuf[k] * (1.0 + erf(hbuf[k] / sqrt(2.0)));
        naive_linear(hbuf, hid, f2w, f2b, C, tmp);
        for (int c = 0; c < C; c++) x[t * C + c] += tmp[c];
    }
    free(region), free(xn), free(pad), free(rolled), free(outmap), free(qkv), free(o), free(att), free(hbuf), free(tmp);
}

/* Compares swin_forward with the literal port; returns the max abs error over all outputs. */
static double compare_with_naive(const swin_config *c, int H, int W)
{
    saa_weights *w = random_swin(c);
    float *img = malloc(sizeof(float) * 3 * H * W);
    for (int i = 0; i < 3 * H * W; i++) img[i] = 2.0f * rnd();
    swin_model *m = NULL;
    swin_features f = {0};
    double worst = INFINITY;
    if (swin_load(w, "b.", c, &m) != SAA_OK || swin_forward(m, img, H, W, &f) != SAA_OK) {
        fprintf(stderr, "swin: %s\n", saa_last_error());
        goto done;
    }
    worst = 0;
    int ps = c->patch_size, E = c->embed_dim, h = (H + ps - 1) / ps, wd = (W + ps - 1) / ps, lvl = 0;
    double *x = malloc(sizeof(double) * h * wd * E);
    const float *pw = wget(w, "b.patch_embed.proj.weight", 0, 0), *pb = wget(w, "b.patch_embed.proj.bias", 0, 0);
    for (int py = 0; py < h; py++)
        for (int px = 0; px < wd; px++)
            for (int e = 0; e < E; e++) {
                double acc = pb[e];
                for (int ci = 0; ci < 3; ci++)
                    for (int ky = 0; ky < ps; ky++)
                        for (int kx = 0; kx < ps; kx++) {
                            int iy = py * ps + ky, ix = px * ps + kx;
                            if (iy < H && ix < W)
                                acc += (double)pw[((e * 3 + ci) * ps + ky) * ps + kx] * img[(ci * H + iy) * W + ix];
                        }
                x[((size_t)py * wd + px) * E + e] = acc;
            }
    naive_ln(x, (int64_t)h * wd, E, wget(w, "b.patch_embed.norm.weight", 0, 0), wget(w, "b.patch_embed.norm.bias", 0, 0));
    for (int s = 0; s < c->num_stages; s++) {
        int C = E << s;
        for (int i = 0; i < c->depths[s]; i++)
            naive_block(w, s, i, x, h, wd, C, c->num_heads[s], c->window_size, i % 2 ? c->window_size / 2 : 0,
                        (int)(C * c->mlp_ratio));
        int is_out = 0;
        for (int k = 0; k < c->num_out; k++) is_out |= c->out_indices[k] == s;
        if (is_out) {
            double *y = malloc(sizeof(double) * h * wd * C);
            memcpy(y, x, sizeof(double) * h * wd * C);
            naive_ln(y, (int64_t)h * wd, C, wget(w, "b.norm%d.weight", s, 0), wget(w, "b.norm%d.bias", s, 0));
            CHECK(lvl < f.num_levels && f.C[lvl] == C && f.H[lvl] == h && f.W[lvl] == wd);
            if (lvl < f.num_levels && f.C[lvl] == C && f.H[lvl] == h && f.W[lvl] == wd)
                for (int t = 0; t < h * wd; t++)
                    for (int ch = 0; ch < C; ch++) {
                        double e = fabs(y[(size_t)t * C + ch] - f.data[lvl][(size_t)ch * h * wd + t]);
                        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
                    }
            lvl++;
            free(y);
        }
        if (s < c->num_stages - 1) { /* PatchMerging */
            int h2 = (h + 1) / 2, w2 = (wd + 1) / 2;
            double *m4 = calloc((size_t)h2 * w2 * 4 * C, sizeof(double)), *x2 = malloc(sizeof(double) * h2 * w2 * 2 * C);
            static const int dy[4] = {0, 1, 0, 1}, dx[4] = {0, 0, 1, 1};
            for (int y = 0; y < h2; y++)
                for (int xx = 0; xx < w2; xx++)
                    for (int q = 0; q < 4; q++)
                        if (2 * y + dy[q] < h && 2 * xx + dx[q] < wd)
                            memcpy(m4 + ((size_t)y * w2 + xx) * 4 * C + q * C,
                                   x + ((size_t)(2 * y + dy[q]) * wd + 2 * xx + dx[q]) * C, sizeof(double) * C);
            naive_ln(m4, (int64_t)h2 * w2, 4 * C, wget(w, "b.layers.%d.downsample.norm.weight", s, 0),
                     wget(w, "b.layers.%d.downsample.norm.bias", s, 0));
            for (int t = 0; t < h2 * w2; t++)
                naive_linear(m4 + (size_t)t * 4 * C, 4 * C, wget(w, "b.layers.%d.downsample.reduction.weight", s, 0), NULL,
                             2 * C, x2 + (size_t)t * 2 * C);
            free(m4);
            free(x);
            x = x2;
            h = h2;
            wd = w2;
        }
    }
    CHECK(lvl == f.num_levels);
    free(x);
done:
    swin_features_free(&f);
    swin_free(m);
    saa_weights_close(w);
    free(img);
    return worst;
}

static void test_forward_vs_literal_port(void)
{
    swin_config c;
    /* window 3 (shift 1), odd patch grid (23x35 -> 6x9 tokens: patch padding, window padding, odd merging),
     * stage 2 smaller than a window, every stage an output */
    cJSON *j = cJSON_Parse("{\"embed_dim\": 6, \"depths\": [2, 3, 2], \"num_heads\": [2, 3, 4], \"window_size\": 3, "
                           "\"mlp_ratio\": 2.5, \"out_indices\": [0, 1, 2]}");
    CHECK(swin_config_from_json(j, &c) == SAA_OK);
    cJSON_Delete(j);
    double e = compare_with_naive(&c, 23, 35);
    printf("swin vs literal port (window 3): max abs error %.3g\n", e);
    CHECK(e < 2e-4);
    /* window 5 (shift 2), outputs 1..2 only, a taller image and more windows than threads x tasks */
    j = cJSON_Parse("{\"embed_dim\": 4, \"depths\": [2, 2, 2], \"num_heads\": [1, 2, 2], \"window_size\": 5, "
                    "\"out_indices\": [1, 2]}");
    CHECK(swin_config_from_json(j, &c) == SAA_OK);
    cJSON_Delete(j);
    e = compare_with_naive(&c, 130, 61);
    printf("swin vs literal port (window 5): max abs error %.3g\n", e);
    CHECK(e < 2e-4);
}

static void test_stored_index_checked(void)
{
    swin_config c;
    cJSON *j = cJSON_Parse("{\"embed_dim\": 4, \"depths\": [1], \"num_heads\": [2], \"window_size\": 3, "
                           "\"out_indices\": [0]}");
    CHECK(swin_config_from_json(j, &c) == SAA_OK);
    cJSON_Delete(j);
    saa_weights *w = random_swin(&c);
    /* a stored relative_position_index equal to the official one is accepted; a wrong one is refused */
    saa_tensor *idx = saa_tensor_new(SAA_I64, 2, (int64_t[]){9, 9});
    swin_relative_position_index(3, idx->data);
    saa_weights_add(w, "b.layers.0.blocks.0.attn.relative_position_index", idx);
    swin_model *m = NULL;
    CHECK(swin_load(w, "b.", &c, &m) == SAA_OK);
    swin_free(m);
    saa_weights_close(w);
    m = NULL;
    w = random_swin(&c);
    idx = saa_tensor_new(SAA_I64, 2, (int64_t[]){9, 9});
    swin_relative_position_index(3, idx->data);
    ((int64_t *)idx->data)[5] += 1;
    saa_weights_add(w, "b.layers.0.blocks.0.attn.relative_position_index", idx);
    CHECK(swin_load(w, "b.", &c, &m) != SAA_OK);
    CHECK(m == NULL);
    saa_weights_close(w);
}

/* The gdino_tiny image stage: image.resized_u8, image.tensor, backbone.level0..2 fed the stored
 * image.tensor, and backbone.level0..2 again end to end. */
static int test_golden(void)
{
    const char *dir = SAA_SHARED_DIR "/golden/gdino_tiny";
    if (!test_exists(dir)) {
        printf("skipping the golden image stage: %s not found\n", dir);
        return 0;
    }
    golden *g = NULL;
    int rc = golden_open(dir, stdout, &g);
    CHECK(rc == SAA_OK);
    if (rc != SAA_OK) {
        fprintf(stderr, "%s\n", saa_last_error());
        return 1;
    }
    rc = golden_gdino_image_stage(g);
    if (rc != SAA_OK) fprintf(stderr, "%s\n", saa_last_error());
    CHECK(rc == SAA_OK);
    CHECK(g->failed == 0);
    CHECK(g->passed == 2 + 3 + 3);
    golden_close(g);
    return 1;
}

int main(void)
{
    saa_threads_init();
    test_relative_position_index();
    test_shift_mask();
    test_window_round_trip();
    test_target_size();
    test_normalisation();
    test_configs();
    test_forward_vs_literal_port();
    test_stored_index_checked();
    int ran_golden = test_golden();
    if (!ran_golden && test_failed == 0) {
        printf("%d passed, 0 failed (golden stage skipped)\n", test_passed);
        return 77;
    }
    TEST_MAIN_END();
}
