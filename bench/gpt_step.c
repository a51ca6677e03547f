/*
 * gpt_step.c - the mixprec side of the GPT training-step comparison with
 * PyTorch (bench/torch_gpt.py builds the same model): one JSON line per run
 * with the median milliseconds of a full step (forward, loss, backward,
 * clip-norm + overflow check, AdamW update, cast cache), tokens/s, the
 * activation memory and the peak RSS. MIXPREC_PROFILE=1 adds the split per op
 * kind on stderr.
 *
 *   gpt_step MODE THREADS [STEPS] [WARMUP] [LAYERS HEADS WIDTH BLOCK BATCH]
 *     MODE  fp32 | bf16 (fp32 master weights) | fp16 (fp32 masters, dynamic loss scale)
 *     shape default "small": 6 layers, 6 heads, 384 wide, block 256, batch 8, vocab 65
 * Tokens are fixed random ids (Philox): the benchmark measures compute.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mixprec.h"

#include "bench_util.h"

static void print_op(const char *op, double f, double b, int64_t calls, void *user) {
    const int n = *(const int *)user; /* warm-up included: a split, not a timing */
    fprintf(stderr, "  %-14s fwd %8.2f ms  bwd %8.2f ms per step (%lld calls)\n", op, 1e3 * f / n,
            1e3 * b / n, (long long)calls);
}

#define TRY(e)                                                                                     \
    do {                                                                                           \
        if ((e) != MXP_OK) {                                                                       \
            fprintf(stderr, "gpt_step: %s\n", mxp_last_error());                                   \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: gpt_step fp32|bf16|fp16 THREADS [STEPS] [WARMUP] "
                        "[LAYERS HEADS WIDTH BLOCK BATCH]\n");
        return 2;
    }
    const char *mode = argv[1];
    const int threads = atoi(argv[2]);
    const int steps = argc > 3 ? atoi(argv[3]) : 10;
    const int warmup = argc > 4 ? atoi(argv[4]) : 3;
    mxp_model_config c;
    TRY(mxp_model_config_default(&c, "gpt"));
    int64_t B = 8;
    if (argc > 9) {
        c.n_layer = atoll(argv[5]);
        c.n_head = atoll(argv[6]);
        c.n_embd = atoll(argv[7]);
        c.block_size = atoll(argv[8]);
        B = atoll(argv[9]);
    }
    if (steps < 1 || warmup < 0 || B < 1) {
        fprintf(stderr, "gpt_step: STEPS, BATCH must be >= 1\n");
        return 2;
    }
    const int64_t T = c.block_size, V = c.vocab_size;
    mxp_model_t *m;
    TRY(mxp_model_create(&m, &c));
    mxp_optim_config oc;
    TRY(mxp_optim_config_default(&oc, MXP_OPTIM_ADAMW));
    mxp_optimizer_t *opt;
    TRY(mxp_optimizer_create(&opt, &oc));
    mxp_accelerator_options ao;
    mxp_accelerator_options_init(&ao);
    ao.mixed_precision = !strcmp(mode, "fp32") ? "no" : mode;
    ao.num_threads = threads;
    ao.profile = getenv("MIXPREC_PROFILE") != NULL;
    mxp_accelerator_t *acc;
    TRY(mxp_accelerator_create(&acc, &ao));
    TRY(mxp_accelerator_prepare(acc, m, opt, NULL, NULL));

    /* tokens (B, T + 1): x = the first T of each row, y = the last T */
    int32_t *x = malloc((size_t)(B * T) * sizeof *x), *y = malloc((size_t)(B * T) * sizeof *y);
    uint32_t r[4];
    for (int64_t b = 0; b < B; b++) {
        for (int64_t t = 0; t <= T; t++) {
            const int64_t i = b * (T + 1) + t;
            if (i % 4 == 0 || t == 0) mxp_philox4x32(11, (uint64_t)i / 4, r);
            const int32_t tok = (int32_t)(r[i % 4] % (uint32_t)V);
            if (t < T) x[b * T + t] = tok;
            if (t > 0) y[b * T + t - 1] = tok;
        }
    }
    double *tm = malloc((size_t)steps * sizeof *tm);
    float first = 0, last = 0;
    for (int s = 0; s < warmup + steps; s++) {
        const double t0 = now();
        mxp_graph_t *g = mxp_accelerator_graph(acc);
        mxp_graph_reset(g);
        mxp_var *logits, *loss;
        TRY(mxp_model_forward_tokens(m, g, x, B, T, &logits));
        TRY(mxp_op_cross_entropy(g, &loss, logits, y));
        TRY(mxp_accelerator_backward(acc, loss));
        TRY(mxp_accelerator_clip_grad_norm(acc, 1.0f, NULL));
        TRY(mxp_accelerator_step(acc, NULL));
        const double dt = now() - t0;
        if (s >= warmup) tm[s - warmup] = dt;
        last = *(float *)loss->value->data;
        if (s == 0) first = last;
    }
    const int total = warmup + steps;
    if (ao.profile) mxp_graph_profile(mxp_accelerator_graph(acc), print_op, (void *)&total);
    qsort(tm, (size_t)steps, sizeof *tm, cmp);
    mxp_memory_report mem;
    mxp_accelerator_memory(acc, &mem);
    const double med = tm[steps / 2];
    printf("{\"impl\":\"mixprec\",\"model\":\"gpt\",\"mode\":\"%s\",\"threads\":%d,"
           "\"n_layer\":%lld,\"n_head\":%lld,\"n_embd\":%lld,\"block\":%lld,\"batch\":%lld,"
           "\"params\":%lld,\"ms_per_step\":%.3f,\"ms_p10\":%.3f,\"ms_p90\":%.3f,"
           "\"tokens_per_s\":%.1f,\"steps\":%d,\"activation_bytes\":%zu,\"workspace_bytes\":%zu,"
           "\"weight_bytes\":%zu,\"master_bytes\":%zu,\"grad_bytes\":%zu,\"optimizer_bytes\":%zu,"
           "\"peak_rss_bytes\":%zu,\"loss_first\":%.4f,\"loss_last\":%.4f,\"isa\":\"%s\"}\n",
           mode, threads, (long long)c.n_layer, (long long)c.n_head, (long long)c.n_embd,
           (long long)T, (long long)B, (long long)mxp_model_numel(m), 1e3 * med,
           1e3 * tm[steps / 10], 1e3 * tm[steps * 9 / 10], (double)(B * T) / med, steps,
           mem.activations, mem.workspace, mem.weights, mem.master_weights, mem.grads,
           mem.optimizer, mxp_peak_rss_bytes(), (double)first, (double)last,
           mxp_isa_name(mxp_isa_active()));
    free(tm);
    free(x);
    free(y);
    mxp_accelerator_free(acc);
    mxp_optimizer_free(opt);
    mxp_model_free(m);
    mxp_gemm_release_workspace();
    return 0;
}
