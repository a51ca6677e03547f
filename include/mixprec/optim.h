/*
 * mixprec/optim.h - optimizers over a model's parameters, learning-rate
 * schedules and global-norm gradient clipping.
 *
 * The optimizer owns its fp32 moments. Each step reads every gradient in the
 * working dtype as grad * grad_mul (grad_mul = 1 / loss scale x clip
 * coefficient, so unscaling is fused into the update), updates the fp32
 * master weights (or, with master weights off, the 16-bit weights directly)
 * and rewrites the working copy: the cast cache is refreshed here, once per
 * step, by the same pass.
 *
 *     mxp_optim_config oc;  mxp_optim_config_default(&oc, MXP_OPTIM_ADAMW);
 *     mxp_optimizer_t *opt;  mxp_optimizer_create(&opt, &oc);
 *     mxp_optimizer_bind(opt, model);            // after mxp_model_set_precision
 *     mxp_optimizer_step(opt, lr, 1.0f / scale, NULL);
 */
#ifndef MIXPREC_OPTIM_H
#define MIXPREC_OPTIM_H

#include "mixprec/nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Append-only. */
typedef enum mxp_optim_kind { MXP_OPTIM_SGD = 0, MXP_OPTIM_ADAMW = 1 } mxp_optim_kind;

typedef struct mxp_optim_config {
    mxp_optim_kind kind;
    float lr;                  /* the base learning rate (a schedule scales it) */
    float weight_decay;        /* SGD: L2 added to the gradient; AdamW: decoupled. Biases: none */
    float momentum, dampening; /* SGD */
    int nesterov;              /* SGD */
    float beta1, beta2, eps;   /* AdamW */
    /* Stochastic rounding of 16-bit weights kept without fp32 masters (an ablation, off by
     * default): each updated weight rounds up or down at random, with probabilities that make
     * its expected value the exact fp32 result, so updates below half an ulp are not all
     * lost. Step t (0-based, mxp_optimizer_steps before it) of parameter p draws from
     * Philox keyed by mxp_optim_sr_key(sr_seed, t), element j of p using word (p's element
     * offset in the model + j): the weights depend only on the seed and the step, not on
     * threads, ISA or a resume. Give the run's seed. */
    int stochastic_rounding;
    uint64_t sr_seed;
} mxp_optim_config;

/* SGD: lr 0.01, momentum 0.9, no dampening, no Nesterov, weight decay 0.
 * AdamW: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01 (PyTorch's).
 * Both: round to nearest even (stochastic_rounding 0, sr_seed 0).
 * Errors: MXP_ERR_INVALID_ARG (unknown kind). */
MXP_API mxp_status mxp_optim_config_default(mxp_optim_config *c, mxp_optim_kind kind);

/* "sgd" / "adamw" <-> kind. Errors: MXP_ERR_INVALID_ARG naming the choices. */
MXP_API mxp_status mxp_optim_parse(const char *name, mxp_optim_kind *out);
MXP_API const char *mxp_optim_name(mxp_optim_kind kind);

typedef struct mxp_optimizer mxp_optimizer_t;

/* Errors: MXP_ERR_INVALID_ARG (lr <= 0 or not finite, momentum or betas outside
 * [0, 1), eps <= 0, weight decay < 0), MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_optimizer_create(mxp_optimizer_t **out, const mxp_optim_config *c);
MXP_API void mxp_optimizer_free(mxp_optimizer_t *o);

/* Attach to the model's parameters (retained: the model must outlive the
 * optimizer) and allocate the fp32 moments (zero). Call after
 * mxp_model_set_precision. Errors: MXP_ERR_INVALID_ARG (bound twice;
 * stochastic_rounding with a model that is not 16-bit without master weights),
 * MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_optimizer_bind(mxp_optimizer_t *o, mxp_model_t *m);

/* Numerics counters accumulated by steps that ask for them. */
typedef struct mxp_update_stats {
    uint64_t updated; /* elements with a nonzero fp32 update */
    uint64_t lost;    /* of those, updates that rounding to the working dtype throws away
                         (without master weights: the stored weight did not move) */
} mxp_update_stats;

/* One update of every parameter with learning rate lr, reading gradients as
 * grad * grad_mul. stats, if not NULL, receives the counts (costs a compare
 * per element). The optimizer's step counter (AdamW bias correction) advances.
 * Errors: from the kernels (none for valid state). */
MXP_API mxp_status mxp_optimizer_step(mxp_optimizer_t *o, float lr, float grad_mul,
                                      mxp_update_stats *stats);

/* The Philox key of stochastic rounding at optimizer step `step` (0-based):
 * a hash of (seed, step), so steps and runs with different seeds draw
 * different words. */
MXP_API uint64_t mxp_optim_sr_key(uint64_t seed, int64_t step);

/* Completed steps; bytes of optimizer state (moments). */
MXP_API int64_t mxp_optimizer_steps(const mxp_optimizer_t *o);
/* Set the step counter (a resumed run: AdamW's bias correction continues from
 * it). Errors: MXP_ERR_INVALID_ARG (steps < 0). */
MXP_API mxp_status mxp_optimizer_set_steps(mxp_optimizer_t *o, int64_t steps);

/* The fp32 moments of parameter i of the bound model, each (numel of the
 * parameter), owned by the optimizer and writable (a checkpoint reads them
 * back in place): AdamW exp_avg and exp_avg_sq; SGD the momentum buffer in
 * *m1 and NULL in *m2 (both NULL without momentum). Their names in a
 * checkpoint are in *n1, *n2 ("exp_avg", "exp_avg_sq", "momentum_buffer",
 * PyTorch's). Errors: MXP_ERR_INVALID_ARG (not bound, i out of range). */
MXP_API mxp_status mxp_optimizer_moments(const mxp_optimizer_t *o, int i, float **m1, float **m2,
                                         const char **n1, const char **n2);
MXP_API const mxp_model_t *mxp_optimizer_model(const mxp_optimizer_t *o);
MXP_API size_t mxp_optimizer_state_bytes(const mxp_optimizer_t *o);
MXP_API const mxp_optim_config *mxp_optimizer_config(const mxp_optimizer_t *o);

/* ---- schedules ------------------------------------------------------------- */

typedef enum mxp_sched_kind { MXP_SCHED_CONSTANT = 0, MXP_SCHED_COSINE = 1 } mxp_sched_kind;

typedef struct mxp_schedule {
    mxp_sched_kind kind;
    float base_lr;
    float min_lr;         /* cosine floor (default 0) */
    int64_t warmup_steps; /* linear ramp from base_lr / warmup to base_lr */
    int64_t total_steps;  /* cosine: the step at which lr reaches min_lr */
} mxp_schedule;

/* The learning rate of optimizer step `step` (0-based): warmup ramps
 * linearly, lr = base * (step + 1) / warmup for step < warmup; then constant,
 * or cosine from base_lr down to min_lr at total_steps (and min_lr after). */
MXP_API float mxp_schedule_lr(const mxp_schedule *s, int64_t step);

/* "constant" / "cosine". Errors: MXP_ERR_INVALID_ARG. */
MXP_API mxp_status mxp_schedule_parse(const char *name, mxp_sched_kind *out);

/* ---- gradients -------------------------------------------------------------- */

/* The global L2 norm of all gradients (those with has_grad), unscaled:
 * sqrt(sum g^2) * inv_scale, summed in fp32 per tensor and in double across
 * tensors. *found_inf = 1 when any gradient is inf or NaN (the sum of squares
 * is then not finite): one pass serves the norm and the overflow check.
 * Errors: MXP_ERR_INVALID_ARG. */
MXP_API mxp_status mxp_grad_norm(const mxp_model_t *m, float inv_scale, float *norm,
                                 int *found_inf);

/* PyTorch's clip_grad_norm_ coefficient: min(1, max_norm / (norm + 1e-6)). */
MXP_API float mxp_clip_coef(float norm, float max_norm);

#ifdef __cplusplus
}
#endif
#endif
