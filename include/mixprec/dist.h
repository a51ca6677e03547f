/*
 * mixprec/dist.h - data parallelism over MPI (Open MPI): one process per
 * rank, each holding the whole model and a shard of every global batch.
 *
 * The layer is process-wide, as MPI is: mxp_dist_init() joins the job that
 * `mixprec launch --num-processes N` (or mpirun itself) started, and does
 * nothing in a process started alone, which is then rank 0 of 1. The
 * accelerator calls it; a program normally never does, except for
 * mxp_dist_finalize() (or mxp_dist_abort()) before it exits:
 *
 *     ... mxp_accelerator_create() ... train ...           // joins the job
 *     if (ok) mxp_dist_finalize(); else mxp_dist_abort(1);  // leave it
 *
 * What travels (DESIGN.md "dist"):
 *   - at prepare, rank 0's weights (the fp32 masters, or the weights themselves
 *     when there are none) are broadcast, so every rank starts identical;
 *   - at the end of each accumulation cycle, the gradients, in the working
 *     dtype: fp32 with MPI_SUM; bf16 and fp16 with a reduction of our own
 *     that widens both operands to fp32, adds and rounds once to nearest even
 *     (so one rounding per hop of the reduction, none lost to 16-bit
 *     accumulation). Each rank seeds its backward with its share of the
 *     global batch (b_rank / b_global), so the sum is the global mean;
 *   - a few doubles: the loss and the found-inf flag, so every rank logs the
 *     same loss and skips the same steps.
 * Errors are MXP_ERR_DIST naming the MPI function and MPI's own message. A rank
 * that dies takes the job with it: mpirun ends every other rank (see
 * mixprec launch), so no collective here waits forever on a dead peer.
 */
#ifndef MIXPREC_DIST_H
#define MIXPREC_DIST_H

#include "mixprec/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Join the job when this process was started by mpirun with more than one
 * process (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_SIZE > 1): MPI_Init_thread
 * (funneled: only the calling thread talks to MPI; OpenMP threads compute).
 * Idempotent; a process started alone is rank 0 of 1 and touches no MPI.
 * Errors: MXP_ERR_DIST (MPI failed to start, or this build has no MPI and the
 * environment says it was launched as one of several processes). */
MXP_API mxp_status mxp_dist_init(void);

/* This process's rank in [0, world) and the number of processes (1 before
 * mxp_dist_init or when alone). */
MXP_API int mxp_dist_rank(void);
MXP_API int mxp_dist_world(void);

/* The MPI library ("Open MPI v4.1.4, ..." from MPI_Get_library_version, first
 * line), or "none" in a build without MPI. Writes at most size bytes. */
MXP_API void mxp_dist_library(char *buf, size_t size);

/* Leave the job cleanly: a barrier, then MPI_Finalize. Call once, on success,
 * on every rank, before exiting. Nothing to do when alone. */
MXP_API void mxp_dist_finalize(void);

/* End the whole job from this rank (MPI_Abort with code): mpirun stops every
 * other rank and exits non-zero. For a failing rank; alone, exit(code). Never
 * returns. */
MXP_API _Noreturn void mxp_dist_abort(int code);

/* Copy rank 0's weights to every rank: the fp32 masters (or, without them,
 * the weights themselves), then refresh the working copies. Collective.
 * Errors: MXP_ERR_DIST. */
MXP_API mxp_status mxp_dist_broadcast_params(mxp_model_t *m);

/* Sum every parameter's gradient over the ranks, in place, in the working
 * dtype (see above). The gradients travel as one packed buffer, followed by
 * one presence flag per parameter tensor: a parameter without a gradient
 * this cycle takes part as zeros, has one afterwards when any rank had one,
 * and still has none when no rank had (the optimizer skips it, as alone).
 * *bytes (optional) gets the bytes this rank handed to MPI: (elements +
 * tensors) times the working dtype's size. The packing buffer is kept for
 * the next call and freed by mxp_dist_finalize. Collective. Errors:
 * MXP_ERR_DIST, MXP_ERR_NOMEM (the packing buffer). */
MXP_API mxp_status mxp_dist_allreduce_grads(mxp_model_t *m, size_t *bytes);

/* Sum v[0..n) over the ranks, in place (MPI_SUM on doubles; the same result
 * on every rank). Collective. Errors: MXP_ERR_DIST. */
MXP_API mxp_status mxp_dist_allreduce_sum(double *v, int n);

/* Wait for every rank. Errors: MXP_ERR_DIST. */
MXP_API mxp_status mxp_dist_barrier(void);

/* 0 when every rank holds bit-identical weights (a 64-bit hash of the masters
 * and working copies, compared by min and max over the ranks), else
 * MXP_ERR_DIST saying the ranks diverged (or from MPI). Collective. */
MXP_API mxp_status mxp_dist_check_params(const mxp_model_t *m);

#ifdef __cplusplus
}
#endif
#endif
