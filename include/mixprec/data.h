/*
 * mixprec/data.h - datasets and loaders: IDX files ((Fashion-)MNIST, plain or
 * .gz), text (character level) and llm.c token shards for the gpt model,
 * seeded shuffling, normalisation, batching.
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

/* Append-only. */
typedef enum mxp_dataset_kind {
    MXP_DATASET_IMAGES = 0, /* IDX images and labels */
    MXP_DATASET_TOKENS = 1  /* a token stream cut into windows (language modelling) */
} mxp_dataset_kind;

typedef struct mxp_dataset {
    int64_t n;             /* samples (tokens: windows of block + 1 tokens) */
    int64_t H, W, C;       /* each sample is (H, W, C) = (28, 28, 1) for MNIST */
    int n_classes;         /* 10 */
    const uint8_t *pixels; /* (n, H, W, C) raw bytes 0..255 */
    const int32_t *labels; /* (n), each in [0, n_classes) */
    float mean, std;       /* normalisation: x = (pixel / 255 - mean) / std */
    /* token datasets (kind MXP_DATASET_TOKENS); the image fields are 0 / NULL there */
    mxp_dataset_kind kind;
    const uint16_t *tokens; /* (n_tokens), each < vocab_size */
    int64_t n_tokens;
    int64_t block;  /* T: a sample is x = tokens[s, s + T), y = tokens[s + 1, s + T + 1) */
    int vocab_size; /* char level: n_chars; shards: 50257 (GPT-2's BPE) or max token + 1 */
    int n_chars;    /* char level: token id i is byte chars[i] (sorted ascending); 0 for
                       shards, whose ids have no decoder here */
    uint8_t chars[256];
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

/* ---- text and token shards (the gpt model's data) ----------------------------- */

/* Debian's fortunes package (the gpt default, `--data fortunes`). */
#define MXP_FORTUNES_DIR "/usr/share/games/fortunes"

/* llm.c's token shard: a header of 256 little-endian int32 (magic, version 1,
 * token count, then zeros) followed by that many little-endian uint16 tokens. */
#define MXP_SHARD_MAGIC 20240520
#define MXP_SHARD_VERSION 1

typedef struct mxp_text_options {
    int64_t block;        /* window length T (>= 1) */
    double val_frac;      /* share of the stream held out at its end for validation when
                             there is no validation shard; in [0, 0.5]; default 0.1;
                             0: no validation split (*val is set to NULL) */
    const uint8_t *chars; /* a fixed character vocabulary (a resumed run's or a
                             checkpoint's), sorted; NULL: the corpus's distinct bytes */
    int n_chars;
} mxp_text_options;

/* block 256, val_frac 0.1, no fixed vocabulary. */
MXP_API void mxp_text_options_default(mxp_text_options *o);

/* Load a token corpus as a training and a validation dataset (kind
 * MXP_DATASET_TOKENS, both with the same vocabulary). `data` is:
 *   "fortunes"      the English fortunes of Debian's package:
 *                   $MIXPREC_DATA_DIR/fortunes when that is set, else MXP_FORTUNES_DIR;
 *   a .bin file     one llm.c shard, split: the last val_frac of its tokens validate;
 *   a directory     holding .bin files: llm.c shards, those whose name contains "val"
 *                   validate and the others train (in name order); without a val shard
 *                   the last val_frac of the training stream validates;
 *   a directory     without .bin files: every regular file in it (name order; not
 *                   symlinks, not *.dat or *.u8, not hidden) read as fortune files
 *                   whose lines of a single '%' separate entries: entries are joined
 *                   by one empty line (a directory holding IDX files, *-idx*-ubyte*,
 *                   is refused: images are not text);
 *   any other file  plain text, character level (bytes).
 * Text is character level: token i is the i-th distinct byte in ascending order
 * (or the index in o->chars; a byte outside it is MXP_ERR_FORMAT naming the byte
 * and the file). Shards give GPT-2 token ids, vocab_size 50257 unless a token is
 * larger. A split of n_tokens tokens has n = (n_tokens - T) / T windows
 * (so that every per-epoch shift fits) and must hold at least 2 T tokens.
 * Errors: MXP_ERR_IO (missing: "fortunes" says `apt-get install fortunes`),
 * MXP_ERR_FORMAT (a bad shard: magic, version, a count the file does not hold;
 * a corpus too short for the block), MXP_ERR_INVALID_ARG, MXP_ERR_NOMEM.
 * One line each, naming the file. *train and *val are set only on success. */
MXP_API mxp_status mxp_text_load(mxp_dataset_t **train, mxp_dataset_t **val, const char *data,
                                 const mxp_text_options *o);

/* Write tokens (n, each < 65536) as one llm.c shard at path (replaced whole:
 * a temporary, then rename). Errors: MXP_ERR_IO naming the path. */
MXP_API mxp_status mxp_shard_write(const char *path, const uint16_t *tokens, int64_t n);

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

/* The next batch of a token dataset: x (b, T) and y (b, T) int32, y being x
 * shifted by one token (the next-token targets); *b as mxp_loader_next. With
 * shuffle, epoch e's windows start at shift_e + k * T (shift_e < T drawn from
 * (seed, e)) in a Philox permutation; without, at k * T in order. Errors:
 * MXP_ERR_INVALID_ARG (an image dataset; mxp_loader_next refuses a token one). */
MXP_API mxp_status mxp_loader_next_tokens(mxp_loader_t *ld, int32_t *x, int32_t *y, int64_t *b);

/* Begin epoch `epoch` (0-based) at sample position `pos` within it (0 for the
 * start; a resumed run passes where it stopped). Errors: MXP_ERR_INVALID_ARG. */
MXP_API mxp_status mxp_loader_start_epoch(mxp_loader_t *ld, int64_t epoch, int64_t pos);

/* Data parallelism (accelerate's prepare() does this): make ld the share of
 * process `rank` of `world`. Every rank must create its loader alike (same
 * dataset, batch, shuffle, seed), so all draw the same per-epoch order; each
 * global batch is then world * batch samples of that order, split in rank
 * order (rank r takes samples [r*batch, (r+1)*batch) of a full one; a short
 * last one is split so shares differ by at most one; a rest smaller than
 * world is dropped). Positions (mxp_loader_position, mxp_loader_start_epoch)
 * count global samples, so any rank can resume where the job stopped.
 * Errors: MXP_ERR_INVALID_ARG (rank outside [0, world), or fewer samples than
 * one global batch). */
MXP_API mxp_status mxp_loader_shard(mxp_loader_t *ld, int rank, int world);

/* The samples of the global batch (every rank's share) that the last
 * mxp_loader_next / mxp_loader_next_tokens handed out part of; equal to
 * that call's *b without sharding; 0 before the first batch of an epoch and
 * after a call that handed out none. */
MXP_API int64_t mxp_loader_global_count(const mxp_loader_t *ld);

/* Global batches per epoch (counting a short last one unless drop_last). */
MXP_API int64_t mxp_loader_batches_per_epoch(const mxp_loader_t *ld);

/* The batch size given to mxp_loader_create. */
MXP_API int64_t mxp_loader_batch_size(const mxp_loader_t *ld);

/* The current epoch and the position (samples already handed out in it, by
 * every rank together when sharded). */
MXP_API int64_t mxp_loader_epoch(const mxp_loader_t *ld);
MXP_API int64_t mxp_loader_position(const mxp_loader_t *ld);

/* The dataset the loader reads (as lent to mxp_loader_create). */
MXP_API const mxp_dataset_t *mxp_loader_dataset(const mxp_loader_t *ld);

#ifdef __cplusplus
}
#endif
#endif
