/* Grounding DINO internals shared by gdino.c and the check-golden runner: the per-image state, the
 * transformer run on given text features (with an optional trace of every intermediate tensor), and
 * SAA+'s bbox_suppression on given outputs. */
#ifndef SAA_MODELS_GDINO_IMPL_H
#define SAA_MODELS_GDINO_IMPL_H

#include <stdint.h>

#include "models/deform_attn.h"
#include "saa/gdino.h"
#include "saa/tokenizer.h"

/* Backbone outputs in, multi-scale tokens out (SAA+ runs one unpadded image: masks are all False and
 * valid ratios 1). */
typedef struct {
    msda_levels lv;
    float *src;     /* [N, d] input_proj outputs, flattened row-major per level and concatenated */
    float *pos;     /* [N, d] PositionEmbeddingSineHW (without level_embed) */
    float *lvl_pos; /* [N, d] pos + level_embed[l] */
    float *ref;     /* [N, 2] encoder reference points ((x+0.5)/W, (y+0.5)/H) */
    int orig_w, orig_h; /* original image size (for pixel boxes) */
} gdino_image;

void gdino_image_free(gdino_image *im);

/* feats[l]: backbone output l as [C[l], H[l], W[l]]. Computes input projections (the extra levels from
 * the last backbone output), position embeddings and reference points. */
int gdino_image_from_features(const saa_gdino *g, int nfeat, const float *const *feats, const int *C,
                              const int *H, const int *W, gdino_image *out);

/* Text encoder output for one caption (after BERT, before feat_map). */
typedef struct {
    int T;
    const float *bert_hidden;    /* [T, bert_hidden] last_hidden_state */
    const uint8_t *self_mask;    /* [T, T] sub-sentence attention mask (1 = attend) */
    const int64_t *position_ids; /* [T] sub-sentence position ids */
} gdino_text;

/* Every intermediate tensor (all malloc'd, freed by gdino_trace_free); fields stay NULL unless a trace
 * is requested. L = enc_layers, D = dec_layers. */
typedef struct {
    float *feat_map;                /* [T, d] */
    float **fusion_image;           /* [L][N, d] BiAttentionBlock output v */
    float **fusion_text;            /* [L][T, d] */
    float *memory;                  /* [N, d] */
    float *memory_text;             /* [T, d] */
    float *output_memory;           /* [N, d] */
    float *output_proposals;        /* [N, 4] */
    float *enc_logits;              /* [N, T] */
    float *max_logits;              /* [N] */
    int64_t *topk_index;            /* [nq] own selection */
    float *topk_logits;             /* [nq] */
    float *refpoint_unsig;          /* [nq, 4] gathered with the index actually used */
    float **query_pos, **dec_out, **dec_hs; /* [D][nq, d] */
    float **refs;                   /* [D+1][nq, 4] */
    int n_enc, n_dec;
} gdino_trace;

void gdino_trace_free(gdino_trace *t);

/* Raw outputs for one caption. */
typedef struct {
    int nq, T;
    float *pred_logits; /* [nq, T] (the other 256 - T columns are -inf) */
    float *pred_boxes;  /* [nq, 4] */
} gdino_raw;

void gdino_raw_free(gdino_raw *r);

/* Runs feat_map, the encoder, query selection, the decoder and the heads. forced_topk (NULL: own top-k)
 * replaces the selected query indices fed to the decoder. trace may be NULL. */
int gdino_run(const saa_gdino *g, const gdino_image *im, const gdino_text *text, const int64_t *forced_topk,
              gdino_trace *trace, gdino_raw *out);
/* Same, adding the wall time of each stage (seconds) to *tm. */
typedef struct {
    double fusion, text, enc_deform, enc_ffn, query_select, decoder;
} gdino_timing;
/* Stage times from the process CPU clock instead of the wall clock (benchmarks on a shared machine). */
void gdino_timing_cpu_clock(int on);
int gdino_run_timed(const saa_gdino *g, const gdino_image *im, const gdino_text *text, const int64_t *forced_topk,
                    gdino_trace *trace, gdino_raw *out, gdino_timing *tm);

/* gen_encoder_output_proposals (groundingdino/models/GroundingDINO/utils.py) without padding:
 * memory[N, dim] -> output_memory[N, dim] (invalid rows zeroed), proposals[N, 4] (+inf where invalid). */
void gdino_encoder_output_proposals(const float *memory, int64_t dim, const msda_levels *lv,
                                    float *output_memory, float *proposals);

/* SAA+ Model.bbox_suppression on sigmoid logits[nq, T] and boxes[nq, 4]. Phrases are
 * get_phrases_from_posmap(logit > text_threshold): the decode of ids[t] (tokenizer(caption) input ids,
 * untruncated, T_ids of them) for the tokens above the threshold. */
typedef struct {
    int nq;
    float *box_score, *area;     /* [nq] */
    uint8_t *score_area_mask;    /* [nq] */
    int n_candidates;
    char **candidate_phrases;    /* [n_candidates] */
    uint8_t *phrase_keep_mask;   /* [n_candidates] */
    int n_kept;
    int *kept_query;
    float *kept_boxes, *kept_scores;
    char **kept_phrases;         /* without score suffix */
    char **kept_phrases_with_score;
} gdino_suppression;

int gdino_bbox_suppression(const float *logits, const float *boxes, int nq, int T, const int32_t *ids,
                           int T_ids, const saa_tokenizer *tok, const saa_gdino_filter *f, gdino_suppression *out);
void gdino_suppression_free(gdino_suppression *s);

/* Python str(float(x)) for a float32 x (shortest round-trip repr of the double). */
void gdino_python_float_repr(float x, char *buf, size_t n);

#endif
