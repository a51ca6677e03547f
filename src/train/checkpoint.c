/*
 * checkpoint.c - a model's weights (safetensors) and configuration
 * (config.json) in a directory, and the way back. It saves what evaluation
 * and export need; optimizer moments and the scaler state are not saved yet.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base_impl.h"
#include "mixprec/train.h"

#define CONFIG_FORMAT 1 /* config.json "format": bumped when its meaning changes */

static mxp_status join(char *buf, size_t size, const char *dir, const char *file) {
    if ((size_t)snprintf(buf, size, "%s/%s", dir, file) >= size)
        return MXP_FAIL(MXP_ERR_INVALID_ARG, "checkpoint path %s is too long", dir);
    return MXP_OK;
}

mxp_status mxp_checkpoint_save(const char *dir, const mxp_model_t *m, float mean, float std,
                               const char *mixed_precision) {
    if (!dir || !*dir || !m) return MXP_FAIL(MXP_ERR_INVALID_ARG, "checkpoint: NULL argument");
    const mxp_model_config *c = &m->config;
    if (!c->name[0])
        return MXP_FAIL(MXP_ERR_INVALID_ARG,
                        "checkpoint: model '%s' was built by hand and cannot "
                        "be rebuilt from a config",
                        m->name);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return MXP_FAIL(MXP_ERR_IO, "cannot create checkpoint directory %s: %s", dir,
                        strerror(errno));
    char path[4096];
    /* weights: fp32 masters, or the 16-bit weights widened (exact) */
    mxp_st_entry *e = mxp_alloc_array((size_t)m->n_params + 1, sizeof *e);
    if (!e) return MXP_FAIL(MXP_ERR_NOMEM, "checkpoint entries");
    for (int i = 0; i < m->n_params; i++) {
        e[i].name = m->params[i]->name;
        e[i].t = m->params[i]->master ? m->params[i]->master : m->params[i]->work;
    }
    const char *meta[] = {"format", "mixprec", "mixprec_version", mxp_version(), NULL};
    mxp_status st = join(path, sizeof path, dir, "model.safetensors");
    if (st == MXP_OK) st = mxp_safetensors_write(path, e, m->n_params, MXP_DTYPE_F32, meta);
    mxp_free(e);
    MXP_TRY(st);

    json_t *root =
        json_pack("{s:i, s:s, s:s, s:b, s:{s:s, s:I, s:I, s:I, s:i, s:I, s:I, s:I, s:I, s:f, s:I}, "
                  "s:{s:f, s:f}}",
                  "format", CONFIG_FORMAT, "mixprec_version", mxp_version(), "mixed_precision",
                  mixed_precision ? mixed_precision : "no", "master_weights", m->master_weights,
                  "model", "name", c->name, "H", (json_int_t)c->H, "W", (json_int_t)c->W, "C",
                  (json_int_t)c->C, "n_classes", c->n_classes, "hidden1", (json_int_t)c->hidden1,
                  "hidden2", (json_int_t)c->hidden2, "channels1", (json_int_t)c->channels1,
                  "channels2", (json_int_t)c->channels2, "dropout", (double)c->dropout, "seed",
                  (json_int_t)c->seed, "data", "mean", (double)mean, "std", (double)std);
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(9)) : NULL;
    json_decref(root);
    if (!text) return MXP_FAIL(MXP_ERR_NOMEM, "config.json");
    st = join(path, sizeof path, dir, "config.json");
    if (st == MXP_OK) st = mxp_file_write_atomic(path, text, strlen(text));
    free(text);
    return st;
}

static mxp_status get_int(const char *path, json_t *obj, const char *key, int64_t lo, int64_t hi,
                          int64_t *out) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: \"%s\" must be an integer in [%lld, %lld]", path, key,
                        (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return MXP_OK;
}

static mxp_status get_num(const char *path, json_t *obj, const char *key, double *out) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v))
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: \"%s\" must be a number", path, key);
    *out = json_number_value(v);
    return MXP_OK;
}

static mxp_status parse_config(const char *path, json_t *root, mxp_model_config *c, float *mean,
                               float *std, char *prec) {
    int64_t v;
    double d;
    MXP_TRY(get_int(path, root, "format", 1, CONFIG_FORMAT, &v));
    json_t *model = json_object_get(root, "model"), *data = json_object_get(root, "data");
    const char *name = json_string_value(json_object_get(model, "name"));
    if (!json_is_object(model) || !json_is_object(data) || !name)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: needs objects \"model\" (with \"name\") and \"data\"",
                        path);
    if (mxp_model_config_default(c, name) != MXP_OK)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: unknown model '%s' (this mixprec knows mlp, cnn)",
                        path, name);
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
    MXP_TRY(get_num(path, model, "dropout", &d));
    c->dropout = (float)d;
    MXP_TRY(get_num(path, data, "mean", &d));
    *mean = (float)d;
    MXP_TRY(get_num(path, data, "std", &d));
    *std = (float)d;
    if (!(*std > 0.0f)) return MXP_FAIL(MXP_ERR_FORMAT, "%s: data std must be > 0", path);
    const char *mp = json_string_value(json_object_get(root, "mixed_precision"));
    mxp_precision p;
    if (!mp || mxp_precision_parse(mp, &p) != MXP_OK)
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: \"mixed_precision\" must be no, fp16 or bf16", path);
    if (prec) snprintf(prec, 8, "%s", mp);
    return MXP_OK;
}

mxp_status mxp_checkpoint_load(const char *dir, mxp_model_t **out, float *mean, float *std,
                               char *mixed_precision) {
    if (!dir || !out || !mean || !std) return MXP_FAIL(MXP_ERR_INVALID_ARG, "NULL argument");
    *out = NULL;
    char path[4096];
    MXP_TRY(join(path, sizeof path, dir, "config.json"));
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        FILE *f = fopen(path, "rb");
        if (!f)
            return MXP_FAIL(MXP_ERR_IO, "no checkpoint in %s: cannot open %s (%s)", dir, path,
                            strerror(errno));
        fclose(f);
        return MXP_FAIL(MXP_ERR_FORMAT, "%s:%d: %s", path, jerr.line, jerr.text);
    }
    mxp_model_config c;
    mxp_status st = json_is_object(root) ? parse_config(path, root, &c, mean, std, mixed_precision)
                                         : MXP_FAIL(MXP_ERR_FORMAT, "%s: not a JSON object", path);
    json_decref(root);
    MXP_TRY(st);
    mxp_model_t *m;
    st = mxp_model_create(&m, &c);
    if (st != MXP_OK) { /* the message is rewritten in place: copy it first */
        char why[512];
        const char *msg = mxp_last_error(), *colon = strstr(msg, ": ");
        snprintf(why, sizeof why, "%s", colon ? colon + 2 : msg);
        return MXP_FAIL(MXP_ERR_FORMAT, "%s: %s", path, why);
    }
    MXP_TRY(join(path, sizeof path, dir, "model.safetensors"));
    mxp_safetensors_t *f = NULL;
    st = mxp_safetensors_open(&f, path);
    for (int i = 0; st == MXP_OK && i < m->n_params; i++)
        st = mxp_safetensors_read(f, m->params[i]->name, m->params[i]->master);
    if (st == MXP_OK && mxp_safetensors_count(f) != m->n_params)
        st = MXP_FAIL(MXP_ERR_FORMAT, "%s: %d tensors but model %s has %d parameters", path,
                      mxp_safetensors_count(f), c.name, m->n_params);
    mxp_safetensors_close(f);
    if (st != MXP_OK) {
        mxp_model_free(m);
        return st;
    }
    *out = m;
    return MXP_OK;
}
