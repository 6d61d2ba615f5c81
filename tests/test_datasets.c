/* Dataset readers on small trees generated here (one per layout, plus broken variants); the real mtd-mini
 * sample is read by test_datasets_mtd_mini.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jpeglib.h>

#include "saa/datasets.h"
#include "saa/image.h"
#include "saa/tensor.h"
#include "test.h"

static char root[256];

static void mkdirs(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    for (char *c = p + strlen(root) + 1; *c; c++)
        if (*c == '/') {
            *c = 0;
            mkdir(p, 0755);
            *c = '/';
        }
    mkdir(p, 0755);
}

static void png(const char *rel, int w, int h, int value)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    uint8_t *d = calloc((size_t)w * h, 1);
    if (value) d[(size_t)(h / 2) * w + w / 2] = (uint8_t)value; /* one nonzero pixel */
    CHECK(saa_png_save_u8(p, d, w, h, 1) == SAA_OK);
    free(d);
}

static void jpg(const char *rel, int w, int h)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "wb");
    CHECK(f != NULL);
    if (!f) return;
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_start_compress(&c, TRUE);
    uint8_t *row = calloc((size_t)w * 3, 1);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    fclose(f);
}

static void text(const char *rel, const char *s)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) fputs(s, f), fclose(f);
}

static int rm_rf(const char *p)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    return system(cmd);
}

static void rm(const char *rel)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    remove(p);
}

/* error message contains needle */
static int err_has(const char *needle)
{
    const char *e = saa_last_error();
    int ok = e && strstr(e, needle) != NULL;
    if (!ok) fprintf(stderr, "  error was: %s (expected to mention %s)\n", e ? e : "(none)", needle);
    return ok;
}

static void test_mvtec(void)
{
    mkdirs("mv/bottle/test/good");
    mkdirs("mv/bottle/test/crack");
    mkdirs("mv/bottle/ground_truth/crack");
    mkdirs("mv/bottle/train/good");
    mkdirs("mv/zz_not_a_category");
    png("mv/bottle/test/good/001.png", 8, 6, 0);
    png("mv/bottle/test/good/000.png", 8, 6, 0);
    png("mv/bottle/test/crack/000.png", 8, 6, 0);
    png("mv/bottle/ground_truth/crack/000_mask.png", 8, 6, 255);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/mv", root);
    char **names;
    int n;
    CHECK(saa_dataset_categories(SAA_DS_MVTEC, dir, &names, &n) == SAA_OK);
    CHECK(n == 1 && !strcmp(names[0], "bottle"));
    saa_dataset_names_free(names, n);
    saa_dataset d;
    CHECK(saa_dataset_open(SAA_DS_MVTEC, dir, "bottle", NULL, &d) == SAA_OK);
    CHECK(d.n == 3);
    if (d.n == 3) {
        CHECK(!strcmp(d.samples[0].id, "crack/000") && d.samples[0].label == 1 && d.samples[0].mask);
        CHECK(!strcmp(d.samples[1].id, "good/000") && d.samples[1].label == 0 && !d.samples[1].mask);
        CHECK(!strcmp(d.samples[2].id, "good/001"));
        CHECK(d.samples[0].width == 8 && d.samples[0].height == 6);
        uint8_t *m;
        CHECK(saa_sample_load_mask(&d.samples[0], &m) == SAA_OK);
        int sum = 0;
        for (int i = 0; i < 48; i++) sum += m[i];
        CHECK(sum == 1 && m[3 * 8 + 4] == 1);
        free(m);
        CHECK(saa_sample_load_mask(&d.samples[1], &m) == SAA_OK);
        sum = 0;
        for (int i = 0; i < 48; i++) sum += m[i];
        CHECK(sum == 0);
        free(m);
    }
    saa_dataset_free(&d);
    /* shards: disjoint, covering, in order */
    {
        int seen[3] = {0, 0, 0};
        for (int k = 1; k <= 2; k++) {
            CHECK(saa_dataset_open(SAA_DS_MVTEC, dir, "bottle", NULL, &d) == SAA_OK);
            CHECK(saa_dataset_shard(&d, k, 2) == SAA_OK);
            CHECK(d.n == (k == 1 ? 2 : 1));
            for (int64_t i = 0; i < d.n; i++) {
                int idx = !strcmp(d.samples[i].id, "crack/000") ? 0 : !strcmp(d.samples[i].id, "good/000") ? 1 : 2;
                seen[idx]++;
            }
            if (k == 1 && d.n == 2) CHECK(!strcmp(d.samples[1].id, "good/001"));
            saa_dataset_free(&d);
        }
        CHECK(seen[0] == 1 && seen[1] == 1 && seen[2] == 1);
        CHECK(saa_dataset_open(SAA_DS_MVTEC, dir, "bottle", NULL, &d) == SAA_OK);
        CHECK(saa_dataset_shard(&d, 3, 2) == SAA_EINVAL);
        saa_dataset_free(&d);
    }
    /* size mismatch */
    png("mv/bottle/ground_truth/crack/000_mask.png", 8, 7, 255);
    CHECK(saa_dataset_open(SAA_DS_MVTEC, dir, "bottle", NULL, &d) == SAA_ESHAPE);
    CHECK(err_has("000_mask.png") && err_has("8x7"));
    /* missing mask */
    rm("mv/bottle/ground_truth/crack/000_mask.png");
    CHECK(saa_dataset_open(SAA_DS_MVTEC, dir, "bottle", NULL, &d) == SAA_EIO);
    CHECK(err_has("ground_truth/crack/000_mask.png") && err_has("not found"));
    /* empty test folder / unknown category */
    mkdirs("mv/empty/test/good");
    CHECK(saa_dataset_open(SAA_DS_MVTEC, dir, "empty", NULL, &d) != SAA_OK);
    CHECK(err_has("no *.png test images"));
    CHECK(saa_dataset_open(SAA_DS_MVTEC, dir, "nope", NULL, &d) != SAA_OK);
    CHECK(err_has("nope/test"));
}

static void test_visa(void)
{
    mkdirs("visa/split_csv");
    mkdirs("visa/candle/Data/Images/Normal");
    mkdirs("visa/candle/Data/Images/Anomaly");
    mkdirs("visa/candle/Data/Masks/Anomaly");
    png("visa/candle/Data/Images/Normal/0000.png", 10, 10, 0);
    png("visa/candle/Data/Images/Normal/0001.png", 10, 10, 0);
    png("visa/candle/Data/Images/Anomaly/000.png", 10, 10, 0);
    png("visa/candle/Data/Masks/Anomaly/000.png", 10, 10, 3);
    text("visa/split_csv/1cls.csv",
         "object,split,label,image,mask\n"
         "candle,train,normal,candle/Data/Images/Normal/0001.png,\n"
         "candle,test,anomaly,candle/Data/Images/Anomaly/000.png,candle/Data/Masks/Anomaly/000.png\n"
         "candle,test,normal,candle/Data/Images/Normal/0000.png,\n"
         "pcb1,test,normal,pcb1/Data/Images/Normal/0000.png,\n");
    char dir[300];
    snprintf(dir, sizeof dir, "%s/visa", root);
    char **names;
    int n;
    CHECK(saa_dataset_categories(SAA_DS_VISA, dir, &names, &n) == SAA_OK);
    CHECK(n == 2 && !strcmp(names[0], "candle") && !strcmp(names[1], "pcb1"));
    saa_dataset_names_free(names, n);
    saa_dataset d;
    CHECK(saa_dataset_open(SAA_DS_VISA, dir, "candle", NULL, &d) == SAA_OK);
    CHECK(d.n == 2);
    if (d.n == 2) {
        CHECK(!strcmp(d.samples[0].id, "good/0000") && d.samples[0].label == 0);
        CHECK(!strcmp(d.samples[1].id, "bad/000") && d.samples[1].label == 1);
        uint8_t *m;
        CHECK(saa_sample_load_mask(&d.samples[1], &m) == SAA_OK);
        CHECK(m[5 * 10 + 5] == 1); /* class index 3 binarised */
        free(m);
    }
    saa_dataset_free(&d);
    /* the pcb1 row points at a missing image */
    CHECK(saa_dataset_open(SAA_DS_VISA, dir, "pcb1", NULL, &d) == SAA_EIO);
    CHECK(err_has("pcb1/Data/Images/Normal/0000.png"));
    /* anomalous row without a mask */
    text("visa/split_csv/1cls.csv", "object,split,label,image,mask\n"
                                    "candle,test,anomaly,candle/Data/Images/Anomaly/000.png,\n");
    CHECK(saa_dataset_open(SAA_DS_VISA, dir, "candle", NULL, &d) == SAA_EFORMAT);
    CHECK(err_has("has no mask"));
    text("visa/split_csv/1cls.csv", "object,split,image\ncandle,test,x.png\n");
    CHECK(saa_dataset_open(SAA_DS_VISA, dir, "candle", NULL, &d) == SAA_EFORMAT);
    CHECK(err_has("object, split, label, image, mask"));
}

static void test_ksdd2(void)
{
    mkdirs("ksdd2/train");
    mkdirs("ksdd2/test");
    png("ksdd2/train/10000.png", 7, 9, 0);
    png("ksdd2/train/10000_GT.png", 7, 9, 1);
    png("ksdd2/train/10001.png", 7, 9, 0);
    png("ksdd2/train/10001_GT.png", 7, 9, 0);
    png("ksdd2/test/20000.png", 7, 9, 0);
    png("ksdd2/test/20000_GT.png", 7, 9, 0);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/ksdd2", root);
    saa_dataset d;
    CHECK(saa_dataset_open(SAA_DS_KSDD2, dir, NULL, NULL, &d) == SAA_OK);
    CHECK(d.n == 2 && !strcmp(d.category, "ksdd2")); /* the official test set is the train/ folder */
    if (d.n == 2) {
        CHECK(!strcmp(d.samples[0].id, "bad/10000") && d.samples[0].label == 1);
        CHECK(!strcmp(d.samples[1].id, "good/10001") && d.samples[1].label == 0);
    }
    saa_dataset_free(&d);
    rm("ksdd2/train/10001_GT.png");
    CHECK(saa_dataset_open(SAA_DS_KSDD2, dir, NULL, NULL, &d) == SAA_EIO);
    CHECK(err_has("10001_GT.png"));
}

static void test_mtd(void)
{
    mkdirs("mtd/MT_Crack/Imgs");
    mkdirs("mtd/MT_Free/Imgs");
    mkdirs("mtd/other");
    jpg("mtd/MT_Crack/Imgs/b.jpg", 12, 5);
    png("mtd/MT_Crack/Imgs/b.png", 12, 5, 200);
    jpg("mtd/MT_Crack/Imgs/a.jpg", 12, 5);
    png("mtd/MT_Crack/Imgs/a.png", 12, 5, 0);
    jpg("mtd/MT_Free/Imgs/c.jpg", 6, 4);
    png("mtd/MT_Free/Imgs/c.png", 6, 4, 0);
    char dir[300];
    snprintf(dir, sizeof dir, "%s/mtd", root);
    saa_dataset d;
    CHECK(saa_dataset_open(SAA_DS_MTD, dir, NULL, NULL, &d) == SAA_OK);
    CHECK(d.n == 3);
    if (d.n == 3) {
        CHECK(!strcmp(d.samples[0].id, "MT_Crack/a") && d.samples[0].label == 0); /* label from content */
        CHECK(!strcmp(d.samples[1].id, "MT_Crack/b") && d.samples[1].label == 1);
        CHECK(!strcmp(d.samples[2].id, "MT_Free/c") && d.samples[2].width == 6 && d.samples[2].height == 4);
    }
    saa_dataset_free(&d);
    png("mtd/MT_Free/Imgs/c.png", 6, 5, 0);
    CHECK(saa_dataset_open(SAA_DS_MTD, dir, NULL, NULL, &d) == SAA_ESHAPE);
    CHECK(err_has("c.png") && err_has("6x5"));
    rm("mtd/MT_Free/Imgs/c.jpg");
    CHECK(saa_dataset_open(SAA_DS_MTD, dir, NULL, NULL, &d) == SAA_EIO);
    CHECK(err_has("c.jpg"));
}

static void test_folder(void)
{
    mkdirs("fold/imgs");
    mkdirs("fold/masks");
    png("fold/imgs/x1.png", 5, 5, 0);
    png("fold/imgs/x2.png", 5, 5, 0);
    png("fold/imgs/x3.png", 5, 5, 0);
    png("fold/masks/x1_m.png", 5, 5, 9);
    png("fold/masks/x2_m.png", 5, 5, 0);
    char dir[300], mdir[300];
    snprintf(dir, sizeof dir, "%s/fold/imgs", root);
    snprintf(mdir, sizeof mdir, "%s/fold/masks", root);
    saa_dataset_options o = {mdir, "{stem}_m.png"};
    saa_dataset d;
    CHECK(saa_dataset_open(SAA_DS_FOLDER, dir, NULL, &o, &d) == SAA_OK);
    CHECK(d.n == 3 && !strcmp(d.category, "imgs"));
    if (d.n == 3) {
        CHECK(d.samples[0].label == 1 && d.samples[0].mask);
        CHECK(d.samples[1].label == 0 && d.samples[1].mask);
        CHECK(d.samples[2].label == 0 && !d.samples[2].mask); /* no mask file: normal */
    }
    saa_dataset_free(&d);
    mkdirs("fold/none");
    snprintf(dir, sizeof dir, "%s/fold/none", root);
    CHECK(saa_dataset_open(SAA_DS_FOLDER, dir, NULL, NULL, &d) == SAA_EIO);
    CHECK(err_has("no .png/.jpg images"));
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/saa_test_datasets_XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_mvtec();
    test_visa();
    test_ksdd2();
    test_mtd();
    test_folder();
    rm_rf(root);
    TEST_MAIN_END();
}
