/*
 * mixprec/amp.h - precision modes, the loss scaler and numerics statistics.
 *
 * A precision mode (no, fp16, bf16) fixes the working dtype of weights,
 * activations and gradients; the fp32 master weights and optimizer state are
 * the nn and optim layers' business (mxp_model_set_precision, mxp_optimizer).
 *
 * The loss scaler follows PyTorch's GradScaler exactly: the loss is
 * multiplied by the scale before backward; after it, one pass finds whether
 * any gradient is inf or NaN; then
 *   overflow:  the step is skipped and scale *= backoff_factor (0.5), growth tracker = 0;
 *   clean:     tracker += 1, and when it reaches growth_interval (2000),
 *              scale *= growth_factor (2) if that stays finite, tracker = 0.
 * On top, as options: DeepSpeed-style hysteresis (that many consecutive-or-not
 * overflows are tolerated, each still skipping its step, before the scale
 * backs off; the allowance refills when the scale grows) and min/max scale.
 * A static scale (dynamic = 0) never changes, but a step whose gradients
 * overflow is still skipped: an inf cannot be applied to a weight.
 *
 *     mxp_scaler s;  mxp_scaler_config c;  mxp_scaler_config_default(&c);
 *     mxp_scaler_init(&s, &c);
 *     ... backward with seed s.scale ...; found_inf from mxp_grad_norm
 *     int skip = mxp_scaler_update(&s, found_inf);
 */
#ifndef MIXPREC_AMP_H
#define MIXPREC_AMP_H

#include <stdint.h>

#include "mixprec/numerics.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The `--mixed-precision` switch. Append-only. */
typedef enum mxp_precision {
    MXP_PREC_NO = 0,   /* fp32 everywhere */
    MXP_PREC_FP16 = 1, /* fp16 working copies, fp32 master, dynamic loss scaling */
    MXP_PREC_BF16 = 2  /* bf16 working copies, fp32 master, no scaling by default */
} mxp_precision;

/* "no" (also "fp32"), "fp16", "bf16" -> mode. Errors: MXP_ERR_INVALID_ARG with
 * a message listing the choices. */
MXP_API mxp_status mxp_precision_parse(const char *name, mxp_precision *out);
MXP_API const char *mxp_precision_name(mxp_precision p);
/* F32, F16 or BF16. */
MXP_API mxp_dtype mxp_precision_dtype(mxp_precision p);

typedef struct mxp_scaler_config {
    int enabled;             /* 0: scale 1, no checks of its own (fp32/bf16 default) */
    int dynamic;             /* 1: GradScaler updates; 0: static at init_scale */
    float init_scale;        /* 65536 */
    float growth_factor;     /* 2 */
    float backoff_factor;    /* 0.5 */
    int64_t growth_interval; /* 2000 clean steps */
    int hysteresis;          /* 1 = back off at every overflow (GradScaler); DeepSpeed uses 2 */
    float min_scale;         /* the floor; 0 = FLT_MIN (GradScaler has none) */
    float max_scale;         /* 0 = no ceiling (growth stops only at inf) */
} mxp_scaler_config;

/* GradScaler's defaults with enabled = 1, dynamic = 1, hysteresis 1, no bounds. */
MXP_API void mxp_scaler_config_default(mxp_scaler_config *c);

typedef struct mxp_scaler {
    mxp_scaler_config cfg;
    float scale;            /* multiply the loss by this (1 when disabled) */
    int64_t growth_tracker; /* clean steps since the last change */
    int hysteresis_left;    /* overflows still tolerated before a backoff */
    int64_t skipped;        /* steps skipped so far */
    int64_t overflows;      /* overflowing steps seen (= skipped) */
    int collapsed;          /* sticky: a backoff fell due with the scale already at its floor
                               (min_scale, or FLT_MIN without one): scaling cannot help, the
                               run has diverged and must stop rather than go on skipping */
} mxp_scaler;

/* Errors: MXP_ERR_INVALID_ARG (a scale <= 0 or not finite, growth <= 1,
 * backoff outside (0, 1), interval < 1, hysteresis < 1, min > max). */
MXP_API mxp_status mxp_scaler_init(mxp_scaler *s, const mxp_scaler_config *c);

/* Account for one optimizer step whose gradients did (found_inf != 0) or did
 * not overflow; returns 1 when the step must be skipped, else 0. Updates the
 * scale as described at the top; a backoff never goes below the floor. When
 * a backoff falls due with the scale already at its floor, s->collapsed is
 * set (DeepSpeed raises at that point) and the caller must stop. */
MXP_API int mxp_scaler_update(mxp_scaler *s, int found_inf);

/* ---- numerics statistics (mixprec train --numerics-stats) --------------------- */

/* floor(log2|x|) of a finite nonzero fp32 value lies in [-149, 127]. */
#define MXP_LOG2_MIN (-149)
#define MXP_LOG2_BINS 277

/* What the values of one tensor look like, and what fp16 and bf16 would do to
 * them: the numbers behind the mixed-precision paper's gradient histogram. */
typedef struct mxp_numerics {
    uint64_t n;                   /* values measured */
    uint64_t zero, nonfinite;     /* exactly +-0; inf or NaN */
    uint64_t log2[MXP_LOG2_BINS]; /* finite nonzero values with floor(log2|x|) ==
                                     MXP_LOG2_MIN + i */
    mxp_range_stats fp16, bf16;   /* the same values stored in fp16 / bf16 (round to nearest
                                     even): overflow, flush (underflow to 0), subnormal */
    double max_abs, min_abs;      /* finite nonzero extremes (0 when none) */
} mxp_numerics;

/* Zero *s (n = 0): ready to accumulate. */
MXP_API void mxp_numerics_clear(mxp_numerics *s);

/* Add the n values of x (dtype F32, BF16 or F16), each multiplied by mul in
 * fp32 first (1 / loss scale for the unscaled gradients; exact for a power of
 * two), to *s. Errors: MXP_ERR_INVALID_ARG (NULL with n > 0), MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_numerics_add(mxp_numerics *s, const void *x, mxp_dtype dt, size_t n,
                                    float mul);

/* Add the counts of b to a (histograms, classes, extremes). */
MXP_API void mxp_numerics_merge(mxp_numerics *a, const mxp_numerics *b);

/* The smallest |x| such that at most `share` of the finite nonzero values lie
 * below it, at binade resolution (the lower edge of the bin holding that
 * quantile: 2^k); 0 when there are no such values. */
MXP_API double mxp_numerics_quantile_low(const mxp_numerics *s, double share);

/* The advisor: what a run's gradients (unscaled, weights' and activations')
 * and activations say about fp16 and bf16. */
typedef struct mxp_numerics_advice {
    double grad_flush_fp16;      /* share of nonzero gradient values that fp16 flushes to zero
                                    without loss scaling */
    double grad_subnormal_fp16;  /* ... that land on fp16 subnormals (precision lost) */
    double grad_max, grad_low;   /* largest |g|; the 0.1% quantile from below (mxp_numerics_
                                    quantile_low) */
    double act_max;              /* largest |activation| (forward values) */
    double scale_min, scale_max; /* powers of two: the loss scales that keep 99.9% of the
                                    nonzero gradients at or above fp16's smallest subnormal
                                    (2^-24) and the largest one below 65504; scale_min >
                                    scale_max when no scale does both */
    int fp16_ok;                 /* activations fit fp16 and scale_min <= scale_max */
    double lost_fp16, lost_bf16; /* share of nonzero weight updates that storing the weights
                                    in fp16 / bf16 (no fp32 master) would lose; -1 unknown */
} mxp_numerics_advice;

/* Advice from the run's merged statistics: grads (unscaled gradients, of the
 * weights and of the activations), acts (forward activations), and the lost
 * update shares (-1 if not measured). Never fails. */
MXP_API void mxp_numerics_advise(const mxp_numerics *grads, const mxp_numerics *acts,
                                 double lost_fp16, double lost_bf16, mxp_numerics_advice *out);

/* The advice as a few lines of text for people (numbers included), ending in
 * a newline. Writes at most size bytes (always terminated). */
MXP_API void mxp_numerics_advice_text(const mxp_numerics_advice *a, char *buf, size_t size);

#ifdef __cplusplus
}
#endif
#endif
