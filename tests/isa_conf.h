/*
 * isa_conf.h - the configurations the kernel tests run every case in: each ISA family this
 * CPU runs (up to the detected one), on 1 and 2 threads. isa_conf_init() finds the families
 * and prints them; configuration c is family c / 2 on 1 + c % 2 threads.
 */
#ifndef MIXPREC_TEST_ISA_CONF_H
#define MIXPREC_TEST_ISA_CONF_H

#include <stdio.h>

#include "check.h"
#include "mixprec.h"

static mxp_isa isas[MXP_ISA_COUNT];
static int nisa;

static void isa_conf_init(void) {
    for (int i = 0; i < MXP_ISA_COUNT; i++)
        if (i <= (int)mxp_isa_detect() && mxp_cpu_supports((mxp_isa)i)) isas[nisa++] = (mxp_isa)i;
    printf("ISA families tested:");
    for (int i = 0; i < nisa; i++) printf(" %s", mxp_isa_name(isas[i]));
    printf("; threads 1 and 2 (OpenMP %s)\n", mxp_have_openmp() ? "on" : "off");
}

static int nconf(void) { return 2 * nisa; }

static void set_conf(int c) {
    CHECK(mxp_isa_set(isas[c / 2]) == MXP_OK, "mxp_isa_set: %s", mxp_last_error());
    mxp_set_num_threads(1 + c % 2);
}

static const char *conf_name(int c) {
    static char buf[64];
    snprintf(buf, sizeof buf, "%s/%dt", mxp_isa_name(isas[c / 2]), 1 + c % 2);
    return buf;
}

#endif
