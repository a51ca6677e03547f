/*
 * test_autograd.c - every op's forward and backward against PyTorch
 * (tests/reference/ops_ref.bin, written by gen_ops.py) in fp32, bf16 and
 * fp16, and against central finite differences; gradient accumulation when a
 * variable is used twice and across backward calls; the graph's error paths.
 */
#include <math.h>
#include <string.h>

#include "check.h"
#include "fixture.h"
#include "mixprec.h"

static fixture fx;

static const float *F(const char *name, int64_t *n) {
    const float *p = fixture_f32(&fx, name, n);
    if (!p) {
        fprintf(stderr, "fixture record %s missing\n", name);
        exit(1);
    }
    return p;
}

/* a leaf variable (requires grad) holding fixture record `name` in dtype dt */
static mxp_var *leaf(mxp_graph_t *g, const char *name, mxp_dtype dt, int requires_grad) {
    int64_t shape[6], n;
    const int nd = fixture_shape(&fx, name, shape);
    const float *src = F(name, &n);
    mxp_var *v;
    if (mxp_graph_var(g, &v, dt, nd, shape) != MXP_OK) exit(1);
    mxp_convert(v->value->data, dt, src, MXP_DTYPE_F32, (size_t)n);
    v->requires_grad = requires_grad;
    v->name = name;
    return v;
}

static mxp_tensor *seed(mxp_graph_t *g, const char *name, mxp_dtype dt) {
    return leaf(g, name, dt, 0)->value;
}

/* max |got - ref| <= tol * max(1, max |ref|) over the record, got in any dtype */
static void expect(const char *what, mxp_dtype dt, const mxp_tensor *got, const char *ref_name,
                   double tol) {
    int64_t n;
    const float *ref = F(ref_name, &n);
    CHECK(got && mxp_tensor_numel(got) == n, "%s [%s]: size", what, mxp_dtype_name(dt));
    if (!got || mxp_tensor_numel(got) != n) return;
    float *g32 = malloc((size_t)n * sizeof *g32);
    mxp_convert(g32, MXP_DTYPE_F32, got->data, got->dtype, (size_t)n);
    double scale = 1.0, worst = 0.0;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    int64_t at = 0;
    for (int64_t i = 0; i < n; i++) {
        const double e = fabs((double)g32[i] - ref[i]);
        if (!(e <= worst)) at = i;
        worst = fmax(worst, isnan(e) ? INFINITY : e);
    }
    CHECK(worst <= tol * scale, "%s [%s]: max error %g at %lld (got %g, ref %g) > %g", what,
          mxp_dtype_name(dt), worst, (long long)at, (double)g32[at], (double)ref[at], tol * scale);
    free(g32);
}

/* tolerances per working dtype: the inputs themselves are rounded to dt, so
 * the error is a few units of dt's epsilon relative to the largest value */
static double tol_for(mxp_dtype dt) {
    return dt == MXP_DTYPE_F32 ? 2e-5 : dt == MXP_DTYPE_F16 ? 4e-3 : 3e-2;
}

static const mxp_dtype dtypes[3] = {MXP_DTYPE_F32, MXP_DTYPE_BF16, MXP_DTYPE_F16};

/* In graph g of dtype dt: leaves from records prefix.x, .w, .b; y = linear(x, w, b, act), or
 * conv2d with stride meta[0] and padding meta[1] when meta is given; backward from prefix.dy;
 * y and the three gradients against prefix.y, .dx, .dw, .db. */
static void check_xwb(mxp_graph_t *g, mxp_dtype dt, const char *prefix, mxp_act act,
                      const int32_t *meta) {
    char n[64];
#define R(s) (snprintf(n, sizeof n, "%s.%s", prefix, s), n)
    mxp_var *x = leaf(g, R("x"), dt, 1), *w = leaf(g, R("w"), dt, 1), *b = leaf(g, R("b"), dt, 1);
    mxp_var *y;
    const mxp_status st = meta ? mxp_op_conv2d(g, &y, x, w, b, meta[0], meta[1], act)
                               : mxp_op_linear(g, &y, x, w, b, act);
    CHECK(st == MXP_OK, "%s: %s", prefix, mxp_last_error());
    CHECK(mxp_graph_backward_from(g, y, seed(g, R("dy"), dt)) == MXP_OK, "%s", mxp_last_error());
    const double t = tol_for(dt);
    expect(R("y"), dt, y->value, n, t);
    expect(R("dx"), dt, x->grad, n, t);
    expect(R("dw"), dt, w->grad, n, t);
    expect(R("db"), dt, b->grad, n, t);
#undef R
}

static void test_linear(const char *prefix, mxp_act act) {
    for (int d = 0; d < 3; d++) {
        mxp_graph_t *g;
        CHECK(mxp_graph_create(&g, dtypes[d]) == MXP_OK, "graph");
        check_xwb(g, dtypes[d], prefix, act, NULL);
        mxp_graph_free(g);
    }
}

static void test_conv(const char *prefix) {
    char n[64];
    int64_t cnt;
    const int32_t *meta = fixture_i32(&fx, (snprintf(n, sizeof n, "%s.meta", prefix), n), &cnt);
    CHECK(meta && cnt == 2, "%s.meta", prefix);
    if (!meta) return;
    for (int d = 0; d < 3; d++) {
        mxp_graph_t *g;
        mxp_graph_create(&g, dtypes[d]);
        check_xwb(g, dtypes[d], prefix, MXP_ACT_NONE, meta);
        mxp_graph_free(g);
    }
}

static void test_pool(const char *prefix) {
    char n[64];
    int64_t cnt;
    const int32_t *meta = fixture_i32(&fx, (snprintf(n, sizeof n, "%s.meta", prefix), n), &cnt);
    if (!meta) return;
    for (int d = 0; d < 3; d++) {
        const mxp_dtype dt = dtypes[d];
        mxp_graph_t *g;
        mxp_graph_create(&g, dt);
#define R(s) (snprintf(n, sizeof n, "%s.%s", prefix, s), n)
        mxp_var *x = leaf(g, R("x"), dt, 1), *y;
        CHECK(mxp_op_maxpool2d(g, &y, x, meta[0], meta[1]) == MXP_OK, "%s", mxp_last_error());
        CHECK(mxp_graph_backward_from(g, y, seed(g, R("dy"), dt)) == MXP_OK, "%s",
              mxp_last_error());
        /* rounding x to 16 bits may create a tie the reference does not have:
         * only fp32 is compared exactly, the others within rounding of dy */
        expect(R("y"), dt, y->value, n, tol_for(dt));
        if (dt == MXP_DTYPE_F32) expect(R("dx"), dt, x->grad, n, 1e-6);
#undef R
        mxp_graph_free(g);
    }
}

static void test_activations(void) {
    for (int d = 0; d < 3; d++) {
        const mxp_dtype dt = dtypes[d];
        for (int which = 0; which < 2; which++) {
            mxp_graph_t *g;
            mxp_graph_create(&g, dt);
            mxp_var *x = leaf(g, "act.x", dt, 1), *y;
            CHECK((which ? mxp_op_gelu(g, &y, x) : mxp_op_relu(g, &y, x)) == MXP_OK, "act");
            CHECK(mxp_graph_backward_from(g, y, seed(g, "act.dy", dt)) == MXP_OK, "act backward");
            expect(which ? "gelu.y" : "relu.y", dt, y->value, which ? "gelu.y" : "relu.y",
                   tol_for(dt));
            expect(which ? "gelu.dx" : "relu.dx", dt, x->grad, which ? "gelu.dx" : "relu.dx",
                   tol_for(dt));
            mxp_graph_free(g);
        }
    }
}

static void test_cross_entropy(void) {
    int64_t nl;
    const int32_t *labels = fixture_i32(&fx, "ce.labels", &nl);
    for (int d = 0; d < 3; d++) {
        const mxp_dtype dt = dtypes[d];
        mxp_graph_t *g;
        mxp_graph_create(&g, dt);
        mxp_var *x = leaf(g, "ce.logits", dt, 1), *loss;
        CHECK(mxp_op_cross_entropy(g, &loss, x, labels) == MXP_OK, "ce: %s", mxp_last_error());
        CHECK(loss->value->dtype == MXP_DTYPE_F32 && loss->value->ndim == 0, "ce: fp32 scalar");
        CHECK(mxp_graph_backward(g, loss, 1.0f) == MXP_OK, "ce backward");
        expect("ce.loss", dt, loss->value, "ce.loss", tol_for(dt));
        expect("ce.dlogits", dt, x->grad, "ce.dlogits", tol_for(dt));
        mxp_graph_free(g);
    }
    /* the loss scale multiplies the gradient exactly (a power of two) */
    mxp_graph_t *g;
    mxp_graph_create(&g, MXP_DTYPE_F32);
    mxp_var *x = leaf(g, "ce.logits", MXP_DTYPE_F32, 1), *loss;
    mxp_op_cross_entropy(g, &loss, x, labels);
    mxp_graph_backward(g, loss, 1024.0f);
    int64_t n;
    const float *ref = F("ce.dlogits", &n);
    double worst = 0;
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(((float *)x->grad->data)[i] / 1024.0 - ref[i]));
    CHECK(worst < 1e-6, "ce: scaled gradient / 1024 differs by %g", worst);
    /* a label out of range is refused before any work */
    mxp_graph_reset(g);
    x = leaf(g, "ce.logits", MXP_DTYPE_F32, 1);
    int32_t bad[6];
    memcpy(bad, labels, sizeof bad);
    bad[3] = 10;
    CHECK(mxp_op_cross_entropy(g, &loss, x, bad) == MXP_ERR_INVALID_ARG, "ce: label 10 of 10");
    mxp_graph_free(g);
}

/* y = relu(x w^T) w^T: w gets the contributions of both uses */
static void test_used_twice(void) {
    mxp_graph_t *g;
    mxp_graph_create(&g, MXP_DTYPE_F32);
    mxp_var *x = leaf(g, "twice.x", MXP_DTYPE_F32, 1), *w = leaf(g, "twice.w", MXP_DTYPE_F32, 1);
    mxp_var *h, *y;
    CHECK(mxp_op_linear(g, &h, x, w, NULL, MXP_ACT_RELU) == MXP_OK, "twice 1");
    CHECK(mxp_op_linear(g, &y, h, w, NULL, MXP_ACT_NONE) == MXP_OK, "twice 2");
    CHECK(mxp_graph_backward_from(g, y, seed(g, "twice.dy", MXP_DTYPE_F32)) == MXP_OK, "twice");
    expect("twice.y", MXP_DTYPE_F32, y->value, "twice.y", 1e-5);
    expect("twice.dx", MXP_DTYPE_F32, x->grad, "twice.dx", 1e-5);
    expect("twice.dw", MXP_DTYPE_F32, w->grad, "twice.dw", 1e-5);
    /* a second backward on the same tape is refused */
    CHECK(mxp_graph_backward_from(g, y, seed(g, "twice.dy", MXP_DTYPE_F32)) == MXP_ERR_INVALID_ARG,
          "second backward");
    mxp_graph_free(g);
}

/* The finite-difference patch: when fd_patch_leaf >= 0, build() sets element
 * fd_patch_index of that leaf to fd_patch_value. */
static float fd_patch_value;
static int64_t fd_patch_index;
static int fd_patch_leaf = -1;

/* leaf k from the fixture, with the patch applied */
static mxp_var *fleaf(mxp_graph_t *g, const char *name, int k) {
    mxp_var *v = leaf(g, name, MXP_DTYPE_F32, 1);
    if (fd_patch_leaf == k) ((float *)v->value->data)[fd_patch_index] = fd_patch_value;
    return v;
}

/* L = sum(y * dy) in double; checks dL/dv[i] of every leaf for a spread of
 * elements against central differences of fp32 forward passes. */
typedef mxp_var *(*build_fn)(mxp_graph_t *g, mxp_var **leaves);

static double objective(mxp_var *y, const float *dy) {
    double s = 0;
    const float *yv = y->value->data;
    for (int64_t i = 0; i < mxp_tensor_numel(y->value); i++) s += (double)yv[i] * dy[i];
    return s;
}

static void fd_check(const char *what, build_fn build, const char *dy_name, int nleaves, double eps,
                     double tol) {
    int64_t ndy;
    const float *dy = F(dy_name, &ndy);
    mxp_graph_t *g, *g2;
    mxp_graph_create(&g, MXP_DTYPE_F32);
    mxp_graph_create(&g2, MXP_DTYPE_F32);
    mxp_graph_set_training(g2, 0);
    mxp_var *leaves[4], *l2[4];
    mxp_var *y = build(g, leaves);
    mxp_tensor *dyt;
    mxp_tensor_arena(mxp_graph_arena(g), &dyt, MXP_DTYPE_F32, y->value->ndim, y->value->shape);
    memcpy(dyt->data, dy, (size_t)ndy * sizeof(float));
    CHECK(mxp_graph_backward_from(g, y, dyt) == MXP_OK, "%s backward", what);
    for (int l = 0; l < nleaves; l++) {
        const float *v = leaves[l]->value->data, *grad = leaves[l]->grad->data;
        const int64_t n = mxp_tensor_numel(leaves[l]->value);
        for (int64_t i = 0; i < n; i += 1 + n / 7) {
            fd_patch_leaf = l;
            fd_patch_index = i;
            fd_patch_value = v[i] + (float)eps;
            const double lp = objective(build(g2, l2), dy);
            mxp_graph_reset(g2);
            fd_patch_value = v[i] - (float)eps;
            const double lm = objective(build(g2, l2), dy);
            mxp_graph_reset(g2);
            fd_patch_leaf = -1;
            const double fd = (lp - lm) / (2 * eps);
            CHECK(check_close(grad[i], fd, tol, tol), "%s: leaf %d elem %lld: grad %g, fd %g", what,
                  l, (long long)i, (double)grad[i], fd);
        }
    }
    mxp_graph_free(g2);
    mxp_graph_free(g);
}

static mxp_var *build_linear_gelu(mxp_graph_t *g, mxp_var **L) {
    L[0] = fleaf(g, "linear_gelu.x", 0);
    L[1] = fleaf(g, "linear_gelu.w", 1);
    L[2] = fleaf(g, "linear_gelu.b", 2);
    mxp_var *y;
    mxp_op_linear(g, &y, L[0], L[1], L[2], MXP_ACT_GELU_TANH);
    return y;
}

static mxp_var *build_conv_b(mxp_graph_t *g, mxp_var **L) {
    L[0] = fleaf(g, "conv_b.x", 0);
    L[1] = fleaf(g, "conv_b.w", 1);
    L[2] = fleaf(g, "conv_b.b", 2);
    mxp_var *y;
    mxp_op_conv2d(g, &y, L[0], L[1], L[2], 2, 0, MXP_ACT_RELU);
    return y;
}

static mxp_var *build_pool_b(mxp_graph_t *g, mxp_var **L) {
    L[0] = fleaf(g, "pool_b.x", 0);
    mxp_var *y;
    mxp_op_maxpool2d(g, &y, L[0], 3, 2);
    return y;
}

/* parameters keep their gradient across graphs until has_grad is cleared */
static void test_param_accumulation(void) {
    mxp_tensor *wt, *gt;
    mxp_tensor_create(&wt, MXP_DTYPE_F32, 2, (int64_t[]){3, 7});
    mxp_tensor_create(&gt, MXP_DTYPE_F32, 2, (int64_t[]){3, 7});
    memcpy(wt->data, F("linear.w", NULL), 21 * sizeof(float));
    mxp_var w = {.value = wt, .grad = gt, .requires_grad = 1, .name = "w"};
    mxp_graph_t *g;
    mxp_graph_create(&g, MXP_DTYPE_F32);
    for (int rep = 0; rep < 2; rep++) {
        mxp_graph_reset(g);
        mxp_var *x = leaf(g, "linear.x", MXP_DTYPE_F32, 0), *y;
        mxp_op_linear(g, &y, x, &w, NULL, MXP_ACT_NONE);
        CHECK(x->grad == NULL, "an input without requires_grad gets no gradient");
        mxp_graph_backward_from(g, y, seed(g, "linear.dy", MXP_DTYPE_F32));
    }
    int64_t n;
    const float *dw = F("linear.dw", &n);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(((float *)gt->data)[i] - 2.0 * dw[i]));
    CHECK(worst < 1e-5, "two backward calls accumulate: error %g", worst);
    /* clearing has_grad makes the next contribution overwrite */
    w.has_grad = 0;
    mxp_graph_reset(g);
    mxp_var *x = leaf(g, "linear.x", MXP_DTYPE_F32, 0), *y;
    mxp_op_linear(g, &y, x, &w, NULL, MXP_ACT_NONE);
    mxp_graph_backward_from(g, y, seed(g, "linear.dy", MXP_DTYPE_F32));
    worst = 0;
    for (int64_t i = 0; i < n; i++) worst = fmax(worst, fabs(((float *)gt->data)[i] - dw[i]));
    CHECK(worst < 1e-6, "after zero_grad the gradient is one contribution: error %g", worst);
    /* evaluation mode records nothing */
    mxp_graph_reset(g);
    mxp_graph_set_training(g, 0);
    x = leaf(g, "linear.x", MXP_DTYPE_F32, 0);
    CHECK(mxp_op_linear(g, &y, x, &w, NULL, MXP_ACT_NONE) == MXP_OK && y->node == NULL,
          "no node in evaluation mode");
    mxp_graph_free(g);
    mxp_tensor_free(wt);
    mxp_tensor_free(gt);
}

static void test_errors(void) {
    mxp_graph_t *g;
    CHECK(mxp_graph_create(&g, MXP_DTYPE_COUNT) == MXP_ERR_DTYPE, "bad working dtype");
    mxp_graph_create(&g, MXP_DTYPE_BF16);
    mxp_var *x = leaf(g, "linear.x", MXP_DTYPE_BF16, 1);
    mxp_var *w32 = leaf(g, "linear.w", MXP_DTYPE_F32, 1);
    mxp_var *wt = leaf(g, "conv_a.w", MXP_DTYPE_BF16, 1), *y;
    CHECK(mxp_op_linear(g, &y, x, w32, NULL, MXP_ACT_NONE) == MXP_ERR_DTYPE,
          "an fp32 weight in a bf16 graph");
    CHECK(mxp_op_linear(g, &y, x, wt, NULL, MXP_ACT_NONE) == MXP_ERR_SHAPE, "shape mismatch");
    CHECK(strstr(mxp_last_error(), "linear") != NULL, "message names the op: %s", mxp_last_error());
    CHECK(mxp_op_maxpool2d(g, &y, x, 2, 2) == MXP_ERR_SHAPE, "pool of a 2-D input");
    CHECK(mxp_op_dropout(g, &y, x, 1.0f) == MXP_ERR_INVALID_ARG, "dropout p = 1");
    /* an fp32 input is cast to the working dtype by a recorded op */
    mxp_var *x32 = leaf(g, "linear.x", MXP_DTYPE_F32, 1);
    mxp_var *w = leaf(g, "linear.w", MXP_DTYPE_BF16, 1);
    CHECK(mxp_op_linear(g, &y, x32, w, NULL, MXP_ACT_NONE) == MXP_OK, "cast input");
    CHECK(mxp_graph_backward_from(g, y, seed(g, "linear.dy", MXP_DTYPE_BF16)) == MXP_OK, "cast");
    CHECK(x32->grad && x32->grad->dtype == MXP_DTYPE_F32, "the fp32 input's gradient is fp32");
    mxp_graph_free(g);
}

static void test_dropout(void) {
    mxp_graph_t *g;
    mxp_graph_create(&g, MXP_DTYPE_F32);
    mxp_graph_set_seed(g, 7);
    mxp_var *x;
    mxp_graph_var(g, &x, MXP_DTYPE_F32, 2, (int64_t[]){64, 64});
    mxp_tensor_fill(x->value, 1.0f);
    x->requires_grad = 1;
    mxp_var *y;
    CHECK(mxp_op_dropout(g, &y, x, 0.25f) == MXP_OK, "dropout");
    mxp_tensor *ones;
    mxp_tensor_arena(mxp_graph_arena(g), &ones, MXP_DTYPE_F32, 2, (int64_t[]){64, 64});
    mxp_tensor_fill(ones, 1.0f);
    mxp_graph_backward_from(g, y, ones);
    int kept = 0, same = 1;
    for (int i = 0; i < 64 * 64; i++) {
        const float yv = ((float *)y->value->data)[i], gv = ((float *)x->grad->data)[i];
        kept += yv != 0.0f;
        same &= yv == gv; /* the backward mask is the forward mask */
        same &= yv == 0.0f || fabsf(yv - 1.0f / 0.75f) < 1e-6f;
    }
    CHECK(same, "dropout: y in {0, 1/(1-p)} and dx = y for dy = 1");
    CHECK(abs(kept - 3072) < 200, "dropout kept %d of 4096 (expected about 3072)", kept);
    mxp_graph_reset(g);
    mxp_graph_set_training(g, 0);
    CHECK(mxp_op_dropout(g, &y, x, 0.25f) == MXP_OK && y == x, "dropout is the identity in eval");
    mxp_graph_free(g);
}

int main(void) {
    const char *path = MIXPREC_SOURCE_DIR "/tests/reference/ops_ref.bin";
    if (fixture_load(&fx, path) != 0) {
        fprintf(stderr, "cannot load %s\n", path);
        return 1;
    }
    test_linear("linear", MXP_ACT_NONE);
    test_linear("linear_relu", MXP_ACT_RELU);
    test_linear("linear_gelu", MXP_ACT_GELU_TANH);
    test_conv("conv_a");
    test_conv("conv_b");
    test_pool("pool_a");
    test_pool("pool_b");
    test_activations();
    test_cross_entropy();
    test_used_twice();
    fd_check("linear_gelu", build_linear_gelu, "linear_gelu.dy", 3, 1e-2, 2e-3);
    fd_check("conv_b+relu", build_conv_b, "conv_b.dy", 3, 1e-2, 2e-3);
    fd_check("pool_b", build_pool_b, "pool_b.dy", 1, 1e-3, 2e-3);
    test_param_accumulation();
    test_errors();
    test_dropout();
    mxp_gemm_release_workspace();
    fixture_free(&fx);
    return check_exit("test_autograd");
}
