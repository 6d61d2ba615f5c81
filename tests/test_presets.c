/* Presets and property prompts: values hand-checked against the official SAA+ prompt files and the
 * saa_e2e golden README (img0 bottle, img1 macaroni1). */
#include <string.h>
#include <unistd.h>

#include "saa/saa.h"
#include "test.h"

static const char *dir = SAA_SOURCE_DIR "/presets";

static void test_property_parse(void)
{
    saa_category c = {0};
    const char *bottle = "the image of bottle have 1 dissimilar bottle, with a maximum of 5 anomaly. The anomaly "
                         "would not exceed 0.3 object area. ";
    CHECK(saa_property_parse(bottle, 0, &c) == SAA_OK);
    CHECK(c.object_prompt && !strcmp(c.object_prompt, "bottle,")); /* official: word 7 keeps the comma */
    CHECK(c.object_count == 1 && c.top_k == 5);
    CHECK(c.max_area_ratio == 0.3);
    CHECK(saa_property_parse(bottle, 1, &c) == SAA_OK);
    CHECK(!strcmp(c.object_prompt, "bottle"));
    /* "1." parses as Python float('1.') */
    CHECK(saa_property_parse("the image of pill have 1 dissimilar pill, with a maximum of 5 anomaly. The anomaly "
                             "would not exceed 1. object area. ",
                             0, &c) == SAA_OK);
    CHECK(c.max_area_ratio == 1.0);
    /* a double space shifts Python's split(' ') words: the official parse then fails, the fixed one works */
    const char *spaced = "the image of  bottle have 2 similar bottle, with a maximum of 5 anomaly. The anomaly would "
                         "not exceed 0.3 object area.";
    CHECK(saa_property_parse(spaced, 0, &c) != SAA_OK);
    CHECK(strstr(saa_last_error(), "word 6") != NULL);
    CHECK(saa_property_parse(spaced, 1, &c) == SAA_OK); /* whitespace runs split as one */
    CHECK(!strcmp(c.object_prompt, "bottle") && c.object_count == 2);
    CHECK(saa_property_parse("too short", 0, &c) != SAA_OK);
    CHECK(strstr(saa_last_error(), "2 words") != NULL);
    saa_category_free(&c);
}

static void test_presets(void)
{
    saa_category c;
    CHECK(saa_category_load(dir, "bottle", 0, &c) == SAA_OK);
    CHECK(c.n_prompts == 4);
    if (c.n_prompts == 4) {
        CHECK(!strcmp(c.defect_prompts[0], "defect on bottle") && !strcmp(c.filter_phrases[0], "bottle"));
        CHECK(!strcmp(c.defect_prompts[1], "damage on bottle"));
        CHECK(!strcmp(c.defect_prompts[2], "flaw on bottle"));
        CHECK(!strcmp(c.defect_prompts[3], "broken part. contamination. white broken."));
    }
    CHECK(c.object_count == 1 && c.top_k == 5 && c.max_area_ratio == 0.3);
    saa_category_free(&c);

    CHECK(saa_category_load(dir, "visa/macaroni1", 0, &c) == SAA_OK);
    CHECK(c.object_prompt && !strcmp(c.object_prompt, "macaroni,"));
    CHECK(c.object_count == 4 && c.top_k == 5 && c.max_area_ratio == 0.3);
    CHECK(c.n_prompts == 4 && !strcmp(c.filter_phrases[3], "macaroni") && !strcmp(c.filter_phrases[0], "macaroni1"));
    CHECK(c.n_prompts == 4 &&
          !strcmp(c.defect_prompts[3], "broken part. red defect. black defect. crack. hole. scratch. color crack."));
    saa_category_free(&c);

    /* every built-in category loads: 15 MVTec + 12 VisA + KSDD2 + MTD */
    const char *all[] = {"carpet", "grid", "leather", "tile", "wood", "bottle", "cable", "capsule", "hazelnut",
                         "metal_nut", "pill", "screw", "toothbrush", "transistor", "zipper", "candle", "capsules",
                         "cashew", "chewinggum", "fryum", "macaroni1", "macaroni2", "pcb1", "pcb2", "pcb3", "pcb4",
                         "pipe_fryum", "ksdd2", "mtd"};
    int ok = 0;
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (saa_category_load(dir, all[i], 0, &c) == SAA_OK && c.n_prompts >= 4 && c.top_k > 0) ok++;
        else fprintf(stderr, "category %s: %s\n", all[i], saa_last_error());
        saa_category_free(&c);
    }
    CHECK(ok == 29);
    CHECK(saa_category_load(dir, "mtd", 0, &c) == SAA_OK);
    CHECK(c.object_prompt && !strcmp(c.object_prompt, "mtd,") && c.object_count == 1 && c.max_area_ratio == 0.9);
    saa_category_free(&c);

    CHECK(saa_category_load(dir, "bottel", 0, &c) == SAA_EINVAL);
    CHECK(strstr(saa_last_error(), "unknown category 'bottel'") && strstr(saa_last_error(), "mvtec/bottle") &&
          strstr(saa_last_error(), "visa/pcb4"));
    CHECK(saa_category_load(dir, "visa/bottle", 0, &c) == SAA_EINVAL);
}

static void test_user_file(void)
{
    char path[] = "/tmp/saa_presets_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return;
    const char *text = "{\"categories\": {\"widget\": {\"object\": \"widget\", \"count\": 2, \"top_k\": 3, "
                       "\"max_area\": 0.25, \"defect_prompts\": [[\"scratch. dent.\", \"widget\"]]}}}";
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    saa_category c;
    CHECK(saa_category_load_file(path, dir, NULL, 0, &c) == SAA_OK);
    CHECK(c.n_prompts == 4 && !strcmp(c.defect_prompts[0], "defect on widget") &&
          !strcmp(c.defect_prompts[3], "scratch. dent."));
    CHECK(c.object_count == 2 && c.top_k == 3 && c.max_area_ratio == 0.25);
    saa_category_free(&c);
    CHECK(saa_category_load_file(path, dir, "gizmo", 0, &c) == SAA_EINVAL);
    unlink(path);
    CHECK(saa_category_load_file(path, dir, NULL, 0, &c) == SAA_EIO);
    CHECK(strstr(saa_last_error(), path) != NULL);
}

static void test_fixes(void)
{
    unsigned f;
    CHECK(saa_fix_parse("rgb,fusion", &f) == SAA_OK && f == (SAA_FIX_RGB | SAA_FIX_FUSION));
    CHECK(saa_fix_parse("none", &f) == SAA_OK && f == 0);
    CHECK(saa_fix_parse("all", &f) == SAA_OK && (f & SAA_FIX_CLIP) && (f & SAA_FIX_PHRASE));
    CHECK(saa_fix_parse("rgb,colour", &f) == SAA_EINVAL && strstr(saa_last_error(), "'colour'"));
}

int main(void)
{
    test_property_parse();
    test_presets();
    test_user_file();
    test_fixes();
    TEST_MAIN_END();
}
