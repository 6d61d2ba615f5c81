/* check-golden, kind "gdino": the image stage.
 * image.png -> SAA+ preprocessing (resize with config preprocess.resize_size / resize_max_size, ToTensor,
 * Normalize) checked against image.resized_u8 (exact) and image.tensor; then the Swin backbone of
 * weights.pth (prefix "backbone.0.", config "swin_config") fed the STORED image.tensor, checked against
 * backbone.level0..; then once more end to end from the computed image.tensor. */
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "models/swin.h"
#include "saa/image.h"

static void check_levels(golden *g, const swin_features *f)
{
    for (int l = 0; l < f->num_levels; l++) {
        char name[64];
        snprintf(name, sizeof name, "backbone.level%d", l);
        golden_check_f32(g, name, f->data[l], 4, (int64_t[]){1, f->C[l], f->H[l], f->W[l]});
    }
}

int golden_gdino_image_stage(golden *g)
{
    int rc = SAA_OK;
    saa_image img = {0};
    uint8_t *resized = NULL;
    float *tensor = NULL;
    saa_weights *w = NULL;
    swin_model *swin = NULL;
    swin_features feats = {0};
    char *image_path = golden_path(g, golden_cfg_str(g, "inputs.image"));
    char *weights_path = golden_path(g, golden_cfg_str(g, "weights"));
    int size = (int)golden_cfg_num(g, "preprocess.resize_size", 0);
    int max_size = (int)golden_cfg_num(g, "preprocess.resize_max_size", 0);
    if (!image_path || !weights_path || size <= 0) {
        rc = saa_set_error(SAA_EFORMAT, "%s/config.json: expected inputs.image, weights and preprocess.resize_size",
                           g->dir);
        goto done;
    }

    /* preprocessing: the detector gets the RGB image */
    rc = saa_image_load(image_path, &img);
    if (rc != SAA_OK) goto done;
    int oh = 0, ow = 0;
    rc = gdino_image_preprocess(&img, size, max_size, &resized, &tensor, &oh, &ow);
    if (rc != SAA_OK) goto done;
    {
        saa_tensor *t = saa_tensor_wrap(SAA_U8, 3, (int64_t[]){oh, ow, 3}, resized);
        if (!t) {
            rc = SAA_ENOMEM;
            goto done;
        }
        golden_check(g, "image.resized_u8", t);
        saa_tensor_free(t);
    }
    golden_check_f32(g, "image.tensor", tensor, 4, (int64_t[]){1, 3, oh, ow});

    /* backbone */
    swin_config cfg;
    rc = swin_config_from_json(golden_cfg(g, "swin_config"), &cfg);
    if (rc != SAA_OK) goto done;
    rc = saa_weights_open(weights_path, &w);
    if (rc != SAA_OK) goto done;
    rc = swin_load(w, "backbone.0.", &cfg, &swin);
    if (rc != SAA_OK) goto done;

    const saa_tensor *stored = golden_ref(g, "image.tensor");
    if (!stored || stored->ndim != 4 || stored->shape[0] != 1 || stored->shape[1] != 3) {
        rc = saa_set_error(SAA_EFORMAT, "%s: expected a stored image.tensor [1, 3, H, W]", g->dir);
        goto done;
    }
    int sh = (int)stored->shape[2], sw = (int)stored->shape[3];
    const float *stored_f32 = golden_ref_f32(g, "image.tensor", (int64_t)3 * sh * sw);
    if (!stored_f32) {
        rc = SAA_EFORMAT;
        goto done;
    }
    rc = swin_forward(swin, stored_f32, sh, sw, &feats);
    if (rc != SAA_OK) goto done;
    check_levels(g, &feats);
    swin_features_free(&feats);

    /* end to end: the backbone on the computed image.tensor */
    fprintf(g->out, "# backbone end to end from the computed image.tensor:\n");
    rc = swin_forward(swin, tensor, oh, ow, &feats);
    if (rc != SAA_OK) goto done;
    check_levels(g, &feats);

done:
    swin_features_free(&feats);
    swin_free(swin);
    saa_weights_close(w);
    saa_image_free(&img);
    free(resized);
    free(tensor);
    free(image_path);
    free(weights_path);
    return rc;
}
