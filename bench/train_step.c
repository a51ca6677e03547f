/*
 * train_step.c - the mixprec side of the training-step comparison with
 * PyTorch (bench/torch_step.py builds the same models): one JSON line per
 * (model, mode) with the median milliseconds of a full step (forward, loss,
 * backward, norm + overflow check, SGD momentum update, cast cache).
 *
 *   train_step MODEL MODE THREADS [STEPS] [WARMUP]
 *     MODEL  mlp  Linear(784,1024) ReLU Linear(1024,1024) ReLU Linear(1024,10), batch 256
 *            cnn  Conv(1,32,3) ReLU Conv(32,64,3) ReLU MaxPool(2) Flatten Linear(9216,128)
 *                 ReLU Linear(128,10), batch 128, no padding (28 -> 26 -> 24 -> 12)
 *     MODE   fp32 | bf16 (fp32 master weights) | bf16-pure (master weights off) | fp16
 * Data are fixed random inputs and labels: the benchmark measures compute.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mixprec.h"

#include "bench_util.h"

static void print_op(const char *op, double f, double b, int64_t calls, void *user) {
    const int n = *(const int *)user + 5; /* warmup included: a split, not a timing */
    fprintf(stderr, "  %-14s fwd %7.2f ms  bwd %7.2f ms per step (%lld calls)\n", op, 1e3 * f / n,
            1e3 * b / n, (long long)calls);
}

#define TRY(e)                                                                                     \
    do {                                                                                           \
        if ((e) != MXP_OK) {                                                                       \
            fprintf(stderr, "train_step: %s\n", mxp_last_error());                                 \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr,
                "usage: train_step mlp|cnn fp32|bf16|bf16-pure|fp16 THREADS [STEPS] [WARMUP]\n");
        return 2;
    }
    const char *model = argv[1], *mode = argv[2];
    const int threads = atoi(argv[3]);
    int steps = argc > 4 ? atoi(argv[4]) : 30;
    const int warmup = argc > 5 ? atoi(argv[5]) : 5;
    const int is_mlp = strcmp(model, "mlp") == 0;
    const int64_t B = is_mlp ? 256 : 128;
    mxp_model_t *m;
    TRY(mxp_model_sequential(&m, model, 28, 28, 1, 10));
    if (is_mlp) {
        TRY(mxp_model_add_flatten(m));
        TRY(mxp_model_add_linear(m, 784, 1024));
        TRY(mxp_model_add_relu(m));
        TRY(mxp_model_add_linear(m, 1024, 1024));
        TRY(mxp_model_add_relu(m));
        TRY(mxp_model_add_linear(m, 1024, 10));
    } else {
        TRY(mxp_model_add_conv2d(m, 1, 32, 3, 1, 0));
        TRY(mxp_model_add_relu(m));
        TRY(mxp_model_add_conv2d(m, 32, 64, 3, 1, 0));
        TRY(mxp_model_add_relu(m));
        TRY(mxp_model_add_maxpool2d(m, 2, 2));
        TRY(mxp_model_add_flatten(m));
        TRY(mxp_model_add_linear(m, 9216, 128));
        TRY(mxp_model_add_relu(m));
        TRY(mxp_model_add_linear(m, 128, 10));
    }
    TRY(mxp_model_init(m, 1));
    mxp_optim_config oc;
    TRY(mxp_optim_config_default(&oc, MXP_OPTIM_SGD)); /* lr 0.01, momentum 0.9, as torch_step.py */
    mxp_optimizer_t *opt;
    TRY(mxp_optimizer_create(&opt, &oc));
    mxp_accelerator_options ao;
    mxp_accelerator_options_init(&ao);
    ao.mixed_precision = !strcmp(mode, "fp32") ? "no" : !strcmp(mode, "fp16") ? "fp16" : "bf16";
    ao.master_weights = strcmp(mode, "bf16-pure") != 0;
    ao.num_threads = threads;
    ao.profile = getenv("MIXPREC_PROFILE") != NULL; /* per-op split on stderr */
    mxp_accelerator_t *acc;
    TRY(mxp_accelerator_create(&acc, &ao));
    TRY(mxp_accelerator_prepare(acc, m, opt, NULL, NULL));

    /* inputs (B, 28, 28, 1) in fp32 around 0, labels 0..9 */
    const size_t nx = (size_t)B * 784;
    float *x = malloc(nx * sizeof *x);
    int32_t *y = malloc((size_t)B * sizeof *y);
    uint32_t r[4];
    for (size_t i = 0; i < nx; i++) {
        if (i % 4 == 0) mxp_philox4x32(7, i / 4, r);
        x[i] = (float)(r[i % 4] >> 8) / 16777216.0f - 0.5f;
    }
    for (int64_t i = 0; i < B; i++) y[i] = (int32_t)(i % 10);
    /* the batch enters in the working dtype, as the loader delivers it */
    const mxp_dtype wd = mxp_precision_dtype(mxp_accelerator_precision(acc));
    void *xw = malloc(nx * mxp_dtype_size(wd));
    TRY(mxp_convert(xw, wd, x, MXP_DTYPE_F32, nx));
    mxp_tensor xt;
    TRY(mxp_tensor_wrap(&xt, xw, wd, 4, (int64_t[]){B, 28, 28, 1}, NULL));

    double *t = malloc((size_t)steps * sizeof *t);
    float first = 0, last = 0;
    for (int s = 0; s < warmup + steps; s++) {
        const double t0 = now();
        mxp_graph_t *g = mxp_accelerator_graph(acc);
        mxp_graph_reset(g);
        mxp_var *xv = mxp_graph_input(g, &xt), *logits, *loss;
        TRY(mxp_model_forward(m, g, xv, &logits));
        TRY(mxp_op_cross_entropy(g, &loss, logits, y));
        TRY(mxp_accelerator_backward(acc, loss));
        TRY(mxp_accelerator_clip_grad_norm(acc, 0.0f, NULL));
        TRY(mxp_accelerator_step(acc, NULL));
        const double dt = now() - t0;
        if (s >= warmup) t[s - warmup] = dt;
        last = *(float *)loss->value->data;
        if (s == 0) first = last;
    }
    if (ao.profile) mxp_graph_profile(mxp_accelerator_graph(acc), print_op, &steps);
    qsort(t, (size_t)steps, sizeof *t, cmp);
    mxp_memory_report mem;
    mxp_accelerator_memory(acc, &mem);
    const double med = t[steps / 2];
    printf("{\"impl\":\"mixprec\",\"model\":\"%s\",\"mode\":\"%s\",\"threads\":%d,\"batch\":%lld,"
           "\"ms_per_step\":%.3f,\"ms_p10\":%.3f,\"ms_p90\":%.3f,\"samples_per_s\":%.1f,"
           "\"steps\":%d,\"activation_bytes\":%zu,\"workspace_bytes\":%zu,\"weight_bytes\":%zu,"
           "\"master_bytes\":%zu,"
           "\"grad_bytes\":%zu,\"optimizer_bytes\":%zu,\"peak_rss_bytes\":%zu,"
           "\"loss_first\":%.4f,\"loss_last\":%.4f,\"isa\":\"%s\"}\n",
           model, mode, threads, (long long)B, 1e3 * med, 1e3 * t[steps / 10],
           1e3 * t[steps * 9 / 10], (double)B / med, steps, mem.activations, mem.workspace,
           mem.weights, mem.master_weights, mem.grads, mem.optimizer, mxp_peak_rss_bytes(),
           (double)first, (double)last, mxp_isa_name(mxp_isa_active()));
    free(t);
    free(x);
    free(xw);
    free(y);
    mxp_accelerator_free(acc);
    mxp_optimizer_free(opt);
    mxp_model_free(m);
    mxp_gemm_release_workspace();
    return 0;
}
