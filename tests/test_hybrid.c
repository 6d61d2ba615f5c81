/* Hybrid-prompt arithmetic against hand-computed values (SAA/model.py semantics). */
#include <string.h>

#include "saa/saa.h"
#include "test.h"

static void test_boxes(void)
{
    /* cx,cy,w,h = 0.5,0.25,0.2,0.5 on 200x100: x 100+-20, y 25+-25 */
    float in[8] = {0.5f, 0.25f, 0.2f, 0.5f, 0.95f, 0.5f, 0.3f, 1.2f}, out[8];
    saa_boxes_to_pixels(in, 2, 200, 100, 0, out);
    CHECK_NEAR(out[0], 80, 1e-5);
    CHECK_NEAR(out[1], 0, 1e-5);
    CHECK_NEAR(out[2], 120, 1e-5);
    CHECK_NEAR(out[3], 50, 1e-5);
    CHECK_NEAR(out[4], 160, 1e-4); /* 190 - 30: unclipped past the right edge */
    CHECK_NEAR(out[6], 220, 1e-4);
    CHECK_NEAR(out[5], -10, 1e-4);
    CHECK_NEAR(out[7], 110, 1e-4);
    saa_boxes_to_pixels(in, 2, 200, 100, 1, out);
    CHECK(out[6] == 200.0f && out[5] == 0.0f && out[7] == 100.0f);
}

static void test_rescore(void)
{
    /* 2 masks over 4 pixels; saliency 0.1 0.2 0.3 0.4 */
    uint8_t masks[12] = {1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    double sal[4] = {0.1, 0.2, 0.3, 0.4}, scores[3] = {0.5, 0.7, 0.9}, out[3];
    saa_rescore(masks, 3, 4, scores, sal, 0, out);
    CHECK_NEAR(out[0], 0.5 * exp(3 * 0.15), 1e-12);
    CHECK_NEAR(out[1], 0.7, 0);            /* empty mask: factor 1 */
    CHECK_NEAR(out[2], 0.9 * exp(1.2), 1e-12);
    saa_rescore(masks, 3, 4, scores, sal, 1, out);
    CHECK_NEAR(out[0], 0.5 * exp(3 * 0.15), 1e-7); /* float32 factor */
    CHECK(out[0] != 0.5 * exp(3 * 0.15));
}

static void test_topk_fuse(void)
{
    double s[5] = {0.3, 0.9, 0.1, 0.9, 0.5};
    int idx[5];
    CHECK(saa_topk_ascending(s, 5, 3, idx) == 3);
    CHECK(idx[0] == 4 && idx[1] == 1 && idx[2] == 3);
    CHECK(saa_topk_ascending(s, 2, 5, idx) == 2 && idx[0] == 0 && idx[1] == 1);
    /* pixels: p0 in masks 0 and 1, p1 in mask 1 only, p2 in none */
    uint8_t masks[6] = {1, 0, 0, 1, 1, 0};
    double sc[2] = {0.4, 1.0}, map[3];
    int sel[2] = {0, 1};
    saa_fuse_masks(masks, 3, sel, 2, sc, 0, map);
    CHECK_NEAR(map[0], 1.4 / 3, 1e-15); /* weight starts at 1 */
    CHECK_NEAR(map[1], 0.5, 1e-15);
    CHECK(map[2] == 0);
    saa_fuse_masks(masks, 3, sel, 2, sc, 1, map);
    CHECK_NEAR(map[0], 0.7, 1e-15);
    CHECK_NEAR(map[1], 1.0, 1e-15);
    CHECK(map[2] == 0);
}

/* the running top-k the pipeline uses must select and order exactly as saa_topk_ascending (numpy
 * argsort()[-k:]), ties included */
static void test_topk_stream(void)
{
    unsigned seed = 12345;
    int mismatches = 0, cases = 0;
    for (int trial = 0; trial < 400; trial++) {
        int n = 1 + trial % 23, k = 1 + (trial / 23) % 7;
        double s[32];
        for (int i = 0; i < n; i++) {
            seed = seed * 1103515245u + 12345u;
            s[i] = (double)((seed >> 16) % 5) * 0.25; /* few distinct values: many ties */
        }
        int ref[32], idx[8], slots[8];
        double score[8];
        int m = saa_topk_ascending(s, n, k, ref);
        saa_topk_state t = {k, 0, score, idx};
        for (int i = 0; i < n; i++) {
            int slot = saa_topk_offer(&t, s[i], i);
            if (slot >= 0 && (t.index[slot] != i || t.score[slot] != s[i])) mismatches++;
        }
        saa_topk_order(&t, slots);
        cases++;
        if (t.n != m) {
            mismatches++;
            continue;
        }
        for (int j = 0; j < m; j++)
            if (t.index[slots[j]] != ref[j] || t.score[slots[j]] != s[ref[j]]) mismatches++;
    }
    CHECK(cases == 400);
    CHECK(mismatches == 0);
    /* hand case: 0.5 0.9 0.5 0.9 with k 3 -> indices 2 1 3 (ties: the later index ranks higher) */
    double s4[4] = {0.5, 0.9, 0.5, 0.9}, sc[3];
    int ix[3], sl[3];
    saa_topk_state t = {3, 0, sc, ix};
    for (int i = 0; i < 4; i++) saa_topk_offer(&t, s4[i], i);
    saa_topk_order(&t, sl);
    CHECK(t.n == 3 && ix[sl[0]] == 2 && ix[sl[1]] == 1 && ix[sl[2]] == 3);
}

static void test_phrase_filter(void)
{
    /* official: substring count (SAA/model.py bbox_suppression strategy 5) */
    CHECK(saa_phrase_filtered("[CLS] defect on macaroni1. [SEP]", "macaroni1", 0));
    CHECK(!saa_phrase_filtered("[CLS] flaw on macaro1. [SEP]", "macaroni1", 0));
    CHECK(saa_phrase_filtered("[CLS] peanut crack [SEP]", "nut", 0));
    CHECK(!saa_phrase_filtered("[CLS] bottle,. [SEP]", "PlaceHolder", 0));
    CHECK(saa_phrase_filtered("anything", "", 0)); /* str.count("") > 0 */
    CHECK(!saa_phrase_filtered("anything", NULL, 0));
    /* --fix phrase: whole words, case-insensitive */
    CHECK(!saa_phrase_filtered("[CLS] peanut crack [SEP]", "nut", 1));
    CHECK(saa_phrase_filtered("[CLS] nut crack [SEP]", "nut", 1));
    CHECK(saa_phrase_filtered("[CLS] metal nut. [SEP]", "Metal Nut", 1));
    CHECK(!saa_phrase_filtered("[CLS] macaroni1. [SEP]", "macaroni", 1));
    CHECK(saa_phrase_filtered("macaroni", "macaroni", 1));
}

int main(void)
{
    test_topk_stream();
    test_phrase_filter();
    test_boxes();
    test_rescore();
    test_topk_fuse();
    TEST_MAIN_END();
}
