/*
 * scaler.c - precision modes and the loss scaler (GradScaler's algorithm,
 * DeepSpeed's hysteresis as an option). It keeps no gradients: the caller
 * finds overflows (mxp_grad_norm) and reports them here.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "base/base_impl.h"
#include "mixprec/amp.h"

mxp_status mxp_precision_parse(const char *name, mxp_precision *out) {
    if (name && out) {
        if (strcmp(name, "no") == 0 || strcmp(name, "fp32") == 0)
            *out = MXP_PREC_NO;
        else if (strcmp(name, "fp16") == 0)
            *out = MXP_PREC_FP16;
        else if (strcmp(name, "bf16") == 0)
            *out = MXP_PREC_BF16;
        else
            name = NULL;
        if (name) return MXP_OK;
    }
    return MXP_FAIL(MXP_ERR_INVALID_ARG, "unknown mixed precision '%s' (choose no, fp16 or bf16)",
                    name ? name : "?");
}

const char *mxp_precision_name(mxp_precision p) {
    return p == MXP_PREC_NO     ? "no"
           : p == MXP_PREC_FP16 ? "fp16"
           : p == MXP_PREC_BF16 ? "bf16"
                                : "?";
}

mxp_dtype mxp_precision_dtype(mxp_precision p) {
    return p == MXP_PREC_FP16 ? MXP_DTYPE_F16 : p == MXP_PREC_BF16 ? MXP_DTYPE_BF16 : MXP_DTYPE_F32;
}

void mxp_scaler_config_default(mxp_scaler_config *c) {
    memset(c, 0, sizeof *c);
    c->enabled = 1;
    c->dynamic = 1;
    c->init_scale = 65536.0f;
    c->growth_factor = 2.0f;
    c->backoff_factor = 0.5f;
    c->growth_interval = 2000;
    c->hysteresis = 1;
}

mxp_status mxp_scaler_init(mxp_scaler *s, const mxp_scaler_config *c) {
    if (!s || !c) return MXP_FAIL(MXP_ERR_INVALID_ARG, "scaler or config is NULL");
    if (!(c->min_scale >= 0.0f) || !(c->max_scale >= 0.0f) ||
        (c->max_scale > 0.0f && c->min_scale > c->max_scale))
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "loss scale bounds: min %g must be <= max %g",
                        (double)c->min_scale, (double)c->max_scale);
    if (c->enabled) {
        if (!(c->init_scale > 0.0f) || !isfinite(c->init_scale))
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "loss scale %g must be a positive number",
                            (double)c->init_scale);
        if (c->dynamic &&
            (!(c->growth_factor > 1.0f) ||
             !(c->backoff_factor > 0.0f && c->backoff_factor < 1.0f) || c->growth_interval < 1 ||
             c->hysteresis < 1 || !(c->min_scale >= 0.0f) || !(c->max_scale >= 0.0f) ||
             (c->max_scale > 0.0f && c->min_scale > c->max_scale)))
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "loss scaler: need growth factor > 1, backoff in (0, 1), interval >= "
                            "1, hysteresis >= 1, 0 <= min scale <= max scale");
    }
    memset(s, 0, sizeof *s);
    s->cfg = *c;
    s->scale = c->enabled ? c->init_scale : 1.0f;
    if (c->enabled && c->dynamic) {
        if (c->max_scale > 0.0f && s->scale > c->max_scale) s->scale = c->max_scale;
        if (s->scale < c->min_scale) s->scale = c->min_scale;
    }
    s->hysteresis_left = c->hysteresis > 0 ? c->hysteresis : 1;
    return MXP_OK;
}

int mxp_scaler_update(mxp_scaler *s, int found_inf) {
    const mxp_scaler_config *c = &s->cfg;
    if (found_inf) {
        s->skipped++;
        s->overflows++;
        if (c->enabled && c->dynamic) {
            if (s->hysteresis_left > 1) {
                s->hysteresis_left--; /* tolerated: skip, keep the scale */
            } else {
                const float floor = c->min_scale > 0.0f ? c->min_scale : FLT_MIN;
                if (s->scale <= floor) s->collapsed = 1; /* nothing left to back off to */
                float next = s->scale * c->backoff_factor;
                s->scale = next < floor ? floor : next;
            }
            s->growth_tracker = 0;
        }
        return 1;
    }
    if (c->enabled && c->dynamic) {
        if (++s->growth_tracker >= c->growth_interval) { /* >=: a resume may shorten it */
            float next = s->scale * c->growth_factor;
            if (c->max_scale > 0.0f && next > c->max_scale) next = c->max_scale;
            if (isfinite(next)) s->scale = next;
            s->growth_tracker = 0;
            s->hysteresis_left = c->hysteresis;
        }
    }
    return 0;
}
