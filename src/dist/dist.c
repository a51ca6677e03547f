/*
 * dist.c - data parallelism over MPI: joining the job mpirun started,
 * broadcasting the weights, summing the gradients in their working dtype with
 * one rounding per hop, and the few scalars every rank must agree on. The
 * state is process-wide, as MPI's is. Built with MIXPREC_HAVE_MPI (the
 * normal build); without it a process is always rank 0 of 1 and a launch of
 * several processes is refused with the reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base_impl.h"
#include "mixprec/dist.h"
#include "mixprec/numerics.h"

#ifdef MIXPREC_HAVE_MPI
#include <mpi.h>
#endif

static int g_rank = 0, g_world = 1;

/* The world size the launcher announced in the environment, 1 when none. */
static int launched_world(void) {
    static const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *e = getenv(vars[i]);
        if (e && *e) return atoi(e) > 1 ? atoi(e) : 1;
    }
    return 1;
}

int mxp_dist_rank(void) { return g_rank; }
int mxp_dist_world(void) { return g_world; }

#ifdef MIXPREC_HAVE_MPI

static int g_joined = 0; /* MPI_Init ran and MPI_Finalize has not */

/* MPI's message for an error code, as one status naming the MPI function. */
static mxp_status mpi_fail(const char *fn, int rc) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return MXP_FAIL(MXP_ERR_DIST, "%s failed: %s", fn, msg);
}
/* MPI_TRY(MPI_Bcast, (buf, ...)): return the failure of MPI function fn called with args */
#define MPI_TRY(fn, args)                                                                          \
    do {                                                                                           \
        const int rc_ = fn args;                                                                   \
        if (rc_ != MPI_SUCCESS) return mpi_fail(#fn, rc_);                                         \
    } while (0)

static MPI_Op g_sum_bf16 = MPI_OP_NULL, g_sum_f16 = MPI_OP_NULL;

/* inout[i] = round(float(in[i]) + float(inout[i])): the 16-bit sum of one hop, added in fp32
 * and rounded once to nearest even, through the bulk conversions (bit-exact to the scalar
 * reference). Chunked on the stack: MPI hands over up to the whole buffer. */
static void sum_16(const uint16_t *in, uint16_t *inout, int n, mxp_dtype dt) {
    enum { CHUNK = 1024 };
    float a[CHUNK], b[CHUNK];
    for (int i = 0; i < n; i += CHUNK) {
        const size_t k = (size_t)(n - i < CHUNK ? n - i : CHUNK);
        mxp_convert(a, MXP_DTYPE_F32, in + i, dt, k);
        mxp_convert(b, MXP_DTYPE_F32, inout + i, dt, k);
        for (size_t j = 0; j < k; j++) a[j] += b[j];
        mxp_convert(inout + i, dt, a, MXP_DTYPE_F32, k);
    }
}
static void op_sum_bf16(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    sum_16(in, inout, *len, MXP_DTYPE_BF16);
}
static void op_sum_f16(void *in, void *inout, int *len, MPI_Datatype *type) {
    (void)type;
    sum_16(in, inout, *len, MXP_DTYPE_F16);
}

mxp_status mxp_dist_init(void) {
    if (g_joined) return MXP_OK;
    if (launched_world() <= 1) return MXP_OK;
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int provided = 0;
        MPI_TRY(MPI_Init_thread, (NULL, NULL, MPI_THREAD_FUNNELED, &provided));
    }
    /* errors come back as codes, so they become one line of ours instead of MPI's abort */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_TRY(MPI_Comm_rank, (MPI_COMM_WORLD, &g_rank));
    MPI_TRY(MPI_Comm_size, (MPI_COMM_WORLD, &g_world));
    MPI_TRY(MPI_Op_create, (op_sum_bf16, 1, &g_sum_bf16));
    MPI_TRY(MPI_Op_create, (op_sum_f16, 1, &g_sum_f16));
    g_joined = 1;
    return MXP_OK;
}

void mxp_dist_library(char *buf, size_t size) {
    char v[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    MPI_Get_library_version(v, &len);
    char *nl = strpbrk(v, "\r\n");
    if (nl) *nl = '\0';
    snprintf(buf, size, "%s", v);
}

static void *g_pack; /* the gradients, packed for one all-reduce (grown, never shrunk) */
static size_t g_pack_size;

void mxp_dist_finalize(void) {
    if (!g_joined) return;
    MPI_Barrier(MPI_COMM_WORLD);
    MPI_Op_free(&g_sum_bf16);
    MPI_Op_free(&g_sum_f16);
    MPI_Finalize();
    g_joined = 0;
    g_rank = 0;
    g_world = 1;
    mxp_free(g_pack);
    g_pack = NULL;
    g_pack_size = 0;
}

_Noreturn void mxp_dist_abort(int code) {
    fflush(stdout);
    fflush(stderr);
    if (g_joined) MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

/* The copy of p every rank must share: the fp32 master, or the weights without one. */
static mxp_tensor *shared_copy(const mxp_param *p) { return p->master ? p->master : p->work; }

/* MPI counts are int: a tensor goes over in pieces of at most 2^30 elements. */
enum { MAX_COUNT = 1 << 30 };

mxp_status mxp_dist_broadcast_params(mxp_model_t *m) {
    if (!m) return MXP_FAIL(MXP_ERR_INVALID_ARG, "broadcast: model is NULL");
    if (!g_joined) return MXP_OK;
    for (int i = 0; i < m->n_params; i++) {
        mxp_tensor *t = shared_copy(m->params[i]);
        const size_t es = mxp_dtype_size(t->dtype);
        const int64_t n = mxp_tensor_numel(t) * (int64_t)(es / 2); /* 16-bit words */
        for (int64_t off = 0; off < n; off += MAX_COUNT) {
            const int c = (int)(n - off < MAX_COUNT ? n - off : MAX_COUNT);
            MPI_TRY(MPI_Bcast, ((uint16_t *)t->data + off, c, MPI_UINT16_T, 0, MPI_COMM_WORLD));
        }
    }
    return mxp_model_refresh_work(m);
}

mxp_status mxp_dist_allreduce_grads(mxp_model_t *m, size_t *bytes) {
    if (bytes) *bytes = 0;
    if (!m) return MXP_FAIL(MXP_ERR_INVALID_ARG, "all-reduce: model is NULL");
    if (!g_joined) return MXP_OK;
    const mxp_dtype dt = m->work;
    const size_t es = mxp_dtype_size(dt);
    /* the buffer: every gradient, then one presence flag per parameter (1 or 0 in the working
     * dtype; summed, > 0 says some rank has a gradient for it, exact or not) */
    size_t total = (size_t)m->n_params;
    for (int i = 0; i < m->n_params; i++) total += (size_t)mxp_tensor_numel(m->params[i]->grad);
    if (total * es > g_pack_size) {
        void *nb = mxp_alloc(total * es);
        if (!nb)
            return MXP_FAIL(MXP_ERR_NOMEM,
                            "all-reduce: cannot allocate %zu bytes to pack the "
                            "gradients",
                            total * es);
        mxp_free(g_pack);
        g_pack = nb;
        g_pack_size = total * es;
    }
    /* pack: a parameter without a gradient this cycle contributes zeros */
    char *dst = g_pack;
    for (int i = 0; i < m->n_params; i++) {
        const mxp_param *p = m->params[i];
        const size_t nb = (size_t)mxp_tensor_numel(p->grad) * es;
        if (p->var.has_grad)
            memcpy(dst, p->grad->data, nb);
        else
            memset(dst, 0, nb);
        dst += nb;
    }
    for (int i = 0; i < m->n_params; i++, dst += es) {
        const float f = m->params[i]->var.has_grad ? 1.0f : 0.0f;
        mxp_convert(dst, dt, &f, MXP_DTYPE_F32, 1);
    }
    const MPI_Datatype type = dt == MXP_DTYPE_F32 ? MPI_FLOAT : MPI_UINT16_T;
    const MPI_Op op = dt == MXP_DTYPE_F32 ? MPI_SUM : dt == MXP_DTYPE_BF16 ? g_sum_bf16 : g_sum_f16;
    for (size_t off = 0; off < total; off += MAX_COUNT) {
        const int c = (int)(total - off < MAX_COUNT ? total - off : MAX_COUNT);
        MPI_TRY(MPI_Allreduce,
                (MPI_IN_PLACE, (char *)g_pack + off * es, c, type, op, MPI_COMM_WORLD));
    }
    /* unpack: a parameter no rank had a gradient for keeps none (the optimizer skips it, as
     * it would in one process) */
    const char *src = g_pack, *flags = (const char *)g_pack + (total - (size_t)m->n_params) * es;
    for (int i = 0; i < m->n_params; i++) {
        mxp_param *p = m->params[i];
        const size_t nb = (size_t)mxp_tensor_numel(p->grad) * es;
        float f = 0.0f;
        mxp_convert(&f, MXP_DTYPE_F32, flags + (size_t)i * es, dt, 1);
        p->var.has_grad = f > 0.0f;
        if (p->var.has_grad) memcpy(p->grad->data, src, nb);
        src += nb;
    }
    if (bytes) *bytes = total * es;
    return MXP_OK;
}

mxp_status mxp_dist_allreduce_sum(double *v, int n) {
    if (!g_joined || n <= 0) return MXP_OK;
    MPI_TRY(MPI_Allreduce, (MPI_IN_PLACE, v, n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD));
    return MXP_OK;
}

mxp_status mxp_dist_barrier(void) {
    if (!g_joined) return MXP_OK;
    MPI_TRY(MPI_Barrier, (MPI_COMM_WORLD));
    return MXP_OK;
}

#else /* no MPI in this build */

mxp_status mxp_dist_init(void) {
    if (launched_world() > 1)
        return MXP_FAIL(MXP_ERR_DIST,
                        "this process was launched as one of %d, but this build of "
                        "libmixprec has no MPI (install libopenmpi-dev and rebuild)",
                        launched_world());
    return MXP_OK;
}
void mxp_dist_library(char *buf, size_t size) { snprintf(buf, size, "none"); }
void mxp_dist_finalize(void) {}
_Noreturn void mxp_dist_abort(int code) {
    fflush(stdout);
    fflush(stderr);
    exit(code);
}
mxp_status mxp_dist_broadcast_params(mxp_model_t *m) {
    return m ? MXP_OK : MXP_FAIL(MXP_ERR_INVALID_ARG, "broadcast: model is NULL");
}
mxp_status mxp_dist_allreduce_grads(mxp_model_t *m, size_t *bytes) {
    if (bytes) *bytes = 0;
    return m ? MXP_OK : MXP_FAIL(MXP_ERR_INVALID_ARG, "all-reduce: model is NULL");
}
mxp_status mxp_dist_allreduce_sum(double *v, int n) {
    (void)v;
    (void)n;
    return MXP_OK;
}
mxp_status mxp_dist_barrier(void) { return MXP_OK; }

#endif

/* FNV-1a over the bytes of every weight copy, in parameter order. */
static uint64_t params_hash(const mxp_model_t *m) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < m->n_params; i++) {
        const mxp_param *p = m->params[i];
        const mxp_tensor *ts[2] = {p->master, p->work};
        for (int k = 0; k < 2; k++) {
            if (!ts[k] || (k == 1 && ts[1] == ts[0])) continue;
            const unsigned char *b = ts[k]->data;
            const size_t nb = (size_t)mxp_tensor_numel(ts[k]) * mxp_dtype_size(ts[k]->dtype);
            for (size_t j = 0; j < nb; j++) h = (h ^ b[j]) * 0x100000001b3ull;
        }
    }
    return h;
}

mxp_status mxp_dist_check_params(const mxp_model_t *m) {
    if (!m) return MXP_FAIL(MXP_ERR_INVALID_ARG, "check: model is NULL");
    if (g_world <= 1) return MXP_OK;
#ifdef MIXPREC_HAVE_MPI
    const uint64_t h = params_hash(m);
    uint64_t lo = h, hi = h;
    MPI_TRY(MPI_Allreduce, (MPI_IN_PLACE, &lo, 1, MPI_UINT64_T, MPI_MIN, MPI_COMM_WORLD));
    MPI_TRY(MPI_Allreduce, (MPI_IN_PLACE, &hi, 1, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD));
    if (lo != hi)
        return MXP_FAIL(MXP_ERR_DIST,
                        "the ranks' weights differ (hash %016llx here, range %016llx..%016llx): "
                        "the replicas diverged",
                        (unsigned long long)h, (unsigned long long)lo, (unsigned long long)hi);
#else
    (void)params_hash;
#endif
    return MXP_OK;
}
