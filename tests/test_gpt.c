/*
 * test_gpt.c - the gpt model against PyTorch (tests/reference/gpt_ref.bin, written by
 * gen_gpt.py, whose docstring states the exact math): a tiny GPT-2 (2 layers, 4 heads, 64
 * wide, block 32, vocab 65) built from the fixture's weights gives the reference logits, loss
 * and every parameter gradient in fp32, bf16 and fp16, and 10 AdamW steps through the
 * accelerator give the reference losses.
 *
 * With --python PY SCRIPT it instead saves a gpt checkpoint and has SCRIPT
 * (tests/reference/check_gpt_hf.py) load its model.safetensors into a Hugging Face
 * GPT2LMHeadModel and compare logits; 77 (skipped) when PY lacks torch, safetensors or
 * transformers (the script then says which).
 */
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "fixture.h"
#include "mixprec.h"
#include "test_util.h"

static fixture fx;

static const float *F(const char *name, int64_t *n) {
    const float *p = fixture_f32(&fx, name, n);
    if (!p) {
        fprintf(stderr, "fixture record %s missing\n", name);
        exit(1);
    }
    return p;
}

/* the fixture's sizes: config = [n_layer, n_head, n_embd, block, vocab, B, T, steps] */
static int64_t cfg_at(int i) {
    int64_t n;
    const int32_t *c = fixture_i32(&fx, "config", &n);
    if (!c || n != 8) {
        fprintf(stderr, "fixture record config missing or not 8 int32\n");
        exit(1);
    }
    return c[i];
}

/* One precision mode and what it is compared with.
 *
 * Tolerances are on max |got - ref| over a tensor, relative to max |ref| of that tensor
 * (gradients are ~1e-3 to 1e-1 in size, so an absolute floor of 1 would hide everything).
 *
 * fp32: the reference is float64 autograd from the same fp32 weights. An fp32 implementation
 * differs from it by fp32 rounding in reductions of at most 4C = 256 terms (GEMMs) or N = 128
 * tokens (weight gradients): ~sqrt(256) * 2^-24 ~ 1e-6 of the largest value, so 1e-5 leaves
 * a 10x margin (the figure).
 *
 * bf16 / fp16: the reference is gen_gpt.py's emulation of the autocast policy (rounding at
 * exactly mixprec's points, fp32 elsewhere). mixprec and the emulation round the same exact
 * values, but their fp32 sums run in different orders, so a value lying near a rounding
 * boundary can go either way; one flipped activation (1 ulp: 2^-8 relative in bf16, 2^-11 in
 * fp16) then propagates through the rest of the network. The emulation against itself with
 * float64 accumulation differs by up to 6.0e-3 of max |ref| in bf16 (logits 4.5e-3) and
 * 8.3e-4 in fp16 (logits 5.6e-4), the size of either one's distance from float64 (1.1e-2,
 * 1.2e-3); mixprec measured 5.3e-3 (avx512) to 7.7e-3 (ref, avx2) in bf16 and 8.8e-4 to
 * 9.6e-4 in fp16. Tolerances: bf16 2e-2 (2.5 bf16 epsilons, 2^-7), fp16 3e-3 (3 fp16
 * epsilons, 2^-10), ~3x the spread.
 * bf16 is also compared with torch.autocast (a second reference with torch's own rounding
 * points); the emulation and autocast differ by up to 1.1e-2 of max |ref|, so 3e-2.
 *
 * The loss is a mean of logsumexp(logits) - logits[target]: each term moves by at most twice
 * the largest logit error, so its tolerance is 2 * logits tolerance * max |logits|.
 *
 * Training: the first loss is the forward above; then AdamW (the loss falls ~0.1 per step).
 * fp32 must follow float64 torch to 1e-4 (the requirement; torch's own fp32 run
 * stays within 1e-5 of it, mixprec within 1e-6). For bf16 and fp16 the spread of valid
 * references is the yardstick: over the 10 steps the bf16 emulation, bf16 autocast and fp32
 * runs stay within 5e-4 of each other, the fp16 emulation within 1e-4 of fp32; mixprec
 * measured up to 4e-4 (bf16) and 5e-5 (fp16) from the emulation. Tolerances 2e-3 (bf16) and
 * 3e-4 (fp16). Without weight decay the losses move by 6.5e-4, wrong betas by 7e-3: fp32
 * and fp16 catch the first, every mode the second. */
typedef struct mode {
    const char *name;   /* the accelerator's mixed_precision */
    mxp_dtype dt;       /* working dtype */
    const char *ref;    /* record prefix of logits, loss, grad.* */
    double tol;         /* logits and gradients, relative to max |ref| */
    const char *scale;  /* the accelerator's loss_scale option */
    const char *train;  /* the loss trajectory it must follow */
    double train_tol;   /* absolute, on each loss */
    const char *train2; /* a second trajectory (bf16: autocast), or NULL */
} mode;

static const mode modes[] = {
    {"no", MXP_DTYPE_F32, "fp32", 1e-5, NULL, "train.fp32.loss", 1e-4, NULL},
    {"bf16", MXP_DTYPE_BF16, "bf16emu", 2e-2, NULL, "train.bf16emu.loss", 2e-3,
     "train.bf16autocast.loss"},
    {"fp16", MXP_DTYPE_F16, "fp16emu", 3e-3, "1024", "train.fp16emu.loss", 3e-4, NULL},
};

static const double AUTOCAST_TOL = 3e-2;

/* max |got - ref| <= tol * max |ref| over n values; got in dtype dt. Returns the worst error
 * relative to max |ref| (NaN/inf count as infinitely wrong). */
static double expect_close(const char *what, const char *mode_name, const void *got, mxp_dtype dt,
                           const float *ref, int64_t n, double tol) {
    double scale = 0.0, worst = 0.0;
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    if (scale == 0.0) scale = 1.0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)get(dt, got, (size_t)i) - ref[i]);
        if (isnan(e)) e = INFINITY;
        if (e > worst) worst = e, at = i;
    }
    CHECK(worst <= tol * scale,
          "%s [%s]: max error %.3g at %lld (got %.6g, ref %.6g) = %.3g of max|ref| %.3g > %g", what,
          mode_name, worst, (long long)at, (double)get(dt, got, (size_t)at), (double)ref[at],
          worst / scale, scale, tol);
    return worst / scale;
}

/* A gpt of the fixture's shape with the fixture's initial weights in every master, in fp32
 * (before mxp_model_set_precision); NULL on failure (reported). Every parameter must have an
 * init.<name> record of its shape, and every init.* record a parameter. */
static mxp_model_t *build(void) {
    mxp_model_config c;
    mxp_model_t *m = NULL;
    if (mxp_model_config_default(&c, "gpt") != MXP_OK) {
        CHECK(0, "config_default(gpt): %s", mxp_last_error());
        return NULL;
    }
    c.n_layer = cfg_at(0), c.n_head = cfg_at(1), c.n_embd = cfg_at(2);
    c.block_size = cfg_at(3), c.vocab_size = cfg_at(4);
    if (mxp_model_create(&m, &c) != MXP_OK) {
        CHECK(0, "model_create(gpt): %s", mxp_last_error());
        return NULL;
    }
    int records = 0;
    for (int64_t r = 0; r < fx.count; r++) records += strncmp(fx.records[r].name, "init.", 5) == 0;
    CHECK(m->n_params == records, "gpt has %d parameters, the fixture %d", m->n_params, records);
    for (int i = 0; i < m->n_params; i++) {
        mxp_param *p = m->params[i];
        char name[80];
        snprintf(name, sizeof name, "init.%s", p->name);
        int64_t shape[FIXTURE_MAX_DIMS], n;
        const int nd = fixture_shape(&fx, name, shape);
        const float *src = fixture_f32(&fx, name, &n);
        int same = src && p->master && nd == p->master->ndim;
        for (int d = 0; same && d < nd; d++) same = shape[d] == p->master->shape[d];
        CHECK(same, "parameter %s: no fixture record of its shape", p->name);
        if (!same) {
            mxp_model_free(m);
            return NULL;
        }
        CHECK(mxp_model_param(m, p->name) == p, "mxp_model_param(%s)", p->name);
        memcpy(p->master->data, src, (size_t)n * sizeof(float));
    }
    return m;
}

/* ---- logits, loss and every gradient ---------------------------------------------------- */

static void test_forward_backward(const mode *md) {
    const int64_t B = cfg_at(5), T = cfg_at(6), V = cfg_at(4);
    const int32_t *tokens = fixture_i32(&fx, "tokens", NULL);
    const int32_t *targets = fixture_i32(&fx, "targets", NULL);
    mxp_model_t *m = build();
    mxp_graph_t *g = NULL;
    if (!m || !tokens || !targets) {
        CHECK(0, "[%s] no model or no tokens", md->name);
        mxp_model_free(m);
        return;
    }
    mxp_var *logits = NULL, *loss = NULL;
    mxp_status st = mxp_model_set_precision(m, md->dt, 1);
    if (st == MXP_OK) st = mxp_graph_create(&g, md->dt);
    if (st == MXP_OK) st = mxp_model_forward_tokens(m, g, tokens, B, T, &logits);
    if (st == MXP_OK) st = mxp_op_cross_entropy(g, &loss, logits, targets);
    if (st == MXP_OK) st = mxp_graph_backward(g, loss, 1.0f);
    CHECK(st == MXP_OK, "[%s] forward/backward: %s", md->name, mxp_last_error());
    if (st != MXP_OK) goto done;

    char name[96];
    const mxp_tensor *lv = logits->value;
    CHECK(lv->dtype == md->dt && lv->ndim == 3 && lv->shape[0] == B && lv->shape[1] == T &&
              lv->shape[2] == V,
          "[%s] logits are not (B, T, V) in the working dtype", md->name);
    int64_t n;
    snprintf(name, sizeof name, "%s.logits", md->ref);
    const float *ref_logits = F(name, &n);
    CHECK(n == mxp_tensor_numel(lv), "[%s] logits size", md->name);
    expect_close("logits", md->name, lv->data, lv->dtype, ref_logits, n, md->tol);
    double max_logit = 0.0;
    for (int64_t i = 0; i < n; i++) max_logit = fmax(max_logit, fabs(ref_logits[i]));

    snprintf(name, sizeof name, "%s.loss", md->ref);
    const double ref_loss = F(name, NULL)[0];
    const double got_loss = ((const float *)loss->value->data)[0];
    CHECK(fabs(got_loss - ref_loss) <= 2 * md->tol * max_logit + 1e-6,
          "[%s] loss %.7f, reference %.7f (tolerance %.2g)", md->name, got_loss, ref_loss,
          2 * md->tol * max_logit + 1e-6);

    double worst = 0.0;
    const char *worst_name = "(none differs)";
    for (int i = 0; i < m->n_params; i++) {
        const mxp_param *p = m->params[i];
        CHECK(p->var.has_grad && p->grad, "[%s] %s received no gradient", md->name, p->name);
        if (!p->var.has_grad || !p->grad) continue;
        snprintf(name, sizeof name, "%s.grad.%s", md->ref, p->name);
        const float *ref = F(name, &n);
        CHECK(n == mxp_tensor_numel(p->grad) && p->grad->dtype == md->dt,
              "[%s] grad %s: size or dtype", md->name, p->name);
        snprintf(name, sizeof name, "grad %s", p->name);
        const double e =
            expect_close(name, md->name, p->grad->data, p->grad->dtype, ref, n, md->tol);
        if (e > worst) worst = e, worst_name = p->name;
        /* bf16: torch.autocast as a second reference where the fixture has it */
        snprintf(name, sizeof name, "bf16autocast.grad.%s", p->name);
        const float *ac = md->dt == MXP_DTYPE_BF16 ? fixture_f32(&fx, name, &n) : NULL;
        if (ac) {
            snprintf(name, sizeof name, "grad %s vs autocast", p->name);
            expect_close(name, md->name, p->grad->data, p->grad->dtype, ac, n, AUTOCAST_TOL);
        }
    }
    if (md->dt == MXP_DTYPE_BF16)
        expect_close("logits vs autocast", md->name, lv->data, lv->dtype,
                     F("bf16autocast.logits", NULL), mxp_tensor_numel(lv), AUTOCAST_TOL);
    printf("[%-4s] loss %.7f (ref %.7f); worst gradient %s at %.2g of its max (tolerance %g)\n",
           md->name, got_loss, ref_loss, worst_name, worst, md->tol);
done:
    mxp_graph_free(g);
    mxp_model_free(m);
}

/* ---- 10 AdamW steps through the accelerator -------------------------------------------- */

static void test_training(const mode *md) {
    const int64_t B = cfg_at(5), T = cfg_at(6), steps = cfg_at(7);
    const int32_t *tokens = fixture_i32(&fx, "tokens", NULL);
    const int32_t *targets = fixture_i32(&fx, "targets", NULL);
    int64_t n_ref;
    const float *ref = F(md->train, &n_ref);
    const float *ref2 = md->train2 ? F(md->train2, NULL) : NULL;
    CHECK(n_ref == steps, "%s has %lld losses, config says %lld", md->train, (long long)n_ref,
          (long long)steps);
    mxp_model_t *m = build();
    if (!m) return;
    mxp_accelerator_options o;
    mxp_accelerator_options_init(&o);
    o.mixed_precision = md->name;
    o.master_weights = 1;
    o.loss_scale = md->scale; /* NULL: off in fp32 and bf16 (MIXPREC_LOSS_SCALE is unset) */
    o.grad_accum = 1;
    mxp_optim_config oc;
    mxp_optim_config_default(&oc, MXP_OPTIM_ADAMW);
    oc.lr = 1e-3f, oc.beta1 = 0.9f, oc.beta2 = 0.95f, oc.eps = 1e-8f, oc.weight_decay = 0.1f;
    mxp_accelerator_t *acc = NULL;
    mxp_optimizer_t *opt = NULL;
    mxp_status st = mxp_optimizer_create(&opt, &oc);
    if (st == MXP_OK) st = mxp_accelerator_create(&acc, &o);
    if (st == MXP_OK) st = mxp_accelerator_prepare(acc, m, opt, NULL, NULL);
    CHECK(st == MXP_OK, "[%s] accelerator: %s", md->name, mxp_last_error());
    /* no and bf16: no scaling (scale 1); fp16: static 1024 */
    if (st == MXP_OK)
        CHECK(mxp_accelerator_scaler(acc)->scale == (md->scale ? 1024.0f : 1.0f),
              "[%s] loss scale %g", md->name, (double)mxp_accelerator_scaler(acc)->scale);
    double got[64] = {0}, worst = 0.0;
    for (int64_t s = 0; st == MXP_OK && s < steps && s < 64; s++) {
        mxp_graph_t *g = mxp_accelerator_graph(acc);
        mxp_var *logits, *loss;
        mxp_step_result res;
        mxp_graph_reset(g);
        st = mxp_model_forward_tokens(m, g, tokens, B, T, &logits);
        if (st == MXP_OK) st = mxp_op_cross_entropy(g, &loss, logits, targets);
        if (st == MXP_OK) got[s] = ((const float *)loss->value->data)[0];
        if (st == MXP_OK) st = mxp_accelerator_backward(acc, loss);
        if (st == MXP_OK) st = mxp_accelerator_step(acc, &res);
        CHECK(st == MXP_OK, "[%s] step %lld: %s", md->name, (long long)s + 1, mxp_last_error());
        if (st != MXP_OK) break;
        CHECK(res.stepped && !res.skipped, "[%s] step %lld was not applied", md->name,
              (long long)s + 1);
        CHECK(fabs(got[s] - ref[s]) <= md->train_tol,
              "[%s] step %lld: loss %.6f, reference %.6f (|diff| %.2g > %g)", md->name,
              (long long)s + 1, got[s], (double)ref[s], fabs(got[s] - ref[s]), md->train_tol);
        if (ref2)
            CHECK(fabs(got[s] - ref2[s]) <= md->train_tol,
                  "[%s] step %lld: loss %.6f, %s %.6f (|diff| %.2g > %g)", md->name,
                  (long long)s + 1, got[s], md->train2, (double)ref2[s], fabs(got[s] - ref2[s]),
                  md->train_tol);
        worst = fmax(worst, fabs(got[s] - ref[s]));
    }
    printf("[%-4s] losses", md->name);
    for (int64_t s = 0; s < steps && s < 64; s++) printf(" %.5f", got[s]);
    printf("\n       ref   ");
    for (int64_t s = 0; s < steps && s < 64; s++) printf(" %.5f", (double)ref[s]);
    printf("\n       max |diff| %.2g (tolerance %g)\n", worst, md->train_tol);
    mxp_accelerator_free(acc);
    mxp_optimizer_free(opt);
    mxp_model_free(m);
}

/* ---- a checkpoint opened by Hugging Face transformers ----------------------------------- */

static void put_le(FILE *f, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) fputc((int)((v >> (8 * i)) & 0xff), f);
}

/* one MXPFIX01 record (tests/fixture.h) of n 4-byte elements */
static void put_record(FILE *f, const char *name, int kind, int ndim, const int64_t *shape,
                       const void *data, int64_t n) {
    put_le(f, strlen(name), 2);
    fputs(name, f);
    put_le(f, (uint64_t)kind, 1);
    put_le(f, (uint64_t)ndim, 1);
    for (int d = 0; d < ndim; d++) put_le(f, (uint64_t)shape[d], 8);
    for (int64_t i = 0; i < n; i++) {
        uint32_t bits;
        memcpy(&bits, (const char *)data + 4 * i, 4);
        put_le(f, bits, 4);
    }
}

extern char **environ;

/* A gpt trained 3 steps in bf16 (so the masters are no longer the initialisation), saved with
 * mxp_checkpoint_save, loaded back (the weights must be the masters bit for bit) and run in
 * fp32 on fixed tokens; SCRIPT CKPT LOGITS loads the checkpoint into transformers'
 * GPT2LMHeadModel and compares its logits with these. Returns 77 when SCRIPT skips. */
static int run_python(const char *python, const char *script) {
    enum { B = 3, T = 32, V = 65 };
    if (tmpdir_make("gpt") != 0) {
        perror("mkdtemp");
        return 1;
    }
    int32_t tokens[B * T], targets[B * T];
    uint64_t rng = 42;
    for (int i = 0; i < B * T; i++) tokens[i] = (int32_t)(splitmix64(&rng) % V);
    for (int i = 0; i < B * T; i++) targets[i] = (int32_t)(splitmix64(&rng) % V);

    mxp_model_config c;
    mxp_model_t *m = NULL, *m2 = NULL;
    mxp_accelerator_t *acc = NULL;
    mxp_optimizer_t *opt = NULL;
    mxp_graph_t *g = NULL;
    mxp_optim_config oc;
    mxp_accelerator_options o;
    mxp_accelerator_options_init(&o);
    o.mixed_precision = "bf16";
    o.master_weights = 1;
    o.grad_accum = 1;
    mxp_optim_config_default(&oc, MXP_OPTIM_ADAMW);
    mxp_status st = mxp_model_config_default(&c, "gpt");
    c.n_layer = 2, c.n_head = 4, c.n_embd = 64, c.block_size = T, c.vocab_size = V;
    if (st == MXP_OK) st = mxp_model_create(&m, &c);
    if (st == MXP_OK) st = mxp_optimizer_create(&opt, &oc);
    if (st == MXP_OK) st = mxp_accelerator_create(&acc, &o);
    if (st == MXP_OK) st = mxp_accelerator_prepare(acc, m, opt, NULL, NULL);
    for (int s = 0; st == MXP_OK && s < 3; s++) {
        mxp_graph_t *ag = mxp_accelerator_graph(acc);
        mxp_var *logits, *loss;
        mxp_graph_reset(ag);
        st = mxp_model_forward_tokens(m, ag, tokens, B, T, &logits);
        if (st == MXP_OK) st = mxp_op_cross_entropy(ag, &loss, logits, targets);
        if (st == MXP_OK) st = mxp_accelerator_backward(acc, loss);
        if (st == MXP_OK) st = mxp_accelerator_step(acc, NULL);
    }
    mxp_checkpoint_meta meta, meta2;
    mxp_checkpoint_meta_init(&meta);
    snprintf(meta.mixed_precision, sizeof meta.mixed_precision, "bf16");
    const char *dir = tpath("checkpoint");
    if (st == MXP_OK) st = mxp_checkpoint_save(dir, m, NULL, &meta);
    if (st == MXP_OK) st = mxp_checkpoint_load(dir, &m2, &meta2);
    CHECK(st == MXP_OK, "train/save/load a gpt: %s", mxp_last_error());
    for (int i = 0; st == MXP_OK && i < m->n_params; i++) {
        const mxp_param *p = m->params[i], *q = mxp_model_param(m2, p->name);
        CHECK(q && q->master && mxp_tensor_nbytes(q->master) == mxp_tensor_nbytes(p->master) &&
                  memcmp(q->master->data, p->master->data, mxp_tensor_nbytes(p->master)) == 0,
              "%s: the loaded weights are not the saved masters", p->name);
    }
    mxp_var *logits = NULL;
    if (st == MXP_OK) st = mxp_graph_create(&g, MXP_DTYPE_F32);
    if (st == MXP_OK) st = mxp_model_forward_tokens(m2, g, tokens, B, T, &logits);
    CHECK(st == MXP_OK, "fp32 forward of the loaded gpt: %s", mxp_last_error());
    const char *out = tpath("logits.bin");
    FILE *f = st == MXP_OK ? fopen(out, "wb") : NULL;
    if (f) {
        fwrite("MXPFIX01", 1, 8, f);
        put_le(f, 2, 4);
        put_record(f, "tokens", 1, 2, (const int64_t[]){B, T}, tokens, B * T);
        put_record(f, "logits", 0, 3, (const int64_t[]){B, T, V}, logits->value->data, B * T * V);
        CHECK(fclose(f) == 0, "writing %s", out);
    }
    mxp_graph_free(g);
    mxp_accelerator_free(acc);
    mxp_optimizer_free(opt);
    mxp_model_free(m);
    mxp_model_free(m2);
    int rc = 0;
    if (f) {
        char *argv[] = {(char *)python, (char *)script, (char *)dir, (char *)out, NULL};
        pid_t pid;
        int status = 0;
        if (posix_spawn(&pid, python, NULL, NULL, argv, environ) != 0 ||
            waitpid(pid, &status, 0) != pid)
            CHECK(0, "cannot run %s", python);
        else if (WIFEXITED(status) && WEXITSTATUS(status) == 77)
            rc = 77;
        else
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "%s: the checkpoint does not give mixprec's logits in transformers", script);
    }
    if (check_failures == 0) tmpdir_remove();
    return rc;
}

int main(int argc, char **argv) {
    /* the precision settings come from the options above, never from a launcher's environment */
    unsetenv("MIXPREC_MIXED_PRECISION");
    unsetenv("MIXPREC_LOSS_SCALE");
    unsetenv("MIXPREC_MASTER_WEIGHTS");
    unsetenv("MIXPREC_GRAD_ACCUM");
    if (argc == 4 && strcmp(argv[1], "--python") == 0) {
        if (run_python(argv[2], argv[3]) == 77 && check_failures == 0)
            SKIP("%s lacks torch, safetensors or transformers", argv[2]);
        return check_exit("test_gpt --python");
    }
    const char *path = MIXPREC_SOURCE_DIR "/tests/reference/gpt_ref.bin";
    if (fixture_load(&fx, path) != 0) {
        fprintf(stderr, "cannot load %s\n", path);
        return 1;
    }
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) test_forward_backward(&modes[i]);
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) test_training(&modes[i]);
    mxp_gemm_release_workspace();
    fixture_free(&fx);
    return check_exit("test_gpt");
}
