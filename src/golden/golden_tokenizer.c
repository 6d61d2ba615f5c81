/* check-golden kind "tokenizer": SAA+ caption normalisation, BertTokenizer ids/tokens, Grounding DINO
 * sub-sentence masks / position ids / cate_to_token_mask, max_text_len slicing and phrase decoding, for
 * every case of cases.json (expected file, compared field by field) and golden.safetensors. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "golden_text.h"
#include "saa/json.h"
#include "saa/tokenizer.h"

/* cJSON stores strings NUL-terminated, so a "\u0000" escape would cut a caption short. The escapes are
 * rewritten to a marker code point (U+10FFFF, a noncharacter that must not occur in the file) before
 * parsing, and golden_json_bytes maps the marker back to a 0 byte with an explicit length. */
static const char nul_marker_escape[] = "\\uDBFF\\uDFFF";
static const char nul_marker_utf8[] = "\xF4\x8F\xBF\xBF";

cJSON *golden_json_load_nul(const char *path)
{
    size_t len;
    char *raw = saa_read_file(path, &len);
    if (!raw) return NULL;
    if (memmem(raw, len, nul_marker_utf8, 4) || strcasestr(raw, "\\udbff\\udfff")) {
        free(raw);
        saa_set_error(SAA_EFORMAT, "%s: contains U+10FFFF, which this reader uses as a marker", path);
        return NULL;
    }
    size_t count = 0;
    for (size_t i = 0; i + 1 < len; i++) {
        if (raw[i] != '\\') continue;
        if (raw[i + 1] == 'u' && i + 6 <= len && !strncmp(raw + i + 2, "0000", 4)) count++;
        i++; /* skip the escaped character (handles "\\\\u0000") */
    }
    char *text = malloc(len + count * 8 + 1), *w = text;
    if (!text) {
        free(raw);
        saa_set_error(SAA_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        if (raw[i] == '\\' && i + 1 < len) {
            if (raw[i + 1] == 'u' && i + 6 <= len && !strncmp(raw + i + 2, "0000", 4)) {
                memcpy(w, nul_marker_escape, sizeof nul_marker_escape - 1);
                w += sizeof nul_marker_escape - 1;
                i += 5;
            } else {
                *w++ = raw[i++];
                *w++ = raw[i];
            }
        } else {
            *w++ = raw[i];
        }
    }
    *w = 0;
    free(raw);
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) saa_set_error(SAA_EFORMAT, "%s: invalid JSON", path);
    return j;
}

int golden_json_bytes(const cJSON *s, char **out, size_t *out_len)
{
    *out = NULL;
    if (!cJSON_IsString(s) || !s->valuestring) return saa_set_error(SAA_EFORMAT, "expected a JSON string");
    const char *v = s->valuestring;
    size_t n = strlen(v), k = 0;
    char *b = malloc(n + 1);
    if (!b) return saa_set_error(SAA_ENOMEM, "out of memory");
    for (size_t i = 0; i < n;) {
        if (i + 4 <= n && !memcmp(v + i, nul_marker_utf8, 4)) {
            b[k++] = 0;
            i += 4;
        } else {
            b[k++] = v[i++];
        }
    }
    b[k] = 0;
    *out = b;
    *out_len = k;
    return SAA_OK;
}

/* ---------- helpers to compare a case ---------- */

typedef struct {
    char why[400];
    int bad;
} verdict;

static void fail(verdict *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(verdict *v, const char *fmt, ...)
{
    if (v->bad++) return; /* keep the first mismatch */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->why, sizeof v->why, fmt, ap);
    va_end(ap);
}

static void cmp_int(verdict *v, const cJSON *c, const char *field, long long got)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(c, field);
    if (!cJSON_IsNumber(e)) return fail(v, "%s: missing", field);
    if ((long long)e->valuedouble != got) fail(v, "%s: got %lld, expected %lld", field, got, (long long)e->valuedouble);
}

static void cmp_ints_as(verdict *v, const cJSON *c, const char *key, const char *field, const int32_t *got, int n)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(c, key);
    if (!cJSON_IsArray(e)) return fail(v, "%s: missing", field);
    int m = cJSON_GetArraySize(e);
    if (m != n) return fail(v, "%s: %d entries, expected %d", field, n, m);
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, e)
    {
        if (!cJSON_IsNumber(it) || (long long)it->valuedouble != got[i])
            return fail(v, "%s[%d]: got %d, expected %lld", field, i, got[i], (long long)it->valuedouble);
        i++;
    }
}

static void cmp_ints(verdict *v, const cJSON *c, const char *field, const int32_t *got, int n)
{
    cmp_ints_as(v, c, field, field, got, n);
}

static void cmp_str(verdict *v, const char *field, const cJSON *e, const char *got, size_t got_len)
{
    char *want;
    size_t want_len;
    if (golden_json_bytes(e, &want, &want_len) != SAA_OK) return fail(v, "%s: missing", field);
    if (want_len != got_len || memcmp(want, got, got_len))
        fail(v, "%s: got \"%.*s\", expected \"%s\"", field, (int)(got_len > 120 ? 120 : got_len), got, want);
    free(want);
}

static void cmp_tokens(verdict *v, const cJSON *c, const char *field, const saa_tokenizer *tok, const int32_t *ids,
                       int n)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(c, field);
    if (!cJSON_IsArray(e)) return fail(v, "%s: missing", field);
    if (cJSON_GetArraySize(e) != n) return fail(v, "%s: %d tokens, expected %d", field, n, cJSON_GetArraySize(e));
    char name[64];
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s[%d]", field, i);
        const char *t = saa_tokenizer_token(tok, ids[i]);
        cmp_str(v, name, cJSON_GetArrayItem(e, i), t, strlen(t));
    }
}

/* One expected phrase: positions are recomputed from the name (phraseK = row K of cate_to_token_mask,
 * all_tokens, odd_positions; on a posmap of max_text_len entries) and compared, then decoded. */
static void cmp_phrase(verdict *v, const cJSON *p, const saa_tokenizer *tok, const saa_text_input *in, int max_len)
{
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "name");
    if (!cJSON_IsString(name)) return fail(v, "phrases: entry without a name");
    int L = in->len_full < max_len ? in->len_full : max_len;
    uint8_t *posmap = calloc((size_t)L + 1, 1);
    int32_t *pos = malloc(((size_t)L + 1) * sizeof *pos);
    if (!posmap || !pos) {
        free(posmap);
        free(pos);
        return fail(v, "out of memory");
    }
    int k;
    if (!strcmp(name->valuestring, "all_tokens")) {
        memset(posmap, 1, (size_t)L);
    } else if (!strcmp(name->valuestring, "odd_positions")) {
        for (int i = 1; i < L; i += 2) posmap[i] = 1;
    } else if (sscanf(name->valuestring, "phrase%d", &k) == 1 && k >= 0 && k < in->num_phrases) {
        for (int i = 0; i < L; i++) posmap[i] = in->cate_to_token_mask[(size_t)k * in->len_full + i];
    } else {
        fail(v, "phrases: unknown or out-of-range phrase \"%s\" (%d cate_to_token rows)", name->valuestring,
             in->num_phrases);
        goto done;
    }
    int n = 0;
    for (int i = 0; i < L; i++)
        if (posmap[i]) pos[n++] = i;
    char field[96];
    snprintf(field, sizeof field, "phrases[%s].positions", name->valuestring);
    cmp_ints_as(v, p, "positions", field, pos, n);
    char *phrase = saa_phrase_from_posmap(tok, posmap, in->ids_full, L);
    if (!phrase) {
        fail(v, "out of memory");
        goto done;
    }
    snprintf(field, sizeof field, "phrases[%s].phrase", name->valuestring);
    cmp_str(v, field, cJSON_GetObjectItemCaseSensitive(p, "phrase"), phrase, strlen(phrase));
    free(phrase);
done:
    free(posmap);
    free(pos);
}

/* ---------- tensors shared with the gdino text stage ---------- */

int golden_check_text_tensors(golden *g, const char *prefix, const saa_text_input *in)
{
    int L = in->len, T = in->len_full, ok = 1;
    char name[160];
    saa_tensor *t = saa_tensor_new(SAA_I64, 2, (int64_t[]){1, L});
    saa_tensor *m = saa_tensor_new(SAA_BOOL, 3, (int64_t[]){1, L, L});
    saa_tensor *c = saa_tensor_new(SAA_BOOL, 2, (int64_t[]){in->num_phrases, T});
    if (!t || !m || !c) {
        saa_tensor_free(t);
        saa_tensor_free(m);
        saa_tensor_free(c);
        return SAA_ENOMEM;
    }
    int64_t *d = t->data;
    for (int i = 0; i < L; i++) d[i] = in->ids[i];
    snprintf(name, sizeof name, "%sinput_ids", prefix);
    ok &= golden_check(g, name, t);
    for (int i = 0; i < L; i++) d[i] = 1; /* bs = 1, padding="longest": no padding */
    snprintf(name, sizeof name, "%sattention_mask", prefix);
    ok &= golden_check(g, name, t);
    for (int i = 0; i < L; i++) d[i] = 0;
    snprintf(name, sizeof name, "%stoken_type_ids", prefix);
    ok &= golden_check(g, name, t);
    for (int i = 0; i < L; i++) d[i] = in->position_ids[i];
    snprintf(name, sizeof name, "%sposition_ids", prefix);
    ok &= golden_check(g, name, t);
    memcpy(m->data, in->self_attention_mask, (size_t)L * L);
    snprintf(name, sizeof name, "%sself_attention_mask", prefix);
    ok &= golden_check(g, name, m);
    memcpy(c->data, in->cate_to_token_mask, (size_t)in->num_phrases * T);
    snprintf(name, sizeof name, "%scate_to_token_mask", prefix);
    ok &= golden_check(g, name, c);
    saa_tensor_free(t);
    saa_tensor_free(m);
    saa_tensor_free(c);
    return ok;
}

int golden_kind_tokenizer(golden *g)
{
    const char *vocab_rel = golden_cfg_str(g, "vocab");
    const char *cases_rel = golden_cfg_str(g, "cases");
    if (!vocab_rel || !cases_rel)
        return saa_set_error(SAA_EFORMAT, "%s/config.json: expected \"vocab\" and \"cases\"", g->dir);
    int max_len = (int)golden_cfg_num(g, "max_text_len", SAA_MAX_TEXT_LEN);
    char *vocab_path = golden_path(g, vocab_rel), *cases_path = golden_path(g, cases_rel);
    saa_tokenizer *tok = NULL;
    cJSON *cases = NULL;
    int rc = saa_tokenizer_load(vocab_path, &tok);
    if (rc != SAA_OK) goto done;
    int lines = (int)golden_cfg_num(g, "vocab_lines", -1);
    if (lines >= 0 && lines != saa_tokenizer_vocab_size(tok)) {
        rc = saa_set_error(SAA_EFORMAT, "%s: %d tokens, config.json says vocab_lines = %d", vocab_path,
                           saa_tokenizer_vocab_size(tok), lines);
        goto done;
    }
    cases = golden_json_load_nul(cases_path);
    if (!cases || !cJSON_IsArray(cases)) {
        rc = cases ? saa_set_error(SAA_EFORMAT, "%s: expected a list of cases", cases_path) : SAA_EFORMAT;
        goto done;
    }
    const cJSON *c;
    int ci = 0;
    cJSON_ArrayForEach(c, cases)
    {
        verdict v = {{0}, 0};
        const cJSON *idx = cJSON_GetObjectItemCaseSensitive(c, "index");
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "id");
        int index = cJSON_IsNumber(idx) ? idx->valueint : ci;
        ci++;
        char label[160];
        snprintf(label, sizeof label, "%s[%02d] %s", cases_rel, index, cJSON_IsString(id) ? id->valuestring : "");
        char *caption = NULL, *norm = NULL;
        size_t caption_len = 0, norm_len = 0;
        saa_text_input in = {0};
        if (golden_json_bytes(cJSON_GetObjectItemCaseSensitive(c, "caption"), &caption, &caption_len) != SAA_OK) {
            fail(&v, "caption: missing");
        } else if (saa_caption_normalize(caption, caption_len, &norm, &norm_len) != SAA_OK) {
            fail(&v, "normalisation failed: %s", saa_last_error());
        } else {
            cmp_str(&v, "normalized", cJSON_GetObjectItemCaseSensitive(c, "normalized"), norm, norm_len);
            if (saa_text_encode(tok, norm, norm_len, max_len, &in) != SAA_OK) {
                fail(&v, "tokenization failed: %s", saa_last_error());
            } else {
                cmp_tokens(&v, c, "tokens_full", tok, in.ids_full, in.len_full);
                cmp_int(&v, c, "num_tokens_full", in.len_full);
                const cJSON *tr = cJSON_GetObjectItemCaseSensitive(c, "truncated");
                if (!cJSON_IsBool(tr) || cJSON_IsTrue(tr) != (in.len_full > max_len))
                    fail(&v, "truncated: got %s", in.len_full > max_len ? "true" : "false");
                cmp_tokens(&v, c, "tokens", tok, in.ids, in.len);
                cmp_ints(&v, c, "input_ids", in.ids, in.len);
                cmp_ints(&v, c, "position_ids", in.position_ids, in.len);
                cmp_int(&v, c, "num_phrases_cate_to_token", in.num_phrases);
                const cJSON *ph = cJSON_GetObjectItemCaseSensitive(c, "phrases"), *p;
                if (!cJSON_IsArray(ph)) fail(&v, "phrases: missing");
                cJSON_ArrayForEach(p, ph) cmp_phrase(&v, p, tok, &in, max_len);
            }
        }
        golden_report(g, label, !v.bad, "%s", v.bad ? v.why : "all fields equal");
        if (in.ids) {
            char prefix[32];
            snprintf(prefix, sizeof prefix, "case%02d.", index);
            golden_check_text_tensors(g, prefix, &in);
        }
        saa_text_input_free(&in);
        free(caption);
        free(norm);
    }
    rc = SAA_OK;
done:
    cJSON_Delete(cases);
    saa_tokenizer_free(tok);
    free(vocab_path);
    free(cases_path);
    return rc;
}
