/* Categories and presets: the hybrid prompts of SAA+ as data (presets/DATASET.json), the property-prompt parse
 * (SAA/model.py set_property_text_prompts) and the named fixes of official quirks. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "saa/json.h"
#include "saa/saa.h"

static const struct {
    const char *name;
    unsigned flag;
    const char *help;
} fixes[] = {
    {"rgb", SAA_FIX_RGB, "give SAM and the saliency backbone RGB images (official: the BGR array of cv2.imread)"},
    {"fusion", SAA_FIX_FUSION,
     "start the confidence-fusion weight map at 0 (official: 1, which halves the score of a lone mask)"},
    {"property", SAA_FIX_PROPERTY,
     "parse the property prompt by meaning (official: by word position, object caption keeps its comma)"},
    {"phrase", SAA_FIX_PHRASE, "drop a box only if its phrase contains the filtered phrase as whole words "
                               "(official: substring count, 'macaroni1' also filters 'macaroni')"},
    {"boxscore", SAA_FIX_BOXSCORE,
     "box score and phrase from the caption's word tokens only (official: max over all 256 columns, so [CLS], "
     "[SEP] and '.' count)"},
    {"clip", SAA_FIX_CLIP, "clip boxes to the image before SAM (official: unclipped)"},
};

int saa_fix_parse(const char *text, unsigned *flags)
{
    *flags = 0;
    if (!text || !*text || !strcmp(text, "none")) return SAA_OK;
    const char *p = text;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = 0;
        if (n == 3 && !strncmp(p, "all", 3)) {
            for (size_t i = 0; i < sizeof fixes / sizeof fixes[0]; i++) *flags |= fixes[i].flag;
            found = 1;
        }
        for (size_t i = 0; !found && i < sizeof fixes / sizeof fixes[0]; i++)
            if (strlen(fixes[i].name) == n && !strncmp(p, fixes[i].name, n)) {
                *flags |= fixes[i].flag;
                found = 1;
            }
        if (!found)
            return saa_set_error(SAA_EINVAL, "--fix: unknown fix '%.*s' (known: rgb, fusion, property, phrase, "
                                             "boxscore, clip, all, none)",
                                 (int)n, p);
        p += n;
        if (*p == ',') p++;
    }
    return SAA_OK;
}

const char *saa_fix_help(void)
{
    static char text[2048];
    if (!text[0]) {
        size_t k = 0;
        for (size_t i = 0; i < sizeof fixes / sizeof fixes[0] && k < sizeof text; i++)
            k += (size_t)snprintf(text + k, sizeof text - k, "  %-9s %s\n", fixes[i].name, fixes[i].help);
    }
    return text;
}

const char *saa_fix_names(unsigned flags, char *buf, size_t n)
{
    size_t k = 0;
    if (n) buf[0] = 0;
    for (size_t i = 0; i < sizeof fixes / sizeof fixes[0] && k < n; i++)
        if (flags & fixes[i].flag) k += (size_t)snprintf(buf + k, n - k, "%s%s", k ? "," : "", fixes[i].name);
    if (!k) snprintf(buf, n, "none");
    return buf;
}

void saa_category_free(saa_category *c)
{
    if (!c) return;
    for (int i = 0; i < c->n_prompts; i++) {
        free(c->defect_prompts[i]);
        free(c->filter_phrases[i]);
    }
    free(c->defect_prompts);
    free(c->filter_phrases);
    free(c->name);
    free(c->property_prompt);
    free(c->object_prompt);
    memset(c, 0, sizeof *c);
}

int saa_category_add_prompt(saa_category *c, const char *defect_prompt, const char *filter_phrase)
{
    char **d = realloc(c->defect_prompts, sizeof *d * (size_t)(c->n_prompts + 1));
    if (!d) return saa_set_error(SAA_ENOMEM, "out of memory");
    c->defect_prompts = d;
    char **f = realloc(c->filter_phrases, sizeof *f * (size_t)(c->n_prompts + 1));
    if (!f) return saa_set_error(SAA_ENOMEM, "out of memory");
    c->filter_phrases = f;
    d[c->n_prompts] = strdup(defect_prompt);
    f[c->n_prompts] = strdup(filter_phrase);
    if (!d[c->n_prompts] || !f[c->n_prompts]) {
        free(d[c->n_prompts]);
        free(f[c->n_prompts]);
        return saa_set_error(SAA_ENOMEM, "out of memory");
    }
    c->n_prompts++;
    return SAA_OK;
}

/* Python int(word): optional sign, digits, surrounding whitespace allowed. */
static int python_int(const char *w, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(w, &end, 10);
    while (isspace((unsigned char)*end)) end++;
    if (end == w || *end || errno || v < INT_MIN || v > INT_MAX) return 0;
    *out = (int)v;
    return 1;
}

static int python_float(const char *w, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(w, &end);
    while (isspace((unsigned char)*end)) end++;
    if (end == w || *end) return 0;
    *out = v;
    return 1;
}

/* Splits text into words: on every single ' ' (Python split(' '), empty words kept) or on whitespace runs
 * (Python split()). */
static int split_words(const char *text, int python_space, char ***words_out)
{
    int n = 0, cap = 32;
    char **words = malloc(sizeof *words * (size_t)cap);
    const char *p = text;
    while (words) {
        if (!python_space)
            while (isspace((unsigned char)*p)) p++;
        if (!python_space && !*p) break;
        size_t len = python_space ? strcspn(p, " ") : strcspn(p, " \t\r\n\f\v");
        if (n == cap) {
            char **nw = realloc(words, sizeof *words * (size_t)(cap *= 2));
            if (!nw) break;
            words = nw;
        }
        words[n++] = strndup(p, len);
        p += len;
        if (!*p) break;
        p++; /* the separator */
        if (python_space && !*p && n < cap) { /* Python: "a ".split(' ') == ["a", ""] */
            words[n++] = strdup("");
            break;
        }
    }
    *words_out = words;
    return words ? n : 0;
}

int saa_property_parse(const char *text, int fixed, saa_category *c)
{
    char **w;
    int n = split_words(text, !fixed, &w);
    int rc = SAA_OK;
    double ratio = 0;
    int count = 0, k = 0;
    if (n < 20)
        rc = saa_set_error(SAA_EINVAL,
                           "property prompt has %d words, expected the form 'the image of NAME have COUNT "
                           "similar|dissimilar OBJECT, with a maximum of K anomaly. The anomaly would not exceed "
                           "RATIO object area.': \"%s\"",
                           n, text);
    else if (!python_int(w[5], &count) || count <= 0)
        rc = saa_set_error(SAA_EINVAL, "property prompt: word 6 '%s' is not a positive object count: \"%s\"", w[5],
                           text);
    else if (!python_int(w[12], &k) || k <= 0)
        rc = saa_set_error(SAA_EINVAL, "property prompt: word 13 '%s' is not a positive anomaly count: \"%s\"", w[12],
                           text);
    else if (!python_float(w[19], &ratio) || !(ratio > 0))
        rc = saa_set_error(SAA_EINVAL, "property prompt: word 20 '%s' is not a positive area ratio: \"%s\"", w[19],
                           text);
    if (rc == SAA_OK) {
        char *obj = strdup(w[7]);
        if (fixed && obj) {
            size_t len = strlen(obj);
            while (len && ispunct((unsigned char)obj[len - 1])) obj[--len] = 0;
        }
        free(c->object_prompt);
        c->object_prompt = obj;
        c->object_count = count;
        c->top_k = k;
        c->max_area_ratio = ratio;
        free(c->property_prompt);
        c->property_prompt = strdup(text);
    }
    for (int i = 0; i < n; i++) free(w[i]);
    free(w);
    return rc;
}

static cJSON *load_preset_json(const char *dir, const char *file)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return saa_json_load(path);
}

int saa_category_add_general_prompts(saa_category *c, const char *presets_dir)
{
    cJSON *g = load_preset_json(presets_dir, "general.json");
    if (!g) return SAA_EIO;
    cJSON *t, *templates = cJSON_GetObjectItemCaseSensitive(g, "templates");
    int rc = cJSON_IsArray(templates)
                 ? SAA_OK
                 : saa_set_error(SAA_EFORMAT, "%s/general.json: expected a \"templates\" list", presets_dir);
    cJSON_ArrayForEach(t, templates)
    {
        if (rc != SAA_OK) break;
        const char *s = cJSON_GetStringValue(t), *hole = s ? strstr(s, "{}") : NULL;
        if (!hole) {
            rc = saa_set_error(SAA_EFORMAT, "%s/general.json: each template must be a string containing {}",
                               presets_dir);
            break;
        }
        size_t n = strlen(s) + strlen(c->name) + 1;
        char *prompt = malloc(n);
        if (!prompt) {
            rc = saa_set_error(SAA_ENOMEM, "out of memory");
            break;
        }
        snprintf(prompt, n, "%.*s%s%s", (int)(hole - s), s, c->name, hole + 2);
        rc = saa_category_add_prompt(c, prompt, c->name);
        free(prompt);
    }
    cJSON_Delete(g);
    return rc;
}

/* Fills c from one category entry of a preset file. */
static int category_from_json(const char *file, const char *name, cJSON *entry, const char *presets_dir,
                              unsigned fixes, saa_category *c)
{
    memset(c, 0, sizeof *c);
    c->name = strdup(name);
    if (!c->name) return saa_set_error(SAA_ENOMEM, "out of memory");
    int rc = SAA_OK;
    const char *prop = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "property_prompt"));
    if (prop) {
        rc = saa_property_parse(prop, (fixes & SAA_FIX_PROPERTY) != 0, c);
    } else {
        cJSON *obj = cJSON_GetObjectItemCaseSensitive(entry, "object");
        cJSON *cnt = cJSON_GetObjectItemCaseSensitive(entry, "count");
        cJSON *k = cJSON_GetObjectItemCaseSensitive(entry, "top_k");
        cJSON *area = cJSON_GetObjectItemCaseSensitive(entry, "max_area");
        if (!cJSON_IsString(obj) || !cJSON_IsNumber(cnt) || !cJSON_IsNumber(k) || !cJSON_IsNumber(area) ||
            cnt->valueint <= 0 || k->valueint <= 0 || !(area->valuedouble > 0))
            rc = saa_set_error(SAA_EFORMAT,
                               "%s: category '%s' needs \"property_prompt\" or all of \"object\" (string), \"count\" "
                               "(>0), \"top_k\" (>0), \"max_area\" (>0)",
                               file, name);
        else {
            c->object_prompt = strdup(obj->valuestring);
            c->object_count = cnt->valueint;
            c->top_k = k->valueint;
            c->max_area_ratio = area->valuedouble;
        }
    }
    if (rc == SAA_OK) rc = saa_category_add_general_prompts(c, presets_dir);
    cJSON *p, *prompts = cJSON_GetObjectItemCaseSensitive(entry, "defect_prompts");
    cJSON_ArrayForEach(p, prompts)
    {
        if (rc != SAA_OK) break;
        const char *d = cJSON_GetStringValue(cJSON_GetArrayItem(p, 0));
        const char *f = cJSON_GetStringValue(cJSON_GetArrayItem(p, 1));
        if (!d || !f) {
            rc = saa_set_error(SAA_EFORMAT,
                               "%s: category '%s': each defect prompt must be [prompt, filtered phrase]", file, name);
            break;
        }
        rc = saa_category_add_prompt(c, d, f);
    }
    if (rc != SAA_OK) saa_category_free(c);
    return rc;
}

static const char *dataset_files[] = {"mvtec.json", "visa.json", "ksdd2.json", "mtd.json"};

const char *saa_presets_dir(const char *argv0)
{
    static char dir[4096];
    (void)argv0;
    const char *env = getenv("SAA_PRESETS");
    if (env && *env) return env;
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        static const char *tries[] = {"/../share/saa/presets", "/../presets", "/../../presets"};
        for (size_t i = 0; i < sizeof tries / sizeof tries[0]; i++) {
            char probe[4200];
            snprintf(dir, sizeof dir, "%s%s", exe, tries[i]);
            snprintf(probe, sizeof probe, "%s/general.json", dir);
            if (access(probe, R_OK) == 0) return dir;
        }
    }
#ifdef SAA_SOURCE_PRESETS
    return SAA_SOURCE_PRESETS;
#else
    return NULL;
#endif
}

int saa_category_load(const char *presets_dir, const char *name, unsigned fixes, saa_category *out)
{
    memset(out, 0, sizeof *out);
    if (!presets_dir)
        return saa_set_error(SAA_EIO, "preset files not found (set SAA_PRESETS to the presets/ folder)");
    const char *slash = strchr(name, '/');
    const char *cat = slash ? slash + 1 : name;
    char known[4096] = "";
    size_t kn = 0;
    for (size_t i = 0; i < sizeof dataset_files / sizeof dataset_files[0]; i++) {
        size_t dlen = (size_t)(strchr(dataset_files[i], '.') - dataset_files[i]);
        if (slash && ((size_t)(slash - name) != dlen || strncmp(dataset_files[i], name, dlen))) continue;
        cJSON *doc = load_preset_json(presets_dir, dataset_files[i]);
        if (!doc) return SAA_EIO;
        cJSON *cats = cJSON_GetObjectItemCaseSensitive(doc, "categories"), *c;
        cJSON *entry = cJSON_GetObjectItemCaseSensitive(cats, cat);
        if (entry) {
            char file[4200];
            snprintf(file, sizeof file, "%s/%s", presets_dir, dataset_files[i]);
            int rc = category_from_json(file, cat, entry, presets_dir, fixes, out);
            cJSON_Delete(doc);
            return rc;
        }
        cJSON_ArrayForEach(c, cats)
        {
            if (kn < sizeof known - 80)
                kn += (size_t)snprintf(known + kn, sizeof known - kn, "%s%.*s/%s", kn ? ", " : "", (int)dlen,
                                       dataset_files[i], c->string);
        }
        cJSON_Delete(doc);
    }
    return saa_set_error(SAA_EINVAL, "unknown category '%s'; known categories: %s", name, known);
}

int saa_category_load_file(const char *path, const char *presets_dir, const char *name, unsigned fixes,
                           saa_category *out)
{
    memset(out, 0, sizeof *out);
    cJSON *doc = saa_json_load(path);
    if (!doc) return SAA_EIO;
    cJSON *cats = cJSON_GetObjectItemCaseSensitive(doc, "categories");
    int rc;
    if (!cJSON_IsObject(cats) || !cats->child) {
        rc = saa_set_error(SAA_EFORMAT, "%s: expected {\"categories\": {NAME: {...}}} with at least one category",
                           path);
    } else {
        cJSON *entry = name ? cJSON_GetObjectItemCaseSensitive(cats, name) : cats->child;
        if (!name && cats->child->next)
            rc = saa_set_error(SAA_EINVAL, "%s: holds several categories; choose one with --category", path);
        else if (!entry)
            rc = saa_set_error(SAA_EINVAL, "%s: no category '%s'", path, name);
        else
            rc = category_from_json(path, entry->string, entry, presets_dir, fixes, out);
    }
    cJSON_Delete(doc);
    return rc;
}
