/* check-golden framework; the rules are those of ../shared/golden/README.md:
 * first matching tolerance rule wins; float passes on max_abs OR max_abs/std(ref) <= max_rel;
 * integers/bools exact unless max_mismatch_frac; non-finite reference values must be reproduced at the
 * same positions; sampled tensors are compared on the stored samples of the full result. */
#include <fnmatch.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"
#include "saa/json.h"

static int ref_index(const golden *g, const char *name)
{
    for (int i = 0; i < saa_weights_count(g->ref); i++)
        if (!strcmp(saa_weights_name(g->ref, i), name)) return i;
    return -1;
}

static void mark_seen(golden *g, const char *name, unsigned char how)
{
    int i = ref_index(g, name);
    if (i >= 0 && g->seen[i] < how) g->seen[i] = how;
}

char *golden_path(const golden *g, const char *rel)
{
    if (!rel) return NULL;
    if (rel[0] == '/') return strdup(rel);
    size_t n = strlen(g->dir) + strlen(rel) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%s", g->dir, rel);
    return p;
}

cJSON *golden_cfg(const golden *g, const char *dotted)
{
    char key[256];
    cJSON *node = g->config;
    const char *s = dotted;
    while (node && *s) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        if (n >= sizeof key) return NULL;
        memcpy(key, s, n);
        key[n] = 0;
        node = cJSON_GetObjectItemCaseSensitive(node, key);
        s = dot ? dot + 1 : s + n;
    }
    return node;
}

double golden_cfg_num(const golden *g, const char *dotted, double def)
{
    cJSON *n = golden_cfg(g, dotted);
    return cJSON_IsNumber(n) ? n->valuedouble : cJSON_IsBool(n) ? (double)cJSON_IsTrue(n) : def;
}

const char *golden_cfg_str(const golden *g, const char *dotted)
{
    cJSON *n = golden_cfg(g, dotted);
    return cJSON_IsString(n) ? n->valuestring : NULL;
}

int golden_open(const char *dir, FILE *out, golden **gp)
{
    *gp = NULL;
    golden *g = calloc(1, sizeof *g);
    if (!g) return saa_set_error(SAA_ENOMEM, "out of memory");
    g->out = out;
    g->dir = strdup(dir);
    size_t n = strlen(g->dir);
    while (n > 1 && g->dir[n - 1] == '/') g->dir[--n] = 0;
    char *cfg = golden_path(g, "config.json");
    g->config = saa_json_load(cfg);
    free(cfg);
    if (!g->config) {
        golden_close(g);
        return SAA_EIO;
    }
    if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(g->config, "kind"))) {
        golden_close(g);
        return saa_set_error(SAA_EFORMAT, "%s/config.json: missing string key \"kind\"", dir);
    }
    const char *gold = golden_cfg_str(g, "golden");
    if (!gold) gold = golden_cfg_str(g, "expected"); /* checkpoint folders name it "expected" */
    char *gp_path = golden_path(g, gold ? gold : "golden.safetensors");
    int rc = saa_weights_open(gp_path, &g->ref);
    free(gp_path);
    if (rc != SAA_OK) {
        golden_close(g);
        return rc;
    }
    g->seen = calloc((size_t)saa_weights_count(g->ref) + 1, 1);
    if (!g->seen) {
        golden_close(g);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    *gp = g;
    return SAA_OK;
}

void golden_close(golden *g)
{
    if (!g) return;
    cJSON_Delete(g->config);
    saa_weights_close(g->ref);
    free(g->seen);
    free(g->dir);
    free(g);
}

int golden_has(const golden *g, const char *name) { return saa_weights_find(g->ref, name) != NULL; }

const saa_tensor *golden_ref(golden *g, const char *name)
{
    const saa_tensor *t = saa_weights_find(g->ref, name);
    if (!t) saa_set_error(SAA_EFORMAT, "%s: golden file has no tensor '%s'", g->dir, name);
    return t;
}

const float *golden_ref_f32(golden *g, const char *name, int64_t expect_numel)
{
    const saa_tensor *t = saa_weights_find_f32(g->ref, name);
    if (!t) {
        saa_set_error(SAA_EFORMAT, "%s: golden file has no tensor '%s'", g->dir, name);
        return NULL;
    }
    if (expect_numel >= 0 && saa_tensor_numel(t) != expect_numel) {
        saa_set_error(SAA_ESHAPE, "%s: golden tensor '%s' has %lld elements, expected %lld", g->dir, name,
                      (long long)saa_tensor_numel(t), (long long)expect_numel);
        return NULL;
    }
    return t->data;
}

void golden_mark_input(golden *g, const char *name) { mark_seen(g, name, 1); }

/* ---------- tolerance rules ---------- */

typedef struct {
    int found;
    double max_abs, max_rel, max_mismatch_frac;
    int has_rel, has_frac;
} tolerance;

static tolerance find_tolerance(const golden *g, const char *name)
{
    tolerance t = {0, 0, 0, 0, 0, 0};
    cJSON *rules = golden_cfg(g, "tolerances");
    cJSON *r;
    cJSON_ArrayForEach(r, rules)
    {
        cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "match");
        if (!cJSON_IsString(m) || fnmatch(m->valuestring, name, 0) != 0) continue;
        t.found = 1;
        cJSON *a = cJSON_GetObjectItemCaseSensitive(r, "max_abs");
        cJSON *rel = cJSON_GetObjectItemCaseSensitive(r, "max_rel");
        cJSON *fr = cJSON_GetObjectItemCaseSensitive(r, "max_mismatch_frac");
        if (cJSON_IsNumber(a)) t.max_abs = a->valuedouble;
        if (cJSON_IsNumber(rel)) {
            t.has_rel = 1;
            t.max_rel = rel->valuedouble;
        }
        if (cJSON_IsNumber(fr)) {
            t.has_frac = 1;
            t.max_mismatch_frac = fr->valuedouble;
        }
        break;
    }
    return t;
}

/* ---------- sampling (config "sampled") ---------- */

static int64_t flat_offset(const saa_tensor *t, const int64_t *idx)
{
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++) off = off * t->shape[d] + idx[d];
    return off;
}

/* Python's slice(start, stop, step).indices(n) for step > 0 (null = None, negative = from the end). */
static int python_slice(const cJSON *s, int64_t n, int64_t *start, int64_t *step, int64_t *count)
{
    if (!cJSON_IsArray(s) || cJSON_GetArraySize(s) < 2 || cJSON_GetArraySize(s) > 3) return -1;
    int64_t v[3] = {0, n, 1};
    for (int i = 0; i < cJSON_GetArraySize(s); i++) {
        const cJSON *e = cJSON_GetArrayItem(s, i);
        if (cJSON_IsNull(e)) continue;
        if (!cJSON_IsNumber(e) || e->valuedouble != (double)(int64_t)e->valuedouble) return -1;
        v[i] = (int64_t)e->valuedouble;
    }
    if (v[2] <= 0) return -1;
    for (int i = 0; i < 2; i++) {
        if (v[i] < 0) v[i] += n;
        if (v[i] < 0) v[i] = 0;
        if (v[i] > n) v[i] = n;
    }
    *start = v[0];
    *step = v[2];
    *count = v[1] > v[0] ? (v[1] - v[0] + v[2] - 1) / v[2] : 0;
    return 0;
}

/* Extracts the stored samples of a full result into a new f64 tensor shaped like the reference.
 * Returns NULL (with a reason in why) when the spec or shapes disagree. */
static saa_tensor *take_samples(golden *g, cJSON *spec, const saa_tensor *full, const saa_tensor *ref, char *why,
                                size_t whyn)
{
    cJSON *fs = cJSON_GetObjectItemCaseSensitive(spec, "full_shape");
    int nd = cJSON_GetArraySize(fs);
    if (nd != full->ndim) {
        snprintf(why, whyn, "computed rank %d, sampled full_shape has rank %d", full->ndim, nd);
        return NULL;
    }
    for (int d = 0; d < nd; d++)
        if (!cJSON_IsNumber(cJSON_GetArrayItem(fs, d)) ||
            (int64_t)cJSON_GetArrayItem(fs, d)->valuedouble != full->shape[d]) {
            char b[128];
            snprintf(why, whyn, "computed shape %s differs from the sampled full_shape", saa_shape_str(full, b, sizeof b));
            return NULL;
        }
    int64_t start[SAA_MAX_DIMS], step[SAA_MAX_DIMS], count[SAA_MAX_DIMS];
    const int64_t *index = NULL;
    int axis = -1;
    cJSON *slice = cJSON_GetObjectItemCaseSensitive(spec, "slice");
    saa_tensor *idx_f = NULL;
    for (int d = 0; d < nd; d++) {
        start[d] = 0;
        step[d] = 1;
        count[d] = full->shape[d];
    }
    if (slice) {
        if (!cJSON_IsArray(slice) || cJSON_GetArraySize(slice) > nd) {
            snprintf(why, whyn, "malformed sampled spec (slice: expected at most %d [start, stop, step] triples)", nd);
            return NULL;
        }
        /* dimensions without a triple are taken whole, as numpy does for FULL[s0, s1] */
        for (int d = 0; d < cJSON_GetArraySize(slice); d++)
            if (python_slice(cJSON_GetArrayItem(slice, d), full->shape[d], &start[d], &step[d], &count[d]) != 0) {
                snprintf(why, whyn, "malformed sampled spec (slice %d: expected [start, stop, step] of integers or null, "
                                    "step > 0)", d);
                return NULL;
            }
    } else {
        cJSON *ax = cJSON_GetObjectItemCaseSensitive(spec, "axis");
        cJSON *in = cJSON_GetObjectItemCaseSensitive(spec, "index");
        axis = cJSON_IsNumber(ax) ? ax->valueint : -1;
        const saa_tensor *it = cJSON_IsString(in) ? saa_weights_find(g->ref, in->valuestring) : NULL;
        if (axis < 0 || axis >= nd || !it) {
            snprintf(why, whyn, "malformed sampled spec (axis/index)");
            return NULL;
        }
        mark_seen(g, in->valuestring, 1);
        idx_f = saa_tensor_new(SAA_I64, 1, (int64_t[]){saa_tensor_numel(it)});
        if (!idx_f) return NULL;
        int64_t *iv = idx_f->data;
        for (int64_t i = 0; i < saa_tensor_numel(it); i++) {
            iv[i] = (int64_t)saa_tensor_get(it, i);
            if (iv[i] < 0 || iv[i] >= full->shape[axis]) {
                snprintf(why, whyn, "sample index %lld out of range", (long long)iv[i]);
                saa_tensor_free(idx_f);
                return NULL;
            }
        }
        index = iv;
        count[axis] = saa_tensor_numel(it);
    }
    int64_t total = 1;
    for (int d = 0; d < nd; d++) total *= count[d];
    if (total != saa_tensor_numel(ref)) {
        snprintf(why, whyn, "%lld samples of the computed result, %lld stored", (long long)total,
                 (long long)saa_tensor_numel(ref));
        saa_tensor_free(idx_f);
        return NULL;
    }
    saa_tensor *out = saa_tensor_new(SAA_F64, ref->ndim, ref->shape);
    if (!out) {
        saa_tensor_free(idx_f);
        return NULL;
    }
    double *o = out->data;
    int64_t pos[SAA_MAX_DIMS] = {0}, src[SAA_MAX_DIMS];
    for (int64_t k = 0; k < total; k++) {
        for (int d = 0; d < nd; d++) src[d] = (d == axis) ? index[pos[d]] : start[d] + pos[d] * step[d];
        o[k] = saa_tensor_get(full, flat_offset(full, src));
        for (int d = nd - 1; d >= 0; d--) {
            if (++pos[d] < count[d]) break;
            pos[d] = 0;
        }
    }
    saa_tensor_free(idx_f);
    return out;
}

static int is_int_dtype(saa_dtype t)
{
    return t == SAA_I64 || t == SAA_I32 || t == SAA_I16 || t == SAA_I8 || t == SAA_U8 || t == SAA_U16 ||
           t == SAA_BOOL;
}

static void print_line(golden *g, const char *status, const char *name, const saa_tensor *ref, const char *detail)
{
    char shape[96] = "";
    if (ref) saa_shape_str(ref, shape, sizeof shape);
    fprintf(g->out, "%-5s %-48s %-18s %s\n", status, name, shape, detail);
}

int golden_report(golden *g, const char *name, int pass, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    mark_seen(g, name, 2);
    print_line(g, pass ? "PASS" : "FAIL", name, saa_weights_find(g->ref, name), detail);
    if (pass)
        g->passed++;
    else
        g->failed++;
    return pass;
}

int golden_check(golden *g, const char *name, const saa_tensor *got)
{
    const saa_tensor *ref = saa_weights_find(g->ref, name);
    if (!ref) return golden_report(g, name, 0, "no such tensor in the golden file");
    char why[256] = "", b1[96], b2[96];
    saa_tensor *samples = NULL;
    const saa_tensor *cmp = got;
    cJSON *spec = golden_cfg(g, "sampled") ? cJSON_GetObjectItemCaseSensitive(golden_cfg(g, "sampled"), name) : NULL;
    if (spec) {
        samples = take_samples(g, spec, got, ref, why, sizeof why);
        if (!samples) return golden_report(g, name, 0, "sampling failed: %s", why);
        cmp = samples;
    } else if (!saa_shape_eq(got, ref->ndim, ref->shape)) {
        return golden_report(g, name, 0, "shape mismatch: computed %s, expected %s",
                             saa_shape_str(got, b1, sizeof b1), saa_shape_str(ref, b2, sizeof b2));
    }
    tolerance tol = find_tolerance(g, name);
    int64_t n = saa_tensor_numel(ref);
    int pass;
    if (n == 0) {
        pass = 1;
        snprintf(why, sizeof why, "empty, shape matches");
    } else if (is_int_dtype(ref->dtype)) {
        int64_t mismatches = 0;
        for (int64_t i = 0; i < n; i++)
            if (saa_tensor_get(cmp, i) != saa_tensor_get(ref, i)) mismatches++;
        double frac = (double)mismatches / (double)n;
        pass = tol.has_frac ? frac <= tol.max_mismatch_frac : mismatches == 0;
        snprintf(why, sizeof why, "mismatches=%lld (%.3g)%s", (long long)mismatches, frac,
                 tol.has_frac ? "" : " exact");
    } else {
        double sum = 0, sum2 = 0, max_abs = 0;
        int64_t finite = 0, nonfinite_bad = 0;
        for (int64_t i = 0; i < n; i++) {
            double r = saa_tensor_get(ref, i), c = saa_tensor_get(cmp, i);
            if (!isfinite(r)) {
                if (!(isnan(r) ? isnan(c) : c == r)) nonfinite_bad++;
                continue;
            }
            finite++;
            sum += r;
            sum2 += r * r;
            double e = fabs(c - r);
            if (!(e <= max_abs)) max_abs = isnan(e) ? INFINITY : e;
        }
        double mean = finite ? sum / (double)finite : 0;
        double var = finite ? sum2 / (double)finite - mean * mean : 0;
        double std = var > 0 ? sqrt(var) : 0;
        double rel = std > 0 ? max_abs / std : INFINITY;
        pass = nonfinite_bad == 0 &&
               (max_abs <= tol.max_abs || (tol.has_rel && std > 0 && rel <= tol.max_rel));
        snprintf(why, sizeof why, "max_abs=%.3g rel=%.3g (tol abs %.3g rel %.3g)%s", max_abs, rel, tol.max_abs,
                 tol.has_rel ? tol.max_rel : 0.0, nonfinite_bad ? " non-finite mismatch" : "");
        if (!tol.found) pass = 0, strncat(why, " no tolerance rule", sizeof why - strlen(why) - 1);
    }
    saa_tensor_free(samples);
    return golden_report(g, name, pass, "%s%s", spec ? "sampled " : "", why);
}

int golden_check_f32(golden *g, const char *name, const float *data, int ndim, const int64_t *shape)
{
    saa_tensor *t = saa_tensor_wrap(SAA_F32, ndim, shape, (void *)data);
    if (!t) return golden_report(g, name, 0, "%s", saa_last_error());
    int r = golden_check(g, name, t);
    saa_tensor_free(t);
    return r;
}

/* ---------- dispatch ---------- */

static const struct {
    const char *kind;
    int (*run)(golden *);
} kinds[] = {
    {"checkpoint", golden_kind_checkpoint}, {"sam", golden_kind_sam},
    {"gdino", golden_kind_gdino},           {"tokenizer", golden_kind_tokenizer},
    {"wrn_saliency", golden_kind_wrn_saliency}, {"metrics", golden_kind_metrics},
    {"saa_e2e", golden_kind_saa_e2e},
};

int golden_run(golden *g)
{
    const char *kind = golden_cfg_str(g, "kind");
    int (*run)(golden *) = NULL;
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!strcmp(kinds[i].kind, kind)) run = kinds[i].run;
    if (!run)
        return saa_set_error(SAA_EINVAL,
                             "%s/config.json: unknown kind \"%s\" (expected checkpoint, sam, gdino, tokenizer, "
                             "wrn_saliency, metrics or saa_e2e)",
                             g->dir, kind);
    cJSON *inputs = golden_cfg(g, "stored_inputs"), *it;
    cJSON_ArrayForEach(it, inputs) if (cJSON_IsString(it)) mark_seen(g, it->valuestring, 1);
    cJSON *meta = golden_cfg(g, "metadata");
    cJSON_ArrayForEach(it, meta) if (cJSON_IsString(it)) mark_seen(g, it->valuestring, 1);
    int rc = run(g);
    if (rc != SAA_OK) return rc;
    int skipped = 0;
    for (int i = 0; i < saa_weights_count(g->ref); i++) {
        if (g->seen[i] == 2) continue;
        const char *name = saa_weights_name(g->ref, i);
        int is_input = 0;
        cJSON_ArrayForEach(it, inputs) if (cJSON_IsString(it) && !strcmp(it->valuestring, name)) is_input = 1;
        int is_meta = 0;
        cJSON_ArrayForEach(it, meta) if (cJSON_IsString(it) && !strcmp(it->valuestring, name)) is_meta = 1;
        if (g->seen[i] == 1 && (is_input || is_meta)) {
            print_line(g, is_meta ? "META" : "INPUT", name, saa_weights_at(g->ref, i),
                       is_meta ? "describes the data (read, not checked)" : "stored input (neither passed nor failed)");
            continue;
        }
        if (g->seen[i] == 1) { /* an index tensor read by a sampled spec, or an input fed to a stage */
            print_line(g, "SKIP", name, saa_weights_at(g->ref, i), "used as input only, not checked");
        } else {
            print_line(g, "SKIP", name, saa_weights_at(g->ref, i), "not produced by this checker");
        }
        skipped++;
    }
    fprintf(g->out, "%d passed, %d failed%s", g->passed, g->failed, skipped ? "" : "\n");
    if (skipped) fprintf(g->out, ", %d skipped\n", skipped);
    return (g->failed || skipped) ? 1 : 0;
}
