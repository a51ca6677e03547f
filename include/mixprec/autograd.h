/*
 * mixprec/autograd.h - the per-step graph: ops that record their backward,
 * and one reverse walk that accumulates gradients with +=.
 *
 * A graph lives for one training step. Every op appends a node to a tape;
 * the tape is already a topological order, so backward walks it in reverse.
 * Values, gradients and what each backward needs are carved out of the
 * graph's arena and released together by mxp_graph_reset. A variable used
 * twice receives both contributions (the second adds to the first).
 *
 * Autocast: the graph has a working dtype (F32, BF16 or F16). Each op has a
 * precision class (DESIGN.md "Autocast policy"):
 *   LOW    matmul, linear, conv: inputs in the working dtype, fp32
 *          accumulation, output rounded once to the working dtype;
 *   FP32   cross-entropy, softmax, sums: computed and returned in fp32;
 *   FOLLOW element-wise ops (ReLU, GELU, dropout, max-pool, reshape): the
 *          dtype of their input.
 * Gradients have the dtype of the value they belong to.
 *
 *     mxp_graph_t *g;  mxp_graph_create(&g, MXP_DTYPE_BF16);
 *     mxp_var *x = mxp_graph_input(g, batch);              // (B, 784) bf16
 *     mxp_var *h, *logits, *loss;
 *     mxp_op_linear(g, &h, x, w1, b1, MXP_ACT_RELU);       // (B, 256)
 *     mxp_op_linear(g, &logits, h, w2, b2, MXP_ACT_NONE);  // (B, 10)
 *     mxp_op_cross_entropy(g, &loss, logits, labels);      // () fp32
 *     mxp_graph_backward(g, loss, 65536.0f);               // seed dloss = loss scale
 *     mxp_graph_reset(g);                                  // next step
 */
#ifndef MIXPREC_AUTOGRAD_H
#define MIXPREC_AUTOGRAD_H

#include <stdint.h>

#include "mixprec/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Append-only. */
typedef enum mxp_prec_class {
    MXP_PREC_CLASS_LOW = 0,
    MXP_PREC_CLASS_FP32 = 1,
    MXP_PREC_CLASS_FOLLOW = 2
} mxp_prec_class;

typedef struct mxp_graph mxp_graph_t;
typedef struct mxp_node mxp_node;

/* A value in the graph. Parameters are variables owned by their module
 * (value = the working weights, grad = a persistent buffer); everything else
 * is made by the graph in its arena. */
typedef struct mxp_var {
    mxp_tensor *value; /* (shape) */
    mxp_tensor *grad;  /* (shape) in value's dtype: d(loss * seed)/d(value);
                          NULL until backward first writes it (arena vars). After
                          backward, an add's output may share this buffer with its
                          input's (add lends it instead of copying), so only the
                          gradients of parameters and of variables that no add consumed
                          keep their own value */
    int has_grad;      /* 0: grad holds nothing yet (the next contribution
                          overwrites instead of adding); set to 0 to zero it */
    int requires_grad; /* gradients flow into this variable */
    mxp_node *node;    /* the op that made it; NULL for inputs and parameters */
    const char *name;  /* for messages and statistics (static or owner's storage) */
} mxp_var;

/* A node's backward: read n->out->grad (written by later ops) and add each
 * input's contribution with mxp_var_grad_target / mxp_var_accumulate. */
typedef mxp_status (*mxp_backward_fn)(mxp_graph_t *g, mxp_node *n);

struct mxp_node {
    const char *op; /* "linear", "conv2d", ... */
    mxp_prec_class prec;
    mxp_var *out;
    mxp_var *in[4]; /* inputs that may need gradients; NULL slots allowed */
    int n_in;
    void *ctx; /* op-specific, in the arena */
    mxp_backward_fn backward;
    const char *prof; /* the profile row its time goes to: the label in force when it was
                         recorded (mxp_graph_set_profile_label), else op */
};

/* ---- the graph ----------------------------------------------------------- */

/* A graph whose ops compute in working dtype `work` (F32, BF16 or F16).
 * Errors: MXP_ERR_DTYPE, MXP_ERR_NOMEM. Free with mxp_graph_free. */
MXP_API mxp_status mxp_graph_create(mxp_graph_t **out, mxp_dtype work);
MXP_API void mxp_graph_free(mxp_graph_t *g);

/* Forget the tape and release every arena allocation (values, grads, saved
 * contexts) of the step; parameters' persistent grads are untouched. */
MXP_API void mxp_graph_reset(mxp_graph_t *g);

/* The working dtype; the arena (lent, valid for the graph's life). */
MXP_API mxp_dtype mxp_graph_dtype(const mxp_graph_t *g);
MXP_API mxp_arena_t *mxp_graph_arena(mxp_graph_t *g);

/* A second arena for scratch that holds no value of the graph: per-thread
 * im2col columns, partial sums. Released with the step like the first, and
 * kept apart so that the first one's peak is the step's activation memory
 * (values, saved tensors, activation gradients) and this one's the workspace. */
MXP_API mxp_arena_t *mxp_graph_scratch(mxp_graph_t *g);

/* Training (1, default) or evaluation (0): in evaluation ops record nothing,
 * keep nothing for backward, and dropout is the identity. */
MXP_API void mxp_graph_set_training(mxp_graph_t *g, int training);
MXP_API int mxp_graph_training(const mxp_graph_t *g);

/* Seed for dropout masks; step is folded in by the caller (e.g. the step
 * number) so every step draws fresh masks reproducibly. */
MXP_API void mxp_graph_set_seed(mxp_graph_t *g, uint64_t seed);

/* Time every op's forward and backward and accumulate the seconds per op
 * kind (mxp_graph_profile). Off by default (it costs clock reads). */
MXP_API void mxp_graph_set_profiling(mxp_graph_t *g, int on);

/* While label is not NULL, the ops recorded and timed go to the profile row
 * `label` instead of their op kind, so a model can report its time per layer
 * type ("attn.c_attn", "mlp.c_fc", ...) rather than per op. label must outlive
 * the graph (a string literal); NULL goes back to op kinds. */
MXP_API void mxp_graph_set_profile_label(mxp_graph_t *g, const char *label);

/* The nodes recorded in the current step, in execution order (lent; valid
 * until mxp_graph_reset): their count, and node i (NULL outside [0, count)).
 * The numerics statistics read activations and their gradients this way. */
MXP_API int mxp_graph_n_nodes(const mxp_graph_t *g);
MXP_API const mxp_node *mxp_graph_node(const mxp_graph_t *g, int i);

/* Per-op-kind (or label) seconds accumulated since profiling was switched on: calls
 * fn(op, forward_s, backward_s, calls, user) once per kind. */
MXP_API void mxp_graph_profile(const mxp_graph_t *g,
                               void (*fn)(const char *op, double fwd_s, double bwd_s, int64_t calls,
                                          void *user),
                               void *user);

/* An input variable (no gradient) viewing t, which is lent and must stay
 * valid until the reset. NULL (last error MXP_ERR_NOMEM) if the arena is full. */
MXP_API mxp_var *mxp_graph_input(mxp_graph_t *g, mxp_tensor *t);

/* A new variable with a contiguous arena value of the given dtype and shape
 * (contents uninitialised); requires_grad = 0, node NULL.
 * Errors: as mxp_tensor_arena. */
MXP_API mxp_status mxp_graph_var(mxp_graph_t *g, mxp_var **out, mxp_dtype dt, int ndim,
                                 const int64_t *shape);

/* Record a node producing `out` from the n_in (<= 4) inputs; out->requires_grad
 * becomes 1 if any input requires it. In evaluation mode nothing is recorded.
 * ctx is kept as given (allocate it in the arena). Errors: MXP_ERR_INVALID_ARG,
 * MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_graph_record(mxp_graph_t *g, const char *op, mxp_prec_class prec,
                                    mxp_var *out, mxp_var *const *in, int n_in, void *ctx,
                                    mxp_backward_fn backward);

/* Backward from the fp32 scalar `loss` with d(loss) = seed (the loss scale):
 * runs the tape in reverse; a node runs only if its output received a
 * gradient. Parameters' grads accumulate (+=) across calls until their
 * has_grad is cleared, which is how micro-batches accumulate.
 * Errors: MXP_ERR_INVALID_ARG (loss not a scalar of this graph, called twice
 * for one tape), whatever an op's backward returns. */
MXP_API mxp_status mxp_graph_backward(mxp_graph_t *g, mxp_var *loss, float seed);

/* Backward from any variable v of this step with d(v) = dv (same shape and
 * dtype as v's value; copied), as torch.autograd.backward(v, dv). Errors as
 * mxp_graph_backward, MXP_ERR_SHAPE when dv does not match. */
MXP_API mxp_status mxp_graph_backward_from(mxp_graph_t *g, mxp_var *v, const mxp_tensor *dv);

/* For backward functions: where to put v's gradient contribution. Returns the
 * grad tensor (allocating it in the arena on first use) and *beta: 0 when it
 * holds nothing yet (overwrite), 1 when the contribution must be added (GEMMs
 * pass beta straight through; element-wise code adds). NULL on allocation
 * failure. Marks v as having a gradient. */
MXP_API mxp_tensor *mxp_var_grad_target(mxp_graph_t *g, mxp_var *v, float *beta);

/* v.grad += contrib (same shape and dtype as v.value), or = when v has none
 * yet; the addition is in fp32, rounded once. Errors: MXP_ERR_SHAPE, MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_var_accumulate(mxp_graph_t *g, mxp_var *v, const mxp_tensor *contrib);

/* ---- ops (all derivative rules live in src/autograd/ops.c) ------------------ */
/* Every op: inputs must belong to this step; the output is a new arena
 * variable. Shape or dtype mismatches are MXP_ERR_SHAPE / MXP_ERR_DTYPE with
 * a message naming the op and the shapes. */

/* y (..., N) = act(x (..., K) w^T + b), w (N, K), b (N) or NULL; x has 2 or
 * more dimensions and its leading ones are kept. x is cast to the working
 * dtype if it is not (a recorded cast); w and b must already be in it (the
 * cast cache). act NONE, RELU or GELU_TANH, fused into the GEMM. LOW class. */
MXP_API mxp_status mxp_op_linear(mxp_graph_t *g, mxp_var **y, mxp_var *x, mxp_var *w, mxp_var *b,
                                 mxp_act act);

/* As mxp_op_linear with the weight stored (in, out): y (..., N) = act(x (..., K)
 * w + b), w (K, N). GPT-2's Conv1D layout, so that Hugging Face GPT-2 weights
 * load as they are. LOW class. */
MXP_API mxp_status mxp_op_linear_kn(mxp_graph_t *g, mxp_var **y, mxp_var *x, mxp_var *w, mxp_var *b,
                                    mxp_act act);

/* x (B, T, C) in the working dtype = wte[tokens] + wpe[0 .. T), wte (V, C),
 * wpe (block, C) with block >= T; tokens (B, T) int32 lent until the reset.
 * The gradients of wte and wpe are summed in fp32 and rounded once into each
 * parameter's gradient (wte may also be used elsewhere, e.g. a tied LM head:
 * the contributions add). FOLLOW class. A token outside [0, V) is
 * MXP_ERR_INVALID_ARG. */
MXP_API mxp_status mxp_op_embedding(mxp_graph_t *g, mxp_var **x, const int32_t *tokens, int64_t B,
                                    int64_t T, mxp_var *wte, mxp_var *wpe);

/* y (..., C) = layernorm over the last dimension of x with weight w (C) and
 * bias b (C); statistics in fp32, y in x's dtype (the working dtype). FP32
 * statistics, FOLLOW output. */
MXP_API mxp_status mxp_op_layernorm(mxp_graph_t *g, mxp_var **y, mxp_var *x, mxp_var *w, mxp_var *b,
                                    float eps);

/* y (B, T, C) = causal multi-head self-attention of qkv (B, T, 3C) with
 * n_head heads (mxp_attention_forward): score and value products LOW, the
 * softmax FP32; the probabilities (B, NH, T, T) are kept in the working dtype
 * for backward. */
MXP_API mxp_status mxp_op_attention(mxp_graph_t *g, mxp_var **y, mxp_var *qkv, int64_t n_head);

/* y (B, OH, OW, Cout) = act(conv(x (B, H, W, Cin), w (Cout, K, K, Cin)) + b (Cout)),
 * NHWC, square kernel, stride, symmetric zero padding; im2col + one GEMM. LOW. */
MXP_API mxp_status mxp_op_conv2d(mxp_graph_t *g, mxp_var **y, mxp_var *x, mxp_var *w, mxp_var *b,
                                 int64_t stride, int64_t pad, mxp_act act);

/* y (B, OH, OW, C) = max over K x K windows of x (B, H, W, C), stride s. FOLLOW. */
MXP_API mxp_status mxp_op_maxpool2d(mxp_graph_t *g, mxp_var **y, mxp_var *x, int64_t K,
                                    int64_t stride);

/* Element-wise activations (FOLLOW). */
MXP_API mxp_status mxp_op_relu(mxp_graph_t *g, mxp_var **y, mxp_var *x);
MXP_API mxp_status mxp_op_gelu(mxp_graph_t *g, mxp_var **y, mxp_var *x);

/* y = a + b, same shape and dtype (FOLLOW). */
MXP_API mxp_status mxp_op_add(mxp_graph_t *g, mxp_var **y, mxp_var *a, mxp_var *b);

/* y (B, prod(rest)) viewing x (B, ...): no copy. FOLLOW. */
MXP_API mxp_status mxp_op_flatten(mxp_graph_t *g, mxp_var **y, mxp_var *x);

/* Inverted dropout with probability p (identity in evaluation mode or p == 0);
 * the mask comes from the graph's seed and a per-graph counter. FOLLOW. */
MXP_API mxp_status mxp_op_dropout(mxp_graph_t *g, mxp_var **y, mxp_var *x, float p);

/* loss () fp32 = mean over the B rows of softmax cross-entropy of logits
 * (..., V) (B = the product of the leading dimensions) against labels (B)
 * int32 (lent until the reset). FP32 class. A label outside [0, V) is
 * MXP_ERR_INVALID_ARG. */
MXP_API mxp_status mxp_op_cross_entropy(mxp_graph_t *g, mxp_var **loss, mxp_var *logits,
                                        const int32_t *labels);

#ifdef __cplusplus
}
#endif
#endif
