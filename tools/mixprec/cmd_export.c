/*
 * cmd_export.c - `mixprec export`: a checkpoint's fp32 weights as one
 * safetensors file in bf16, fp16 or fp32 (round to nearest even), with
 * metadata that other tools (safetensors.torch, transformers) accept. It
 * exports weights only: no optimizer state, nothing to resume from.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const cli_opt opts[] = {
    {"--checkpoint", "DIR", "a checkpoint or an output directory (newest checkpoint-N); required"},
    {"--dtype", "D", "bf16, fp16 or fp32: the dtype of every tensor written; required"},
    {"--output", "FILE", "the safetensors file to write (also -o FILE); required"},
};
enum { OPT_CHECKPOINT, OPT_DTYPE, OPT_OUTPUT, NOPTS };

/* `mixprec help export`: the usage, the options, the metadata written, the exit statuses. */
void help_export(FILE *out) {
    fprintf(out,
            "usage: mixprec export --checkpoint DIR --dtype bf16|fp16|fp32 -o FILE.safetensors\n"
            "\n"
            "Write the weights of a checkpoint (its fp32 master weights) as one safetensors file\n"
            "for inference, every tensor converted to the dtype with round to nearest even, under\n"
            "the checkpoint's names. The file opens with safetensors.torch.load_file and in\n"
            "transformers; `mixprec show FILE` lists it. The write is atomic (a temporary file,\n"
            "fsync, rename): FILE is either the old file or the complete new one.\n"
            "An fp16 export refuses weights beyond fp16's largest finite value (65504) instead\n"
            "of writing inf; any export refuses weights that are inf or NaN.\n"
            "\n"
            "options:\n");
    cli_print_opts(out, opts, NOPTS);
    cli_print_opts(out, cli_global_opts, cli_nglobal_opts);
    fprintf(out,
            "\n__metadata__: format (\"pt\"), mixprec_version, model, architecture, model_config\n"
            "(JSON), source_checkpoint (absolute path), dtype, trained_mixed_precision (no, fp16\n"
            "or bf16), data_mean and data_std (inputs are normalised as (x - mean) / std).\n"
            "\n"
            "exit status: 0 written; 2 bad command line, missing or bad checkpoint, an output\n"
            "path that cannot be written, or weights the dtype cannot hold (one line saying\n"
            "which); 1 out of memory or a failed write (e.g. a full disk).\n"
            "\n"
            "example: mixprec export --checkpoint runs/mlp --dtype bf16 -o mlp-bf16.safetensors\n");
}

/* ---- the command line --------------------------------------------------- */

/* Whether word names an option (of this command or global) that takes a value. */
static int takes_value(const char *word) {
    for (int i = 0; i < NOPTS; i++)
        if (strcmp(word, opts[i].name) == 0) return opts[i].metavar != NULL;
    for (int i = 0; i < cli_nglobal_opts; i++)
        if (strcmp(word, cli_global_opts[i].name) == 0) return cli_global_opts[i].metavar != NULL;
    return 0;
}

/* cli_parse reads a word with one dash as a positional (so -0.5 can be one), but -o is
 * this command's short name for --output: rename it in argv before parsing. Option
 * values are skipped the way cli_parse takes them, so `--checkpoint -o` still names a
 * directory called "-o"; nothing after `--` is touched. */
static void rename_short_output(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) return;
        if (strcmp(argv[i], "-o") == 0)
            argv[i] = (char *)"--output";
        else if (!(strncmp(argv[i], "--", 2) == 0 && !strchr(argv[i], '=') && takes_value(argv[i])))
            continue;
        if (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) i++; /* the option's value */
    }
}

/* The output must be a file in a directory that exists and that we may write
 * to; checked before the checkpoint is loaded, so a typo costs nothing.
 * Prints one line and returns CLI_EXIT_USAGE when it is not. */
static int check_output(const char *out) {
    struct stat sb;
    const size_t len = strlen(out);
    if (len == 0) return cli_usage_error("export", "-o needs a file name, got an empty string");
    if (out[len - 1] == '/' || (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)))
        return cli_usage_error("export",
                               "-o %s is a directory; give a file name like "
                               "%s/model-bf16.safetensors",
                               cli_quote(out), cli_quote(out));
    char parent[4096];
    const char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(parent, sizeof parent, ".");
    else if (slash == out)
        snprintf(parent, sizeof parent, "/");
    else if ((size_t)(slash - out) < sizeof parent)
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - out), out);
    else
        return cli_usage_error("export", "-o %s: the path is too long", cli_quote(out));
    if (stat(parent, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return cli_usage_error("export", "cannot write %s: directory %s does not exist",
                               cli_quote(out), cli_quote(parent));
    if (access(parent, W_OK | X_OK) != 0)
        return cli_usage_error("export", "cannot write %s: no permission to create files in %s",
                               cli_quote(out), cli_quote(parent));
    return 0;
}

/* Refuses an output that is one of the checkpoint's own files: replacing
 * model.safetensors with 16-bit weights would silently degrade the checkpoint, and
 * replacing config.json would make it unreadable. */
static int check_not_checkpoint_file(const char *out, const char *dir) {
    static const char *const files[] = {"model.safetensors", "training_state.safetensors",
                                        "config.json"};
    struct stat so, sc;
    if (stat(out, &so) != 0) return 0; /* a new file cannot be one of them */
    for (int i = 0; i < 3; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (stat(path, &sc) == 0 && sc.st_dev == so.st_dev && sc.st_ino == so.st_ino)
            return cli_usage_error("export",
                                   "-o %s is the checkpoint's own %s; write the export "
                                   "elsewhere",
                                   cli_quote(out), files[i]);
    }
    return 0;
}

/* ---- the weights -------------------------------------------------------- */

/* The fp32 weights of parameter p: its master copy, or the weights themselves in
 * an fp32 model (which a loaded checkpoint is). NULL if neither is fp32. */
static const mxp_tensor *weights_f32(const mxp_param *p) {
    const mxp_tensor *t = p->master ? p->master : p->work;
    return t && t->dtype == MXP_DTYPE_F32 && mxp_tensor_is_contiguous(t) ? t : NULL;
}

/* Every weight must survive the conversion: no inf or NaN in the checkpoint,
 * and no finite value that rounds to inf in dt (anything at or beyond 65520 in
 * fp16). Checked before anything is written. Prints one line naming the tensor
 * and returns CLI_EXIT_USAGE when a weight does not fit. */
static int check_range(const mxp_model_t *m, mxp_dtype dt, const char *dtype_name) {
    const mxp_format *fmt = mxp_format_of(dt);
    for (int i = 0; i < m->n_params; i++) {
        const mxp_param *p = m->params[i];
        const mxp_tensor *t = weights_f32(p);
        const float *x = t->data; /* (numel) */
        const int64_t n = mxp_tensor_numel(t);
        float amax = 0.0f;
        for (int64_t j = 0; j < n; j++) {
            const float a = x[j] < 0 ? -x[j] : x[j];
            if (!(a <= 3.4028234663852886e38f)) /* inf, or NaN (every comparison is false) */
                return cli_usage_error("export",
                                       "'%s' holds %s at element %lld: the checkpoint's weights "
                                       "are broken (training diverged?); nothing written",
                                       cli_quote(p->name), isnan(a) ? "NaN" : "inf", (long long)j);
            if (a > amax) amax = a;
        }
        if (dt != MXP_DTYPE_F32) {
            const mxp_class c = mxp_format_classify(fmt, mxp_format_encode(fmt, amax));
            if (c == MXP_CLASS_INF) {
                char got[40], lim[40];
                fmt_shortest(got, sizeof got, amax);
                fmt_shortest(lim, sizeof lim, mxp_format_max(fmt));
                return cli_usage_error("export",
                                       "'%s' has max |x| = %s, beyond %s's largest finite value "
                                       "%s: it would be stored as inf; export in %s instead "
                                       "(nothing written)",
                                       cli_quote(p->name), got, dtype_name, lim,
                                       dt == MXP_DTYPE_F16 ? "bf16 or fp32" : "fp32");
            }
        }
    }
    return 0;
}

/* The model's configuration as a JSON object (the "model" of config.json), for
 * a reader that rebuilds the network. */
static void model_config_json(char *buf, size_t size, const mxp_model_config *c) {
    char drop[40];
    fmt_shortest(drop, sizeof drop, c->dropout);
    snprintf(buf, size,
             "{\"name\":\"%s\",\"H\":%lld,\"W\":%lld,\"C\":%lld,\"n_classes\":%d,\"hidden1\":%lld,"
             "\"hidden2\":%lld,\"channels1\":%lld,\"channels2\":%lld,\"dropout\":%s}",
             c->name, (long long)c->H, (long long)c->W, (long long)c->C, c->n_classes,
             (long long)c->hidden1, (long long)c->hidden2, (long long)c->channels1,
             (long long)c->channels2, drop);
}

/* Convert and write: entries under the parameter names, metadata as listed in
 * the help. Returns the exit status after printing one line on failure. */
static int write_export(const char *out, const mxp_model_t *m, const mxp_checkpoint_meta *meta,
                        const char *dir, mxp_dtype dt, const char *dtype_name) {
    mxp_st_entry *e = calloc((size_t)m->n_params + 1, sizeof *e);
    if (!e) {
        fprintf(stderr, "mixprec: export: out of memory\n");
        return CLI_EXIT_RUNTIME;
    }
    for (int i = 0; i < m->n_params; i++) {
        e[i].name = m->params[i]->name;
        e[i].t = weights_f32(m->params[i]);
    }
    char source[4096], arch[512], config[512], mean[40], std[40];
    if (!realpath(dir, source)) snprintf(source, sizeof source, "%s", dir);
    mxp_model_describe(m, arch, sizeof arch);
    model_config_json(config, sizeof config, &m->config);
    snprintf(mean, sizeof mean, "%.9g", (double)meta->mean); /* %.9g: an fp32 reads back exactly */
    snprintf(std, sizeof std, "%.9g", (double)meta->std);
    const char *version = mxp_version(), *model = m->config.name, *prec = meta->mixed_precision;
    /* format "pt" is what safetensors.torch and transformers look for */
    const char *const kv[] = {"format",
                              "pt",
                              "mixprec_version",
                              version,
                              "model",
                              model,
                              "architecture",
                              arch,
                              "model_config",
                              config,
                              "source_checkpoint",
                              source,
                              "dtype",
                              dtype_name,
                              "trained_mixed_precision",
                              prec,
                              "data_mean",
                              mean,
                              "data_std",
                              std,
                              NULL};
    mxp_status st = mxp_safetensors_write(out, e, m->n_params, dt, kv);
    free(e);
    if (st != MXP_OK) {
        /* the output's directory was checked: what fails now is the system (disk full, ...) */
        cli_file_error("export", st);
        return CLI_EXIT_RUNTIME;
    }
    return CLI_EXIT_OK;
}

/* `mixprec export --checkpoint DIR --dtype D -o FILE`: every check (flags, output path,
 * checkpoint, range of the weights) before the one write. Returns the exit status (0, or
 * 2/1 after one line on stderr). */
int cmd_export(int argc, char **argv) {
    const char *vals[NOPTS];
    char **pos = argv;
    int npos = 0;
    rename_short_output(argc, argv);
    int rc = cli_parse("export", argc, argv, opts, NOPTS, vals, pos, &npos);
    if (rc) return rc;
    if (npos)
        return cli_usage_error("export", "unexpected argument '%s' (the output file goes after -o)",
                               cli_quote(pos[0]));
    if (!vals[OPT_CHECKPOINT])
        return cli_usage_error("export", "--checkpoint DIR is required (a directory written by "
                                         "mixprec train --save DIR)");
    if (!vals[OPT_DTYPE])
        return cli_usage_error("export", "--dtype is required: bf16, fp16 or fp32");
    mxp_dtype dt;
    if (mxp_dtype_parse(vals[OPT_DTYPE], &dt) != MXP_OK) {
        mxp_clear_error();
        return cli_usage_error("export", "--dtype '%s' is not one of bf16, fp16, fp32",
                               cli_quote(vals[OPT_DTYPE]));
    }
    static const char *const dtype_names[MXP_DTYPE_COUNT] = {"fp32", "fp16", "bf16"};
    const char *dtype_name = dtype_names[dt];
    if (!vals[OPT_OUTPUT])
        return cli_usage_error("export", "-o FILE.safetensors is required (the file to write)");
    const char *out = vals[OPT_OUTPUT];
    if ((rc = check_output(out))) return rc;

    char dir[4096];
    mxp_status st = mxp_checkpoint_find(vals[OPT_CHECKPOINT], dir, sizeof dir);
    if (st != MXP_OK) return cli_file_error("export", st);
    if ((rc = check_not_checkpoint_file(out, dir))) return rc;
    mxp_model_t *m = NULL;
    mxp_checkpoint_meta meta;
    st = mxp_checkpoint_load(dir, &m, &meta);
    if (st != MXP_OK) return cli_file_error("export", st);
    for (int i = 0; i < m->n_params; i++)
        if (!weights_f32(m->params[i])) { /* the loader's contract says fp32; make sure */
            mxp_model_free(m);
            return cli_usage_error("export", "%s: weights are not fp32 after loading", dir);
        }
    rc = check_range(m, dt, dtype_name);
    if (rc == 0) rc = write_export(out, m, &meta, dir, dt, dtype_name);
    const int n_params = m->n_params;
    const int64_t numel = mxp_model_numel(m);
    mxp_model_free(m);
    if (rc) return rc;
    struct stat sb;
    const long long bytes = stat(out, &sb) == 0 ? (long long)sb.st_size : -1;
    printf("exported %d tensors, %lld parameters in %s, %lld bytes to %s (from %s, trained in "
           "%s)\n",
           n_params, (long long)numel, dtype_name, bytes, out, dir, meta.mixed_precision);
    return CLI_EXIT_OK;
}
