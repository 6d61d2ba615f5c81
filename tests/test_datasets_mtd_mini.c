/* The MTD reader on the real mtd-mini sample (shared/data/mtd-mini; labels, sizes and mask pixel counts
 * from its README). Skipped (77) when the sample is absent. */
#include <stdlib.h>
#include <string.h>

#include "saa/datasets.h"
#include "saa/tensor.h"
#include "test.h"

/* labels from shared/data/mtd-mini/README.md: 15 anomalous, MT_Free normal */
int main(void)
{
    const char *dir = SAA_SHARED_DIR "/data/mtd-mini";
    if (!test_exists(dir)) {
        printf("SKIPPED: %s not found\n", dir);
        return 77;
    }
    saa_dataset d;
    CHECK(saa_dataset_open(SAA_DS_MTD, dir, NULL, NULL, &d) == SAA_OK);
    CHECK(d.n == 18);
    int anomalous = 0, free_ok = 1, found = 0;
    for (int64_t i = 0; i < d.n; i++) {
        anomalous += d.samples[i].label;
        if (!strcmp(d.samples[i].type, "MT_Free")) free_ok &= d.samples[i].label == 0;
        if (!strcmp(d.samples[i].id, "MT_Blowhole/exp1_num_4727")) {
            found = 1;
            CHECK(d.samples[i].width == 113 && d.samples[i].height == 288);
            uint8_t *m;
            CHECK(saa_sample_load_mask(&d.samples[i], &m) == SAA_OK);
            int fg = 0;
            for (int k = 0; k < 113 * 288; k++) fg += m[k];
            CHECK(fg == 157); /* README: fg>0 = 157 */
            free(m);
        }
    }
    CHECK(anomalous == 15 && free_ok && found);
    saa_dataset_free(&d);
    TEST_MAIN_END();
}

