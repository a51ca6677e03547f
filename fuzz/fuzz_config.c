/*
 * fuzz_config.c - mxp_checkpoint_read_config on arbitrary bytes as a checkpoint's config.json;
 * what it accepts must be a supported format with terminated strings, a known precision and
 * model, and training arguments that print and set again unchanged. It loads no weights
 * (fuzz_safetensors covers model.safetensors).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"
#include "mixprec/nn.h"
#include "mixprec/train.h"

static fuzz_file file;

/* A char array field holds a terminated string. */
#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

typedef struct printed {
    char text[16384];
    size_t len;
} printed;

static void print_arg(const char *key, const char *value, void *user) {
    printed *p = user;
    const int k = snprintf(p->text + p->len, sizeof p->text - p->len, "%s=%s\n", key, value);
    FUZZ_CHECK(k > 0 && (size_t)k < sizeof p->text - p->len, "the arguments print over %zu bytes",
               sizeof p->text);
    p->len += (size_t)k;
}

static void set_arg(const char *key, const char *value, void *user) {
    const mxp_status st = mxp_trainer_args_set(user, key, value);
    FUZZ_CHECK(st == MXP_OK, "argument '%s' = '%s' was read but is refused when set again", key,
               value);
}

int mixprec_fuzz_config(const uint8_t *data, size_t size) {
    const char *path = fuzz_file_put(&file, "config", ".json", data, size);
    if (!path) return 1;
    mxp_checkpoint_meta meta;
    mxp_model_config mc;
    memset(&meta, 0xa5, sizeof meta);
    memset(&mc, 0xa5, sizeof mc);
    if (mxp_checkpoint_read_config(path, &meta, &mc) != MXP_OK) return 0;

    FUZZ_CHECK(meta.format >= 1 && meta.format <= MXP_CHECKPOINT_FORMAT, "format %d", meta.format);
    FUZZ_CHECK(TERMINATED(meta.mixprec_version) && TERMINATED(meta.mixed_precision) &&
                   TERMINATED(meta.optimizer) && TERMINATED(mc.name),
               "an unterminated string");
    FUZZ_CHECK(!strcmp(meta.mixed_precision, "no") || !strcmp(meta.mixed_precision, "fp16") ||
                   !strcmp(meta.mixed_precision, "bf16"),
               "mixed_precision '%s'", meta.mixed_precision);
    FUZZ_CHECK(meta.master_weights == 0 || meta.master_weights == 1, "master_weights %d",
               meta.master_weights);
    FUZZ_CHECK(isfinite(meta.mean) && isfinite(meta.std) && meta.std > 0.0f,
               "normalisation mean %g std %g", (double)meta.mean, (double)meta.std);

    /* the model is a built-in one, and its sizes are in range */
    mxp_model_config def;
    FUZZ_CHECK(mxp_model_config_default(&def, mc.name) == MXP_OK, "model '%s'", mc.name);
    FUZZ_CHECK(mc.H >= 1 && mc.W >= 1 && mc.C >= 1 && mc.n_classes >= 2 && mc.hidden1 >= 0 &&
                   mc.hidden2 >= 0 && mc.channels1 >= 0 && mc.channels2 >= 0,
               "model sizes H %lld W %lld C %lld classes %d", (long long)mc.H, (long long)mc.W,
               (long long)mc.C, mc.n_classes);
    FUZZ_CHECK(mc.dropout >= 0.0f && mc.dropout < 1.0f, "dropout %g", (double)mc.dropout);

    if (meta.have_args) {
        FUZZ_CHECK(TERMINATED(meta.args.model) && TERMINATED(meta.args.data) &&
                       TERMINATED(meta.args.mixed_precision) && TERMINATED(meta.args.loss_scale) &&
                       TERMINATED(meta.args.optimizer) && TERMINATED(meta.args.schedule) &&
                       TERMINATED(meta.args.log) && TERMINATED(meta.args.save) &&
                       TERMINATED(meta.args.resume),
                   "an unterminated argument");
        static printed first, second;
        first.len = second.len = 0;
        mxp_trainer_args_each(&meta.args, print_arg, &first);
        mxp_trainer_args again;
        mxp_trainer_args_default(&again);
        mxp_trainer_args_each(&meta.args, set_arg, &again);
        mxp_trainer_args_each(&again, print_arg, &second);
        FUZZ_CHECK(first.len == second.len && memcmp(first.text, second.text, first.len) == 0,
                   "the arguments read, printed and set again differ:\n%.*s---\n%.*s",
                   (int)first.len, first.text, (int)second.len, second.text);
    }
    return 0;
}

FUZZ_ENTRY(mixprec_fuzz_config)
