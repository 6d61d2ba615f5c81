/* BERT encoder (HF transformers 4.23.1 modeling_bert.py: BertEmbeddings, BertLayer = BertAttention +
 * BertIntermediate + BertOutput) as called by Grounding DINO's BertModelWarper with a 3-D sub-sentence
 * attention mask and sub-sentence position ids; and the feat_map Linear. One sequence (bs = 1). */
#include "models/bert.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "saa/tensor.h"

#define BERT_LN_EPS 1e-12f

typedef struct {
    const float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b; /* attention.self.{query,key,value} */
    const float *ao_w, *ao_b, *ao_ln_w, *ao_ln_b;   /* attention.output.dense, .LayerNorm */
    const float *in_w, *in_b;                       /* intermediate.dense [I, H] */
    const float *out_w, *out_b, *out_ln_w, *out_ln_b; /* output.dense [H, I], .LayerNorm */
} bert_layer;

struct saa_bert {
    int hidden, heads, intermediate, vocab, max_pos, type_vocab, n_layers;
    const float *word_emb, *pos_emb, *type_emb, *emb_ln_w, *emb_ln_b;
    bert_layer *layers;
};

int saa_bert_hidden(const saa_bert *bert) { return bert->hidden; }
int saa_bert_layers(const saa_bert *bert) { return bert->n_layers; }

void saa_bert_free(saa_bert *bert)
{
    if (!bert) return;
    free(bert->layers);
    free(bert);
}

int saa_bert_load(saa_weights *w, const char *prefix, int num_heads, saa_bert **out)
{
    *out = NULL;
    if (!prefix) prefix = "";
    char name[256];
    snprintf(name, sizeof name, "%sembeddings.word_embeddings.weight", prefix);
    const saa_tensor *we = saa_weights_find(w, name);
    if (!we || we->ndim != 2)
        return saa_set_error(SAA_EFORMAT, "%s: expected a 2-D tensor %s (BERT word embeddings)",
                             saa_weights_path(w), name);
    int n_layers = 0;
    for (;; n_layers++) {
        snprintf(name, sizeof name, "%sencoder.layer.%d.attention.self.query.weight", prefix, n_layers);
        if (!saa_weights_find(w, name)) break;
    }
    int H = (int)we->shape[1];
    if (n_layers == 0 || num_heads <= 0 || H % num_heads)
        return saa_set_error(SAA_EFORMAT, "%s: BERT under \"%s\": %d layers, hidden %d, %d heads (expected >= 1 "
                             "layer and heads dividing the hidden size)", saa_weights_path(w), prefix, n_layers, H,
                             num_heads);
    saa_bert *m = calloc(1, sizeof *m);
    if (!m || !(m->layers = calloc((size_t)n_layers, sizeof *m->layers))) {
        free(m);
        return saa_set_error(SAA_ENOMEM, "bert: out of memory");
    }
    m->hidden = H;
    m->heads = num_heads;
    m->n_layers = n_layers;
    m->vocab = (int)we->shape[0];

    saa_binder *b = saa_binder_new(w, prefix);
    const int64_t any = -1;
    m->word_emb = saa_bind(b, 2, (int64_t[]){m->vocab, H}, "embeddings.word_embeddings.weight");
    const saa_tensor *pe = saa_bind_tensor(b, 2, (int64_t[]){any, H}, "embeddings.position_embeddings.weight");
    const saa_tensor *te = saa_bind_tensor(b, 2, (int64_t[]){any, H}, "embeddings.token_type_embeddings.weight");
    m->emb_ln_w = saa_bind(b, 1, (int64_t[]){H}, "embeddings.LayerNorm.weight");
    m->emb_ln_b = saa_bind(b, 1, (int64_t[]){H}, "embeddings.LayerNorm.bias");
    snprintf(name, sizeof name, "%sencoder.layer.0.intermediate.dense.weight", prefix);
    const saa_tensor *iw = saa_weights_find(w, name);
    int I = iw && iw->ndim == 2 ? (int)iw->shape[0] : -1;
    for (int l = 0; l < n_layers; l++) {
        bert_layer *L = &m->layers[l];
        L->q_w = saa_bind(b, 2, (int64_t[]){H, H}, "encoder.layer.%d.attention.self.query.weight", l);
        L->q_b = saa_bind(b, 1, (int64_t[]){H}, "encoder.layer.%d.attention.self.query.bias", l);
        L->k_w = saa_bind(b, 2, (int64_t[]){H, H}, "encoder.layer.%d.attention.self.key.weight", l);
        L->k_b = saa_bind(b, 1, (int64_t[]){H}, "encoder.layer.%d.attention.self.key.bias", l);
        L->v_w = saa_bind(b, 2, (int64_t[]){H, H}, "encoder.layer.%d.attention.self.value.weight", l);
        L->v_b = saa_bind(b, 1, (int64_t[]){H}, "encoder.layer.%d.attention.self.value.bias", l);
        L->ao_w = saa_bind(b, 2, (int64_t[]){H, H}, "encoder.layer.%d.attention.output.dense.weight", l);
        L->ao_b = saa_bind(b, 1, (int64_t[]){H}, "encoder.layer.%d.attention.output.dense.bias", l);
        L->ao_ln_w = saa_bind(b, 1, (int64_t[]){H}, "encoder.layer.%d.attention.output.LayerNorm.weight", l);
        L->ao_ln_b = saa_bind(b, 1, (int64_t[]){H}, "encoder.layer.%d.attention.output.LayerNorm.bias", l);
        L->in_w = saa_bind(b, 2, (int64_t[]){I, H}, "encoder.layer.%d.intermediate.dense.weight", l);
        L->in_b = saa_bind(b, 1, (int64_t[]){I}, "encoder.layer.%d.intermediate.dense.bias", l);
        L->out_w = saa_bind(b, 2, (int64_t[]){H, I}, "encoder.layer.%d.output.dense.weight", l);
        L->out_b = saa_bind(b, 1, (int64_t[]){H}, "encoder.layer.%d.output.dense.bias", l);
        L->out_ln_w = saa_bind(b, 1, (int64_t[]){H}, "encoder.layer.%d.output.LayerNorm.weight", l);
        L->out_ln_b = saa_bind(b, 1, (int64_t[]){H}, "encoder.layer.%d.output.LayerNorm.bias", l);
    }
    if (pe) m->pos_emb = pe->data, m->max_pos = (int)pe->shape[0];
    if (te) m->type_emb = te->data, m->type_vocab = (int)te->shape[0];
    int rc = saa_binder_finish(b);
    if (rc != SAA_OK) {
        saa_bert_free(m);
        return rc;
    }
    if (I <= 0 || m->type_vocab < 1) {
        saa_bert_free(m);
        return saa_set_error(SAA_EFORMAT, "%s: BERT under \"%s\": bad intermediate size or token type table",
                             saa_weights_path(w), prefix);
    }
    m->intermediate = I;
    *out = m;
    return SAA_OK;
}

int saa_bert_forward(const saa_bert *m, const int32_t *ids, const int32_t *position_ids, const uint8_t *mask,
                     int T, float *out)
{
    if (T <= 0) return saa_set_error(SAA_EINVAL, "bert: empty sequence");
    const int H = m->hidden, I = m->intermediate, nh = m->heads, dh = H / nh;
    for (int t = 0; t < T; t++) {
        if (ids[t] < 0 || ids[t] >= m->vocab)
            return saa_set_error(SAA_EINVAL, "bert: token id %d outside the vocabulary (%d)", ids[t], m->vocab);
        if (position_ids[t] < 0 || position_ids[t] >= m->max_pos)
            return saa_set_error(SAA_EINVAL, "bert: position id %d outside the table (%d)", position_ids[t],
                                 m->max_pos);
    }
    const size_t TH = (size_t)T * H;
    /* q, k, v, context, attention output, intermediate, additive mask, one head's score matrix */
    float *q = malloc(TH * sizeof *q), *k = malloc(TH * sizeof *k), *v = malloc(TH * sizeof *v);
    float *ctx = malloc(TH * sizeof *ctx), *att = malloc(TH * sizeof *att);
    float *inter = malloc((size_t)T * I * sizeof *inter);
    float *add_mask = malloc((size_t)T * T * sizeof *add_mask);
    float *scores = malloc((size_t)T * T * sizeof *scores);
    if (!q || !k || !v || !ctx || !att || !inter || !add_mask || !scores) {
        free(q), free(k), free(v), free(ctx), free(att), free(inter), free(add_mask), free(scores);
        return saa_set_error(SAA_ENOMEM, "bert: out of memory for %d tokens", T);
    }

    /* BertEmbeddings: (word + token_type[0]) + position, LayerNorm (dropout is identity) */
    float *x = out;
    for (int t = 0; t < T; t++) {
        const float *we = m->word_emb + (size_t)ids[t] * H, *pe = m->pos_emb + (size_t)position_ids[t] * H;
        for (int j = 0; j < H; j++) x[(size_t)t * H + j] = (we[j] + m->type_emb[j]) + pe[j];
    }
    saa_layer_norm(x, T, H, m->emb_ln_w, m->emb_ln_b, BERT_LN_EPS, x);

    /* get_extended_attention_mask: (1 - mask) * torch.finfo(float32).min, added to the scores */
    for (size_t i = 0; i < (size_t)T * T; i++) add_mask[i] = mask[i] ? 0.0f : -FLT_MAX;

    const float scale = 1.0f / sqrtf((float)dh);
    for (int l = 0; l < m->n_layers; l++) {
        const bert_layer *L = &m->layers[l];
        /* BertSelfAttention: softmax(q k^T / sqrt(dh) + mask) v per head */
        saa_linear(x, T, H, L->q_w, L->q_b, H, q);
        saa_linear(x, T, H, L->k_w, L->k_b, H, k);
        saa_linear(x, T, H, L->v_w, L->v_b, H, v);
        for (int h = 0; h < nh; h++)
            saa_attention_head(q + h * dh, H, k + h * dh, H, v + h * dh, H, T, T, dh, dh, scale, add_mask,
                               ctx + h * dh, H, scores);
        /* BertSelfOutput: LayerNorm(dense(ctx) + x) */
        saa_linear(ctx, T, H, L->ao_w, L->ao_b, H, att);
        for (size_t i = 0; i < TH; i++) att[i] += x[i];
        saa_layer_norm(att, T, H, L->ao_ln_w, L->ao_ln_b, BERT_LN_EPS, att);
        /* BertIntermediate: gelu (exact erf) of dense; BertOutput: LayerNorm(dense(inter) + att) */
        saa_linear(att, T, H, L->in_w, L->in_b, I, inter);
        saa_gelu_erf(inter, (int64_t)T * I);
        saa_linear(inter, T, I, L->out_w, L->out_b, H, x);
        for (size_t i = 0; i < TH; i++) x[i] += att[i];
        saa_layer_norm(x, T, H, L->out_ln_w, L->out_ln_b, BERT_LN_EPS, x);
    }
    free(q), free(k), free(v), free(ctx), free(att), free(inter), free(add_mask), free(scores);
    return SAA_OK;
}

int saa_feat_map_load(saa_weights *w, const char *prefix, int in_dim, saa_feat_map *out)
{
    memset(out, 0, sizeof *out);
    saa_binder *b = saa_binder_new(w, prefix);
    const saa_tensor *wt = saa_bind_tensor(b, 2, (int64_t[]){-1, in_dim}, "weight");
    int od = wt ? (int)wt->shape[0] : 0;
    const float *bias = saa_bind(b, 1, (int64_t[]){od > 0 ? od : -1}, "bias");
    int rc = saa_binder_finish(b);
    if (rc != SAA_OK) return rc;
    out->weight = wt->data;
    out->bias = bias;
    out->in_dim = in_dim;
    out->out_dim = od;
    return SAA_OK;
}

void saa_feat_map_forward(const saa_feat_map *fm, const float *x, int T, float *y)
{
    saa_linear(x, T, fm->in_dim, fm->weight, fm->bias, fm->out_dim, y);
}
