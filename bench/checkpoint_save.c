/*
 * checkpoint_save.c - what a checkpoint costs: for each built-in model
 * (prepared in bf16 with fp32 master weights and AdamW moments, as
 * `mixprec train` runs it) the bytes of a checkpoint and the median time of
 * ROUNDS saves (temporary directory, three files fsync'd, rename, parent
 * fsync) and of ROUNDS complete loads (config, weights, optimizer state).
 *
 *     checkpoint_save [DIR] [ROUNDS]      DIR default /tmp, ROUNDS default 9
 *
 * One line of JSON per model on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mixprec.h"

#include "bench_util.h"

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static long file_size(const char *dir, const char *name) {
    char p[4096];
    struct stat sb;
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &sb) == 0 ? (long)sb.st_size : 0;
}

static _Noreturn void die(const char *what) {
    fprintf(stderr, "checkpoint_save: %s: %s\n", what, mxp_last_error());
    exit(1);
}

int main(int argc, char **argv) {
    const char *base = argc > 1 ? argv[1] : "/tmp";
    const int rounds = argc > 2 ? atoi(argv[2]) : 9;
    if (rounds < 1 || rounds > 1000) return 2;
    static const char *const models[] = {"mlp", "cnn"};
    for (int k = 0; k < 2; k++) {
        mxp_model_config c;
        mxp_model_t *m;
        mxp_optim_config oc;
        mxp_optimizer_t *opt;
        if (mxp_model_config_default(&c, models[k]) != MXP_OK || mxp_model_create(&m, &c) != MXP_OK)
            die("model");
        if (mxp_model_set_precision(m, MXP_DTYPE_BF16, 1) != MXP_OK) die("precision");
        mxp_optim_config_default(&oc, MXP_OPTIM_ADAMW);
        if (mxp_optimizer_create(&opt, &oc) != MXP_OK || mxp_optimizer_bind(opt, m) != MXP_OK)
            die("optimizer");
        mxp_checkpoint_meta meta;
        mxp_checkpoint_meta_init(&meta);
        snprintf(meta.mixed_precision, sizeof meta.mixed_precision, "bf16");
        meta.have_state = 1;
        meta.state.accel.scaler.scale = 1.0f;
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/mixprec_bench_ckpt_%ld_%s", base, (long)getpid(), models[k]);
        double *save = calloc((size_t)rounds, sizeof *save), *load = calloc((size_t)rounds, 8);
        for (int r = 0; r < rounds; r++) {
            double t0 = now();
            if (mxp_checkpoint_save(dir, m, opt, &meta) != MXP_OK) die("save");
            save[r] = now() - t0;
            mxp_model_t *back;
            mxp_checkpoint_meta got;
            mxp_optimizer_t *o2;
            t0 = now();
            if (mxp_checkpoint_load(dir, &back, &got) != MXP_OK) die("load");
            if (mxp_optimizer_create(&o2, &oc) != MXP_OK ||
                mxp_optimizer_bind(o2, back) != MXP_OK ||
                mxp_checkpoint_load_optimizer(dir, o2) != MXP_OK)
                die("load optimizer");
            load[r] = now() - t0;
            mxp_optimizer_free(o2);
            mxp_model_free(back);
        }
        const long bytes = file_size(dir, "model.safetensors") +
                           file_size(dir, "training_state.safetensors") +
                           file_size(dir, "config.json");
        const double ms = median(save, rounds), ml = median(load, rounds);
        printf("{\"model\":\"%s\",\"params\":%lld,\"bytes\":%ld,\"rounds\":%d,\"save_ms\":%.2f,"
               "\"save_mb_per_s\":%.0f,\"load_ms\":%.2f}\n",
               models[k], (long long)mxp_model_numel(m), bytes, rounds, 1e3 * ms,
               (double)bytes / ms / 1e6, 1e3 * ml);
        char cmd[4200];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
        free(save);
        free(load);
        mxp_optimizer_free(opt);
        mxp_model_free(m);
    }
    return 0;
}
