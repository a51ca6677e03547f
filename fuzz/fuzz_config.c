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
#include "fuzz_args.h"
#include "mixprec/nn.h"
#include "mixprec/train.h"

static fuzz_file file;

/* A char array field holds a terminated string. */
#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

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
        check_round_trip(&meta.args);
    }
    return 0;
}

FUZZ_ENTRY(mixprec_fuzz_config)
