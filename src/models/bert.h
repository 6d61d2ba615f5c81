/* BERT text encoder as Grounding DINO uses it (groundingdino/models/GroundingDINO/bertwarper.py
 * BertModelWarper over HF transformers BertModel), plus the feat_map projection to the transformer
 * width.
 *
 *   saa_bert *bert;
 *   saa_bert_load(weights, "bert.", 12, &bert);              // heads are not derivable from shapes
 *   float *hidden = malloc(T * saa_bert_hidden(bert) * 4);
 *   saa_bert_forward(bert, in.ids, in.position_ids, in.self_attention_mask, in.len, hidden);
 *   saa_feat_map fm;  saa_feat_map_load(weights, "feat_map.", saa_bert_hidden(bert), &fm);
 *   saa_feat_map_forward(&fm, hidden, T, encoded_text);     // [T, fm.out_dim]
 *
 * Weights stay owned by the saa_weights (which must outlive the model). */
#ifndef SAA_MODELS_BERT_H
#define SAA_MODELS_BERT_H

#include <stdint.h>

#include "saa/weights.h"

typedef struct saa_bert saa_bert;

/* Binds the BERT tensors under PREFIX ("bert." in a Grounding DINO checkpoint): embeddings.*,
 * encoder.layer.N.* (the layer count is found from the names), hidden / intermediate / vocabulary /
 * position sizes from the shapes; num_heads must divide the hidden size. Pooler weights are ignored
 * (computed but unused by Grounding DINO). LayerNorm eps is BERT's 1e-12. */
int saa_bert_load(saa_weights *w, const char *prefix, int num_heads, saa_bert **out);
void saa_bert_free(saa_bert *bert);
int saa_bert_hidden(const saa_bert *bert);
int saa_bert_layers(const saa_bert *bert);

/* last_hidden_state [T, hidden] for one sequence: ids [T], position_ids [T] (Grounding DINO passes the
 * sub-sentence position ids), mask [T*T] row-major (1 = query row may attend to key column; the 3-D
 * sub-sentence mask, turned into (1 - mask) * finfo(float32).min as HF get_extended_attention_mask),
 * token_type_ids all 0. Returns SAA_EINVAL for ids / positions outside the embedding tables. */
int saa_bert_forward(const saa_bert *bert, const int32_t *ids, const int32_t *position_ids, const uint8_t *mask,
                     int T, float *out);

/* GroundingDINO.feat_map = nn.Linear(bert hidden, d_model). */
typedef struct {
    const float *weight; /* [out_dim, in_dim] */
    const float *bias;   /* [out_dim] */
    int in_dim, out_dim;
} saa_feat_map;

/* Binds PREFIX "weight" / "bias" (e.g. "feat_map."); in_dim = BERT hidden size, out_dim from the shape. */
int saa_feat_map_load(saa_weights *w, const char *prefix, int in_dim, saa_feat_map *out);
/* y[T, out_dim] = x[T, in_dim] W^T + b (y must not alias x). */
void saa_feat_map_forward(const saa_feat_map *fm, const float *x, int T, float *y);

#endif
