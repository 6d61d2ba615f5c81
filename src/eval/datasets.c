/* Test-set readers (mirrors datasets/mvtec.py, visa_public.py, ksdd2.py, mtd.py of SAA+), with
 * validation: every error names the offending path. */
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "saa/datasets.h"
#include "saa/image.h"
#include "saa/tensor.h"

static const char *kind_names[] = {"mvtec", "visa", "ksdd2", "mtd", "folder"};

int saa_dataset_kind_parse(const char *text, saa_dataset_kind *kind)
{
    for (int i = 0; i < 5; i++)
        if (!strcmp(text, kind_names[i])) {
            *kind = (saa_dataset_kind)i;
            return SAA_OK;
        }
    return saa_set_error(SAA_EINVAL, "unknown dataset \"%s\" (expected mvtec, visa, ksdd2, mtd or folder)", text);
}

const char *saa_dataset_kind_name(saa_dataset_kind kind)
{
    return (unsigned)kind < 5 ? kind_names[kind] : "?";
}

/* ---------- small helpers ---------- */

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int ends_with_ci(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    if (b > a) return 0;
    for (size_t i = 0; i < b; i++)
        if (tolower((unsigned char)s[a - b + i]) != tolower((unsigned char)suffix[i])) return 0;
    return 1;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct {
    char **v;
    int n, cap;
} strlist;

static void strlist_free(strlist *l)
{
    for (int i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int strlist_push(strlist *l, char *s) /* takes s */
{
    if (!s) return saa_set_error(SAA_ENOMEM, "datasets: out of memory");
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        char **v = realloc(l->v, (size_t)cap * sizeof *v);
        if (!v) {
            free(s);
            return saa_set_error(SAA_ENOMEM, "datasets: out of memory");
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = s;
    return SAA_OK;
}

/* Sorted entries of dir: want_dirs = 1 folders, 0 regular files (hidden entries skipped). */
static int list_dir(const char *dir, int want_dirs, strlist *out)
{
    memset(out, 0, sizeof *out);
    DIR *d = opendir(dir);
    if (!d) return saa_set_error(SAA_EIO, "%s: cannot open folder", dir);
    struct dirent *e;
    int rc = SAA_OK;
    while (rc == SAA_OK && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *p = str_printf("%s/%s", dir, e->d_name);
        if (!p) {
            rc = saa_set_error(SAA_ENOMEM, "datasets: out of memory");
            break;
        }
        int keep = want_dirs ? is_dir(p) : is_file(p);
        free(p);
        if (keep) rc = strlist_push(out, strdup(e->d_name));
    }
    closedir(d);
    if (rc != SAA_OK) {
        strlist_free(out);
        return rc;
    }
    if (out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
    return SAA_OK;
}

static char *stem_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    size_t n = dot ? (size_t)(dot - name) : strlen(name);
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, name, n);
    s[n] = 0;
    return s;
}

/* ---------- image header sizes ---------- */

int saa_image_size(const char *path, int *w, int *h)
{
    FILE *f = fopen(path, "rb");
    if (!f) return saa_set_error(SAA_EIO, "%s: cannot open image", path);
    unsigned char b[32];
    size_t got = fread(b, 1, 24, f);
    int rc = SAA_EFORMAT;
    if (got >= 24 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8) && !memcmp(b + 12, "IHDR", 4)) {
        *w = (int)((unsigned)b[16] << 24 | (unsigned)b[17] << 16 | (unsigned)b[18] << 8 | b[19]);
        *h = (int)((unsigned)b[20] << 24 | (unsigned)b[21] << 16 | (unsigned)b[22] << 8 | b[23]);
        rc = SAA_OK;
    } else if (got >= 4 && b[0] == 0xFF && b[1] == 0xD8) {
        /* walk the JPEG markers to the first SOFn */
        long pos = 2;
        for (;;) {
            if (fseek(f, pos, SEEK_SET) != 0 || fread(b, 1, 4, f) != 4) break;
            if (b[0] != 0xFF) break;
            if (b[1] == 0xFF) { /* fill byte */
                pos++;
                continue;
            }
            int marker = b[1], len = b[2] << 8 | b[3];
            if (marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC) {
                if (fread(b, 1, 5, f) != 5) break;
                *h = b[1] << 8 | b[2];
                *w = b[3] << 8 | b[4];
                rc = SAA_OK;
                break;
            }
            if (marker == 0xD9 || marker == 0xDA || len < 2) break;
            pos += 2 + len;
        }
    }
    fclose(f);
    if (rc != SAA_OK) return saa_set_error(SAA_EFORMAT, "%s: not a readable PNG or JPEG file", path);
    if (*w <= 0 || *h <= 0) return saa_set_error(SAA_EFORMAT, "%s: image has size %dx%d", path, *w, *h);
    return SAA_OK;
}

/* ---------- dataset building ---------- */

void saa_dataset_free(saa_dataset *d)
{
    if (!d) return;
    for (int64_t i = 0; i < d->n; i++) {
        saa_sample *s = &d->samples[i];
        free(s->image), free(s->mask), free(s->type), free(s->id);
    }
    free(d->samples);
    free(d->category);
    memset(d, 0, sizeof *d);
}

void saa_dataset_names_free(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Appends a sample (takes image/mask; copies type/stem), validating that the files exist and that the
 * mask has the image's size. */
static int add_sample(saa_dataset *d, int64_t *cap, char *image, char *mask, int label, const char *type,
                      const char *stem)
{
    int rc = SAA_OK;
    if (!image) rc = saa_set_error(SAA_ENOMEM, "datasets: out of memory");
    if (rc == SAA_OK && !is_file(image)) rc = saa_set_error(SAA_EIO, "%s: image file not found", image);
    int w = 0, h = 0;
    if (rc == SAA_OK) rc = saa_image_size(image, &w, &h);
    if (rc == SAA_OK && mask) {
        int mw, mh;
        if (!is_file(mask))
            rc = saa_set_error(SAA_EIO, "%s: mask file not found (for image %s)", mask, image);
        else if ((rc = saa_image_size(mask, &mw, &mh)) == SAA_OK && (mw != w || mh != h))
            rc = saa_set_error(SAA_ESHAPE, "%s: mask is %dx%d but its image %s is %dx%d", mask, mw, mh, image, w,
                               h);
    }
    if (rc == SAA_OK && d->n == *cap) {
        int64_t c = *cap ? 2 * *cap : 64;
        saa_sample *s = realloc(d->samples, (size_t)c * sizeof *s);
        if (!s)
            rc = saa_set_error(SAA_ENOMEM, "datasets: out of memory");
        else
            d->samples = s, *cap = c;
    }
    if (rc != SAA_OK) {
        free(image), free(mask);
        return rc;
    }
    saa_sample *s = &d->samples[d->n];
    s->image = image;
    s->mask = mask;
    s->label = label;
    s->type = strdup(type);
    s->id = str_printf("%s/%s", type, stem);
    s->width = w, s->height = h;
    d->n++;
    if (!s->type || !s->id) return saa_set_error(SAA_ENOMEM, "datasets: out of memory");
    return SAA_OK;
}

/* Any nonzero pixel in the mask (official: gt.sum() > 0 on cv2.IMREAD_GRAYSCALE). */
static int mask_nonzero(const char *path, int *nonzero)
{
    saa_image m;
    int rc = saa_image_load_gray(path, &m);
    if (rc != SAA_OK) return rc;
    *nonzero = 0;
    for (size_t i = 0; i < (size_t)m.w * m.h; i++)
        if (m.data[i]) {
            *nonzero = 1;
            break;
        }
    saa_image_free(&m);
    return SAA_OK;
}

/* MVTec-like: CAT/test/TYPE/NAME.<img_ext>, CAT/ground_truth/TYPE/NAME<mask_suffix>; TYPE good = normal. */
static int open_mvtec_like(const char *root, const char *category, const char *img_ext, const char *mask_suffix,
                           saa_dataset *d)
{
    char *test = str_printf("%s/%s/test", root, category);
    if (!test) return saa_set_error(SAA_ENOMEM, "datasets: out of memory");
    if (!is_dir(test)) {
        int rc = saa_set_error(SAA_EIO, "%s: folder not found (expected CATEGORY/test/DEFECT/*%s)", test, img_ext);
        free(test);
        return rc;
    }
    strlist types;
    int rc = list_dir(test, 1, &types);
    int64_t cap = 0;
    for (int t = 0; rc == SAA_OK && t < types.n; t++) {
        char *dir = str_printf("%s/%s", test, types.v[t]);
        strlist files;
        rc = dir ? list_dir(dir, 0, &files) : saa_set_error(SAA_ENOMEM, "datasets: out of memory");
        int good = !strcmp(types.v[t], "good");
        for (int i = 0; rc == SAA_OK && i < files.n; i++) {
            if (!ends_with_ci(files.v[i], img_ext)) continue;
            char *stem = stem_of(files.v[i]);
            if (!stem) {
                rc = saa_set_error(SAA_ENOMEM, "datasets: out of memory");
                break;
            }
            char *img = str_printf("%s/%s", dir, files.v[i]);
            char *mask = good ? NULL : str_printf("%s/%s/ground_truth/%s/%s%s", root, category, types.v[t], stem, mask_suffix);
            if (!good && !mask) {
                free(img), free(stem);
                rc = saa_set_error(SAA_ENOMEM, "datasets: out of memory");
                break;
            }
            rc = add_sample(d, &cap, img, mask, !good, types.v[t], stem);
            free(stem);
        }
        if (dir) strlist_free(&files);
        free(dir);
    }
    strlist_free(&types);
    if (rc == SAA_OK && d->n == 0)
        rc = saa_set_error(SAA_EIO, "%s: no *%s test images found", test, img_ext);
    free(test);
    return rc;
}

/* ---------- VisA split csv ---------- */

static int csv_split(char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    for (;;) {
        if (n < max) fields[n] = p;
        n++;
        char *c = strchr(p, ',');
        if (!c) break;
        *c = 0;
        p = c + 1;
    }
    /* trim line ends */
    for (int i = 0; i < n && i < max; i++) {
        size_t l = strlen(fields[i]);
        while (l && (fields[i][l - 1] == '\n' || fields[i][l - 1] == '\r')) fields[i][--l] = 0;
    }
    return n;
}

typedef struct {
    int object, split, label, image, mask;
} visa_cols;

static int visa_header(FILE *f, const char *path, visa_cols *c)
{
    char line[4096];
    if (!fgets(line, sizeof line, f)) return saa_set_error(SAA_EFORMAT, "%s: empty csv", path);
    char *fl[16];
    int n = csv_split(line, fl, 16);
    *c = (visa_cols){-1, -1, -1, -1, -1};
    for (int i = 0; i < n && i < 16; i++) {
        if (!strcmp(fl[i], "object")) c->object = i;
        if (!strcmp(fl[i], "split")) c->split = i;
        if (!strcmp(fl[i], "label")) c->label = i;
        if (!strcmp(fl[i], "image")) c->image = i;
        if (!strcmp(fl[i], "mask")) c->mask = i;
    }
    if (c->object < 0 || c->split < 0 || c->label < 0 || c->image < 0 || c->mask < 0)
        return saa_set_error(SAA_EFORMAT, "%s: header must name the columns object, split, label, image, mask",
                             path);
    return SAA_OK;
}

static int open_visa_csv(const char *root, const char *csv, const char *category, saa_dataset *d)
{
    FILE *f = fopen(csv, "r");
    if (!f) return saa_set_error(SAA_EIO, "%s: cannot open", csv);
    visa_cols c;
    int rc = visa_header(f, csv, &c);
    char line[4096];
    int64_t cap = 0, lineno = 1;
    /* csv order within each label, normal rows first (pass 0) then anomalous ones (pass 1) */
    for (int pass = 0; rc == SAA_OK && pass < 2; pass++) {
        if (pass == 1) {
            rewind(f);
            if (!fgets(line, sizeof line, f)) break;
            lineno = 1;
        }
        while (rc == SAA_OK && fgets(line, sizeof line, f)) {
            lineno++;
            if (line[0] == '\n' || line[0] == '\r' || !line[0]) continue;
            char *fl[16];
            int n = csv_split(line, fl, 16);
            int need = c.object;
            if (c.split > need) need = c.split;
            if (c.label > need) need = c.label;
            if (c.image > need) need = c.image;
            if (c.mask > need) need = c.mask;
            if (n <= need) {
                rc = saa_set_error(SAA_EFORMAT, "%s:%lld: expected %d columns", csv, (long long)lineno, need + 1);
                break;
            }
            if (strcmp(fl[c.object], category) || strcmp(fl[c.split], "test")) continue;
            int anomalous;
            if (!strcmp(fl[c.label], "normal"))
                anomalous = 0;
            else if (!strcmp(fl[c.label], "anomaly"))
                anomalous = 1;
            else {
                rc = saa_set_error(SAA_EFORMAT, "%s:%lld: label \"%s\" is neither normal nor anomaly", csv,
                                   (long long)lineno, fl[c.label]);
                break;
            }
            if (anomalous != pass) continue;
            const char *base = strrchr(fl[c.image], '/');
            char *stem = stem_of(base ? base + 1 : fl[c.image]);
            char *img = str_printf("%s/%s", root, fl[c.image]);
            char *mask = NULL;
            if (anomalous) {
                if (!fl[c.mask][0]) {
                    free(stem), free(img);
                    rc = saa_set_error(SAA_EFORMAT, "%s:%lld: anomalous test image %s has no mask", csv,
                                       (long long)lineno, fl[c.image]);
                    break;
                }
                mask = str_printf("%s/%s", root, fl[c.mask]);
            }
            rc = stem ? add_sample(d, &cap, img, mask, anomalous, anomalous ? "bad" : "good", stem)
                      : saa_set_error(SAA_ENOMEM, "datasets: out of memory");
            free(stem);
        }
    }
    fclose(f);
    if (rc == SAA_OK && d->n == 0)
        rc = saa_set_error(SAA_EIO, "%s: no test rows for object \"%s\"", csv, category);
    return rc;
}

/* ---------- KSDD2 / MTD / folder ---------- */

static int open_ksdd2(const char *root, saa_dataset *d)
{
    char *train = str_printf("%s/train", root);
    if (!train) return saa_set_error(SAA_ENOMEM, "datasets: out of memory");
    /* datasets/ksdd2.py: test_img_path = os.path.join(KSDD2_DIR, 'train') */
    const char *dir = is_dir(train) ? train : root;
    strlist files;
    int rc = list_dir(dir, 0, &files);
    int64_t cap = 0;
    for (int i = 0; rc == SAA_OK && i < files.n; i++) {
        const char *f = files.v[i];
        if (!ends_with_ci(f, ".png") || ends_with_ci(f, "_GT.png")) continue;
        char *stem = stem_of(f);
        char *img = str_printf("%s/%s", dir, f);
        char *mask = str_printf("%s/%s_GT.png", dir, stem ? stem : "");
        int nz = 0;
        if (!stem || !img || !mask) {
            rc = saa_set_error(SAA_ENOMEM, "datasets: out of memory");
        } else if (!is_file(mask)) {
            rc = saa_set_error(SAA_EIO, "%s: mask file not found (for image %s)", mask, img);
        } else {
            rc = mask_nonzero(mask, &nz);
        }
        if (rc != SAA_OK) {
            free(stem), free(img), free(mask);
            break;
        }
        rc = add_sample(d, &cap, img, mask, nz, nz ? "bad" : "good", stem);
        free(stem);
    }
    strlist_free(&files);
    if (rc == SAA_OK && d->n == 0) rc = saa_set_error(SAA_EIO, "%s: no NNNNN.png + NNNNN_GT.png pairs found", dir);
    free(train);
    return rc;
}

static int open_mtd(const char *root, saa_dataset *d)
{
    strlist classes;
    int rc = list_dir(root, 1, &classes);
    int64_t cap = 0;
    for (int c = 0; rc == SAA_OK && c < classes.n; c++) {
        if (strncmp(classes.v[c], "MT_", 3)) continue;
        char *dir = str_printf("%s/%s/Imgs", root, classes.v[c]);
        if (!dir || !is_dir(dir)) {
            rc = dir ? saa_set_error(SAA_EIO, "%s: folder not found (expected MT_*/Imgs/NAME.jpg + NAME.png)", dir)
                     : saa_set_error(SAA_ENOMEM, "datasets: out of memory");
            free(dir);
            break;
        }
        strlist files;
        rc = list_dir(dir, 0, &files);
        for (int i = 0; rc == SAA_OK && i < files.n; i++) {
            const char *f = files.v[i];
            int jpg = ends_with_ci(f, ".jpg"), png = ends_with_ci(f, ".png");
            if (!jpg && !png) continue;
            char *stem = stem_of(f);
            if (!stem) {
                rc = saa_set_error(SAA_ENOMEM, "datasets: out of memory");
                break;
            }
            char *img = str_printf("%s/%s.jpg", dir, stem), *mask = str_printf("%s/%s.png", dir, stem);
            if (png) { /* visit each pair once, from its image; a lone mask is an error */
                if (img && !is_file(img)) rc = saa_set_error(SAA_EIO, "%s: image file not found (for mask %s)", img, mask);
                free(img), free(mask), free(stem);
                continue;
            }
            int nz = 0;
            if (!img || !mask)
                rc = saa_set_error(SAA_ENOMEM, "datasets: out of memory");
            else if (!is_file(mask))
                rc = saa_set_error(SAA_EIO, "%s: mask file not found (for image %s)", mask, img);
            else
                rc = mask_nonzero(mask, &nz);
            if (rc != SAA_OK) {
                free(img), free(mask), free(stem);
                break;
            }
            rc = add_sample(d, &cap, img, mask, nz, classes.v[c], stem);
            free(stem);
        }
        strlist_free(&files);
        free(dir);
    }
    strlist_free(&classes);
    if (rc == SAA_OK && d->n == 0) rc = saa_set_error(SAA_EIO, "%s: no MT_*/Imgs/NAME.jpg + NAME.png pairs found", root);
    return rc;
}

static char *mask_name(const char *pattern, const char *name, const char *stem)
{
    size_t cap = strlen(pattern) + 4 * (strlen(name) + 1) + 1;
    char *out = malloc(cap), *o = out;
    if (!out) return NULL;
    for (const char *p = pattern; *p;) {
        if (!strncmp(p, "{stem}", 6) && (size_t)(o - out) + strlen(stem) < cap) {
            o += sprintf(o, "%s", stem);
            p += 6;
        } else if (!strncmp(p, "{name}", 6) && (size_t)(o - out) + strlen(name) < cap) {
            o += sprintf(o, "%s", name);
            p += 6;
        } else if ((size_t)(o - out) + 1 < cap) {
            *o++ = *p++;
        } else {
            break;
        }
    }
    *o = 0;
    return out;
}

static int open_folder(const char *root, const saa_dataset_options *opts, saa_dataset *d)
{
    strlist files;
    int rc = list_dir(root, 0, &files);
    int64_t cap = 0;
    const char *mdir = opts ? opts->mask_dir : NULL;
    const char *pattern = opts && opts->mask_pattern ? opts->mask_pattern : "{stem}.png";
    if (rc == SAA_OK && mdir && !is_dir(mdir)) rc = saa_set_error(SAA_EIO, "%s: masks folder not found", mdir);
    for (int i = 0; rc == SAA_OK && i < files.n; i++) {
        const char *f = files.v[i];
        if (!ends_with_ci(f, ".png") && !ends_with_ci(f, ".jpg") && !ends_with_ci(f, ".jpeg")) continue;
        char *stem = stem_of(f);
        char *img = str_printf("%s/%s", root, f);
        char *mask = NULL;
        int nz = 0;
        if (!stem || !img) rc = saa_set_error(SAA_ENOMEM, "datasets: out of memory");
        if (rc == SAA_OK && mdir) {
            char *mn = mask_name(pattern, f, stem);
            mask = mn ? str_printf("%s/%s", mdir, mn) : NULL;
            free(mn);
            if (!mask)
                rc = saa_set_error(SAA_ENOMEM, "datasets: out of memory");
            else if (!is_file(mask))
                free(mask), mask = NULL; /* no mask file: a normal image */
            else
                rc = mask_nonzero(mask, &nz);
        }
        if (rc != SAA_OK) {
            free(stem), free(img), free(mask);
            break;
        }
        rc = add_sample(d, &cap, img, mask, nz, nz ? "bad" : "good", stem);
        free(stem);
    }
    strlist_free(&files);
    if (rc == SAA_OK && d->n == 0) rc = saa_set_error(SAA_EIO, "%s: no .png/.jpg images found", root);
    return rc;
}

static char *base_name(const char *path)
{
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    char *s = malloc(n - b + 1);
    if (!s) return NULL;
    memcpy(s, path + b, n - b);
    s[n - b] = 0;
    return s;
}

int saa_dataset_open(saa_dataset_kind kind, const char *root, const char *category,
                     const saa_dataset_options *opts, saa_dataset *d)
{
    memset(d, 0, sizeof *d);
    d->kind = kind;
    if (!is_dir(root)) return saa_set_error(SAA_EIO, "%s: dataset folder not found", root);
    int rc;
    switch (kind) {
    case SAA_DS_MVTEC:
        if (!category) return saa_set_error(SAA_EINVAL, "mvtec: a category is required");
        d->category = strdup(category);
        rc = open_mvtec_like(root, category, ".png", "_mask.png", d);
        break;
    case SAA_DS_VISA: {
        if (!category) return saa_set_error(SAA_EINVAL, "visa: a category is required");
        d->category = strdup(category);
        char *csv = str_printf("%s/split_csv/1cls.csv", root);
        if (!csv) return saa_set_error(SAA_ENOMEM, "datasets: out of memory");
        if (is_file(csv))
            rc = open_visa_csv(root, csv, category, d);
        else
            rc = open_mvtec_like(root, category, ".JPG", ".png", d); /* prepared VisA_pytorch/1cls */
        free(csv);
        break;
    }
    case SAA_DS_KSDD2:
        d->category = strdup("ksdd2");
        rc = open_ksdd2(root, d);
        break;
    case SAA_DS_MTD:
        d->category = strdup("mtd");
        rc = open_mtd(root, d);
        break;
    case SAA_DS_FOLDER:
        d->category = category ? strdup(category) : base_name(root);
        rc = open_folder(root, opts, d);
        break;
    default:
        return saa_set_error(SAA_EINVAL, "unknown dataset kind %d", (int)kind);
    }
    if (rc == SAA_OK && !d->category) rc = saa_set_error(SAA_ENOMEM, "datasets: out of memory");
    if (rc != SAA_OK) saa_dataset_free(d);
    return rc;
}

int saa_dataset_categories(saa_dataset_kind kind, const char *root, char ***names, int *n)
{
    *names = NULL;
    *n = 0;
    strlist out = {0};
    int rc = SAA_OK;
    if (!is_dir(root)) return saa_set_error(SAA_EIO, "%s: dataset folder not found", root);
    char *csv = kind == SAA_DS_VISA ? str_printf("%s/split_csv/1cls.csv", root) : NULL;
    if (kind == SAA_DS_MVTEC || (kind == SAA_DS_VISA && csv && !is_file(csv))) {
        strlist dirs;
        rc = list_dir(root, 1, &dirs);
        for (int i = 0; rc == SAA_OK && i < dirs.n; i++) {
            char *t = str_printf("%s/%s/test", root, dirs.v[i]);
            if (t && is_dir(t)) rc = strlist_push(&out, strdup(dirs.v[i]));
            free(t);
        }
        strlist_free(&dirs);
    } else if (kind == SAA_DS_VISA) {
        FILE *f = csv ? fopen(csv, "r") : NULL;
        visa_cols c;
        if (!f) rc = saa_set_error(SAA_EIO, "%s: cannot open", csv ? csv : root);
        if (rc == SAA_OK) rc = visa_header(f, csv, &c);
        char line[4096];
        while (rc == SAA_OK && fgets(line, sizeof line, f)) {
            char *fl[16];
            int k = csv_split(line, fl, 16);
            if (k <= c.object || !fl[c.object][0]) continue;
            int seen = 0;
            for (int i = 0; i < out.n; i++) seen |= !strcmp(out.v[i], fl[c.object]);
            if (!seen) rc = strlist_push(&out, strdup(fl[c.object]));
        }
        if (f) fclose(f);
        if (rc == SAA_OK && out.n > 1) qsort(out.v, (size_t)out.n, sizeof *out.v, cmp_str);
    } else if (kind == SAA_DS_KSDD2) {
        rc = strlist_push(&out, strdup("ksdd2"));
    } else if (kind == SAA_DS_MTD) {
        rc = strlist_push(&out, strdup("mtd"));
    } else {
        rc = strlist_push(&out, base_name(root));
    }
    free(csv);
    if (rc == SAA_OK && out.n == 0) rc = saa_set_error(SAA_EIO, "%s: no categories found", root);
    if (rc != SAA_OK) {
        strlist_free(&out);
        return rc;
    }
    *names = out.v;
    *n = out.n;
    return SAA_OK;
}

int saa_sample_load_mask(const saa_sample *s, uint8_t **mask)
{
    size_t N = (size_t)s->width * s->height;
    *mask = calloc(N ? N : 1, 1);
    if (!*mask) return saa_set_error(SAA_ENOMEM, "datasets: out of memory");
    if (!s->mask) return SAA_OK;
    saa_image m;
    int rc = saa_image_load_gray(s->mask, &m);
    if (rc != SAA_OK) {
        free(*mask);
        *mask = NULL;
        return rc;
    }
    if (m.w != s->width || m.h != s->height) {
        rc = saa_set_error(SAA_ESHAPE, "%s: mask is %dx%d but its image is %dx%d", s->mask, m.w, m.h, s->width,
                           s->height);
        saa_image_free(&m);
        free(*mask);
        *mask = NULL;
        return rc;
    }
    for (size_t i = 0; i < N; i++) (*mask)[i] = m.data[i] > 0; /* gt[gt > 0] = 255; m[m > 0] = 1 */
    saa_image_free(&m);
    return SAA_OK;
}

int saa_dataset_shard(saa_dataset *d, int index, int count)
{
    if (count < 1 || index < 1 || index > count)
        return saa_set_error(SAA_EINVAL, "shard %d/%d: expected 1 <= I <= N", index, count);
    int64_t k = 0;
    for (int64_t i = 0; i < d->n; i++) {
        saa_sample *s = &d->samples[i];
        if (i % count == index - 1) {
            d->samples[k++] = *s;
        } else {
            free(s->image), free(s->mask), free(s->type), free(s->id);
        }
    }
    d->n = k;
    return SAA_OK;
}
