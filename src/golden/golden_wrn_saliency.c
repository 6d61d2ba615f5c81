/* check-golden kind "wrn_saliency": ModelINet features and the SAA+ saliency maps, stage by stage
 * (each stage fed the stored output of the previous one where the folder stores it whole: the
 * cv2-resized images), then the whole saa_wrn_saliency end to end from the image and masks. */
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "saa/image.h"
#include "saa/wrn.h"

static int check_u8(golden *g, const char *name, const uint8_t *data, int ndim, const int64_t *shape)
{
    saa_tensor *t = saa_tensor_wrap(SAA_U8, ndim, shape, (void *)data);
    if (!t) return golden_report(g, name, 0, "%s", saa_last_error());
    int r = golden_check(g, name, t);
    saa_tensor_free(t);
    return r;
}

static int check_f64(golden *g, const char *name, const double *data, int ndim, const int64_t *shape)
{
    saa_tensor *t = saa_tensor_wrap(SAA_F64, ndim, shape, (void *)data);
    if (!t) return golden_report(g, name, 0, "%s", saa_last_error());
    int r = golden_check(g, name, t);
    saa_tensor_free(t);
    return r;
}

/* The stored uint8 tensor `name` if it has n elements, else NULL (reported). */
static const uint8_t *stored_u8(golden *g, const char *name, int64_t n)
{
    const saa_tensor *t = golden_ref(g, name);
    if (!t || t->dtype != SAA_U8 || saa_tensor_numel(t) != n) {
        fprintf(g->out, "# %s: stored tensor missing or not %lld uint8 values; using the computed one\n", name,
                (long long)n);
        return NULL;
    }
    return t->data;
}

/* Checks layer1..3 and the fused features of one path ("single"/"multi"). */
static void check_features(golden *g, const char *path, const saa_wrn_features *f)
{
    char name[96];
    for (int l = 0; l < 3; l++) {
        snprintf(name, sizeof name, "%s.layer%d", path, l + 1);
        golden_check_f32(g, name, f->layer[l], 4, (int64_t[]){1, f->C[l], f->H[l], f->W[l]});
    }
    int64_t hw = f->H[0] * f->W[0], C = f->fused_C;
    float *pm = malloc(sizeof(float) * (size_t)(hw * C)), *chw = malloc(sizeof(float) * (size_t)(hw * C));
    if (!pm || !chw) {
        golden_report(g, path, 0, "out of memory for the fused features");
        free(pm);
        free(chw);
        return;
    }
    saa_wrn_fused_gather(f, NULL, 0, hw, pm);
    for (int64_t p = 0; p < hw; p++)
        for (int64_t c = 0; c < C; c++) chw[c * hw + p] = pm[p * C + c];
    free(pm);
    int64_t shape[4] = {1, C, f->H[0], f->W[0]};
    /* every stored tensor "<path>.fused*" (whole or sampled) is a view of the same full result */
    for (int i = 0; i < saa_weights_count(g->ref); i++) {
        const char *n = saa_weights_name(g->ref, i);
        size_t pl = strlen(path);
        if (!strncmp(n, path, pl) && !strncmp(n + pl, ".fused", 6)) golden_check_f32(g, n, chw, 4, shape);
    }
    free(chw);
}

/* Runs ModelINet (preprocess + backbone) on a resized image; checks <path>.input and the features. */
static int run_modelinet(golden *g, const saa_wrn *m, const char *path, const uint8_t *img, int size, int img_size,
                         saa_wrn_features *f, double ratio_hw[2])
{
    float *x = malloc(sizeof(float) * 3 * (size_t)img_size * img_size);
    if (!x) return saa_set_error(SAA_ENOMEM, "out of memory");
    int rc = saa_wrn_preprocess(img, size, size, img_size, x, ratio_hw);
    char name[96];
    snprintf(name, sizeof name, "%s.input", path);
    if (rc == SAA_OK) golden_check_f32(g, name, x, 4, (int64_t[]){1, 3, img_size, img_size});
    if (rc == SAA_OK) rc = saa_wrn_features_compute(m, x, img_size, img_size, f);
    free(x);
    if (rc == SAA_OK) check_features(g, path, f);
    return rc;
}

static int single_path(golden *g, const saa_wrn *m, const uint8_t *bgr, int W, int H)
{
    int size = (int)golden_cfg_num(g, "run.single.resize_to", 256);
    int img_size = (int)golden_cfg_num(g, "run.single.modelinet_img_size", 256);
    int top_n = (int)golden_cfg_num(g, "run.single.top_n", 400);
    uint8_t *resized = malloc((size_t)size * size * 3);
    if (!resized) return saa_set_error(SAA_ENOMEM, "out of memory");
    int rc = saa_resize_cv_u8(bgr, W, H, 3, resized, size, size, SAA_CV_INTER_LINEAR);
    if (rc != SAA_OK) {
        free(resized);
        return rc;
    }
    check_u8(g, "single.resized_256", resized, 3, (int64_t[]){size, size, 3});
    const uint8_t *fed = stored_u8(g, "single.resized_256", (int64_t)size * size * 3);
    double ratio[2];
    saa_wrn_features f;
    rc = run_modelinet(g, m, "single", fed ? fed : resized, size, img_size, &f, ratio);
    free(resized);
    if (rc != SAA_OK) return rc;
    check_f64(g, "single.ratio_hw", ratio, 1, (int64_t[]){2});
    int64_t hw = f.H[0] * f.W[0];
    /* the full self-similarity only for the sampled check; the heat map never materialises it */
    float *S = malloc(sizeof(float) * (size_t)(hw * hw));
    if (S && saa_wrn_self_similarity_rows(&f, 0, hw, S) == SAA_OK)
        golden_check_f32(g, "single.self_sim", S, 2, (int64_t[]){hw, hw});
    else
        golden_report(g, "single.self_sim", 0, "%s", saa_last_error());
    free(S);
    float *heat = malloc(sizeof(float) * (size_t)hw), *sal = malloc(sizeof(float) * (size_t)W * H);
    if (!heat || !sal) rc = saa_set_error(SAA_ENOMEM, "out of memory");
    if (rc == SAA_OK) rc = saa_wrn_single_heat(&f, top_n, heat);
    if (rc == SAA_OK) {
        golden_check_f32(g, "single.heat", heat, 2, (int64_t[]){f.H[0], f.W[0]});
        rc = saa_resize_cv_f32(heat, (int)f.W[0], (int)f.H[0], 1, sal, W, H, SAA_CV_INTER_LINEAR);
        if (rc == SAA_OK) golden_check_f32(g, "single.saliency", sal, 2, (int64_t[]){H, W});
    }
    free(heat);
    free(sal);
    saa_wrn_features_free(&f);
    return rc;
}

static int multi_path(golden *g, const saa_wrn *m, const uint8_t *bgr, int W, int H, const uint8_t *masks, int n)
{
    int size = (int)golden_cfg_num(g, "run.multi.resize_to", 1024);
    int img_size = (int)golden_cfg_num(g, "run.multi.modelinet_img_size", 1024);
    uint8_t *resized = malloc((size_t)size * size * 3);
    if (!resized) return saa_set_error(SAA_ENOMEM, "out of memory");
    int rc = saa_resize_cv_u8(bgr, W, H, 3, resized, size, size, SAA_CV_INTER_LINEAR);
    if (rc != SAA_OK) {
        free(resized);
        return rc;
    }
    check_u8(g, "multi.resized_1024", resized, 3, (int64_t[]){size, size, 3});
    const uint8_t *fed = stored_u8(g, "multi.resized_1024", (int64_t)size * size * 3);
    saa_wrn_features f;
    rc = run_modelinet(g, m, "multi", fed ? fed : resized, size, img_size, &f, NULL);
    free(resized);
    if (rc != SAA_OK) return rc;
    int64_t fh = f.H[0], fw = f.W[0], hw = fh * fw;
    uint8_t *small = malloc((size_t)(n * hw)), *bin = malloc((size_t)W * H);
    double *scores = malloc(sizeof(double) * (size_t)(n * hw)), *map = malloc(sizeof(double) * (size_t)hw),
           *sal = malloc(sizeof(double) * (size_t)W * H);
    if (!small || !bin || !scores || !map || !sal) rc = saa_set_error(SAA_ENOMEM, "out of memory");
    /* cv2.resize(mask, feature_size) with feature_size = (H, W) where OpenCV reads (W, H) */
    for (int i = 0; rc == SAA_OK && i < n; i++) {
        for (int64_t p = 0; p < (int64_t)W * H; p++) bin[p] = masks[(int64_t)i * W * H + p] != 0;
        rc = saa_resize_cv_u8(bin, W, H, 1, small + i * hw, (int)fh, (int)fw, SAA_CV_INTER_NEAREST);
    }
    if (rc == SAA_OK) {
        check_u8(g, "multi.resized_masks", small, 3, (int64_t[]){n, fw, fh});
        rc = saa_wrn_multi_map(&f, small, n, scores, map);
    }
    if (rc == SAA_OK) {
        check_f64(g, "multi.object_scores", scores, 3, (int64_t[]){n, fh, fw});
        check_f64(g, "multi.max_map", map, 2, (int64_t[]){fh, fw});
        rc = saa_resize_cv_f64(map, (int)fw, (int)fh, 1, sal, W, H, SAA_CV_INTER_LINEAR);
        if (rc == SAA_OK) check_f64(g, "multi.saliency", sal, 2, (int64_t[]){H, W});
    }
    free(small);
    free(bin);
    free(scores);
    free(map);
    free(sal);
    saa_wrn_features_free(&f);
    return rc;
}

/* Loads the model from one weight file (named in config "weights"). */
static int load_model(golden *g, const char *key, saa_wrn **m)
{
    *m = NULL;
    char cfg[64];
    snprintf(cfg, sizeof cfg, "weights.%s", key);
    char *path = golden_path(g, golden_cfg_str(g, cfg));
    if (!path) return saa_set_error(SAA_EFORMAT, "%s/config.json: no \"%s\"", g->dir, cfg);
    saa_weights *w;
    int rc = saa_weights_open(path, &w);
    free(path);
    if (rc != SAA_OK) return rc;
    rc = saa_wrn_load(w, "", m);
    saa_weights_close(w);
    return rc;
}

int golden_kind_wrn_saliency(golden *g)
{
    char *img_path = golden_path(g, golden_cfg_str(g, "inputs.image"));
    if (!img_path) return saa_set_error(SAA_EFORMAT, "%s/config.json: no inputs.image", g->dir);
    saa_image img;
    int rc = saa_image_load(img_path, &img);
    free(img_path);
    if (rc != SAA_OK) return rc;
    saa_image_swap_rb(&img); /* cv2.imread hands SAA+ BGR */
    int W = img.w, H = img.h;
    check_u8(g, "input.image_bgr", img.data, 3, (int64_t[]){H, W, 3});

    cJSON *mask_files = golden_cfg(g, "inputs.object_masks");
    int n = cJSON_GetArraySize(mask_files);
    uint8_t *masks = calloc((size_t)(n ? n : 1) * W * H, 1);
    if (!masks) rc = saa_set_error(SAA_ENOMEM, "out of memory");
    for (int i = 0; rc == SAA_OK && i < n; i++) {
        cJSON *it = cJSON_GetArrayItem(mask_files, i);
        char *mp = golden_path(g, cJSON_IsString(it) ? it->valuestring : NULL);
        saa_image mk;
        rc = mp ? saa_image_load_gray(mp, &mk) : saa_set_error(SAA_EFORMAT, "%s: bad inputs.object_masks", g->dir);
        free(mp);
        if (rc != SAA_OK) break;
        if (mk.w != W || mk.h != H) {
            rc = saa_set_error(SAA_ESHAPE, "%s: object mask %d is %dx%d, the image %dx%d", g->dir, i, mk.w, mk.h, W, H);
        } else {
            for (int64_t p = 0; p < (int64_t)W * H; p++) masks[i * (int64_t)W * H + p] = mk.data[p] > 127;
        }
        saa_image_free(&mk);
    }
    saa_wrn *m = NULL, *m_st = NULL;
    if (rc == SAA_OK) {
        check_u8(g, "input.object_masks", masks, 3, (int64_t[]){n, H, W});
        rc = load_model(g, golden_cfg_str(g, "weights.pth") ? "pth" : "safetensors", &m); /* either file may stand alone */
    }
    if (rc == SAA_OK) rc = single_path(g, m, img.data, W, H);
    if (rc == SAA_OK) rc = multi_path(g, m, img.data, W, H, masks, n);
    /* end to end through the public entry point, and with the safetensors copy of the weights */
    if (rc == SAA_OK && golden_cfg_str(g, "weights.safetensors")) {
        rc = load_model(g, "safetensors", &m_st);
        if (rc == SAA_OK) fprintf(g->out, "# end to end: saa_wrn_saliency with %s\n", golden_cfg_str(g, "weights.safetensors"));
    } else if (rc == SAA_OK) {
        fprintf(g->out, "# end to end: saa_wrn_saliency with %s\n", golden_cfg_str(g, "weights.pth"));
    }
    double *out = rc == SAA_OK ? malloc(sizeof(double) * (size_t)W * H) : NULL;
    if (rc == SAA_OK && !out) rc = saa_set_error(SAA_ENOMEM, "out of memory");
    const saa_wrn *e2e = m_st ? m_st : m;
    int is_f32 = -1;
    if (rc == SAA_OK && (rc = saa_wrn_saliency(e2e, img.data, W, H, masks, n, 1, out, &is_f32)) == SAA_OK) {
        float *f32 = malloc(sizeof(float) * (size_t)W * H);
        for (int64_t p = 0; f32 && p < (int64_t)W * H; p++) f32[p] = (float)out[p];
        if (f32 && is_f32 == 1) golden_check_f32(g, "single.saliency", f32, 2, (int64_t[]){H, W});
        else golden_report(g, "single.saliency", 0, "end to end: float32 flag %d", is_f32);
        free(f32);
    }
    if (rc == SAA_OK && (rc = saa_wrn_saliency(e2e, img.data, W, H, masks, n, n, out, &is_f32)) == SAA_OK) {
        if (is_f32 == 0) check_f64(g, "multi.saliency", out, 2, (int64_t[]){H, W});
        else golden_report(g, "multi.saliency", 0, "end to end: float32 flag %d", is_f32);
    }
    free(out);
    saa_wrn_free(m);
    saa_wrn_free(m_st);
    free(masks);
    saa_image_free(&img);
    return rc;
}
