/*
 * mixprec/nn.h - parameters, layers and models.
 *
 * A parameter keeps up to three copies of one tensor, and which exist depends
 * on the precision (DESIGN.md "Precision modes"):
 *   master  fp32, the weights the optimizer updates (NULL with master weights off)
 *   work    the working dtype copy the ops read: the cast cache, rewritten
 *           once per optimizer step from the master (the same tensor as the
 *           master in fp32 mode)
 *   grad    the gradient, in the working dtype, accumulated over micro-batches
 * The model owns its parameters and all three copies; the optimizer owns its
 * moments.
 *
 * Models are sequences of layers (MLP, CNN); Linear or Conv2d followed by
 * ReLU or GELU is fused into the GEMM epilogue. Activations are NHWC.
 * The gpt model (src/nn/gpt.c) is a GPT-2 style transformer language model
 * over token ids; its parameters carry Hugging Face GPT-2's names and layouts.
 *
 *     mxp_model_t *m;
 *     mxp_model_config cfg;  mxp_model_config_default(&cfg, "cnn");
 *     mxp_model_create(&m, &cfg);                 // fp32, initialised from cfg.seed
 *     mxp_model_set_precision(m, MXP_DTYPE_BF16, 1);   // bf16 work + fp32 master
 *     mxp_var *logits;  mxp_model_forward(m, g, x, &logits);   // x (B, 28, 28, 1)
 */
#ifndef MIXPREC_NN_H
#define MIXPREC_NN_H

#include "mixprec/autograd.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mxp_param {
    char name[48];      /* "fc1.weight": stable, used in checkpoints and reports */
    mxp_tensor *master; /* (shape) fp32, or NULL (master weights off) */
    mxp_tensor *work;   /* (shape) working dtype; == master in fp32 mode */
    mxp_tensor *grad;   /* (shape) working dtype */
    mxp_var var;        /* the graph leaf: value = work, grad = grad */
    int decay;          /* weight decay applies (weights yes, biases no) */
} mxp_param;

/* Append-only. */
typedef enum mxp_layer_kind {
    MXP_LAYER_LINEAR = 0,
    MXP_LAYER_CONV2D = 1,
    MXP_LAYER_MAXPOOL2D = 2,
    MXP_LAYER_RELU = 3,
    MXP_LAYER_GELU = 4,
    MXP_LAYER_FLATTEN = 5,
    MXP_LAYER_DROPOUT = 6
} mxp_layer_kind;

typedef struct mxp_layer {
    mxp_layer_kind kind;
    int64_t in, out; /* features (Linear) or channels (Conv2d) */
    int64_t k, stride, pad;
    float p;          /* dropout probability */
    mxp_param *w, *b; /* Linear w (out, in); Conv2d w (out, k, k, in); b (out) */
} mxp_layer;

/* The built-in models, shaped for 28x28x1 inputs and 10 classes:
 *   mlp: Flatten, Linear(784, h1), ReLU, Linear(h1, h2), ReLU, [Dropout], Linear(h2, 10)
 *   cnn: Conv2d(1, c1, 5, pad 2), ReLU, MaxPool(2), Conv2d(c1, c2, 5, pad 2), ReLU,
 *        MaxPool(2), Flatten, Linear(7*7*c2, h1), ReLU, [Dropout], Linear(h1, 10) */
typedef struct mxp_model_config {
    char name[16];                /* "mlp" or "cnn" */
    int64_t H, W, C;              /* input sample, default 28, 28, 1 */
    int n_classes;                /* default 10 */
    int64_t hidden1, hidden2;     /* mlp: 512, 256; cnn: hidden1 = fc width 256 */
    int64_t channels1, channels2; /* cnn: 32, 64 */
    float dropout;                /* before the last Linear; default 0 (mlp) / 0.25 (cnn) */
    uint64_t seed;                /* initialisation */
    /* gpt: default 6 layers, 6 heads, 384 wide, block 256, vocab 65 */
    int64_t n_layer, n_head, n_embd, block_size, vocab_size;
} mxp_model_config;

typedef struct mxp_model {
    char name[16];       /* "mlp", "cnn", or the caller's */
    int64_t in_shape[3]; /* one sample (H, W, C); an MLP flattens it */
    int n_classes;
    int n_layers, cap_layers;
    mxp_layer *layers; /* (n_layers) */
    int n_params;
    mxp_param **params; /* (n_params) owned */
    mxp_dtype work;     /* the working dtype (F32 until mxp_model_set_precision) */
    int master_weights;
    mxp_model_config config; /* what mxp_model_create built it from; name "" when
                                built by hand (then a checkpoint cannot rebuild it) */
    struct mxp_gpt *gpt;     /* gpt: its parameters by role (owned); NULL otherwise */
} mxp_model;
typedef mxp_model mxp_model_t;

/* Defaults for a built-in model name. Errors: MXP_ERR_INVALID_ARG (unknown
 * name: the message lists the known ones). */
MXP_API mxp_status mxp_model_config_default(mxp_model_config *cfg, const char *name);

/* Build and initialise a built-in model in fp32 from Philox keyed by seed.
 * mlp, cnn: PyTorch's default init, weights and biases uniform in
 * +-1/sqrt(fan_in). gpt: GPT-2's, every weight matrix and both embeddings
 * normal(0, 0.02), the residual projections (attn.c_proj, mlp.c_proj)
 * normal(0, 0.02 / sqrt(2 n_layer)), biases 0, LayerNorm weights 1.
 * gpt parameters, with L = layer, C = n_embd, weights (in, out) as GPT-2's Conv1D:
 *   wte.weight (vocab, C)  wpe.weight (block, C)
 *   h.L.ln_1.weight, h.L.ln_1.bias (C)  h.L.attn.c_attn.weight (C, 3C), .bias (3C)
 *   h.L.attn.c_proj.weight (C, C), .bias (C)  h.L.ln_2.weight, .bias (C)
 *   h.L.mlp.c_fc.weight (C, 4C), .bias (4C)  h.L.mlp.c_proj.weight (4C, C), .bias (C)
 *   ln_f.weight, ln_f.bias (C)
 * The LM head is tied to wte.weight. Weight decay applies to the 2-D ones.
 * Errors: MXP_ERR_INVALID_ARG (bad sizes, n_embd not a multiple of n_head),
 * MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_model_create(mxp_model_t **out, const mxp_model_config *cfg);

/* An empty sequential model taking samples (H, W, C); add layers in order.
 * Errors: MXP_ERR_INVALID_ARG, MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_model_sequential(mxp_model_t **out, const char *name, int64_t H, int64_t W,
                                        int64_t C, int n_classes);
MXP_API mxp_status mxp_model_add_linear(mxp_model_t *m, int64_t in, int64_t out);
MXP_API mxp_status mxp_model_add_conv2d(mxp_model_t *m, int64_t in, int64_t out, int64_t k,
                                        int64_t stride, int64_t pad);
MXP_API mxp_status mxp_model_add_maxpool2d(mxp_model_t *m, int64_t k, int64_t stride);
MXP_API mxp_status mxp_model_add_relu(mxp_model_t *m);
MXP_API mxp_status mxp_model_add_gelu(mxp_model_t *m);
MXP_API mxp_status mxp_model_add_flatten(mxp_model_t *m);
MXP_API mxp_status mxp_model_add_dropout(mxp_model_t *m, float p);

/* (Re)initialise every parameter's fp32 weights from seed, as mxp_model_create.
 * Only before mxp_model_set_precision with master weights off. */
MXP_API mxp_status mxp_model_init(mxp_model_t *m, uint64_t seed);

/* Choose the working dtype and whether fp32 master weights are kept; allocates
 * work and grad copies and fills work from the fp32 weights (round to nearest
 * even). With master_weights == 0 in a 16-bit dtype the fp32 copy is dropped:
 * from then on the weights exist only in 16 bits. Call once, before training.
 * Errors: MXP_ERR_DTYPE, MXP_ERR_INVALID_ARG (called twice), MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_model_set_precision(mxp_model_t *m, mxp_dtype work, int master_weights);

/* Refresh every work copy from its master (the cast cache). Nothing to do in
 * fp32 or without master weights. */
MXP_API mxp_status mxp_model_refresh_work(mxp_model_t *m);

/* logits (B, n_classes) in the working dtype from x (B, H, W, C) (any
 * dtype: cast to the working dtype as the first op). Errors: MXP_ERR_SHAPE. */
MXP_API mxp_status mxp_model_forward(mxp_model_t *m, mxp_graph_t *g, mxp_var *x, mxp_var **logits);

/* gpt: logits (B, T, vocab) in the working dtype from tokens (B, T) int32
 * (lent until the graph's reset), T <= block_size: embeddings, n_layer
 * pre-LayerNorm blocks (x += attn(ln_1(x)); x += mlp(ln_2(x)), GELU-tanh),
 * ln_f, the tied head. Errors: MXP_ERR_INVALID_ARG (not a gpt model, a token
 * outside the vocabulary), MXP_ERR_SHAPE (T > block_size). */
MXP_API mxp_status mxp_model_forward_tokens(mxp_model_t *m, mxp_graph_t *g, const int32_t *tokens,
                                            int64_t B, int64_t T, mxp_var **logits);

/* How mxp_model_generate picks each next token. */
typedef struct mxp_sample_options {
    float temperature; /* logits are divided by it; 0 = greedy (always the most likely) */
    int top_k;         /* sample among the k most likely tokens only; 0 = all */
    uint64_t seed;     /* the Philox key of the draws: same seed, same text */
} mxp_sample_options;

/* gpt: continue prompt (n_prompt >= 1 token ids) by n_new tokens sampled one
 * at a time from softmax(logits / temperature) of the last position, the
 * context cropped to the newest block_size tokens (nanoGPT's sample.py; no KV
 * cache: each token costs one forward pass over the context). Runs in the
 * model's working dtype without recording a tape. out (n_prompt + n_new)
 * receives the prompt then the new tokens; fn (optional) is called with each
 * new token as it is chosen (to stream it). Errors: MXP_ERR_INVALID_ARG (not a
 * gpt, n_prompt < 1, a prompt token outside the vocabulary, temperature < 0,
 * top_k < 0), MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_model_generate(mxp_model_t *m, const int32_t *prompt, int64_t n_prompt,
                                      int64_t n_new, const mxp_sample_options *o, int32_t *out,
                                      void (*fn)(int32_t token, void *user), void *user);

/* Mark every gradient empty (the next backward overwrites instead of adding). */
MXP_API void mxp_model_zero_grad(mxp_model_t *m);

/* Parameter elements, and bytes held per copy (master, work, grad; a copy
 * shared with another counts once). */
MXP_API int64_t mxp_model_numel(const mxp_model_t *m);
MXP_API void mxp_model_bytes(const mxp_model_t *m, size_t *master, size_t *work, size_t *grad);

/* A parameter by name, or NULL. */
MXP_API mxp_param *mxp_model_param(const mxp_model_t *m, const char *name);

/* "cnn: conv2d(1->32, k5) relu maxpool ... (1,663,370 parameters)" into buf. */
MXP_API const char *mxp_model_describe(const mxp_model_t *m, char *buf, size_t size);

MXP_API void mxp_model_free(mxp_model_t *m);

#ifdef __cplusplus
}
#endif
#endif
