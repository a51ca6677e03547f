/*
 * mixprec/io.h - files other programs read or write: Trainer-style YAML
 * arguments, JSON-lines metrics and safetensors files.
 *
 * YAML goes through libyaml; only a flat mapping of scalars is accepted
 * (`bf16: true`, `learning_rate: 3e-4`), which is what a Trainer argument
 * file is. JSON is written here without a library: one object per line,
 * numbers printed so that an fp32 value reads back exactly.
 *
 *     mxp_json o; mxp_json_begin(&o);
 *     mxp_json_str(&o, "event", "step"); mxp_json_int(&o, "step", 12);
 *     mxp_json_num(&o, "loss", 0.4183);
 *     mxp_jsonl_write(log, &o);                 // {"event":"step","step":12,"loss":0.4183}
 *     mxp_json_free(&o);
 */
#ifndef MIXPREC_IO_H
#define MIXPREC_IO_H

#include <stdint.h>
#include <stdio.h>

#include "mixprec/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- flat YAML mappings ---------------------------------------------------- */

typedef struct mxp_kv {
    char *key;   /* owned */
    char *value; /* owned; the scalar as written, without quotes */
    int line;    /* 1-based line of the key, for messages */
} mxp_kv;

typedef struct mxp_kvlist {
    int n;
    mxp_kv *items; /* (n) in file order */
} mxp_kvlist;

/* Parse `path` as a YAML document whose top level is a mapping from scalar
 * keys to scalar values. An empty file gives n = 0. Errors: MXP_ERR_IO (cannot
 * open, naming the path), MXP_ERR_FORMAT (a syntax error, a nested mapping or
 * sequence, a duplicate key, a non-mapping top level: the message names the
 * file and line). On error *out is zeroed and nothing is leaked. */
MXP_API mxp_status mxp_yaml_read_flat(mxp_kvlist *out, const char *path);

/* The value of key, or NULL. */
MXP_API const char *mxp_kvlist_get(const mxp_kvlist *kv, const char *key);

/* Release the strings; the list is zeroed. NULL is harmless. */
MXP_API void mxp_kvlist_free(mxp_kvlist *kv);

/* ---- JSON objects, one per line ------------------------------------------------ */

/* A JSON object under construction. Fields are appended in call order; keys
 * and strings are escaped. Numbers: integers exactly; doubles with %.9g (so an
 * fp32 value reads back bit-exactly), non-finite values as null (JSON has no
 * NaN or inf). An allocation failure is remembered in err and later calls do
 * nothing, so a sequence of calls needs one check at the end. */
typedef struct mxp_json {
    char *buf; /* NUL-terminated text, owned */
    size_t len, cap;
    int fields; /* fields so far (to place commas) */
    int depth;  /* open nested objects */
    mxp_status err;
} mxp_json;

MXP_API void mxp_json_begin(mxp_json *o); /* starts "{" */
MXP_API void mxp_json_str(mxp_json *o, const char *key, const char *value);
MXP_API void mxp_json_int(mxp_json *o, const char *key, int64_t value);
MXP_API void mxp_json_num(mxp_json *o, const char *key, double value);
MXP_API void mxp_json_bool(mxp_json *o, const char *key, int value);
MXP_API void mxp_json_null(mxp_json *o, const char *key);
MXP_API void mxp_json_object_begin(mxp_json *o, const char *key); /* "key":{ */
MXP_API void mxp_json_object_end(mxp_json *o);                    /* } */
/* Closes the object (and any still-open nested ones); returns the text
 * (owned by o) or NULL if an allocation failed. */
MXP_API const char *mxp_json_end(mxp_json *o);
MXP_API void mxp_json_free(mxp_json *o);

typedef struct mxp_jsonl mxp_jsonl_t;

/* Open path for JSON lines: truncated, or appended to when append != 0 (a
 * resumed run). Errors: MXP_ERR_IO naming the path, MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_jsonl_open(mxp_jsonl_t **out, const char *path, int append);

/* Close o (if still open), write it as one line and flush, so a crashed
 * run keeps every line written before it. Errors: MXP_ERR_IO (write failed,
 * e.g. disk full), MXP_ERR_NOMEM (o->err). */
MXP_API mxp_status mxp_jsonl_write(mxp_jsonl_t *j, mxp_json *o);

/* Flush and close. Errors: MXP_ERR_IO if the final flush fails. NULL is OK. */
MXP_API mxp_status mxp_jsonl_close(mxp_jsonl_t *j);

/* ---- safetensors ------------------------------------------------------------------ */
/* The public format (huggingface/safetensors): an 8-byte little-endian header
 * length N, N bytes of JSON {"name": {"dtype": "F32", "shape": [..],
 * "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v"}}, then the
 * data; offsets are relative to the end of the header, tensors are dense
 * row-major little-endian. Dtypes F32, F16 and BF16 are read and written. */

typedef struct mxp_st_info {
    const char *name; /* owned by the file handle */
    mxp_dtype dtype;
    int ndim; /* 0 .. MXP_MAX_DIMS */
    int64_t shape[MXP_MAX_DIMS];
    uint64_t begin, end; /* byte offsets into the data section */
} mxp_st_info;

typedef struct mxp_safetensors mxp_safetensors_t;

/* Open and validate path: the header length (<= 100 MB and within the file),
 * the JSON, every entry's dtype (F32/F16/BF16; another dtype is
 * MXP_ERR_FORMAT naming it), shape (non-negative, product fits), that end -
 * begin equals numel * dtype size, that the data ranges lie inside the file
 * and do not overlap, and that __metadata__ maps strings to strings. The
 * data is not read yet. Errors: MXP_ERR_IO (naming the path), MXP_ERR_FORMAT
 * (one line saying what is wrong, naming the tensor), MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_safetensors_open(mxp_safetensors_t **out, const char *path);
MXP_API void mxp_safetensors_close(mxp_safetensors_t *f);

/* Tensors in header order; NULL past the end. */
MXP_API int mxp_safetensors_count(const mxp_safetensors_t *f);
MXP_API const mxp_st_info *mxp_safetensors_info(const mxp_safetensors_t *f, int i);
MXP_API const mxp_st_info *mxp_safetensors_find(const mxp_safetensors_t *f, const char *name);

/* A __metadata__ value, or NULL. */
MXP_API const char *mxp_safetensors_meta(const mxp_safetensors_t *f, const char *key);

/* The __metadata__ pairs in header order: how many, and the key of pair i
 * with its value in *value (optional). NULL (and *value NULL) past the end.
 * The strings are owned by the file handle. */
MXP_API int mxp_safetensors_meta_count(const mxp_safetensors_t *f);
MXP_API const char *mxp_safetensors_meta_at(const mxp_safetensors_t *f, int i, const char **value);

/* Read tensor `name` into dst (contiguous, dtype dst->dtype, converting with
 * round to nearest even when the dtypes differ). The shapes must be equal.
 * Errors: MXP_ERR_FORMAT (missing name, shape mismatch: both shapes in the
 * message), MXP_ERR_IO (short read). */
MXP_API mxp_status mxp_safetensors_read(mxp_safetensors_t *f, const char *name, mxp_tensor *dst);

typedef struct mxp_st_entry {
    const char *name;
    const mxp_tensor *t; /* contiguous CPU tensor */
} mxp_st_entry;

/* Write the n tensors (in the given order) to path, each converted to
 * `dtype` (F32, F16 or BF16; MXP_DTYPE_COUNT keeps each tensor's own dtype),
 * with metadata from meta = {key0, value0, key1, value1, ..., NULL} (may be
 * NULL). Atomic: written to "path.tmp.<pid>", fsync'd, renamed over path,
 * and the directory fsync'd, so a crash leaves either the old file or the new
 * one. Errors: MXP_ERR_INVALID_ARG (duplicate or empty names), MXP_ERR_IO
 * (naming the path and the system error, e.g. "No space left on device"; the
 * temporary file is removed), MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_safetensors_write(const char *path, const mxp_st_entry *entries, int n,
                                         mxp_dtype dtype, const char *const *meta);

/* Write n bytes to path atomically, as mxp_safetensors_write does: a
 * temporary, fsync, rename, directory fsync (config.json and other small
 * files). Errors: MXP_ERR_IO naming the path and the system error,
 * MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_file_write_atomic(const char *path, const void *data, size_t n);

#ifdef __cplusplus
}
#endif
#endif
