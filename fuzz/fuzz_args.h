/*
 * fuzz_args.h - the Trainer-argument round trip two harnesses check (fuzz_yaml_args.c,
 * fuzz_config.c): arguments printed by mxp_trainer_args_each (as a checkpoint's
 * config.json records them), set again through mxp_trainer_args_set, must all be accepted
 * and print the same. Include after fuzz_util.h.
 */
#ifndef MIXPREC_FUZZ_ARGS_H
#define MIXPREC_FUZZ_ARGS_H

#include "mixprec/train.h"

/* mxp_trainer_args_each's output, as "key=value\n" lines. */
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

/* Each printed argument set into `into` (an mxp_trainer_args); every one must be accepted. */
static void set_arg(const char *key, const char *value, void *user) {
    mxp_trainer_args *into = user;
    const mxp_status st = mxp_trainer_args_set(into, key, value);
    FUZZ_CHECK(st == MXP_OK, "'%s' printed as '%s' is refused when set again", key, value);
}

/* The printed arguments read back through the setter print the same. */
static void check_round_trip(const mxp_trainer_args *a) {
    static printed first, second;
    first.len = second.len = 0;
    mxp_trainer_args_each(a, print_arg, &first);
    mxp_trainer_args b;
    mxp_trainer_args_default(&b);
    mxp_trainer_args_each(a, set_arg, &b);
    mxp_trainer_args_each(&b, print_arg, &second);
    FUZZ_CHECK(first.len == second.len && memcmp(first.text, second.text, first.len) == 0,
               "printed, set and printed again differs:\n%.*s---\n%.*s", (int)first.len, first.text,
               (int)second.len, second.text);
}

#endif
