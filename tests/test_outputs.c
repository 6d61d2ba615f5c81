/* saa_write_outputs: every file written with the right size and values; a failure leaves nothing. */
#include <string.h>
#include <unistd.h>

#include "saa/image.h"
#include "saa/json.h"
#include "saa/npy.h"
#include "saa/saa.h"
#include "test.h"

int main(void)
{
    char dir[] = "/tmp/saa_outputs_XXXXXX";
    if (!mkdtemp(dir)) return 1;
    enum { W = 7, H = 5, S = 4 };
    double map[S * S], full[W * H];
    uint8_t rgb[W * H * 3];
    for (int i = 0; i < S * S; i++) map[i] = i * 0.1;
    for (int i = 0; i < W * H; i++) full[i] = (i % 3 == 0) ? 0.5 : 0.0;
    for (int i = 0; i < W * H * 3; i++) rgb[i] = (uint8_t)(i * 7);
    saa_region reg = {.pass = 1, .prompt = 3, .box = {1, 2, 3, 4}, .score = 0.5, .rescored = 0.75, .mask_area = 12,
                      .status = "fused"};
    strcpy(reg.phrase, "[CLS] crack. [SEP](0.50)");
    saa_result r = {.width = W, .height = H, .out_size = S, .n_regions = 1, .regions = &reg};
    r.map = map;
    r.map_full = full;
    CHECK(saa_write_outputs(dir, "img", rgb, &r, 0.25, 0, "in/img.png") == SAA_OK);

    char path[512];
    saa_tensor *t = NULL;
    snprintf(path, sizeof path, "%s/img_map.npy", dir);
    CHECK(saa_npy_load(path, &t) == SAA_OK);
    if (t) {
        CHECK(t->dtype == SAA_F32 && t->ndim == 2 && t->shape[0] == S && t->shape[1] == S);
        CHECK(((float *)t->data)[5] == 0.5f);
        saa_tensor_free(t);
    }
    snprintf(path, sizeof path, "%s/img_map_full.npy", dir);
    t = NULL;
    CHECK(saa_npy_load(path, &t) == SAA_OK);
    if (t) {
        CHECK(t->shape[0] == H && t->shape[1] == W && ((float *)t->data)[3] == 0.5f);
        saa_tensor_free(t);
    }
    int w16, h16;
    uint16_t *v16 = NULL;
    snprintf(path, sizeof path, "%s/img_map.png", dir);
    CHECK(saa_image_load_gray16(path, &w16, &h16, &v16) == SAA_OK);
    if (v16) {
        CHECK(w16 == S && h16 == S);
        CHECK(v16[10] == (uint16_t)lround(1.0 / SAA_MAP_PNG_SCALE * 65535)); /* map 1.0 */
        free(v16);
    }
    saa_image m;
    snprintf(path, sizeof path, "%s/img_mask.png", dir);
    CHECK(saa_image_load_gray(path, &m) == SAA_OK);
    if (m.data) {
        int on = 0;
        for (int i = 0; i < W * H; i++) on += m.data[i] == 255;
        CHECK(m.w == W && m.h == H && on == 12 && m.data[0] == 255 && m.data[1] == 0);
        saa_image_free(&m);
    }
    snprintf(path, sizeof path, "%s/img_overlay.png", dir);
    CHECK(saa_image_load(path, &m) == SAA_OK && m.w == W && m.h == H);
    saa_image_free(&m);
    snprintf(path, sizeof path, "%s/img.json", dir);
    cJSON *j = saa_json_load(path);
    CHECK(j != NULL);
    if (j) {
        CHECK(cJSON_GetObjectItem(j, "mask_pixels")->valuedouble == 12);
        cJSON *reg0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "regions"), 0);
        CHECK(reg0 && !strcmp(cJSON_GetObjectItem(reg0, "phrase")->valuestring, "[CLS] crack. [SEP](0.50)"));
        CHECK(reg0 && cJSON_GetObjectItem(reg0, "rescored")->valuedouble == 0.75);
        cJSON_Delete(j);
    }
    /* complete outputs: all six files, non-empty */
    CHECK(saa_outputs_complete(dir, "img") == 1);
    CHECK(saa_outputs_complete(dir, "other") == 0);
    /* the float64 map (saa eval): the exact double values; the other files as before */
    CHECK(saa_write_outputs(dir, "img64", rgb, &r, 0.25, 1, NULL) == SAA_OK);
    snprintf(path, sizeof path, "%s/img64_map.npy", dir);
    t = NULL;
    CHECK(saa_npy_load(path, &t) == SAA_OK);
    if (t) {
        CHECK(t->dtype == SAA_F64 && t->ndim == 2 && t->shape[0] == S && t->shape[1] == S);
        CHECK(memcmp(t->data, map, sizeof map) == 0);
        saa_tensor_free(t);
    }
    snprintf(path, sizeof path, "%s/img64_map_full.npy", dir);
    t = NULL;
    CHECK(saa_npy_load(path, &t) == SAA_OK && t->dtype == SAA_F32);
    saa_tensor_free(t);
    CHECK(saa_outputs_complete(dir, "img64") == 1);
    for (int k = 0; k < SAA_N_OUTPUTS; k++) { /* each missing or empty file makes the set incomplete */
        char moved[600];
        snprintf(path, sizeof path, "%s/img64%s", dir, saa_output_suffixes[k]);
        snprintf(moved, sizeof moved, "%s.away", path);
        CHECK(rename(path, moved) == 0);
        CHECK(saa_outputs_complete(dir, "img64") == 0);
        FILE *f = fopen(path, "w");
        if (f) fclose(f);
        CHECK(saa_outputs_complete(dir, "img64") == 0);
        CHECK(rename(moved, path) == 0);
    }
    CHECK(saa_outputs_complete(dir, "img64") == 1);
    /* the output folder is a file: clear error, nothing written */
    snprintf(path, sizeof path, "%s/img.json", dir);
    CHECK(saa_write_outputs(path, "x", rgb, &r, 0.25, 0, NULL) != SAA_OK);
    CHECK(strstr(saa_last_error(), "img.json") != NULL);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    TEST_MAIN_END();
}
