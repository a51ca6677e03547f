/*
 * checkpoint.c - a training run in a directory, and the way back: the fp32
 * weights (model.safetensors), the optimizer moments and the counters that
 * resume a run exactly (training_state.safetensors) and the configuration
 * (config.json). The directory is written whole under a temporary name and
 * renamed into place, so a crash or a full disk never leaves half of one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base_impl.h"
#include "io/io_impl.h"
#include "mixprec/train.h"

#define STATE_KIND "mixprec-training-state" /* training_state.safetensors "format" */

void mxp_checkpoint_meta_init(mxp_checkpoint_meta *meta) {
    memset(meta, 0, sizeof *meta);
    snprintf(meta->mixed_precision, sizeof meta->mixed_precision, "no");
    meta->processes = 1;
    meta->master_weights = 1;
    meta->std = 1.0f;
}

static mxp_status join(char *buf, size_t size, const char *dir, const char *file) {
    if ((size_t)snprintf(buf, size, "%s/%s", dir, file) >= size)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "checkpoint path %s is too long", dir);
    return MXP_OK;
}

/* ---- removing directories --------------------------------------------------------- */

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* rm -rf path (no symlinks followed). 0, or -1 with errno set. */
static int remove_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* the parent directory of path into out ("." when it has none) */
static void parent_of(char *out, size_t size, const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, size, ".");
    else if (slash == path)
        snprintf(out, size, "/");
    else
        snprintf(out, size, "%.*s", (int)(slash - path), path);
}

/* ---- saving ------------------------------------------------------------------------- */

static void add_arg(const char *key, const char *value, void *user) {
    json_object_set_new((json_t *)user, key, json_string(value));
}

static char *config_text(const mxp_model_t *m, const mxp_checkpoint_meta *meta) {
    const mxp_model_config *c = &m->config;
    json_t *root = json_pack(
        "{s:i, s:s, s:s, s:b, s:{s:s, s:I, s:I, s:I, s:i, s:I, s:I, s:I, s:I, s:f, s:I}, "
        "s:{s:f, s:f}}",
        "format", MXP_CHECKPOINT_FORMAT, "mixprec_version", mxp_version(), "mixed_precision",
        meta->mixed_precision, "master_weights", meta->master_weights, "model", "name", c->name,
        "H", (json_int_t)c->H, "W", (json_int_t)c->W, "C", (json_int_t)c->C, "n_classes",
        c->n_classes, "hidden1", (json_int_t)c->hidden1, "hidden2", (json_int_t)c->hidden2,
        "channels1", (json_int_t)c->channels1, "channels2", (json_int_t)c->channels2, "dropout",
        (double)c->dropout, "seed", (json_int_t)c->seed, "data", "mean", (double)meta->mean, "std",
        (double)meta->std);
    if (!root) return NULL;
    if (m->gpt) {
        json_t *model = json_object_get(root, "model");
        json_object_set_new(model, "n_layer", json_integer((json_int_t)c->n_layer));
        json_object_set_new(model, "n_head", json_integer((json_int_t)c->n_head));
        json_object_set_new(model, "n_embd", json_integer((json_int_t)c->n_embd));
        json_object_set_new(model, "block_size", json_integer((json_int_t)c->block_size));
        json_object_set_new(model, "vocab_size", json_integer((json_int_t)c->vocab_size));
    }
    if (meta->n_chars > 0) { /* a character vocabulary: token i is byte vocab[i] */
        json_t *v = json_array();
        for (int i = 0; v && i < meta->n_chars; i++)
            json_array_append_new(v, json_integer(meta->chars[i]));
        json_object_set_new(json_object_get(root, "data"), "vocab", v);
    }
    if (meta->processes > 1) /* written only for a job of several: 1 is the default */
        json_object_set_new(root, "processes", json_integer(meta->processes));
    if (meta->have_args) {
        json_t *args = json_object();
        if (args) mxp_trainer_args_each(&meta->args, add_arg, args);
        json_object_set_new(root, "training_args", args);
    }
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(9));
    json_decref(root);
    return text;
}

/* The optimizer's moments as tensors named "optimizer.<moment>.<param>": t and names
 * (96 bytes each) have room for 2 per parameter; *k gets how many. The tensors borrow the
 * optimizer's storage. */
static mxp_status list_moments(const mxp_optimizer_t *opt, const mxp_model_t *m, mxp_tensor *t,
                               char *names, int *k) {
    *k = 0;
    for (int i = 0; i < m->n_params; i++) {
        float *mom[2];
        const char *nm[2];
        const mxp_tensor *w = m->params[i]->work;
        MXP_TRY(mxp_optimizer_moments(opt, i, &mom[0], &mom[1], &nm[0], &nm[1]));
        for (int j = 0; j < 2; j++) {
            if (!mom[j]) continue;
            snprintf(names + (size_t)*k * 96, 96, "optimizer.%s.%s", nm[j], m->params[i]->name);
            MXP_TRY(mxp_tensor_wrap(&t[*k], mom[j], MXP_DTYPE_F32, w->ndim, w->shape, NULL));
            (*k)++;
        }
    }
    return MXP_OK;
}

/* training_state.safetensors: the moments, and the counters as metadata */
static mxp_status write_state(const char *path, const mxp_model_t *m, const mxp_optimizer_t *opt,
                              const mxp_checkpoint_meta *meta) {
    const size_t cap = 2 * (size_t)m->n_params + 1;
    mxp_st_entry *e = mxp_alloc_array(cap, sizeof *e);
    mxp_tensor *t = mxp_alloc_array(cap, sizeof *t);
    char *names = mxp_alloc_array(cap, 96);
    mxp_status st = e && t && names ? MXP_OK : MXP_FAIL(MXP_ERR_NOMEM, "training state entries");
    int k = 0;
    if (st == MXP_OK) st = list_moments(opt, m, t, names, &k);
    for (int i = 0; st == MXP_OK && i < k; i++) {
        e[i].name = names + (size_t)i * 96;
        e[i].t = &t[i];
    }
    const mxp_train_state *s = &meta->state;
    const mxp_scaler *sc = &s->accel.scaler;
    char v[10][40];
    snprintf(v[0], 40, "%lld", (long long)s->accel.steps);
    snprintf(v[1], 40, "%lld", (long long)s->accel.applied);
    snprintf(v[2], 40, "%lld", (long long)s->accel.micro_batches);
    snprintf(v[3], 40, "%lld", (long long)s->epoch);
    snprintf(v[4], 40, "%lld", (long long)s->position);
    snprintf(v[5], 40, "%.9g", (double)sc->scale);
    snprintf(v[6], 40, "%lld", (long long)sc->growth_tracker);
    snprintf(v[7], 40, "%d", sc->hysteresis_left);
    snprintf(v[8], 40, "%lld", (long long)sc->skipped);
    snprintf(v[9], 40, "%lld", (long long)sc->overflows);
    const char *kv[] = {"format",
                        STATE_KIND,
                        "mixprec_version",
                        mxp_version(),
                        "optimizer",
                        mxp_optim_name(mxp_optimizer_config(opt)->kind),
                        "step",
                        v[0],
                        "applied_steps",
                        v[1],
                        "micro_batches",
                        v[2],
                        "epoch",
                        v[3],
                        "position",
                        v[4],
                        "loss_scale",
                        v[5],
                        "growth_tracker",
                        v[6],
                        "hysteresis_left",
                        v[7],
                        "skipped_steps",
                        v[8],
                        "overflows",
                        v[9],
                        NULL};
    if (st == MXP_OK) st = mxp_safetensors_write(path, e, k, MXP_DTYPE_F32, kv);
    mxp_free(e);
    mxp_free(t);
    mxp_free(names);
    return st;
}

/* the three files into directory tmp */
static mxp_status write_files(const char *tmp, const mxp_model_t *m, const mxp_optimizer_t *opt,
                              const mxp_checkpoint_meta *meta) {
    char path[4096];
    mxp_st_entry *e = mxp_alloc_array((size_t)m->n_params + 1, sizeof *e);
    if (!e) return MXP_FAIL(MXP_ERR_NOMEM, "checkpoint entries");
    for (int i = 0; i < m->n_params; i++) {
        e[i].name = m->params[i]->name;
        e[i].t = m->params[i]->master ? m->params[i]->master : m->params[i]->work;
    }
    const char *kv[] = {"format",       "pt", "mixprec_version", mxp_version(), "model",
                        m->config.name, NULL};
    mxp_status st = join(path, sizeof path, tmp, "model.safetensors");
    if (st == MXP_OK) st = mxp_safetensors_write(path, e, m->n_params, MXP_DTYPE_F32, kv);
    mxp_free(e);
    MXP_TRY(st);
    if (opt && meta->have_state) {
        MXP_TRY(join(path, sizeof path, tmp, "training_state.safetensors"));
        MXP_TRY(write_state(path, m, opt, meta));
    }
    char *text = config_text(m, meta);
    if (!text) return MXP_FAIL(MXP_ERR_NOMEM, "config.json");
    st = join(path, sizeof path, tmp, "config.json");
    if (st == MXP_OK) st = mxp_file_write_atomic(path, text, strlen(text));
    free(text);
    return st;
}

mxp_status mxp_checkpoint_save(const char *dir, const mxp_model_t *m, const mxp_optimizer_t *opt,
                               const mxp_checkpoint_meta *meta) {
    if (!dir || !*dir || !m || !meta)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "checkpoint: NULL argument");
    if (!m->config.name[0])
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "checkpoint: model '%s' was built by hand and cannot be rebuilt from a "
                        "config",
                        m->name);
    if (opt && mxp_optimizer_model(opt) != m)
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "checkpoint: the optimizer is not bound to the model being saved");
    char tmp[4096], old[4096], parent[4096], clean[4096];
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') len--; /* "out/checkpoint-5/" names the same */
    if (len >= sizeof clean) return MXP_FAIL(MXP_ERR_INVALID_ARG, "checkpoint path is too long");
    memcpy(clean, dir, len);
    clean[len] = '\0';
    dir = clean;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-%ld", dir, (long)getpid()) >= sizeof tmp ||
        (size_t)snprintf(old, sizeof old, "%s.old-%ld", dir, (long)getpid()) >= sizeof old)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "checkpoint path %s is too long", dir);
    parent_of(parent, sizeof parent, dir);
    remove_tree(tmp); /* a leftover of this pid's earlier, failed save */
    if (mkdir(tmp, 0777) != 0)
        return MXP_FAIL(MXP_ERR_IO, "cannot save checkpoint %s: cannot create %s: %s", dir, tmp,
                        strerror(errno));
    mxp_status st = write_files(tmp, m, opt, meta);
    if (st == MXP_OK && mxp_sync_dir(tmp) != 0)
        st = MXP_FAIL(MXP_ERR_IO, "%s: fsync failed: %s", tmp, strerror(errno));
    int replaced = 0;
    if (st == MXP_OK) {
        struct stat sb;
        if (stat(dir, &sb) == 0) {
            /* an existing checkpoint of this step: swap the two atomically, so no moment
             * exists without a checkpoint-<step>; the old one is then under tmp's name */
            if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) == 0) {
                remove_tree(tmp);
                goto synced;
            }
            if (rename(dir, old) != 0) /* a filesystem without RENAME_EXCHANGE */
                st = MXP_FAIL(MXP_ERR_IO, "cannot move %s aside: %s", dir, strerror(errno));
            replaced = 1;
        }
    }
    if (st == MXP_OK && rename(tmp, dir) != 0) {
        st = MXP_FAIL(MXP_ERR_IO, "cannot rename %s to %s: %s", tmp, dir, strerror(errno));
        if (replaced) rename(old, dir); /* put the previous one back */
    }
    if (st != MXP_OK) {
        char why[1024];
        snprintf(why, sizeof why, "%s", mxp_last_error_text());
        remove_tree(tmp);
        return MXP_FAIL(st, "cannot save checkpoint %s: %s", dir, why);
    }
    if (replaced) remove_tree(old);
synced:
    if (mxp_sync_dir(parent) != 0)
        return MXP_FAIL(MXP_ERR_IO, "checkpoint %s written, but syncing %s failed: %s", dir, parent,
                        strerror(errno));
    return MXP_OK;
}

/* ---- reading config.json ------------------------------------------------------------ */

static mxp_status get_int(const char *path, json_t *obj, const char *key, int64_t lo, int64_t hi,
                          int64_t *out) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: \"%s\" must be an integer in [%lld, %lld]", path, key,
                        (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return MXP_OK;
}

static mxp_status get_num(const char *path, json_t *obj, const char *key, double lo, double hi,
                          double *out) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v) || !(json_number_value(v) >= lo) || !(json_number_value(v) <= hi))
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: \"%s\" must be a number in [%g, %g]", path, key, lo,
                        hi);
    *out = json_number_value(v);
    return MXP_OK;
}

/* "training_args": {key: text}: each through the Trainer's own setter */
static mxp_status parse_args(const char *path, json_t *obj, mxp_trainer_args *a) {
    if (!json_is_object(obj))
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: \"training_args\" must be an object", path);
    mxp_trainer_args_default(a);
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        const char *text = json_string_value(v);
        if (!text)
            return MXP_FAIL(MXP_ERR_FORMAT, "%s: training_args.%s must be a string", path, key);
        if (mxp_trainer_args_set(a, key, text) != MXP_OK) {
            char why[512];
            snprintf(why, sizeof why, "%s", mxp_last_error_text());
            return MXP_FAIL(MXP_ERR_FORMAT, "%s: training_args: %s", path, why);
        }
    }
    return MXP_OK;
}

static mxp_status parse_config(const char *path, json_t *root, mxp_checkpoint_meta *meta,
                               mxp_model_config *c) {
    int64_t v = 0;
    double d;
    json_t *fmt = json_object_get(root, "format");
    const char *ver = json_string_value(json_object_get(root, "mixprec_version"));
    if (json_is_integer(fmt) && json_integer_value(fmt) > MXP_CHECKPOINT_FORMAT)
        return MXP_FAIL(MXP_ERR_FORMAT,
                        "%s: written by mixprec %s in checkpoint format %lld; this mixprec (%s) "
                        "reads formats 1 to %d: upgrade mixprec to read it",
                        path, ver ? ver : "?", (long long)json_integer_value(fmt), mxp_version(),
                        MXP_CHECKPOINT_FORMAT);
    MXP_TRY(get_int(path, root, "format", 1, MXP_CHECKPOINT_FORMAT, &v));
    meta->format = (int)v;
    snprintf(meta->mixprec_version, sizeof meta->mixprec_version, "%s", ver ? ver : "unknown");
    json_t *model = json_object_get(root, "model"), *data = json_object_get(root, "data");
    const char *name = json_string_value(json_object_get(model, "name"));
    if (!json_is_object(model) || !json_is_object(data) || !name)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: needs objects \"model\" (with \"name\") and \"data\"",
                        path);
    if (mxp_model_config_default(c, name) != MXP_OK)
        return MXP_FAIL(MXP_ERR_FORMAT,
                        "%s: unknown model '%.32s' (this mixprec knows mlp, cnn, gpt)", path, name);
    const int64_t big = 1 << 20;
    MXP_TRY(get_int(path, model, "H", 1, big, &c->H));
    MXP_TRY(get_int(path, model, "W", 1, big, &c->W));
    MXP_TRY(get_int(path, model, "C", 1, big, &c->C));
    MXP_TRY(get_int(path, model, "n_classes", 2, big, &v));
    c->n_classes = (int)v;
    MXP_TRY(get_int(path, model, "hidden1", 0, big, &c->hidden1));
    MXP_TRY(get_int(path, model, "hidden2", 0, big, &c->hidden2));
    MXP_TRY(get_int(path, model, "channels1", 0, big, &c->channels1));
    MXP_TRY(get_int(path, model, "channels2", 0, big, &c->channels2));
    MXP_TRY(get_num(path, model, "dropout", 0.0, 0.99999999, &d));
    c->dropout = (float)d;
    if (strcmp(name, "gpt") == 0) {
        MXP_TRY(get_int(path, model, "n_layer", 1, 1000, &c->n_layer));
        MXP_TRY(get_int(path, model, "n_head", 1, big, &c->n_head));
        MXP_TRY(get_int(path, model, "n_embd", 1, 1 << 16, &c->n_embd));
        MXP_TRY(get_int(path, model, "block_size", 1, big, &c->block_size));
        MXP_TRY(get_int(path, model, "vocab_size", 2, 1 << 24, &c->vocab_size));
        if (c->n_embd % c->n_head)
            return MXP_FAIL(MXP_ERR_FORMAT,
                            "%s: \"n_embd\" %lld is not a multiple of \"n_head\" %lld", path,
                            (long long)c->n_embd, (long long)c->n_head);
    }
    json_t *vocab = json_object_get(data, "vocab");
    if (vocab) {
        const size_t n = json_array_size(vocab);
        if (!json_is_array(vocab) || n < 2 || n > 256 ||
            (strcmp(name, "gpt") == 0 && (int64_t)n != c->vocab_size))
            return MXP_FAIL(MXP_ERR_FORMAT,
                            "%s: \"vocab\" must be an array of 2 to 256 byte values, one per token",
                            path);
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(vocab, i);
            const json_int_t b = json_is_integer(e) ? json_integer_value(e) : -1;
            if (b < 0 || b > 255 || (i > 0 && b <= (json_int_t)meta->chars[i - 1]))
                return MXP_FAIL(
                    MXP_ERR_FORMAT,
                    "%s: \"vocab\" entry %zu is not a byte value above the one before it", path, i);
            meta->chars[i] = (uint8_t)b;
        }
        meta->n_chars = (int)n;
    }
    json_t *seed = json_object_get(model, "seed");
    if (!json_is_integer(seed))
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: \"seed\" must be an integer", path);
    c->seed = (uint64_t)json_integer_value(seed);
    MXP_TRY(get_num(path, data, "mean", -1e30, 1e30, &d));
    meta->mean = (float)d;
    MXP_TRY(get_num(path, data, "std", 1e-30, 1e30, &d));
    meta->std = (float)d;
    const char *mp = json_string_value(json_object_get(root, "mixed_precision"));
    mxp_precision p;
    if (!mp || mxp_precision_parse(mp, &p) != MXP_OK)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: \"mixed_precision\" must be no, fp16 or bf16", path);
    snprintf(meta->mixed_precision, sizeof meta->mixed_precision, "%s", mxp_precision_name(p));
    json_t *mw = json_object_get(root, "master_weights");
    if (mw && !json_is_boolean(mw))
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: \"master_weights\" must be true or false", path);
    meta->master_weights = mw ? json_is_true(mw) : 1;
    if (json_object_get(root, "processes")) {
        int64_t np = 1;
        MXP_TRY(get_int(path, root, "processes", 1, 1 << 20, &np));
        meta->processes = (int)np;
    }
    json_t *args = json_object_get(root, "training_args");
    if (args) {
        MXP_TRY(parse_args(path, args, &meta->args));
        meta->have_args = 1;
    }
    return MXP_OK;
}

mxp_status mxp_checkpoint_read_config(const char *path, mxp_checkpoint_meta *meta,
                                      mxp_model_config *mc) {
    if (!path || !meta || !mc) return MXP_FAIL(MXP_ERR_INVALID_ARG, "NULL argument");
    mxp_checkpoint_meta_init(meta);
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        FILE *f = fopen(path, "rb");
        if (!f) return MXP_FAIL(MXP_ERR_IO, "cannot open %s: %s", path, strerror(errno));
        fclose(f);
        return MXP_FAIL(MXP_ERR_FORMAT, "%s:%d: %s", path, jerr.line, jerr.text);
    }
    mxp_status st = json_is_object(root) ? parse_config(path, root, meta, mc)
                                         : MXP_FAIL(MXP_ERR_FORMAT, "%s: not a JSON object", path);
    json_decref(root);
    return st;
}

/* ---- reading the training state ----------------------------------------------------- */

static mxp_status meta_int(const char *path, const mxp_safetensors_t *f, const char *key,
                           int64_t *out) {
    const char *s = mxp_safetensors_meta(f, key);
    char *end;
    errno = 0;
    const long long v = s ? strtoll(s, &end, 10) : -1;
    if (!s || !*s || *end || errno || v < 0)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: metadata \"%s\" must be an integer >= 0", path, key);
    *out = v;
    return MXP_OK;
}

static mxp_status read_state_meta(const char *path, mxp_checkpoint_meta *meta) {
    mxp_safetensors_t *f;
    MXP_TRY(mxp_safetensors_open(&f, path));
    mxp_train_state *s = &meta->state;
    mxp_scaler *sc = &s->accel.scaler;
    int64_t h = 0;
    const char *kind = mxp_safetensors_meta(f, "format");
    const char *opt = mxp_safetensors_meta(f, "optimizer");
    const char *scale = mxp_safetensors_meta(f, "loss_scale");
    mxp_status st = MXP_OK;
    mxp_optim_kind ok;
    if (!kind || strcmp(kind, STATE_KIND) != 0)
        st = MXP_FAIL(MXP_ERR_FORMAT,
                      "%s: not a mixprec training state (metadata format is not "
                      "\"" STATE_KIND "\")",
                      path);
    else if (!opt || mxp_optim_parse(opt, &ok) != MXP_OK)
        st = MXP_FAIL(MXP_ERR_FORMAT, "%s: metadata \"optimizer\" must be adamw or sgd", path);
    if (st == MXP_OK) st = meta_int(path, f, "step", &s->accel.steps);
    if (st == MXP_OK) st = meta_int(path, f, "applied_steps", &s->accel.applied);
    if (st == MXP_OK) st = meta_int(path, f, "micro_batches", &s->accel.micro_batches);
    if (st == MXP_OK) st = meta_int(path, f, "epoch", &s->epoch);
    if (st == MXP_OK) st = meta_int(path, f, "position", &s->position);
    if (st == MXP_OK) st = meta_int(path, f, "growth_tracker", &sc->growth_tracker);
    if (st == MXP_OK) st = meta_int(path, f, "hysteresis_left", &h);
    if (st == MXP_OK) st = meta_int(path, f, "skipped_steps", &sc->skipped);
    if (st == MXP_OK) st = meta_int(path, f, "overflows", &sc->overflows);
    if (st == MXP_OK) {
        char *end;
        const double v = scale ? strtod(scale, &end) : 0.0;
        if (!scale || !*scale || *end || !(v > 0.0) || v > 3.4e38 || h > 1000000 ||
            s->accel.applied > s->accel.steps || sc->skipped > s->accel.steps)
            st = MXP_FAIL(MXP_ERR_FORMAT,
                          "%s: inconsistent counters (loss scale %s, hysteresis %lld, step %lld, "
                          "applied %lld, skipped %lld)",
                          path, scale ? scale : "missing", (long long)h, (long long)s->accel.steps,
                          (long long)s->accel.applied, (long long)sc->skipped);
        else
            sc->scale = (float)v;
    }
    if (st == MXP_OK) {
        sc->hysteresis_left = (int)h;
        snprintf(meta->optimizer, sizeof meta->optimizer, "%s", opt);
        meta->have_state = 1;
    }
    mxp_safetensors_close(f);
    return st;
}

/* ---- loading ------------------------------------------------------------------------- */

mxp_status mxp_checkpoint_load(const char *dir, mxp_model_t **out, mxp_checkpoint_meta *meta) {
    if (!dir || !out || !meta) return MXP_FAIL(MXP_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    char path[4096];
    MXP_TRY(join(path, sizeof path, dir, "config.json"));
    struct stat sb;
    if (stat(path, &sb) != 0)
        return MXP_FAIL(MXP_ERR_IO, "no checkpoint in %s: cannot open %s (%s)", dir, path,
                        strerror(errno));
    mxp_model_config c;
    MXP_TRY(mxp_checkpoint_read_config(path, meta, &c));
    mxp_model_t *m;
    mxp_status st = mxp_model_create(&m, &c);
    if (st != MXP_OK) { /* the message is rewritten in place: copy it first */
        char why[512];
        snprintf(why, sizeof why, "%s", mxp_last_error_text());
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: %s", path, why);
    }
    mxp_safetensors_t *f = NULL;
    st = join(path, sizeof path, dir, "model.safetensors");
    if (st == MXP_OK) st = mxp_safetensors_open(&f, path);
    for (int i = 0; st == MXP_OK && i < m->n_params; i++)
        st = mxp_safetensors_read(f, m->params[i]->name, m->params[i]->master);
    if (st == MXP_OK && mxp_safetensors_count(f) != m->n_params)
        st = MXP_FAIL(MXP_ERR_FORMAT, "%s: %d tensors but model %s has %d parameters", path,
                      mxp_safetensors_count(f), c.name, m->n_params);
    mxp_safetensors_close(f);
    if (st == MXP_OK && meta->format >= 2) {
        st = join(path, sizeof path, dir, "training_state.safetensors");
        if (st == MXP_OK && stat(path, &sb) == 0) st = read_state_meta(path, meta);
    }
    if (st != MXP_OK) {
        mxp_model_free(m);
        return st;
    }
    *out = m;
    return MXP_OK;
}

mxp_status mxp_checkpoint_load_optimizer(const char *dir, mxp_optimizer_t *opt) {
    const mxp_model_t *m = mxp_optimizer_model(opt);
    if (!dir || !opt || !m)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "load_optimizer: NULL or unbound optimizer");
    char path[4096];
    MXP_TRY(join(path, sizeof path, dir, "training_state.safetensors"));
    mxp_checkpoint_meta meta;
    mxp_checkpoint_meta_init(&meta);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return MXP_FAIL(MXP_ERR_IO,
                        "%s has no training_state.safetensors: it can be evaluated or exported, "
                        "not resumed",
                        dir);
    MXP_TRY(read_state_meta(path, &meta));
    const char *want = mxp_optim_name(mxp_optimizer_config(opt)->kind);
    if (strcmp(meta.optimizer, want) != 0)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: the state is of optimizer %s, this run uses %s", path,
                        meta.optimizer, want);
    const size_t cap = 2 * (size_t)m->n_params + 1;
    mxp_tensor *t = mxp_alloc_array(cap, sizeof *t);
    char *names = mxp_alloc_array(cap, 96);
    mxp_safetensors_t *f = NULL;
    int k = 0;
    mxp_status st = t && names ? MXP_OK : MXP_FAIL(MXP_ERR_NOMEM, "training state entries");
    if (st == MXP_OK) st = list_moments(opt, m, t, names, &k);
    if (st == MXP_OK) st = mxp_safetensors_open(&f, path);
    for (int i = 0; st == MXP_OK && i < k; i++) {
        const char *name = names + (size_t)i * 96;
        const mxp_st_info *info = mxp_safetensors_find(f, name);
        if (info && info->dtype != MXP_DTYPE_F32)
            st = MXP_FAIL(MXP_ERR_FORMAT, "%s: %s must be F32 (optimizer state is fp32)", path,
                          name);
        if (st == MXP_OK) st = mxp_safetensors_read(f, name, &t[i]);
    }
    if (st == MXP_OK && mxp_safetensors_count(f) != k)
        st = MXP_FAIL(MXP_ERR_FORMAT, "%s: %d tensors, but this model's %s state has %d", path,
                      mxp_safetensors_count(f), want, k);
    mxp_free(t);
    mxp_free(names);
    mxp_safetensors_close(f);
    return st;
}

/* ---- finding and rotating ----------------------------------------------------------- */

/* N of a name "checkpoint-N" (digits only), else -1 */
static int64_t checkpoint_step(const char *name) {
    if (strncmp(name, "checkpoint-", 11) != 0 || !name[11]) return -1;
    if (name[11] == '0' && name[12]) return -1; /* "checkpoint-0010" is not the name of step 10 */
    int64_t v = 0;
    for (const char *p = name + 11; *p; p++) {
        if (*p < '0' || *p > '9' || v > (INT64_MAX - 9) / 10) return -1;
        v = v * 10 + (*p - '0');
    }
    return v;
}

static int has_config(const char *dir) {
    char path[4096];
    struct stat sb;
    return join(path, sizeof path, dir, "config.json") == MXP_OK && stat(path, &sb) == 0;
}

mxp_status mxp_checkpoint_find(const char *path, char *out, size_t size) {
    if (!path || !*path || !out) return MXP_FAIL(MXP_ERR_INVALID_ARG, "NULL argument");
    struct stat sb;
    if (stat(path, &sb) != 0)
        return MXP_FAIL(MXP_ERR_IO, "no checkpoint at %s: %s", path, strerror(errno));
    if (!S_ISDIR(sb.st_mode))
        return MXP_FAIL(MXP_ERR_IO, "%s is not a directory (a checkpoint is one)", path);
    if (has_config(path)) {
        if ((size_t)snprintf(out, size, "%s", path) >= size)
            return MXP_FAIL(MXP_ERR_INVALID_ARG, "checkpoint path %s is too long", path);
        return MXP_OK;
    }
    DIR *d = opendir(path);
    if (!d) return MXP_FAIL(MXP_ERR_IO, "cannot read directory %s: %s", path, strerror(errno));
    int64_t best = -1;
    struct dirent *ent;
    char sub[4096];
    while ((ent = readdir(d)) != NULL) {
        const int64_t n = checkpoint_step(ent->d_name);
        if (n <= best) continue;
        if (join(sub, sizeof sub, path, ent->d_name) == MXP_OK && has_config(sub)) best = n;
    }
    closedir(d);
    if (best < 0)
        return MXP_FAIL(MXP_ERR_IO,
                        "no checkpoint in %s: it holds neither config.json nor a "
                        "checkpoint-<step> directory",
                        path);
    if ((size_t)snprintf(out, size, "%s/checkpoint-%lld", path, (long long)best) >= size)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "checkpoint path %s is too long", path);
    return MXP_OK;
}

/* a temporary of a save whose process is gone: "checkpoint-N.tmp-PID" / ".old-PID" /
 * ".del-PID" with PID not alive (or this process) */
static int stale_temp(const char *name) {
    if (strncmp(name, "checkpoint-", 11) != 0) return 0;
    const char *dot = strrchr(name, '.');
    if (!dot || (strncmp(dot, ".tmp-", 5) && strncmp(dot, ".old-", 5) && strncmp(dot, ".del-", 5)))
        return 0;
    char *end;
    const long pid = strtol(dot + 5, &end, 10);
    if (*end || pid <= 0) return 0;
    if (strncmp(dot, ".del-", 5) == 0) return 1; /* already renamed out of sight: finish it */
    return pid != (long)getpid() && kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

static int cmp_i64_desc(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x < y) - (x > y);
}

mxp_status mxp_checkpoint_rotate(const char *dir, int keep) {
    if (!dir) return MXP_FAIL(MXP_ERR_INVALID_ARG, "NULL directory");
    DIR *d = opendir(dir);
    if (!d) return MXP_FAIL(MXP_ERR_IO, "cannot read directory %s: %s", dir, strerror(errno));
    int64_t *steps = NULL;
    size_t n = 0, cap = 0;
    mxp_status st = MXP_OK;
    char path[4096], gone[4096 + 32];
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL && st == MXP_OK) {
        if (stale_temp(ent->d_name)) {
            if (join(path, sizeof path, dir, ent->d_name) == MXP_OK) remove_tree(path);
            continue;
        }
        const int64_t s = checkpoint_step(ent->d_name);
        if (s < 0) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *grown = realloc(steps, cap * sizeof *steps);
            if (!grown) {
                st = MXP_FAIL(MXP_ERR_NOMEM, "checkpoint list");
                break;
            }
            steps = grown;
        }
        steps[n++] = s;
    }
    closedir(d);
    if (st == MXP_OK && keep > 0 && n > (size_t)keep) {
        qsort(steps, n, sizeof *steps, cmp_i64_desc);
        for (size_t i = (size_t)keep; i < n && st == MXP_OK; i++) {
            snprintf(path, sizeof path, "%s/checkpoint-%lld", dir, (long long)steps[i]);
            snprintf(gone, sizeof gone, "%s.del-%ld", path, (long)getpid());
            if (rename(path, gone) != 0 || remove_tree(gone) != 0)
                st = MXP_FAIL(MXP_ERR_IO, "cannot delete old checkpoint %s: %s", path,
                              strerror(errno));
        }
    }
    free(steps);
    if (st == MXP_OK && mxp_sync_dir(dir) != 0)
        st = MXP_FAIL(MXP_ERR_IO, "cannot sync %s: %s", dir, strerror(errno));
    return st;
}
