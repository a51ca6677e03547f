/*
 * dataset.c - an IDX image/label pair as an in-memory dataset, and the loader that hands out
 * image or token datasets (text.c makes those) in batches: a Philox-keyed Fisher-Yates order
 * per epoch, normalisation by a 256-entry table per dtype (a batch is a gather), token windows
 * at a per-epoch shift. It does no augmentation and never touches the files after loading.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base_impl.h"
#include "mixprec/data.h"

enum {
    N_CLASSES = 10,
    /* a batch of at least this many elements is gathered on several threads; below it the
     * threads cost more than they save (a 128 x 784 batch is ~100 us on one core) */
    PARALLEL_MIN = 1 << 17,
};

/* ---- datasets ------------------------------------------------------------------------------ */

/* The public struct first, so an mxp_dataset_t * from mxp_dataset_load_idx is one of these. */
typedef struct dataset_owned {
    mxp_dataset pub;
    uint8_t *pixels; /* (n, H, W, C), from the IDX reader */
    int32_t *labels; /* (n) */
} dataset_owned;

/* dir + "/" + name into buf (cap bytes, truncation is an error); dir's trailing '/'s dropped */
static mxp_status join_path(char *buf, size_t cap, const char *dir, const char *name) {
    size_t dn = strlen(dir);
    while (dn > 1 && dir[dn - 1] == '/') dn--;
    const int k = snprintf(buf, cap, "%.*s/%s", (int)dn, dir, name);
    if (k < 0 || (size_t)k >= cap)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "dataset directory path is too long: %s", dir);
    return MXP_OK;
}

/* Whether dir names MXP_FASHION_MNIST_DIR (trailing '/'s ignored). */
static int is_default_dir(const char *dir) {
    const size_t n = strlen(MXP_FASHION_MNIST_DIR);
    if (strncmp(dir, MXP_FASHION_MNIST_DIR, n) != 0) return 0;
    for (const char *p = dir + n; *p; p++)
        if (*p != '/') return 0;
    return 1;
}

mxp_status mxp_dataset_dir(char *out, size_t cap, const char *data) {
    if (!out || !cap || !data) return MXP_FAIL(MXP_ERR_INVALID_ARG, "dataset: NULL argument");
    if (strcmp(data, "fashion-mnist") != 0) {
        if ((size_t)snprintf(out, cap, "%s", data) >= cap)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "dataset directory path is too long: %s", data);
        return MXP_OK;
    }
    const char *root = getenv("MIXPREC_DATA_DIR");
    const int k = root && *root ? snprintf(out, cap, "%s/fashion-mnist", root)
                                : snprintf(out, cap, "%s", MXP_FASHION_MNIST_DIR);
    if (k < 0 || (size_t)k >= cap)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "dataset directory path is too long: %s", root);
    struct stat st;
    if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode))
        return MXP_FAIL(MXP_ERR_IO,
                        "fashion-mnist not found at %s (install it: apt-get install "
                        "dataset-fashion-mnist, or pass --data DIR)",
                        out);
    return MXP_OK;
}

/* Read <dir>/<prefix>-<kind>-idx<d>-ubyte, trying ".gz" first. */
static mxp_status read_part(mxp_idx *out, char *path, size_t cap, const char *dir,
                            const char *prefix, const char *kind, int idx_dims) {
    char name[64];
    snprintf(name, sizeof name, "%s-%s-idx%d-ubyte.gz", prefix, kind, idx_dims);
    MXP_TRY(join_path(path, cap, dir, name));
    struct stat st;
    if (stat(path, &st) == 0) return mxp_idx_read(out, path);
    name[strlen(name) - 3] = '\0'; /* drop ".gz" */
    char plain[4096];
    MXP_TRY(join_path(plain, sizeof plain, dir, name));
    if (stat(plain, &st) == 0) {
        snprintf(path, cap, "%s", plain);
        return mxp_idx_read(out, path);
    }
    memset(out, 0, sizeof *out);
    if (is_default_dir(dir))
        return MXP_FAIL(MXP_ERR_IO,
                        "fashion-mnist not found: %s (install it: apt-get install "
                        "dataset-fashion-mnist)",
                        path);
    return MXP_FAIL(MXP_ERR_IO, "no IDX %s in %s (expected %s or .gz)", kind, dir, name);
}

/* mean and std of pixel/255 over all pixels, in double, from a histogram of the byte values
 * (exact counts, so the result does not depend on the thread count). */
static void pixel_stats(const uint8_t *px, size_t n, double *mean, double *std) {
    int64_t hist[256] = {0};
    const int nt = n >= (size_t)PARALLEL_MIN * 8 ? mxp_num_threads() : 1;
    (void)nt; /* only MXP_OMP reads it, and not at all without OpenMP */
    MXP_OMP(omp parallel num_threads(nt) if (nt > 1)) {
        int64_t local[256] = {0};
        MXP_OMP(omp for schedule(static))
        for (size_t i = 0; i < n; i++) local[px[i]]++;
        MXP_OMP(omp critical(mxp_pixel_stats))
        for (int v = 0; v < 256; v++) hist[v] += local[v];
    }
    double s = 0;
    for (int v = 0; v < 256; v++) s += (double)hist[v] * (v / 255.0);
    const double m = s / (double)n;
    double ss = 0;
    for (int v = 0; v < 256; v++) ss += (double)hist[v] * (v / 255.0 - m) * (v / 255.0 - m);
    *mean = m;
    *std = sqrt(ss / (double)n); /* population std: over every pixel, not a sample of them */
}

/* The body of mxp_dataset_load_idx: reads both files into img/lab and fills d. */
static mxp_status load(dataset_owned *d, mxp_idx *img, mxp_idx *lab, const char *dir,
                       const char *prefix, int is_train) {
    char ipath[4096], lpath[4096];
    MXP_TRY(read_part(img, ipath, sizeof ipath, dir, prefix, "images", 3));
    if (img->ndim != 3)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: images have %d dimensions, expected 3 (N, rows, cols)",
                        ipath, img->ndim);
    MXP_TRY(read_part(lab, lpath, sizeof lpath, dir, prefix, "labels", 1));
    if (lab->ndim != 1)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: labels have %d dimensions, expected 1 (N)", lpath,
                        lab->ndim);
    const int64_t n = img->shape[0];
    if (lab->shape[0] != n)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: %" PRId64 " labels but %" PRId64 " images", lpath,
                        lab->shape[0], n);
    for (int64_t i = 0; i < n; i++)
        if (lab->data[i] >= N_CLASSES)
            return MXP_FAIL(MXP_ERR_FORMAT,
                            "%s: label %d at index %" PRId64 " is out of range [0, %d)", lpath,
                            lab->data[i], i, N_CLASSES);

    d->labels = mxp_alloc_array((size_t)n, sizeof *d->labels);
    if (!d->labels) return MXP_FAIL(MXP_ERR_NOMEM, "cannot allocate %" PRId64 " labels", n);
    for (int64_t i = 0; i < n; i++) d->labels[i] = lab->data[i];
    d->pixels = img->data; /* taken over from the IDX reader */
    img->data = NULL;

    mxp_dataset *p = &d->pub;
    p->n = n;
    p->H = img->shape[1];
    p->W = img->shape[2];
    p->C = 1;
    p->n_classes = N_CLASSES;
    p->pixels = d->pixels;
    p->labels = d->labels;
    p->mean = 0.5f;
    p->std = 0.5f;
    if (is_train) {
        double m, s;
        pixel_stats(d->pixels, (size_t)(n * p->H * p->W), &m, &s);
        p->mean = (float)m;
        /* every pixel equal: std 0 would divide by zero; 1 keeps x = pixel/255 - mean */
        p->std = (float)s > 0 ? (float)s : 1.0f;
    }
    return MXP_OK;
}

mxp_status mxp_dataset_load_idx(mxp_dataset_t **out, const char *dir, const char *split) {
    if (!out) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_dataset_load_idx: out is NULL");
    *out = NULL;
    if (!dir || !split)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_dataset_load_idx: %s is NULL",
                        dir ? "split" : "dir");
    const int is_train = strcmp(split, "train") == 0;
    if (!is_train && strcmp(split, "test") != 0)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "unknown split '%s' (expected train or test)", split);
    dataset_owned *d = mxp_alloc(sizeof *d);
    if (!d) return MXP_FAIL(MXP_ERR_NOMEM, "cannot allocate a dataset");
    memset(d, 0, sizeof *d);
    mxp_idx img, lab;
    memset(&img, 0, sizeof img);
    memset(&lab, 0, sizeof lab);
    const mxp_status s = load(d, &img, &lab, dir, is_train ? "train" : "t10k", is_train);
    mxp_idx_free(&img);
    mxp_idx_free(&lab);
    if (s != MXP_OK) {
        mxp_dataset_free(&d->pub);
        return s;
    }
    *out = &d->pub;
    return MXP_OK;
}

void mxp_dataset_free(mxp_dataset_t *ds) {
    if (!ds) return;
    if (ds->kind == MXP_DATASET_TOKENS) { /* text.c: one allocation, the struct then its tokens */
        mxp_free(ds);
        return;
    }
    dataset_owned *d = (dataset_owned *)ds;
    mxp_free(d->pixels);
    mxp_free(d->labels);
    mxp_free(d);
}

mxp_status mxp_dataset_set_norm(mxp_dataset_t *ds, float mean, float std) {
    if (!ds) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_dataset_set_norm: ds is NULL");
    if (!isfinite(mean) || !isfinite(std) || !(std > 0))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_dataset_set_norm: mean %g, std %g (need finite values, std > 0)",
                        (double)mean, (double)std);
    ds->mean = mean;
    ds->std = std;
    return MXP_OK;
}

/* ---- loaders --------------------------------------------------------------------------------- */

/* The largest n the loader shuffles: the bounded draw below is 32-bit, and an epoch's random
 * words (about n) must fit in the low 32 bits of the Philox counter (see make_perm). */
#define MAX_SAMPLES ((int64_t)1 << 31)
#define MAX_EPOCH ((int64_t)UINT32_MAX)

struct mxp_loader {
    const mxp_dataset_t *ds; /* lent */
    int64_t batch;
    int shuffle, drop_last;
    uint64_t seed;
    int64_t epoch, pos; /* pos: samples of this epoch already handed out */
    int64_t *perm;      /* (n) sample order of `epoch`; NULL without shuffle */
    int64_t shift;      /* tokens: window k of `epoch` starts at shift + k T; 0 without shuffle */
    int rank, world;    /* the shard: this process's part of each global batch (0 of 1) */
    int64_t offset;     /* the shard's first sample within the global batch at pos */
    int64_t global;     /* samples in the global batch last handed out (0: none yet) */
    /* x = (pixel/255 - mean)/std in fp32 for each byte value, then rounded once per dtype;
     * built for (lut_mean, lut_std) and rebuilt when the dataset's normalisation changes */
    int lut_valid;
    float lut_mean, lut_std;
    float lut_f32[256];
    uint16_t lut_bf16[256], lut_f16[256];
};

/* The random words of one epoch, in order: word w is element w % 4 of Philox block
 * (epoch << 32) + w / 4, so epochs never share a block. */
typedef struct word_stream {
    uint64_t seed, base, w;
    uint32_t block[4];
} word_stream;

static uint32_t next_word(word_stream *s) {
    if (s->w % 4 == 0) mxp_philox4x32(s->seed, s->base + s->w / 4, s->block);
    return s->block[s->w++ % 4];
}

/* Uniform in [0, bound) for 0 < bound <= 2^32, without bias: Lemire's multiply-shift with
 * rejection of the low products that would over-represent some results. */
static uint32_t bounded(word_stream *s, uint64_t bound) {
    uint64_t m = (uint64_t)next_word(s) * bound;
    uint32_t lo = (uint32_t)m;
    if (lo < bound) {
        const uint32_t threshold = (uint32_t)((((uint64_t)1 << 32) - bound) % bound);
        while (lo < threshold) {
            m = (uint64_t)next_word(s) * bound;
            lo = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

/* The Philox block of an epoch's token shift: far above the permutation's blocks (about n / 4
 * < 2^30 of them, rejections included) in the epoch's 2^32, so the two never share a word. */
#define SHIFT_BLOCK ((uint64_t)3 << 30)

/* Fisher-Yates over the identity, keyed by (seed, epoch): the same order on any machine; for
 * tokens also the epoch's shift, uniform in [0, T). */
static void make_perm(mxp_loader_t *ld) {
    const int64_t n = ld->ds->n;
    if (ld->ds->kind == MXP_DATASET_TOKENS) {
        word_stream sh = {ld->seed, ((uint64_t)ld->epoch << 32) + SHIFT_BLOCK, 0, {0, 0, 0, 0}};
        ld->shift = bounded(&sh, (uint64_t)ld->ds->block);
    }
    for (int64_t i = 0; i < n; i++) ld->perm[i] = i;
    word_stream s = {ld->seed, (uint64_t)ld->epoch << 32, 0, {0, 0, 0, 0}};
    for (int64_t i = n - 1; i > 0; i--) {
        const int64_t j = bounded(&s, (uint64_t)i + 1);
        const int64_t t = ld->perm[i];
        ld->perm[i] = ld->perm[j];
        ld->perm[j] = t;
    }
}

mxp_status mxp_loader_create(mxp_loader_t **out, const mxp_dataset_t *ds, int64_t batch,
                             int shuffle, uint64_t seed, int drop_last) {
    if (!out) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_loader_create: out is NULL");
    *out = NULL;
    if (!ds) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_loader_create: ds is NULL");
    if (ds->kind == MXP_DATASET_TOKENS) {
        if (ds->n < 1 || ds->n > MAX_SAMPLES || ds->block < 1 || ds->block > UINT32_MAX ||
            !ds->tokens || ds->n > (ds->n_tokens - ds->block) / ds->block)
            return MXP_FAIL(MXP_ERR_INVALID_ARG,
                            "mxp_loader_create: token dataset of %" PRId64 " windows of %" PRId64
                            " over %" PRId64 " tokens is empty, too large or inconsistent "
                            "(n <= (n_tokens - block) / block)",
                            ds->n, ds->block, ds->n_tokens);
    } else if (ds->kind != MXP_DATASET_IMAGES) {
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_loader_create: unknown dataset kind %d",
                        (int)ds->kind);
    } else if (ds->n < 1 || ds->n > MAX_SAMPLES || ds->H < 1 || ds->W < 1 || ds->C < 1 ||
               !ds->pixels || !ds->labels)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_loader_create: dataset n=%" PRId64 " (%" PRId64 ", %" PRId64
                        ", %" PRId64 ") is empty, too large or has no data",
                        ds->n, ds->H, ds->W, ds->C);
    if (batch < 1 || batch > ds->n)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_loader_create: batch %" PRId64 " is out of range [1, %" PRId64 "]",
                        batch, ds->n);
    mxp_loader_t *ld = mxp_alloc(sizeof *ld);
    if (!ld) return MXP_FAIL(MXP_ERR_NOMEM, "cannot allocate a loader");
    memset(ld, 0, sizeof *ld);
    ld->ds = ds;
    ld->batch = batch;
    ld->shuffle = shuffle != 0;
    ld->drop_last = drop_last != 0;
    ld->seed = seed;
    ld->world = 1;
    if (ld->shuffle) {
        ld->perm = mxp_alloc_array((size_t)ds->n, sizeof *ld->perm);
        if (!ld->perm) {
            mxp_free(ld);
            return MXP_FAIL(MXP_ERR_NOMEM, "cannot allocate the order of %" PRId64 " samples",
                            ds->n);
        }
        make_perm(ld);
    }
    *out = ld;
    return MXP_OK;
}

void mxp_loader_free(mxp_loader_t *ld) {
    if (!ld) return;
    mxp_free(ld->perm);
    mxp_free(ld);
}

mxp_status mxp_loader_start_epoch(mxp_loader_t *ld, int64_t epoch, int64_t pos) {
    if (!ld) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_loader_start_epoch: ld is NULL");
    if (epoch < 0 || epoch > MAX_EPOCH)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_loader_start_epoch: epoch %" PRId64 " is out of range [0, %" PRId64
                        "]",
                        epoch, MAX_EPOCH);
    if (pos < 0 || pos > ld->ds->n)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_loader_start_epoch: position %" PRId64 " is out of range [0, %" PRId64
                        "]",
                        pos, ld->ds->n);
    const int regenerate = ld->shuffle && epoch != ld->epoch;
    ld->epoch = epoch;
    ld->pos = pos;
    ld->global = 0;
    if (regenerate) make_perm(ld);
    return MXP_OK;
}

/* (Re)build the tables for the dataset's current normalisation. The value is computed in
 * fp32 exactly as written, then rounded to nearest even by the scalar conversions. */
static mxp_status build_lut(mxp_loader_t *ld) {
    const float mean = ld->ds->mean, std = ld->ds->std;
    if (ld->lut_valid && mean == ld->lut_mean && std == ld->lut_std) return MXP_OK;
    if (!isfinite(mean) || !isfinite(std) || !(std > 0))
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_loader_next: the dataset's normalisation mean %g, std %g is invalid",
                        (double)mean, (double)std);
    for (int v = 0; v < 256; v++) {
        const float x = ((float)v / 255.0f - mean) / std;
        ld->lut_f32[v] = x;
        ld->lut_bf16[v] = mxp_fp32_to_bf16(x);
        ld->lut_f16[v] = mxp_fp32_to_fp16(x);
    }
    ld->lut_mean = mean;
    ld->lut_std = std;
    ld->lut_valid = 1;
    return MXP_OK;
}

/* Samples in the next global batch (all ranks' shares): a full one of world * batch, the
 * epoch's short rest, or 0 (the epoch is over, drop_last drops its rest, or the rest is too
 * short to give every rank a sample). */
static int64_t global_count(const mxp_loader_t *ld) {
    const int64_t full = ld->batch * ld->world;
    const int64_t g = MXP_MIN(full, ld->ds->n - ld->pos);
    return g <= 0 || g < ld->world || (g < full && ld->drop_last) ? 0 : g;
}

/* This rank's share of the next global batch, and where it starts in it (ld->offset): the
 * batch split in rank order, shares differing by at most one sample. */
static int64_t next_count(mxp_loader_t *ld) {
    const int64_t g = global_count(ld);
    const int64_t q = g / ld->world, r = g % ld->world;
    ld->offset = ld->rank * q + MXP_MIN(ld->rank, r);
    return g ? q + (ld->rank < r) : 0;
}

/* The dataset index of sample i of this rank's share of the batch at the current position. */
static int64_t sample_at(const mxp_loader_t *ld, int64_t i) {
    const int64_t k = ld->pos + ld->offset + i;
    return ld->perm ? ld->perm[k] : k;
}

/* Past the global batch this rank just took its share of. */
static void advance(mxp_loader_t *ld) {
    ld->global = global_count(ld);
    ld->pos += ld->global;
}

mxp_status mxp_loader_next(mxp_loader_t *ld, void *x, mxp_dtype x_dtype, int32_t *labels,
                           int64_t *b) {
    if (b) *b = 0;
    if (!ld || !x || !labels || !b)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_loader_next: %s is NULL",
                        !ld       ? "ld"
                        : !x      ? "x"
                        : !labels ? "labels"
                                  : "b");
    if (ld->ds->kind == MXP_DATASET_TOKENS)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_loader_next: the dataset holds tokens; use mxp_loader_next_tokens");
    if (x_dtype != MXP_DTYPE_F32 && x_dtype != MXP_DTYPE_BF16 && x_dtype != MXP_DTYPE_F16)
        return MXP_FAIL(MXP_ERR_DTYPE, "mxp_loader_next: x dtype %d is not f32, bf16 or f16",
                        (int)x_dtype);
    MXP_TRY(build_lut(ld));
    const mxp_dataset_t *ds = ld->ds;
    const int64_t nb = next_count(ld);
    ld->global = 0;
    if (nb == 0) return MXP_OK;

    const int64_t sample = ds->H * ds->W * ds->C; /* elements per sample */
    const int nt = nb * sample >= PARALLEL_MIN ? mxp_num_threads() : 1;
    (void)nt; /* only MXP_OMP reads it, and not at all without OpenMP */
    /* x (nb, H, W, C): row i is sample order[i], each byte looked up in the table */
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t i = 0; i < nb; i++) {
        const int64_t k = sample_at(ld, i);
        const uint8_t *src = ds->pixels + k * sample;
        if (x_dtype == MXP_DTYPE_F32) {
            float *dst = (float *)x + i * sample;
            for (int64_t j = 0; j < sample; j++) dst[j] = ld->lut_f32[src[j]];
        } else {
            const uint16_t *lut = x_dtype == MXP_DTYPE_BF16 ? ld->lut_bf16 : ld->lut_f16;
            uint16_t *dst = (uint16_t *)x + i * sample;
            for (int64_t j = 0; j < sample; j++) dst[j] = lut[src[j]];
        }
        labels[i] = ds->labels[k];
    }
    advance(ld);
    *b = nb;
    return MXP_OK;
}

mxp_status mxp_loader_next_tokens(mxp_loader_t *ld, int32_t *x, int32_t *y, int64_t *b) {
    if (b) *b = 0;
    if (!ld || !x || !y || !b)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_loader_next_tokens: %s is NULL",
                        !ld  ? "ld"
                        : !x ? "x"
                        : !y ? "y"
                             : "b");
    const mxp_dataset_t *ds = ld->ds;
    if (ds->kind != MXP_DATASET_TOKENS)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "mxp_loader_next_tokens: the dataset holds images; use mxp_loader_next");
    const int64_t nb = next_count(ld);
    ld->global = 0;
    if (nb == 0) return MXP_OK;

    const int64_t T = ds->block;
    const int nt = nb * T >= PARALLEL_MIN ? mxp_num_threads() : 1;
    (void)nt; /* only MXP_OMP reads it, and not at all without OpenMP */
    /* x (nb, T) = tokens[s, s + T), y (nb, T) = tokens[s + 1, s + T + 1), s = shift + k T:
     * a widening copy the compiler vectorises */
    MXP_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))
    for (int64_t i = 0; i < nb; i++) {
        const int64_t k = sample_at(ld, i);
        const uint16_t *src = ds->tokens + ld->shift + k * T;
        int32_t *xr = x + i * T, *yr = y + i * T;
        for (int64_t j = 0; j < T; j++) xr[j] = src[j];
        for (int64_t j = 0; j < T; j++) yr[j] = src[j + 1];
    }
    advance(ld);
    *b = nb;
    return MXP_OK;
}

int64_t mxp_loader_batches_per_epoch(const mxp_loader_t *ld) {
    if (!ld) return 0;
    const int64_t n = ld->ds->n, full = ld->batch * ld->world, rest = n % full;
    return n / full + (rest > 0 && rest >= ld->world && !ld->drop_last);
}

mxp_status mxp_loader_shard(mxp_loader_t *ld, int rank, int world) {
    if (!ld) return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_loader_shard: ld is NULL");
    if (world < 1 || rank < 0 || rank >= world)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "mxp_loader_shard: rank %d of %d is out of range",
                        rank, world);
    if ((int64_t)world > ld->ds->n / ld->batch)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "%d processes with a batch of %" PRId64 " each need %" PRId64
                        " samples per step, more than the %" PRId64 " the data has; use fewer "
                        "processes or a smaller batch",
                        world, ld->batch, ld->batch * world, ld->ds->n);
    ld->rank = rank;
    ld->world = world;
    return MXP_OK;
}

int64_t mxp_loader_global_count(const mxp_loader_t *ld) { return ld ? ld->global : 0; }

int64_t mxp_loader_batch_size(const mxp_loader_t *ld) { return ld ? ld->batch : 0; }

int64_t mxp_loader_epoch(const mxp_loader_t *ld) { return ld ? ld->epoch : 0; }

int64_t mxp_loader_position(const mxp_loader_t *ld) { return ld ? ld->pos : 0; }

const mxp_dataset_t *mxp_loader_dataset(const mxp_loader_t *ld) { return ld ? ld->ds : NULL; }
