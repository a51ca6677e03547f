/*
 * fuzz_launch.c - mxp_launch_config_read (the file `mixprec config` writes and `mixprec
 * launch` reads) on arbitrary bytes. A refused file must leave the defaults in the config. An
 * accepted one must be consistent (distributed_type as num_processes implies, values in
 * their documented ranges) and survive a round trip: mxp_launch_config_write, then read
 * again, gives the same values and the same set of given keys (for mixprec's own keys; the
 * writer always writes accelerate's). It starts no process.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fuzz_util.h"
#include "mixprec/io.h"

static fuzz_file file, out;

/* The two configs hold the same values. */
static int same(const mxp_launch_config *a, const mxp_launch_config *b) {
    return !strcmp(a->compute_environment, b->compute_environment) &&
           !strcmp(a->distributed_type, b->distributed_type) &&
           a->num_processes == b->num_processes && a->num_machines == b->num_machines &&
           a->machine_rank == b->machine_rank && !strcmp(a->mixed_precision, b->mixed_precision) &&
           a->num_threads == b->num_threads && !strcmp(a->loss_scale, b->loss_scale) &&
           a->init_scale == b->init_scale && a->growth_interval == b->growth_interval &&
           a->hysteresis == b->hysteresis &&
           a->gradient_accumulation_steps == b->gradient_accumulation_steps;
}

int mixprec_fuzz_launch(const uint8_t *data, size_t size) {
    const char *path = fuzz_file_put(&file, "launch", ".yaml", data, size);
    if (!path) return 1;
    mxp_launch_config c, d;
    mxp_launch_config_default(&d);
    if (mxp_launch_config_read(&c, path) != MXP_OK) {
        FUZZ_CHECK(same(&c, &d) && c.set == 0, "a refused file left values in the config");
        return 0;
    }
    FUZZ_CHECK(c.num_processes >= 1 && c.num_processes <= 1024, "num_processes %d",
               c.num_processes);
    FUZZ_CHECK(!strcmp(c.distributed_type, c.num_processes > 1 ? "MULTI_CPU" : "NO"),
               "distributed_type %s with %d processes", c.distributed_type, c.num_processes);
    FUZZ_CHECK(c.num_machines == 1 && c.machine_rank == 0, "machines %d, rank %d", c.num_machines,
               c.machine_rank);
    FUZZ_CHECK(!strcmp(c.mixed_precision, "no") || !strcmp(c.mixed_precision, "fp16") ||
                   !strcmp(c.mixed_precision, "bf16"),
               "mixed_precision '%s'", c.mixed_precision);
    FUZZ_CHECK(c.num_threads >= 0 && c.init_scale > 0.0f && c.growth_interval >= 1 &&
                   c.hysteresis >= 1 && c.gradient_accumulation_steps >= 1,
               "threads %d, init scale %g, growth interval %lld, hysteresis %d, accumulation %d",
               c.num_threads, (double)c.init_scale, (long long)c.growth_interval, c.hysteresis,
               c.gradient_accumulation_steps);
    /* what was accepted is written, and what was written reads back the same */
    const char *wpath = fuzz_file_put(&out, "launch-out", ".yaml", (const uint8_t *)"", 0);
    if (!wpath) return 1;
    const mxp_status sw = mxp_launch_config_write(&c, wpath);
    FUZZ_CHECK(sw == MXP_OK, "an accepted config cannot be written: %s", mxp_last_error());
    if (sw != MXP_OK) return 0;
    mxp_launch_config e;
    const mxp_status sr = mxp_launch_config_read(&e, wpath);
    FUZZ_CHECK(sr == MXP_OK, "the written config is refused: %s", mxp_last_error());
    const unsigned own = MXP_LAUNCH_KEY_NUM_THREADS | MXP_LAUNCH_KEY_LOSS_SCALE |
                         MXP_LAUNCH_KEY_INIT_SCALE | MXP_LAUNCH_KEY_GROWTH_INTERVAL |
                         MXP_LAUNCH_KEY_HYSTERESIS | MXP_LAUNCH_KEY_GRAD_ACCUM;
    if (sr == MXP_OK) {
        FUZZ_CHECK(same(&c, &e), "the round trip changed a value");
        FUZZ_CHECK((c.set & own) == (e.set & own),
                   "the round trip changed the keys given: "
                   "%#x -> %#x",
                   c.set & own, e.set & own);
    }
    return 0;
}

FUZZ_ENTRY(mixprec_fuzz_launch)
