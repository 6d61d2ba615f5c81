/* saa command-line tool: segment, eval, inspect, check-golden. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/commands.h"
#include "golden/golden.h"
#include "saa/tensor.h"
#include "saa/weights.h"

static int usage(FILE *f)
{
    fprintf(f,
            "usage: saa COMMAND [ARGS]\n"
            "commands:\n"
            "  segment ...           find and outline defects in images (saa segment --help)\n"
            "  eval ...              evaluate on a labelled dataset (saa eval --help)\n"
            "  check-golden DIR      run a golden reference folder and compare every stored tensor\n"
            "  inspect FILE          list the tensors (name, dtype, shape) of a .pth or .safetensors file\n"
            "  help                  this text\n");
    return f == stderr ? 2 : 0;
}

static int cmd_inspect(int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "saa inspect: expected one checkpoint file (.pth or .safetensors)\n");
        return 2;
    }
    saa_weights *w;
    if (saa_weights_open(argv[0], &w) != SAA_OK) {
        fprintf(stderr, "saa inspect: %s\n", saa_last_error());
        return 1;
    }
    int64_t total = 0;
    for (int i = 0; i < saa_weights_count(w); i++) {
        const saa_tensor *t = saa_weights_at(w, i);
        char shape[128];
        printf("%-64s %-8s %s\n", saa_weights_name(w, i), saa_dtype_name(t->dtype), saa_shape_str(t, shape, sizeof shape));
        total += saa_tensor_numel(t);
    }
    printf("%d tensors, %lld elements\n", saa_weights_count(w), (long long)total);
    saa_weights_close(w);
    return 0;
}

static int cmd_check_golden(int argc, char **argv)
{
    if (argc != 1) {
        fprintf(stderr, "saa check-golden: expected one golden folder (holding config.json)\n");
        return 2;
    }
    golden *g;
    if (golden_open(argv[0], stdout, &g) != SAA_OK) {
        fprintf(stderr, "saa check-golden: %s\n", saa_last_error());
        return 1;
    }
    int rc = golden_run(g);
    if (rc < 0) fprintf(stderr, "saa check-golden: %s\n", saa_last_error());
    golden_close(g);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) return usage(stderr);
    saa_threads_init();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "check-golden")) return cmd_check_golden(argc - 2, argv + 2);
    if (!strcmp(cmd, "segment")) return cmd_segment(argc - 2, argv + 2);
    if (!strcmp(cmd, "eval")) return cmd_eval(argc - 2, argv + 2);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 2, argv + 2);
    if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) return usage(stdout);
    fprintf(stderr, "saa: unknown command '%s'\n", cmd);
    return usage(stderr);
}
