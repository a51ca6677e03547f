/*
 * nn_impl.h - what model.c and gpt.c share. Never installed.
 */
#ifndef MIXPREC_NN_IMPL_H
#define MIXPREC_NN_IMPL_H

#include "mixprec/nn.h"

/* Append a parameter (shape) named `name` to m: an fp32 master and an fp32
 * gradient, work == master; decay: weight decay applies. Only before
 * mxp_model_set_precision. Errors: MXP_ERR_INVALID_ARG, MXP_ERR_NOMEM. */
mxp_status mxp_nn_param_new(mxp_model_t *m, mxp_param **out, const char *name, int ndim,
                            const int64_t *shape, int decay);

/* gpt.c: the config defaults (name already "gpt"), building m's parameters
 * from c, GPT-2 initialisation from seed, freeing m->gpt, the description. */
void mxp_gpt_config_default(mxp_model_config *c);
mxp_status mxp_gpt_build(mxp_model_t *m, const mxp_model_config *c);
mxp_status mxp_gpt_init(mxp_model_t *m, uint64_t seed);
void mxp_gpt_free(struct mxp_gpt *gpt);
void mxp_gpt_describe(const mxp_model_t *m, char *buf, size_t size);

#endif
