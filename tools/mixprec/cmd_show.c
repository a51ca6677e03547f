/*
 * cmd_show.c - `mixprec show`: what a safetensors file holds (each tensor's
 * name, dtype, shape, elements and bytes, the totals, the __metadata__ pairs),
 * or what a checkpoint directory holds (config.json's summary and its two
 * safetensors files). It reads headers only; no tensor data is loaded.
 */
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const cli_opt opts[] = {
    {"--json", NULL, "one JSON object per line (see below) instead of the table"},
};
enum { NOPTS = sizeof opts / sizeof opts[0] };

/* `mixprec help show`: the usage, the options, the JSON records, the exit statuses. */
void help_show(FILE *out) {
    fprintf(out,
            "usage: mixprec show FILE.safetensors [--json]\n"
            "       mixprec show DIR [--json]\n"
            "\n"
            "List the tensors of a safetensors file (any writer's: mixprec export, a checkpoint,\n"
            "Python's safetensors): name, dtype, shape, elements and bytes, in header order;\n"
            "then the totals and the __metadata__ pairs. Only the header is read.\n"
            "DIR is a checkpoint directory or a training output directory (its newest\n"
            "checkpoint-N is shown): config.json's model, precision, format and version, then\n"
            "model.safetensors and, when present, training_state.safetensors as above.\n"
            "\n"
            "options:\n");
    cli_print_opts(out, opts, NOPTS);
    cli_print_opts(out, cli_global_opts, cli_nglobal_opts);
    fprintf(out, "\n--json writes one object per line (JSON lines), each with a \"kind\":\n"
                 "  checkpoint  (DIR only, first) path, format, mixprec_version, model {name,\n"
                 "              H, W, C, n_classes, hidden1, hidden2, channels1, channels2,\n"
                 "              dropout}, mixed_precision, master_weights\n"
                 "  tensor      (one per tensor) file, name, dtype, shape [..], numel, bytes,\n"
                 "              data_offsets [begin, end]\n"
                 "  file        (after its tensors) file, tensors, numel, bytes, file_bytes,\n"
                 "              metadata {key: value}\n"
                 "dtypes are spelled as in the file: F32, F16, BF16.\n"
                 "\n"
                 "exit status: 0 listed; 2 bad command line, no such file, or a file that is not\n"
                 "valid safetensors (one line saying what is wrong); 1 out of memory.\n"
                 "\n"
                 "example: mixprec show model-bf16.safetensors\n"
                 "         mixprec show runs/mlp --json\n");
}

/* ---- what is shown ------------------------------------------------------ */

/* The dtype as the safetensors format spells it. */
static const char *st_dtype(mxp_dtype dt) {
    switch (dt) {
    case MXP_DTYPE_F32: return "F32";
    case MXP_DTYPE_F16: return "F16";
    case MXP_DTYPE_BF16: return "BF16";
    default: return "?";
    }
}

/* Elements of a tensor of the file (1 for a scalar); the library checked that the
 * product fits when it opened the file. */
static int64_t info_numel(const mxp_st_info *in) {
    int64_t n = 1;
    for (int d = 0; d < in->ndim; d++) n *= in->shape[d];
    return n;
}

/* "[64, 784]" ("[]" for a scalar) into buf. */
static const char *shape_text(char *buf, size_t size, const mxp_st_info *in) {
    size_t j = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < in->ndim && j < size; d++)
        j += (size_t)snprintf(buf + j, size - j, "%s%lld", d ? ", " : "", (long long)in->shape[d]);
    if (j < size) snprintf(buf + j, size - j, "]");
    return buf;
}

/* s on out with control characters shown as '?', so each entry stays on one line
 * (names and metadata may hold any UTF-8, newlines included). */
static void put_text(FILE *out, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, out);
}

/* s as a JSON string. Unlike json_str (for paths from argv, which may be any bytes),
 * non-ASCII bytes pass through: the library accepted the header only as valid UTF-8
 * JSON, so names and metadata are valid UTF-8 and must stay as written. */
static void put_json(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

/* The totals of one file. */
typedef struct totals {
    int tensors;
    int64_t numel;        /* elements over all tensors */
    uint64_t bytes;       /* tensor data */
    long long file_bytes; /* the whole file, -1 if stat fails */
} totals;

/* The totals of open file f, whose path is path (for its size on disk). */
static totals file_totals(const mxp_safetensors_t *f, const char *path) {
    totals t = {mxp_safetensors_count(f), 0, 0, -1};
    for (int i = 0; i < t.tensors; i++) {
        const mxp_st_info *in = mxp_safetensors_info(f, i);
        t.numel += info_numel(in);
        t.bytes += in->end - in->begin;
    }
    struct stat sb;
    if (stat(path, &sb) == 0) t.file_bytes = (long long)sb.st_size;
    return t;
}

/* The table of one open file: a heading, a row per tensor in header order, the
 * totals, the metadata pairs. indent: "" for a lone file, "  " inside a checkpoint. */
static void print_file_text(const mxp_safetensors_t *f, const char *path, const char *indent) {
    const totals t = file_totals(f, path);
    int wname = 4, wshape = 5;
    char shape[MXP_MAX_DIMS * 22 + 4];
    for (int i = 0; i < t.tensors; i++) {
        const mxp_st_info *in = mxp_safetensors_info(f, i);
        const int n = (int)strlen(in->name), s = (int)strlen(shape_text(shape, sizeof shape, in));
        if (n > wname) wname = n < 60 ? n : 60; /* a longer name just pushes its row out */
        if (s > wshape) wshape = s;
    }
    printf("%s", indent);
    put_text(stdout, path);
    printf(": %d tensor%s\n", t.tensors, t.tensors == 1 ? "" : "s");
    if (t.tensors)
        printf("%s  %-*s  %-5s %-*s %12s %14s\n", indent, wname, "name", "dtype", wshape, "shape",
               "numel", "bytes");
    for (int i = 0; i < t.tensors; i++) {
        const mxp_st_info *in = mxp_safetensors_info(f, i);
        printf("%s  ", indent);
        put_text(stdout, in->name);
        const int pad = wname - (int)strlen(in->name);
        printf("%*s  %-5s %-*s %12lld %14llu\n", pad > 0 ? pad : 0, "", st_dtype(in->dtype), wshape,
               shape_text(shape, sizeof shape, in), (long long)info_numel(in),
               (unsigned long long)(in->end - in->begin));
    }
    printf("%stotal: %d tensor%s, %lld elements, %llu bytes of tensor data", indent, t.tensors,
           t.tensors == 1 ? "" : "s", (long long)t.numel, (unsigned long long)t.bytes);
    if (t.file_bytes >= 0) printf(" (file %lld bytes)", t.file_bytes);
    printf("\n");
    const int nmeta = mxp_safetensors_meta_count(f);
    printf("%smetadata:%s\n", indent, nmeta ? "" : " (none)");
    for (int i = 0; i < nmeta; i++) {
        const char *v, *k = mxp_safetensors_meta_at(f, i, &v);
        printf("%s  ", indent);
        put_text(stdout, k);
        printf(": ");
        put_text(stdout, v);
        printf("\n");
    }
}

/* The JSON lines of one open file: a "tensor" object per tensor, then its "file" object. */
static void print_file_json(const mxp_safetensors_t *f, const char *path) {
    const totals t = file_totals(f, path);
    for (int i = 0; i < t.tensors; i++) {
        const mxp_st_info *in = mxp_safetensors_info(f, i);
        printf("{\"kind\":\"tensor\",\"file\":");
        json_str(stdout, path);
        printf(",\"name\":");
        put_json(stdout, in->name);
        printf(",\"dtype\":\"%s\",\"shape\":[", st_dtype(in->dtype));
        for (int d = 0; d < in->ndim; d++) printf("%s%lld", d ? "," : "", (long long)in->shape[d]);
        printf("],\"numel\":%lld,\"bytes\":%llu,\"data_offsets\":[%llu,%llu]}\n",
               (long long)info_numel(in), (unsigned long long)(in->end - in->begin),
               (unsigned long long)in->begin, (unsigned long long)in->end);
    }
    printf("{\"kind\":\"file\",\"file\":");
    json_str(stdout, path);
    printf(",\"tensors\":%d,\"numel\":%lld,\"bytes\":%llu,\"file_bytes\":", t.tensors,
           (long long)t.numel, (unsigned long long)t.bytes);
    if (t.file_bytes >= 0)
        printf("%lld", t.file_bytes);
    else
        printf("null");
    printf(",\"metadata\":{");
    for (int i = 0; i < mxp_safetensors_meta_count(f); i++) {
        const char *v, *k = mxp_safetensors_meta_at(f, i, &v);
        printf("%s", i ? "," : "");
        put_json(stdout, k);
        printf(":");
        put_json(stdout, v);
    }
    printf("}}\n");
}

/* ---- a checkpoint directory --------------------------------------------- */

/* config.json's summary: the format and version that wrote it, the model and
 * its sizes, the precision it was trained in. */
static void print_config(const char *dir, const mxp_checkpoint_meta *meta,
                         const mxp_model_config *mc, int json) {
    const int cnn = strcmp(mc->name, "cnn") == 0;
    if (json) {
        printf("{\"kind\":\"checkpoint\",\"path\":");
        json_str(stdout, dir);
        printf(",\"format\":%d,\"mixprec_version\":", meta->format);
        put_json(stdout, meta->mixprec_version);
        printf(",\"model\":{\"name\":");
        put_json(stdout, mc->name);
        printf(",\"H\":%lld,\"W\":%lld,\"C\":%lld,\"n_classes\":%d,\"hidden1\":%lld,"
               "\"hidden2\":%lld,\"channels1\":%lld,\"channels2\":%lld,\"dropout\":",
               (long long)mc->H, (long long)mc->W, (long long)mc->C, mc->n_classes,
               (long long)mc->hidden1, (long long)mc->hidden2, (long long)mc->channels1,
               (long long)mc->channels2);
        json_num(stdout, mc->dropout);
        printf("},\"mixed_precision\":");
        put_json(stdout, meta->mixed_precision);
        printf(",\"master_weights\":%s}\n", meta->master_weights ? "true" : "false");
        return;
    }
    printf("checkpoint ");
    put_text(stdout, dir);
    printf("\n  format %d, written by mixprec ", meta->format);
    put_text(stdout, meta->mixprec_version);
    printf("\n  model ");
    put_text(stdout, mc->name);
    printf(": input %lldx%lldx%lld, %d classes", (long long)mc->H, (long long)mc->W,
           (long long)mc->C, mc->n_classes);
    if (cnn)
        printf(", channels %lld/%lld, fc %lld", (long long)mc->channels1, (long long)mc->channels2,
               (long long)mc->hidden1);
    else
        printf(", hidden %lld/%lld", (long long)mc->hidden1, (long long)mc->hidden2);
    printf(", dropout %g\n  trained in ", (double)mc->dropout);
    put_text(stdout, meta->mixed_precision);
    printf("%s\n", strcmp(meta->mixed_precision, "no") == 0 ? " (fp32)"
                   : meta->master_weights                   ? " with fp32 master weights"
                                                            : " without master weights");
}

/* Open dir/name into *f (path gets dir/name; it has room: dir is at most 4095
 * bytes). A missing optional file leaves *f NULL and succeeds. */
static mxp_status open_in(const char *dir, const char *name, int optional, char *path, size_t size,
                          mxp_safetensors_t **f) {
    *f = NULL;
    snprintf(path, size, "%s/%s", dir, name);
    struct stat sb;
    if (optional && stat(path, &sb) != 0) return MXP_OK;
    return mxp_safetensors_open(f, path);
}

/* Everything is opened and checked before anything is printed, so a bad file
 * gives its one error line and no half listing. */
static int show_checkpoint(const char *arg, int json) {
    char dir[4096], cfg[4160], model[4160], state[4160];
    mxp_status st = mxp_checkpoint_find(arg, dir, sizeof dir);
    if (st != MXP_OK) return cli_file_error("show", st);
    mxp_checkpoint_meta meta;
    mxp_model_config mc;
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    st = mxp_checkpoint_read_config(cfg, &meta, &mc);
    if (st != MXP_OK) return cli_file_error("show", st);
    mxp_safetensors_t *fm = NULL, *fs = NULL;
    st = open_in(dir, "model.safetensors", 0, model, sizeof model, &fm);
    if (st == MXP_OK) st = open_in(dir, "training_state.safetensors", 1, state, sizeof state, &fs);
    if (st != MXP_OK) {
        mxp_safetensors_close(fm);
        return cli_file_error("show", st);
    }
    print_config(dir, &meta, &mc, json);
    if (json) {
        print_file_json(fm, model);
        if (fs) print_file_json(fs, state);
    } else {
        print_file_text(fm, model, "  ");
        if (fs)
            print_file_text(fs, state, "  ");
        else
            printf("  %s/training_state.safetensors: absent (weights only: eval and export work, "
                   "resuming does not)\n",
                   dir);
    }
    mxp_safetensors_close(fm);
    mxp_safetensors_close(fs);
    return CLI_EXIT_OK;
}

/* `mixprec show PATH [--json]`: a directory is shown as a checkpoint, anything else as a
 * safetensors file. Returns the exit status (0, or 2/1 after one line on stderr). */
int cmd_show(int argc, char **argv) {
    const char *vals[NOPTS];
    char **pos = argv;
    int npos = 0;
    int rc = cli_parse("show", argc, argv, opts, NOPTS, vals, pos, &npos);
    if (rc) return rc;
    if (npos == 0)
        return cli_usage_error("show", "needs a FILE.safetensors or a checkpoint directory "
                                       "(see mixprec help show)");
    if (npos > 1)
        return cli_usage_error("show", "expects one file or directory, got %d (the second is '%s')",
                               npos, cli_quote(pos[1]));
    const int json = vals[0] != NULL;
    struct stat sb;
    if (stat(pos[0], &sb) == 0 && S_ISDIR(sb.st_mode)) return show_checkpoint(pos[0], json);
    mxp_safetensors_t *f;
    mxp_status st = mxp_safetensors_open(&f, pos[0]); /* also says when it does not exist */
    if (st != MXP_OK) return cli_file_error("show", st);
    if (json)
        print_file_json(f, pos[0]);
    else
        print_file_text(f, pos[0], "");
    mxp_safetensors_close(f);
    return CLI_EXIT_OK;
}
