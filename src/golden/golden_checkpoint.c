/* check-golden kind "checkpoint": the .pth reader against real torch.save outputs.
 * Every tensor of the expected file is compared (exactly) with the one loaded from each readable
 * checkpoint listed in config "files", after checking its stored dtype against "stored_dtypes";
 * checkpoints the reader refuses (legacy format, a malicious pickle) must fail with a clear one-line
 * message and without side effects. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "golden.h"

/* Loads one checkpoint and compares every expected tensor with it. */
static void check_loadable(golden *g, const char *label, const char *path)
{
    saa_weights *w;
    if (saa_weights_open(path, &w) != SAA_OK) {
        golden_report(g, label, 0, "cannot load: %s", saa_last_error());
        return;
    }
    fprintf(g->out, "# %s (%d tensors)\n", label, saa_weights_count(w));
    cJSON *dtypes = golden_cfg(g, "stored_dtypes");
    int expected_count = saa_weights_count(g->ref);
    for (int i = 0; i < expected_count; i++) {
        const char *name = saa_weights_name(g->ref, i);
        char what[320];
        const saa_tensor *t = saa_weights_find(w, name);
        if (!t) {
            golden_report(g, name, 0, "missing from %s", label);
            continue;
        }
        cJSON *dt = cJSON_GetObjectItemCaseSensitive(dtypes, name);
        snprintf(what, sizeof what, "%s:%s.stored_dtype", label, name);
        if (cJSON_IsString(dt))
            golden_report(g, what, !strcmp(dt->valuestring, saa_dtype_name(t->dtype)), "stored %s, expected %s",
                          saa_dtype_name(t->dtype), dt->valuestring);
        else
            golden_report(g, what, 0, "config stored_dtypes has no entry for %s", name);
        /* float16/bfloat16 are compared as float32 (exact conversion), as expected.safetensors stores them */
        saa_tensor *conv = NULL;
        if (t->dtype == SAA_F16 || t->dtype == SAA_BF16) {
            conv = saa_tensor_to_f32(t);
            if (!conv) {
                golden_report(g, name, 0, "conversion failed: %s", saa_last_error());
                continue;
            }
        }
        /* expected.safetensors stores a 0-d tensor with shape [1]: compare the one value through a [1] view */
        const saa_tensor *ref = saa_weights_at(g->ref, i);
        saa_tensor view = *(conv ? conv : t);
        if (view.ndim == 0 && ref->ndim == 1 && ref->shape[0] == 1) {
            view.ndim = 1;
            view.shape[0] = 1;
            fprintf(g->out, "# %s: 0-d tensor, compared as shape [1] (the expected file's layout)\n", name);
        }
        golden_check(g, name, &view);
        saa_tensor_free(conv);
    }
    char what[320];
    snprintf(what, sizeof what, "%s:tensor_count", label);
    golden_report(g, what, saa_weights_count(w) == expected_count, "%d tensors loaded, %d expected",
                  saa_weights_count(w), expected_count);
    saa_weights_close(w);
}

/* A checkpoint that must be refused: the error must be one clear line naming the file. */
static void check_refused(golden *g, const char *label, const char *path, const char *must_mention)
{
    saa_weights *w = NULL;
    int rc = saa_weights_open(path, &w);
    if (rc == SAA_OK) {
        golden_report(g, label, 0, "was loaded (%d tensors) but must be refused", saa_weights_count(w));
        saa_weights_close(w);
        return;
    }
    const char *msg = saa_last_error();
    int clear = strstr(msg, path) && strstr(msg, must_mention) && !strchr(msg, '\n');
    golden_report(g, label, clear, "refused: %s", msg);
}

int golden_kind_checkpoint(golden *g)
{
    cJSON *files = golden_cfg(g, "files");
    if (!cJSON_IsObject(files)) return saa_set_error(SAA_EFORMAT, "%s/config.json: missing object \"files\"", g->dir);
    for (cJSON *f = files->child; f; f = f->next) {
        if (!cJSON_IsString(f)) continue;
        char *path = golden_path(g, f->valuestring);
        if (!path) return saa_set_error(SAA_ENOMEM, "out of memory");
        if (!strcmp(f->string, "legacy")) {
            /* pre-1.6 format: either supported (then compared like the others) or refused clearly */
            saa_weights *w;
            if (saa_weights_open(path, &w) == SAA_OK) {
                saa_weights_close(w);
                check_loadable(g, f->valuestring, path);
            } else {
                check_refused(g, f->valuestring, path, "legacy");
            }
        } else {
            check_loadable(g, f->valuestring, path);
        }
        free(path);
    }
    /* malicious.pth: a valid archive whose pickle calls os.system; must be refused before anything runs */
    const char *mal = golden_cfg_str(g, "files_malicious");
    char *mpath = golden_path(g, mal ? mal : "malicious.pth");
    if (mpath && access(mpath, R_OK) == 0) {
        char *marker = golden_path(g, "saa-pwned.txt");
        int existed = access("saa-pwned.txt", F_OK) == 0 || (marker && access(marker, F_OK) == 0);
        check_refused(g, mal ? mal : "malicious.pth", mpath, "unknown global");
        int appeared = !existed && (access("saa-pwned.txt", F_OK) == 0 || (marker && access(marker, F_OK) == 0));
        golden_report(g, "malicious.pth:no_side_effect", !existed && !appeared,
                      existed ? "saa-pwned.txt existed before the load: cannot tell" :
                      appeared ? "saa-pwned.txt appeared" : "no saa-pwned.txt created");
        free(marker);
    }
    free(mpath);
    return SAA_OK;
}
