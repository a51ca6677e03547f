/*
 * mixprec/io.h - files other programs read or write: Trainer-style YAML
 * arguments, JSON-lines metrics, safetensors files, and the launch
 * configuration of `mixprec config` / `mixprec launch` (accelerate's
 * default_config.yaml).
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
MXP_API void mxp_json_uint_array(mxp_json *o, const char *key, const uint64_t *v,
                                 size_t n); /* "key":[1,2,3] */
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

/* ---- launch configuration (accelerate's default_config.yaml) ------------------------ */
/* What `mixprec config` writes and `mixprec launch` reads (docs/LAUNCH.md): a flat
 * YAML file with accelerate's keys (compute_environment, distributed_type,
 * num_processes, num_machines, machine_rank, mixed_precision) plus mixprec's
 * (num_threads, loss_scale, init_scale, growth_interval, hysteresis,
 * gradient_accumulation_steps). Accelerate keys that mean nothing here (debug,
 * gpu_ids, use_cpu, main_process_port, ...) are accepted and ignored when
 * scalar; what mixprec cannot do (MULTI_GPU, several machines, fp8) is refused
 * by name rather than ignored.
 *
 *     mxp_launch_config c;
 *     if (mxp_launch_config_read(&c, "cfg.yaml") != MXP_OK) puts(mxp_last_error());
 *     if (c.set & MXP_LAUNCH_KEY_MIXED_PRECISION) setenv("MIXPREC_MIXED_PRECISION", ...);
 */

/* One bit per key, for mxp_launch_config.set: which keys a file (or
 * mxp_launch_config_set) gave, so a launcher passes on only those. */
typedef enum mxp_launch_key {
    MXP_LAUNCH_KEY_COMPUTE_ENVIRONMENT = 1 << 0,
    MXP_LAUNCH_KEY_DISTRIBUTED_TYPE = 1 << 1,
    MXP_LAUNCH_KEY_NUM_PROCESSES = 1 << 2,
    MXP_LAUNCH_KEY_NUM_MACHINES = 1 << 3,
    MXP_LAUNCH_KEY_MACHINE_RANK = 1 << 4,
    MXP_LAUNCH_KEY_MIXED_PRECISION = 1 << 5,
    MXP_LAUNCH_KEY_NUM_THREADS = 1 << 6,
    MXP_LAUNCH_KEY_LOSS_SCALE = 1 << 7,
    MXP_LAUNCH_KEY_INIT_SCALE = 1 << 8,
    MXP_LAUNCH_KEY_GROWTH_INTERVAL = 1 << 9,
    MXP_LAUNCH_KEY_HYSTERESIS = 1 << 10,
    MXP_LAUNCH_KEY_GRAD_ACCUM = 1 << 11 /* the key gradient_accumulation_steps */
} mxp_launch_key;

typedef struct mxp_launch_config {
    char compute_environment[32];    /* "LOCAL_MACHINE", the only one */
    char distributed_type[16];       /* "NO" (1 process) or "MULTI_CPU" (> 1, over MPI); always
                                        what num_processes implies */
    int num_processes;               /* 1 .. 1024 */
    int num_machines;                /* 1: one machine only */
    int machine_rank;                /* 0 */
    char mixed_precision[8];         /* "no", "fp16" or "bf16" (default, as mixprec train) */
    int num_threads;                 /* threads per process; 0 = the cores divided among them */
    char loss_scale[32];             /* "dynamic" (default) or a positive number (static) */
    float init_scale;                /* first dynamic scale; default 65536 */
    int64_t growth_interval;         /* overflow-free steps before the scale doubles; 2000 */
    int hysteresis;                  /* overflows tolerated before backing off; 1 */
    int gradient_accumulation_steps; /* micro-batches per optimizer step; 1 = none */
    unsigned set;                    /* MXP_LAUNCH_KEY_* bits of the keys given */
} mxp_launch_config;

/* The defaults above, with set = 0. Never fails; c must not be NULL. */
MXP_API void mxp_launch_config_default(mxp_launch_config *c);

/* Set one key (its name in the file, e.g. "num_processes") from its text, and
 * its bit in c->set. Setting num_processes re-derives distributed_type. An
 * ignored accelerate key is accepted and changes nothing. Checks the value
 * only; whether distributed_type agrees with num_processes is checked by
 * mxp_launch_config_read. Errors (c unchanged): MXP_ERR_INVALID_ARG with one
 * line "KEY: 'VALUE' is not ..." saying what is expected, "KEY: not supported
 * by mixprec: VALUE" for accelerate values mixprec cannot run (MULTI_GPU,
 * fp8, several machines), or "unknown key 'K' (known: ...)". */
MXP_API mxp_status mxp_launch_config_set(mxp_launch_config *c, const char *key, const char *value);

/* Defaults, then every key of the flat YAML file at path (mxp_yaml_read_flat).
 * An explicit distributed_type must agree with num_processes (NO: 1,
 * MULTI_CPU: more). Errors: MXP_ERR_IO (cannot open, naming the path),
 * MXP_ERR_FORMAT (not a flat YAML mapping, naming file and line),
 * MXP_ERR_INVALID_ARG (a bad key or value: one line "PATH:LINE: KEY: ..." as
 * mxp_launch_config_set words it), MXP_ERR_NOMEM. On error *c holds the
 * defaults. */
MXP_API mxp_status mxp_launch_config_read(mxp_launch_config *c, const char *path);

/* Write c to path as YAML: a header comment, accelerate's keys in its
 * (alphabetical) order, then mixprec's: those set in c->set, the others as
 * comments showing their defaults (so a launcher passes on only what was
 * chosen). Creates missing parent directories (mode 0777 less the umask) and
 * replaces path atomically (mxp_file_write_atomic). Reading the file back gives
 * the same values. Errors: MXP_ERR_INVALID_ARG (NULL, or c has a value
 * mxp_launch_config_set would refuse), MXP_ERR_IO naming the directory or
 * file and the system error, MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_launch_config_write(const mxp_launch_config *c, const char *path);

/* The default location of the launch configuration into buf (size bytes):
 * $MIXPREC_CONFIG_FILE when set and not empty, else
 * $XDG_CONFIG_HOME/mixprec/default_config.yaml when XDG_CONFIG_HOME is an
 * absolute path, else $HOME/.config/mixprec/default_config.yaml. *from (may be
 * NULL) gets "MIXPREC_CONFIG_FILE", "XDG_CONFIG_HOME" or "HOME" (static
 * strings). An explicit --config-file is the caller's business and comes
 * first. The file need not exist. Errors: MXP_ERR_INVALID_ARG (buf NULL, the
 * path does not fit in size, or none of the three variables is usable). */
MXP_API mxp_status mxp_launch_config_path(char *buf, size_t size, const char **from);

#ifdef __cplusplus
}
#endif
#endif
