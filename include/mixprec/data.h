/*
 * mixprec/data.h - datasets and loaders: IDX files ((Fashion-)MNIST, plain or
 * .gz), seeded shuffling, normalisation, batching.
 *
 * The whole split is decoded into memory once (Fashion-MNIST's 60000 images
 * are 47 MB as bytes); a loader then hands out batches in an order that
 * depends only on (seed, epoch), so a run is reproducible and a resumed run
 * can continue from (epoch, position).
 *
 *     mxp_dataset_t *train;
 *     if (mxp_dataset_load_idx(&train, "/usr/share/datasets/fashion-mnist", "train") != MXP_OK)
 *         fprintf(stderr, "%s\n", mxp_last_error());
 *     mxp_loader_t *ld;
 *     mxp_loader_create(&ld, train, 128, 1, 42, 0);   // batch 128, shuffle, seed 42
 *     float x[128 * 784]; int32_t y[128]; int64_t b;
 *     while (mxp_loader_next(ld, x, MXP_DTYPE_F32, y, &b) == MXP_OK && b > 0) { ... }
 */
#ifndef MIXPREC_DATA_H
#define MIXPREC_DATA_H

#include <stdint.h>

#include "mixprec/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- IDX files ----------------------------------------------------------- */

/* One IDX file (yann.lecun.com/exdb/mnist format): magic 0x00 0x00 type ndim,
 * big-endian uint32 sizes, then the elements. Only type 0x08 (unsigned byte)
 * is accepted, the type of every (Fashion-)MNIST file. */
typedef struct mxp_idx {
    int ndim;         /* 1 (labels) or 3 (images), at most 4 */
    int64_t shape[4]; /* (N) or (N, rows, cols) */
    uint8_t *data;    /* numel bytes, owned; free with mxp_idx_free */
} mxp_idx;

/* Read `path`, gunzipping through zlib when it starts with the gzip magic.
 * Validates the magic, the element type, ndim (1..4), that every size is > 0,
 * that the element count fits in memory limits (<= 2^31 bytes), and that the
 * file holds exactly that many bytes (a truncated file or trailing garbage is
 * MXP_ERR_FORMAT naming the file and what was expected). A plain file's size
 * is checked before the data is allocated; a gzip file's buffer grows as its
 * data arrives, so a small file claiming 2^31 elements costs little. Errors:
 * MXP_ERR_IO (cannot open: the message names the path), MXP_ERR_FORMAT,
 * MXP_ERR_NOMEM. On error *out is zeroed and nothing is leaked. */
MXP_API mxp_status mxp_idx_read(mxp_idx *out, const char *path);

/* Release what mxp_idx_read allocated; the struct is zeroed. NULL is harmless. */
MXP_API void mxp_idx_free(mxp_idx *idx);

/* ---- datasets -------------------------------------------------------------- */

typedef struct mxp_dataset {
    int64_t n;             /* samples */
    int64_t H, W, C;       /* each sample is (H, W, C) = (28, 28, 1) for MNIST */
    int n_classes;         /* 10 */
    const uint8_t *pixels; /* (n, H, W, C) raw bytes 0..255 */
    const int32_t *labels; /* (n), each in [0, n_classes) */
    float mean, std;       /* normalisation: x = (pixel / 255 - mean) / std */
} mxp_dataset;
typedef mxp_dataset mxp_dataset_t;

/* The default location of Fashion-MNIST (Debian package dataset-fashion-mnist). */
#define MXP_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* The directory a `--data` value names: "fashion-mnist" is the Debian
 * package's directory, $MIXPREC_DATA_DIR/fashion-mnist when that variable is
 * set, else MXP_FASHION_MNIST_DIR; any other value is a directory path, copied
 * as is. Errors: MXP_ERR_IO when "fashion-mnist" is asked for and its
 * directory does not exist (the message says `apt-get install
 * dataset-fashion-mnist` or --data DIR), MXP_ERR_INVALID_ARG (too long). */
MXP_API mxp_status mxp_dataset_dir(char *out, size_t cap, const char *data);

/* Load split "train" or "test" from dir: files <prefix>-images-idx3-ubyte and
 * <prefix>-labels-idx1-ubyte (prefix "train" or "t10k"), each plain or with
 * ".gz" (the .gz is tried first). Checks that the image and label counts
 * agree and every label is < 10 (naming the first bad index). mean and std
 * are computed from the pixels when split is "train"; a "test" split starts
 * at mean 0.5, std 0.5 and the caller gives it the training statistics with
 * mxp_dataset_set_norm, so both splits are normalised alike.
 * Errors: MXP_ERR_IO (a file missing: the message names it and, for the
 * default directory, says `apt-get install dataset-fashion-mnist`),
 * MXP_ERR_FORMAT (bad file, counts differ, label out of range),
 * MXP_ERR_INVALID_ARG (unknown split), MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_dataset_load_idx(mxp_dataset_t **out, const char *dir, const char *split);

/* Free a dataset from mxp_dataset_load_idx. NULL is harmless. */
MXP_API void mxp_dataset_free(mxp_dataset_t *ds);

/* Use this normalisation (std > 0). Errors: MXP_ERR_INVALID_ARG. */
MXP_API mxp_status mxp_dataset_set_norm(mxp_dataset_t *ds, float mean, float std);

/* ---- loaders ---------------------------------------------------------------- */

typedef struct mxp_loader mxp_loader_t;

/* A loader over ds (lent: ds must outlive it) giving batches of `batch`
 * samples. shuffle: each epoch visits a permutation drawn from Philox keyed by
 * (seed, epoch) with a Fisher-Yates shuffle, so the order is the same on any
 * machine; otherwise in file order. drop_last: the last partial batch of an
 * epoch is skipped (else it is returned short). Errors: MXP_ERR_INVALID_ARG
 * (batch < 1 or > ds->n), MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_loader_create(mxp_loader_t **out, const mxp_dataset_t *ds, int64_t batch,
                                     int shuffle, uint64_t seed, int drop_last);
MXP_API void mxp_loader_free(mxp_loader_t *ld);

/* The next batch of the current epoch: x (b, H, W, C) normalised and rounded
 * to x_dtype (F32, BF16 or F16), labels (b) int32; *b is the number of
 * samples written (<= batch), 0 at the end of the epoch (then call
 * mxp_loader_start_epoch). Errors: MXP_ERR_INVALID_ARG, MXP_ERR_DTYPE. */
MXP_API mxp_status mxp_loader_next(mxp_loader_t *ld, void *x, mxp_dtype x_dtype, int32_t *labels,
                                   int64_t *b);

/* Begin epoch `epoch` (0-based) at sample position `pos` within it (0 for the
 * start; a resumed run passes where it stopped). Errors: MXP_ERR_INVALID_ARG. */
MXP_API mxp_status mxp_loader_start_epoch(mxp_loader_t *ld, int64_t epoch, int64_t pos);

/* Batches per epoch (counting a short last batch unless drop_last). */
MXP_API int64_t mxp_loader_batches_per_epoch(const mxp_loader_t *ld);

/* The batch size given to mxp_loader_create. */
MXP_API int64_t mxp_loader_batch_size(const mxp_loader_t *ld);

/* The current epoch and the position (samples already handed out in it). */
MXP_API int64_t mxp_loader_epoch(const mxp_loader_t *ld);
MXP_API int64_t mxp_loader_position(const mxp_loader_t *ld);

/* The dataset the loader reads (as lent to mxp_loader_create). */
MXP_API const mxp_dataset_t *mxp_loader_dataset(const mxp_loader_t *ld);

#ifdef __cplusplus
}
#endif
#endif
