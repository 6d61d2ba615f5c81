/* The model-independent arithmetic of SAA+'s hybrid prompts (SAA/model.py): box denormalisation, saliency
 * rescoring and confidence fusion. */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "saa/saa.h"

/* mirrors ensemble_text_guided_mask_proposal's in-place denormalisation (float32 torch ops) */
void saa_boxes_to_pixels(const float *cxcywh, int n, int width, int height, int clip, float *xyxy)
{
    const float scale[4] = {(float)width, (float)height, (float)width, (float)height};
    for (int i = 0; i < n; i++) {
        float b[4];
        for (int j = 0; j < 4; j++) b[j] = cxcywh[4 * i + j] * scale[j];
        b[0] -= b[2] / 2.0f;
        b[1] -= b[3] / 2.0f;
        b[2] += b[0];
        b[3] += b[1];
        if (clip) {
            for (int j = 0; j < 4; j++) {
                float hi = (j % 2 == 0) ? (float)width : (float)height;
                b[j] = b[j] < 0 ? 0 : b[j] > hi ? hi : b[j];
            }
        }
        memcpy(xyxy + 4 * i, b, sizeof b);
    }
}

/* mirrors Model.rescore */
void saa_rescore(const uint8_t *masks, int n, int64_t pixels, const double *scores, const double *saliency,
                 int saliency_is_f32, double *rescored)
{
    for (int i = 0; i < n; i++) {
        const uint8_t *m = masks + (int64_t)i * pixels;
        double sum = 0;
        int64_t count = 0;
        for (int64_t p = 0; p < pixels; p++)
            if (m[p]) {
                sum += saliency[p];
                count++;
            }
        double factor = 1.0;
        if (count) {
            if (saliency_is_f32) /* np.float32 mean, 3 * float32, np.exp in float32 */
                factor = (double)expf(3.0f * (float)(sum / (double)count));
            else
                factor = exp(3.0 * (sum / (double)count));
        }
        rescored[i] = scores[i] * factor;
    }
}

static int cmp_index_by_score(const void *a, const void *b, void *keys)
{
    const double *k = keys;
    int ia = *(const int *)a, ib = *(const int *)b;
    if (k[ia] < k[ib]) return -1;
    if (k[ia] > k[ib]) return 1;
    return ia - ib;
}

/* mirrors confidence_prompting: defect_scores.argsort()[-k_mask:] */
int saa_topk_ascending(const double *scores, int n, int k, int *indices)
{
    int *order = malloc(sizeof *order * (size_t)(n > 0 ? n : 1));
    if (!order) return 0;
    for (int i = 0; i < n; i++) order[i] = i;
    qsort_r(order, (size_t)n, sizeof *order, cmp_index_by_score, (void *)scores);
    int m = k < n ? k : n;
    memcpy(indices, order + (n - m), sizeof *indices * (size_t)m);
    free(order);
    return m;
}

/* mirrors confidence_prompting before its final cv2.resize */
void saa_fuse_masks(const uint8_t *masks, int64_t pixels, const int *selected, int n_selected,
                    const double *scores, int fix_fusion, double *map)
{
    double *weight = malloc(sizeof *weight * (size_t)(pixels > 0 ? pixels : 1));
    if (!weight) return;
    const double w0 = fix_fusion ? 0.0 : 1.0;
    for (int64_t p = 0; p < pixels; p++) {
        map[p] = 0;
        weight[p] = w0;
    }
    for (int s = 0; s < n_selected; s++) {
        const uint8_t *m = masks + (int64_t)selected[s] * pixels;
        for (int64_t p = 0; p < pixels; p++)
            if (m[p]) {
                map[p] += scores[selected[s]];
                weight[p] += 1.0;
            }
    }
    for (int64_t p = 0; p < pixels; p++)
        if (weight[p] > 0) map[p] /= weight[p];
    free(weight);
}

/* Running form of saa_topk_ascending: the k largest (score, index) pairs, a later index winning ties. */
int saa_topk_offer(saa_topk_state *t, double score, int index)
{
    if (t->n < t->k) {
        t->score[t->n] = score, t->index[t->n] = index;
        return t->n++;
    }
    if (t->k <= 0) return -1;
    int lo = 0;
    for (int i = 1; i < t->n; i++)
        if (t->score[i] < t->score[lo] || (t->score[i] == t->score[lo] && t->index[i] < t->index[lo])) lo = i;
    if (score < t->score[lo] || (score == t->score[lo] && index < t->index[lo])) return -1;
    t->score[lo] = score, t->index[lo] = index;
    return lo;
}

void saa_topk_order(const saa_topk_state *t, int *slots)
{
    for (int i = 0; i < t->n; i++) slots[i] = i;
    for (int a = 1; a < t->n; a++) /* insertion sort by (score, index) ascending */
        for (int q = a; q > 0; q--) {
            int x = slots[q - 1], y = slots[q];
            if (!(t->score[x] > t->score[y] || (t->score[x] == t->score[y] && t->index[x] > t->index[y]))) break;
            slots[q - 1] = y, slots[q] = x;
        }
}

/* bbox_suppression strategy 5: pred_phrase.count(filtered_phrase) > 0, or whole words with SAA_FIX_PHRASE */
int saa_phrase_filtered(const char *phrase, const char *filtered, int whole_words)
{
    if (!filtered) return 0;
    if (!whole_words) return strstr(phrase, filtered) != NULL; /* "" matches everything, as str.count */
    size_t n = strlen(filtered);
    if (!n) return 1;
    for (const char *p = phrase; *p; p++) {
        if (strncasecmp(p, filtered, n)) continue;
        int before = p == phrase || !isalnum((unsigned char)p[-1]);
        int after = !isalnum((unsigned char)p[n]);
        if (before && after) return 1;
    }
    return 0;
}
