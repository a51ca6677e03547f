/*
 * allreduce.c - what one gradient all-reduce costs here: mxp_dist_allreduce_grads over a
 * model holding n parameters (one Linear layer), in fp32 (MPI_SUM), bf16 and fp16 (the
 * fp32-add-and-round reduction), for n from 2^10 to 2^24. Each size: a barrier before every
 * call (so a late rank's skew is not counted), 3 warm-up calls, REPS timed, the median.
 * Rank 0 prints one JSON line per (dtype, n): the median seconds and the bus bandwidth of a
 * ring, 2 (p - 1) / p * bytes / t. The inputs to the ring cost model of docs/DATA_PARALLEL.md.
 * A benchmark, never a test.
 *
 *     mixprec launch --num-processes 2 --num-threads 1 build/bench/allreduce [REPS]
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mixprec.h>

#include "bench_util.h"

#define TRY(call)                                                                                  \
    do {                                                                                           \
        if ((call) != MXP_OK) {                                                                    \
            fprintf(stderr, "allreduce: %s\n", mxp_last_error());                                  \
            mxp_dist_abort(1);                                                                     \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 20;
    TRY(mxp_dist_init());
    const int rank = mxp_dist_rank(), world = mxp_dist_world();
    static const mxp_dtype dts[] = {MXP_DTYPE_F32, MXP_DTYPE_BF16, MXP_DTYPE_F16};
    double *t = malloc((size_t)reps * sizeof *t);
    for (int d = 0; d < 3; d++)
        for (int64_t n = 1 << 10; n <= 1 << 24; n *= 4) {
            mxp_model_t *m;
            TRY(mxp_model_sequential(&m, "one", 1, 1, 256, (int)(n / 256)));
            TRY(mxp_model_add_linear(m, 256, n / 256));
            TRY(mxp_model_init(m, 1));
            TRY(mxp_model_set_precision(m, dts[d], 1));
            for (int i = 0; i < m->n_params; i++) { /* gradients of 0.5: no inf, no NaN */
                mxp_param *p = m->params[i];
                const size_t k = (size_t)mxp_tensor_numel(p->grad);
                float *half = malloc(k * sizeof *half);
                for (size_t j = 0; j < k; j++) half[j] = 0.5f;
                TRY(mxp_convert(p->grad->data, dts[d], half, MXP_DTYPE_F32, k));
                free(half);
                p->var.has_grad = 1;
            }
            size_t bytes = 0;
            for (int r = -3; r < reps; r++) {
                TRY(mxp_dist_barrier());
                const double t0 = now();
                TRY(mxp_dist_allreduce_grads(m, &bytes));
                if (r >= 0) t[r] = now() - t0;
            }
            qsort(t, (size_t)reps, sizeof *t, cmp);
            const double med = t[reps / 2];
            if (rank == 0)
                printf("{\"dtype\":\"%s\",\"processes\":%d,\"elements\":%lld,\"bytes\":%zu,"
                       "\"median_s\":%.6g,\"min_s\":%.6g,\"bus_GBps\":%.4g}\n",
                       mxp_dtype_name(dts[d]), world, (long long)mxp_model_numel(m), bytes, med,
                       t[0], 2.0 * (world - 1) / world * (double)bytes / med / 1e9);
            fflush(stdout);
            mxp_model_free(m);
        }
    free(t);
    mxp_dist_finalize();
    return 0;
}
