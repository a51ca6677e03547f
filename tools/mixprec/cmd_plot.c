/*
 * cmd_plot.c - `mixprec plot`: one PNG of one or more training logs (mixprec train --log):
 * loss and loss scale per step and, when the logs hold numerics events, the weight-gradient
 * exponent histogram against fp16's and bf16's ranges and the share that fp16 flushes to zero.
 * gnuplot draws it from a script and data files written to a temporary directory; this file
 * reads logs and writes text. It encodes no image itself and never changes a log.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "cli.h"

extern char **environ;

static const cli_opt opts[] = {
    {"--output", "FILE.png", "the picture to write (required; -o FILE.png is the same)"},
    {"--title", "TEXT", "a title over the panels (default: none)"},
    {"--size", "WxH", "pixels, 200..8000 each (default 1280x960; 1280x720 with 2 panels)"},
};
enum { OPT_OUTPUT, OPT_TITLE, OPT_SIZE, NOPTS };
_Static_assert(sizeof opts / sizeof opts[0] == NOPTS, "one enum value per option");

/* `mixprec help plot`: the usage, the panels, the options, the exit statuses. */
void help_plot(FILE *out) {
    fprintf(out,
            "usage: mixprec plot LOG.jsonl [LOG2.jsonl ...] -o FILE.png [--title TEXT] "
            "[--size WxH]\n"
            "\n"
            "Draw the metrics logs of mixprec train --log as one PNG (with gnuplot), one line per\n"
            "log, so several logs compare precision modes. Panels:\n"
            "  1 training loss per step (lines) and eval/validation loss (points)\n"
            "  2 loss scale per step (log2 axis); circles mark skipped (overflowed) steps\n"
            "and, when a log holds numerics events of kind grad (weight gradients):\n"
            "  3 histogram of log2|g| at the last step with them (share of the values, log\n"
            "    axis; dashed: the loss-scaled gradients), over shaded bands of fp16's range:\n"
            "    below 2^-24 flushes to 0, [2^-24, 2^-14) subnormal, [2^-14, 65504] normal;\n"
            "    the strip on top is bf16's normal range [2^-126, ~2^128)\n"
            "  4 percent of weight-gradient values that fp16 would flush to zero, per step\n"
            "Each log is named by its summary's mixed_precision (and \"master weights off\")\n"
            "and its file name. A resumed run's log (a resume event, then more steps) is one\n"
            "series; steps the resume replays replace the ones logged before it.\n"
            "\n"
            "options:\n");
    cli_print_opts(out, opts, NOPTS);
    cli_print_opts(out, cli_global_opts, cli_nglobal_opts);
    fprintf(out, "\n"
                 "Needs gnuplot (apt-get install gnuplot-nox). The PNG is written to a temporary\n"
                 "name beside FILE.png and renamed when complete, so a failure leaves nothing.\n"
                 "\n"
                 "exit status: 0 written; 2 bad command line, a missing or malformed log, a log\n"
                 "without step events, or no such output directory; 1 gnuplot missing or failing.\n"
                 "\n"
                 "example: mixprec plot fp32.jsonl bf16.jsonl fp16.jsonl -o compare.png "
                 "--title 'cnn, 3 epochs'\n");
}

/* ---- what is read from a log ------------------------------------------------------------- */

/* floor(log2|x|) of a finite nonzero double lies in [-1074, 1023]; the bins cover them all. */
enum { EXP_MIN = -1100, EXP_MAX = 1100, NBINS = EXP_MAX - EXP_MIN + 1 };

typedef struct step_pt {
    int64_t step;
    double loss, scale; /* NAN where the log has null or nothing */
    int skipped;
} step_pt;

typedef struct eval_pt {
    int64_t step;
    double loss;
} eval_pt;

/* fp16 flush-to-zero of one step's weight gradients, summed over the tensors */
typedef struct flush_pt {
    int64_t step;
    double flushed; /* sum of fp16.underflow * n */
    double n;       /* sum of n */
} flush_pt;

/* The log2|x| histogram of one kind of gradient at one step, summed over its tensors. */
typedef struct hist {
    int64_t step;  /* the step it holds; -1 before any */
    double n;      /* values, zeros and non-finite ones included (the shares' denominator) */
    double *count; /* (NBINS) count[e - EXP_MIN]: values with floor(log2|x|) == e */
    int lo, hi;    /* the bins with a count are within [lo, hi]; lo > hi when none */
} hist;

/* A growing array of elements of one type. */
typedef struct vec {
    void *p;
    size_t n, cap;
} vec;

typedef struct plot_log {
    const char *path;
    char label[200];   /* "fp16, master weights off: run.jsonl" */
    vec steps, evals;  /* step_pt, eval_pt, in step order */
    vec flush;         /* flush_pt */
    hist grad, scaled; /* kinds "grad" and "grad_scaled" */
    int nloss, nscale; /* finite losses and loss scales among steps */
    int nskipped;      /* skipped steps with a finite loss scale */
} plot_log;

/* Room for one more element of `size` bytes; NULL when memory runs out. */
static void *vec_push(vec *v, size_t size) {
    if (v->n == v->cap) {
        const size_t cap = v->cap ? 2 * v->cap : 64;
        void *p = realloc(v->p, cap * size);
        if (!p) return NULL;
        v->p = p;
        v->cap = cap;
    }
    return (char *)v->p + size * v->n++;
}

static void log_free(plot_log *g) {
    free(g->steps.p);
    free(g->evals.p);
    free(g->flush.p);
    free(g->grad.count);
    free(g->scaled.count);
}

/* ---- reading ------------------------------------------------------------------------------ */

/* One error line about a log: "mixprec: plot: PATH:LINE: message" (LINE 0: none). */
static int log_error(const char *path, long line, const char *msg) {
    if (line > 0) return cli_usage_error("plot", "%s:%ld: %s", cli_quote(path), line, msg);
    return cli_usage_error("plot", "%s: %s", cli_quote(path), msg);
}

static int out_of_memory(void) {
    fprintf(stderr, "mixprec: plot: out of memory reading the logs\n");
    return CLI_EXIT_RUNTIME;
}

/* The whole file into *buf (NUL-terminated, *len bytes; the caller frees it). Reading it at
 * once lets the logs be pipes (<(...)) and be read twice. Returns 0, or the exit status after
 * one line. */
static int read_all(const char *path, char **buf, size_t *len) {
    *buf = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        char msg[160];
        snprintf(msg, sizeof msg, "cannot open the log: %s", strerror(errno));
        return log_error(path, 0, msg);
    }
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        n += fread(b + n, 1, cap - n - 1, f);
        if (n < cap - 1) break;
        char *nb = cap <= SIZE_MAX / 2 ? realloc(b, cap * 2) : NULL;
        if (!nb) {
            free(b);
            b = NULL;
            break;
        }
        b = nb;
        cap *= 2;
    }
    const int bad = ferror(f), err = errno;
    fclose(f);
    if (!b) return out_of_memory();
    if (bad) {
        free(b);
        char msg[160];
        snprintf(msg, sizeof msg, "cannot read the log: %s", strerror(err));
        return log_error(path, 0, msg);
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

/* The next line of [*p, end): its start and length (without '\n'); advances *p. 0 at the end. */
static int next_line(const char **p, const char *end, const char **line, size_t *len) {
    if (*p >= end) return 0;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    *line = *p;
    *len = (size_t)((nl ? nl : end) - *p);
    *p = nl ? nl + 1 : end;
    return 1;
}

static int blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* A whole number (an integer, or a real with no fraction) at key; 0 if there is none. */
static int get_int(const json_t *o, const char *key, int64_t *v) {
    const json_t *j = json_object_get(o, key);
    if (json_is_integer(j)) {
        *v = (int64_t)json_integer_value(j);
        return 1;
    }
    const double d = json_is_real(j) ? json_real_value(j) : NAN;
    if (!(d == floor(d) && fabs(d) < 9e18)) return 0;
    *v = (int64_t)d;
    return 1;
}

/* The number at key; NAN when absent, null or not a number. */
static double get_num(const json_t *o, const char *key) {
    const json_t *j = json_object_get(o, key);
    return json_is_number(j) ? json_number_value(j) : NAN;
}

static const char *get_str(const json_t *o, const char *key) {
    return json_string_value(json_object_get(o, key)); /* NULL unless a string */
}

/* Add one tensor's numerics event to h, the histogram of the newest step. An event of an
 * older step than h holds is ignored; a newer one starts h over. 0, or -1 out of memory. */
static int hist_add(hist *h, int64_t step, const json_t *ev) {
    const double n = get_num(ev, "n");
    int64_t lo;
    const json_t *counts = json_object_get(ev, "log2_counts");
    if (!(n >= 0) || !get_int(ev, "log2_lo", &lo) || !json_is_array(counts)) return 0;
    if (!h->count && !(h->count = calloc(NBINS, sizeof *h->count))) return -1;
    if (step < h->step) return 0;
    if (step > h->step) {
        memset(h->count, 0, NBINS * sizeof *h->count);
        h->step = step;
        h->n = 0;
        h->lo = EXP_MAX;
        h->hi = EXP_MIN;
    }
    h->n += n;
    for (size_t i = 0; i < json_array_size(counts); i++) {
        const json_t *c = json_array_get(counts, i);
        const double v = json_is_number(c) ? json_number_value(c) : 0;
        const int64_t e = lo + (int64_t)i;
        if (!(v > 0) || !isfinite(v) || e < EXP_MIN || e > EXP_MAX) continue;
        h->count[e - EXP_MIN] += v;
        if (e < h->lo) h->lo = (int)e;
        if (e > h->hi) h->hi = (int)e;
    }
    return 0;
}

/* One numerics event at `step`: weight gradients feed the flush-to-zero series and the
 * histogram, loss-scaled ones the dashed histogram; other kinds are not plotted. */
static int add_numerics(plot_log *g, int64_t step, const json_t *ev) {
    const char *kind = get_str(ev, "kind");
    if (!kind) return 0;
    if (strcmp(kind, "grad_scaled") == 0) return hist_add(&g->scaled, step, ev);
    if (strcmp(kind, "grad") != 0) return 0;
    const double n = get_num(ev, "n");
    const double u = get_num(json_object_get(ev, "fp16"), "underflow");
    if (n > 0 && isfinite(u)) {
        flush_pt *last = g->flush.n ? (flush_pt *)g->flush.p + g->flush.n - 1 : NULL;
        if (!last || last->step != step) {
            if (!(last = vec_push(&g->flush, sizeof *last))) return -1;
            *last = (flush_pt){step, 0, 0};
        }
        last->flushed += u * n;
        last->n += n;
    }
    return hist_add(&g->grad, step, ev);
}

/* Where each resume event of a log is and the step it went back to. */
typedef struct resume_pt {
    long line;
    int64_t step;
} resume_pt;

/* The resume events of buf[0, len) into *out (*n of them); read_log reads every line after.
 * A line that does not parse is left for read_log to report. 0, or -1 out of
 * memory. */
static int find_resumes(const char *buf, size_t len, resume_pt **out, size_t *n) {
    vec v = {0};
    const char *p = buf, *line;
    size_t ll;
    for (long no = 1; next_line(&p, buf + len, &line, &ll); no++) {
        if (!memmem(line, ll, "resume", 6)) continue; /* most lines are not; skip parsing them */
        json_t *o = json_loadb(line, ll, JSON_DECODE_ANY, NULL);
        const char *ev = get_str(o, "event");
        int64_t step;
        if (ev && strcmp(ev, "resume") == 0 && get_int(o, "step", &step)) {
            resume_pt *r = vec_push(&v, sizeof *r);
            if (!r) {
                json_decref(o);
                free(v.p);
                return -1;
            }
            *r = (resume_pt){no, step};
        }
        json_decref(o);
    }
    /* each one's step becomes the smallest of its own and every later one's: a line is kept
     * only when its step is at most that of every resume after it */
    resume_pt *r = v.p;
    for (size_t i = v.n; i-- > 1;)
        if (r[i].step < r[i - 1].step) r[i - 1].step = r[i].step;
    *out = r;
    *n = v.n;
    return 0;
}

/* Read log g->path into g. Returns 0, or the exit status after one line. */
static int read_log(plot_log *g) {
    char *buf;
    size_t len;
    int rc = read_all(g->path, &buf, &len);
    if (rc) return rc;
    resume_pt *res = NULL;
    size_t nres = 0, ri = 0;
    if (find_resumes(buf, len, &res, &nres) != 0) {
        free(buf);
        return out_of_memory();
    }
    g->grad.step = g->scaled.step = -1;
    g->grad.lo = g->scaled.lo = EXP_MAX;
    g->grad.hi = g->scaled.hi = EXP_MIN;
    char mode[16] = "";
    int master = 1;
    const char *p = buf, *line;
    size_t ll;
    long no = 1;
    for (; rc == 0 && next_line(&p, buf + len, &line, &ll); no++) {
        if (blank(line, ll)) continue;
        json_error_t jerr;
        json_t *o = json_loadb(line, ll, JSON_DECODE_ANY, &jerr);
        if (!json_is_object(o)) {
            char msg[240];
            if (o)
                snprintf(msg, sizeof msg, "not a JSON object (a metrics log has one per line)");
            else
                snprintf(msg, sizeof msg, "not JSON: %s", jerr.text);
            json_decref(o);
            rc = log_error(g->path, no, msg);
            break;
        }
        while (ri < nres && res[ri].line <= no) ri++;
        const int64_t limit = ri < nres ? res[ri].step : INT64_MAX;
        const char *ev = get_str(o, "event");
        const int stepped = ev && (strcmp(ev, "step") == 0 || strcmp(ev, "eval") == 0 ||
                                   strcmp(ev, "numerics") == 0);
        int64_t step = 0;
        if (stepped && !get_int(o, "step", &step)) {
            char msg[120];
            snprintf(msg, sizeof msg, "a \"%s\" event without a whole-number \"step\"", ev);
            rc = log_error(g->path, no, msg);
        } else if (stepped && step > limit) {
            /* a later resume went back before this step: the run after it logs it again */
        } else if (ev && strcmp(ev, "step") == 0) {
            step_pt *s = vec_push(&g->steps, sizeof *s);
            if (!s) rc = out_of_memory();
            if (s) {
                *s = (step_pt){step, get_num(o, "loss"), get_num(o, "loss_scale"),
                               json_is_true(json_object_get(o, "skipped"))};
                if (!isfinite(s->loss)) s->loss = NAN;
                if (!(s->scale > 0) || !isfinite(s->scale)) s->scale = NAN;
                g->nloss += !isnan(s->loss);
                g->nscale += !isnan(s->scale);
                g->nskipped += s->skipped && !isnan(s->scale);
            }
        } else if (ev && strcmp(ev, "eval") == 0) {
            const double loss = get_num(o, "loss");
            eval_pt *e = isfinite(loss) ? vec_push(&g->evals, sizeof *e) : NULL;
            if (isfinite(loss) && !e) rc = out_of_memory();
            if (e) *e = (eval_pt){step, loss};
        } else if (ev && strcmp(ev, "numerics") == 0) {
            if (add_numerics(g, step, o) != 0) rc = out_of_memory();
        } else if (ev && strcmp(ev, "summary") == 0) {
            const char *mp = get_str(o, "mixed_precision");
            if (mp) snprintf(mode, sizeof mode, "%s", mp);
            master = !json_is_false(json_object_get(o, "master_weights"));
        }
        json_decref(o);
    }
    free(res);
    free(buf);
    if (rc) return rc;
    if (g->steps.n == 0)
        return log_error(g->path, 0,
                         "no \"step\" events (is it a log of mixprec train --log FILE.jsonl?)");
    const char *base = strrchr(g->path, '/');
    base = base && base[1] ? base + 1 : g->path;
    const char *name = strcmp(mode, "no") == 0 ? "fp32" : mode;
    if (!*mode)
        snprintf(g->label, sizeof g->label, "%s", base);
    else
        snprintf(g->label, sizeof g->label, "%s%s: %s", name,
                 !master && strcmp(mode, "no") != 0 ? ", master weights off" : "", base);
    return 0;
}

/* ---- the gnuplot script --------------------------------------------------------------------- */

/* One color per log, the same in every panel (a shared legend names them once). */
static const char *const colors[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                     "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"};
enum { NCOLORS = sizeof colors / sizeof colors[0] };

static const char *color(int i) { return colors[i % NCOLORS]; }

/* s as a gnuplot single-quoted string (no escapes there but '' for '); control characters
 * become '?' so the script keeps one command a line. */
static void gp_str(FILE *f, const char *s) {
    fputc('\'', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\'')
            fputs("''", f);
        else
            fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
    }
    fputc('\'', f);
}

/* The path of data file `kind` (a letter: s, k, e, f, g, h) of log i. */
static void data_path(char *path, size_t size, const char *dir, char kind, int i) {
    snprintf(path, size, "%s/%c%d.dat", dir, kind, i);
}

/* One plot command built term by term: "plot A, \ B, \ C". */
typedef struct gp_plot {
    FILE *f;
    const char *dir;
    int terms;
} gp_plot;

/* Start the next term; with kind, the term reads data file kind of log i. */
static void gp_term(gp_plot *p, char kind, int i) {
    fputs(p->terms++ ? ", \\\n     " : "plot ", p->f);
    if (!kind) return;
    char path[4200];
    data_path(path, sizeof path, p->dir, kind, i);
    gp_str(p->f, path);
}

/* End the plot command; a panel with nothing to draw says why (gnuplot refuses a plot without
 * a point, so it draws a curve outside a fixed range). */
static void gp_end(gp_plot *p, const char *why) {
    if (!p->terms) {
        fputs("set label 99 ", p->f);
        gp_str(p->f, why);
        /* [1:2]: a y range that a log axis takes too */
        fputs(" at graph 0.5, 0.5 center\nplot [0:1][1:2] -1 notitle\nunset label 99\n", p->f);
        return;
    }
    fputs("\n", p->f);
}

/* The legend entry of log g: its label, and the skipped steps when there are any. */
static void legend_text(const plot_log *g, char *t, size_t size) {
    if (g->nskipped)
        snprintf(t, size, "%s (%d skipped step%s)", g->label, g->nskipped,
                 g->nskipped == 1 ? "" : "s");
    else
        snprintf(t, size, "%s", g->label);
}

/* Where things go, in gnuplot's screen coordinates (0..1 from the bottom left). */
typedef struct layout {
    int W, H, rows, cols;                            /* pixels; panels */
    double fs;                                       /* font scale: 1 at the default size */
    int key_cols;                                    /* legend entries a row */
    double key_y, key_h;                             /* the legend's top and height */
    double left, right, bottom, top, xspace, yspace; /* the panels' margins and gaps */
} layout;

/* A layout for n logs in W x H pixels, with 4 panels or 2, and a title or none. The sizes are
 * estimates for gnuplot's 10-point Sans at fontscale fs. */
static layout find_layout(const plot_log *logs, int n, int W, int H, int numerics, int titled) {
    layout L = {.W = W, .H = H, .rows = 2, .cols = numerics ? 2 : 1, .key_cols = 1};
    L.fs = fmin(fmax(fmin(W / 1280.0, H / (numerics ? 960.0 : 720.0)), 0.5), 3.0);
    size_t longest = 0;
    char t[300];
    for (int i = 0; i < n; i++) {
        legend_text(&logs[i], t, sizeof t);
        if (strlen(t) > longest) longest = strlen(t);
    }
    const double entry_px = ((double)longest * 6.5 + 50) * L.fs, line_px = 19 * L.fs;
    L.key_cols = (int)fmax(1, fmin(n, floor(0.96 * W / entry_px)));
    const int key_rows = (n + L.key_cols - 1) / L.key_cols;
    const double title_px = titled ? 28 * L.fs : 4;
    L.key_y = 1 - title_px / H;
    L.key_h = (key_rows * line_px + 14 * L.fs) / H;
    L.top = L.key_y - L.key_h - 26 * L.fs / H;
    L.bottom = 48 * L.fs / H;
    L.left = 80 * L.fs / W;
    L.right = 1 - 28 * L.fs / W;
    L.xspace = 105 * L.fs / W;
    L.yspace = 84 * L.fs / H;
    /* so many logs that their legend would leave the panels no room: the legend overlaps */
    const double least = L.bottom + (L.rows - 1) * L.yspace + 0.25;
    if (L.top < least) L.top = least;
    return L;
}

static void put_num(FILE *f, double v) {
    if (isnan(v))
        fputs("NaN", f);
    else
        fprintf(f, "%.9g", v);
}

/* Open data file kind of log i for writing. NULL after one error line. */
static FILE *data_open(const char *dir, char kind, int i) {
    char path[4200];
    data_path(path, sizeof path, dir, kind, i);
    FILE *f = fopen(path, "w");
    if (!f) fprintf(stderr, "mixprec: plot: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

static int data_close(FILE *f, const char *dir) {
    const int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "mixprec: plot: cannot write the data files in %s (disk full?)\n", dir);
        return -1;
    }
    return 0;
}

static int hist_drawn(const hist *h) { return h->count && h->n > 0 && h->lo <= h->hi; }

/* The rows of a histogram for gnuplot's `with steps`: a rise at the first bin, one row per
 * bin from lo to hi (a bin with no count at floor_share, below the y range, so the outline
 * drops to the axis), and the fall after the last. Shares are of h->n. */
static void write_hist(FILE *f, const hist *h, double floor_share) {
    fprintf(f, "%d %g\n", h->lo, floor_share);
    for (int e = h->lo; e <= h->hi; e++) {
        const double c = h->count[e - EXP_MIN];
        fprintf(f, "%d %.9g\n", e, c > 0 ? c / h->n : floor_share);
    }
    fprintf(f, "%d %g\n", h->hi + 1, floor_share);
}

/* What the panels need from every log together. */
typedef struct extent {
    int numerics;              /* some log has a gradient histogram or flush series: 4 panels */
    double scale_lo, scale_hi; /* finite loss scales */
    int exp_lo, exp_hi;        /* histogram bins with a count */
    double share_lo;           /* smallest nonzero histogram share */
} extent;

static extent find_extent(const plot_log *logs, int n) {
    extent x = {0, INFINITY, -INFINITY, EXP_MAX, EXP_MIN, 1};
    for (int i = 0; i < n; i++) {
        const plot_log *g = &logs[i];
        const step_pt *s = g->steps.p;
        for (size_t k = 0; k < g->steps.n; k++)
            if (!isnan(s[k].scale)) {
                x.scale_lo = fmin(x.scale_lo, s[k].scale);
                x.scale_hi = fmax(x.scale_hi, s[k].scale);
            }
        const hist *hs[2] = {&g->grad, &g->scaled};
        for (int j = 0; j < 2; j++) {
            const hist *h = hs[j];
            if (!hist_drawn(h)) continue;
            x.numerics = 1;
            if (h->lo < x.exp_lo) x.exp_lo = h->lo;
            if (h->hi > x.exp_hi) x.exp_hi = h->hi;
            for (int e = h->lo; e <= h->hi; e++)
                if (h->count[e - EXP_MIN] > 0)
                    x.share_lo = fmin(x.share_lo, h->count[e - EXP_MIN] / h->n);
        }
        if (g->flush.n) x.numerics = 1;
    }
    return x;
}

/* Put the next panel, number k (0-based, row by row), in its place of the layout. */
static void gp_place(FILE *f, const layout *L, int k) {
    const double pw = (L->right - L->left - (L->cols - 1) * L->xspace) / L->cols;
    const double ph = (L->top - L->bottom - (L->rows - 1) * L->yspace) / L->rows;
    const double l = L->left + (k % L->cols) * (pw + L->xspace);
    const double t = L->top - (double)(k / L->cols) * (ph + L->yspace);
    fprintf(f,
            "set lmargin at screen %.4f\nset rmargin at screen %.4f\n"
            "set tmargin at screen %.4f\nset bmargin at screen %.4f\n",
            l, l + pw, t, t - ph);
}

/* The legend of the whole figure, one entry per log in its color, across the top: a plot of
 * nothing as wide as the picture (a key is never wider than its graph). */
static void gp_legend(FILE *f, const plot_log *logs, int n, const layout *L) {
    fprintf(f,
            "set lmargin at screen 0.01\nset rmargin at screen 0.99\n"
            "set tmargin at screen %.4f\nset bmargin at screen %.4f\n"
            "unset border\nunset tics\nunset xlabel\nunset ylabel\nunset title\nunset grid\n"
            "set key inside center top horizontal reverse Left maxcols %d\n"
            "plot [0:1][0:1] -1 notitle",
            L->key_y, L->key_y - L->key_h, L->key_cols);
    for (int i = 0; i < n; i++) {
        char t[300];
        legend_text(&logs[i], t, sizeof t);
        fprintf(f, ", \\\n     keyentry with lines lw 2 lc rgb '%s' title ", color(i));
        gp_str(f, t);
    }
    fputs("\nunset key\nset border\nset tics\nset grid\n", f);
}

/* Panel 1: training loss per step (lines), eval loss per eval (points joined by a dashed
 * line). */
static void panel_loss(FILE *f, const char *dir, const plot_log *logs, int n) {
    fputs("set title 'training loss (lines), eval loss (points)'\n"
          "set xlabel 'step'\nset ylabel 'loss'\n",
          f);
    gp_plot p = {f, dir, 0};
    for (int i = 0; i < n; i++) {
        const plot_log *g = &logs[i];
        if (g->nloss) {
            gp_term(&p, 's', i);
            fprintf(f, " using 1:2 with %s lw 1.5 lc rgb '%s' notitle",
                    g->nloss > 1 ? "lines" : "points pt 7", color(i));
        }
        if (g->evals.n) {
            gp_term(&p, 'e', i);
            fprintf(f, " using 1:2 with linespoints pt 7 ps 0.8 lw 1 dt 2 lc rgb '%s' notitle",
                    color(i));
        }
    }
    gp_end(&p, "no finite loss in these logs");
}

/* Panel 2: the loss scale on a log2 axis, skipped steps circled. */
static void panel_scale(FILE *f, const char *dir, const plot_log *logs, int n, const extent *x) {
    fputs("set title 'loss scale (circles: skipped steps)'\n"
          "set xlabel 'step'\nset ylabel 'loss scale'\n",
          f);
    gp_plot p = {f, dir, 0};
    if (isfinite(x->scale_lo)) {
        /* a power of two either side, so a constant scale (bf16, fp32: 1) still has a range */
        fprintf(f, "set logscale y 2\nset format y '2^%%L'\nset yrange [%.17g:%.17g]\n",
                exp2(floor(log2(x->scale_lo)) - 1), exp2(ceil(log2(x->scale_hi)) + 1));
        for (int i = 0; i < n; i++) {
            const plot_log *g = &logs[i];
            if (g->nscale) {
                gp_term(&p, 's', i);
                fprintf(f, " using 1:3 with %s lw 1.5 lc rgb '%s' notitle",
                        g->nscale > 1 ? "lines" : "points pt 7", color(i));
            }
            if (g->nskipped) {
                gp_term(&p, 'k', i);
                fprintf(f, " using 1:2 with points pt 6 ps 1.3 lw 1.5 lc rgb '%s' notitle",
                        color(i));
            }
        }
    }
    gp_end(&p, "no loss scale in these logs");
    fputs("unset logscale y\nset format y '%g'\nset yrange [*:*]\n", f);
}

/* A band of the histogram panel: x from a to b (axis units, cut to [xlo, xhi]), y from graph
 * y0 to y1, with a label: at the bottom, or upright in the middle when the band is narrow. */
static void gp_band(FILE *f, int id, double a, double b, double xlo, double xhi, double y0,
                    double y1, const char *rgb, const char *text) {
    a = fmax(a, xlo);
    b = fmin(b, xhi);
    if (a >= b) return;
    fprintf(f,
            "set object %d rect from first %g, graph %g to first %g, graph %g behind "
            "fc rgb '%s' fs solid 1.0 noborder\n",
            id, a, y0, b, y1, rgb);
    const int upright = (b - a) < 0.1 * (xhi - xlo);
    const int strip = y1 - y0 < 0.2;
    fprintf(f, "set label %d ", id);
    gp_str(f, text);
    fprintf(f, " at first %g, graph %g center %sfont ',8' tc rgb '#505050' front\n", 0.5 * (a + b),
            strip     ? 0.5 * (y0 + y1)
            : upright ? 0.5 * (y0 + y1)
                      : y0 + 0.035,
            upright && !strip ? "rotate by 90 " : "");
}

/* Panel 3: the gradient values of the last step with numerics against fp16's and bf16's
 * ranges (shares on a log axis from ylo to 1). */
static void panel_hist(FILE *f, const char *dir, const plot_log *logs, int n, const extent *x,
                       double ylo) {
    /* all of fp16's range, and a little either side of the data */
    const int xlo = (x->exp_lo < -28 ? x->exp_lo : -28) - 1;
    const int xhi = (x->exp_hi + 1 > 18 ? x->exp_hi + 1 : 18) + 1;
    /* the step each histogram is of, once when they agree */
    char steps[160] = "";
    size_t len = 0;
    int64_t first = -1;
    int same = 1;
    for (int i = 0; i < n; i++) {
        const hist *h = hist_drawn(&logs[i].grad) ? &logs[i].grad : &logs[i].scaled;
        if (!hist_drawn(h)) continue;
        if (first < 0) first = h->step;
        same &= h->step == first;
        if (len < sizeof steps - 24)
            len += (size_t)snprintf(steps + len, sizeof steps - len, "%s%lld", len ? ", " : "",
                                    (long long)h->step);
    }
    fputs("set xlabel 'log2 |g|   (bin e: 2^e <= |g| < 2^(e+1))'\n"
          "set ylabel 'share of the values'\n",
          f);
    if (first < 0) { /* flush-to-zero fractions without histograms */
        fputs("set title 'gradient exponents'\n", f);
        gp_plot p = {f, dir, 0};
        gp_end(&p, "no log2_counts in the numerics events of kind grad");
        return;
    }
    if (same) snprintf(steps, sizeof steps, "%lld", (long long)first);
    fprintf(f, "set title 'gradient exponents at step%s %s (dashed: loss-scaled)'\n",
            same ? "" : "s", steps);
    fprintf(f, "set logscale y 10\nset format y '10^%%L'\nset xrange [%d:%d]\nset yrange [%g:1]\n",
            xlo, xhi, ylo);
    /* fp16 (1-5-10): 0 below 2^-24 (half of that rounds up), subnormal [2^-24, 2^-14), normal
     * to 65504 (inf from 65520, in the bin of 2^15); bf16 (1-8-7): normal from 2^-126 to
     * (2 - 2^-7) 2^127, just under 2^128, subnormal down to 2^-133 */
    gp_band(f, 1, xlo, -24, xlo, xhi, 0, 0.9, "#f6d5d1", "fp16: 0");
    gp_band(f, 2, -24, -14, xlo, xhi, 0, 0.9, "#fbe7c6", "fp16 subnormal");
    gp_band(f, 3, -14, 16, xlo, xhi, 0, 0.9, "#dcefd9", "fp16 normal (2^-14 .. 65504)");
    gp_band(f, 4, 16, xhi, xlo, xhi, 0, 0.9, "#f6d5d1", "fp16: inf");
    gp_band(f, 5, xlo, -126, xlo, xhi, 0.9, 1, "#e3e3e3", "bf16: subnormal or 0");
    gp_band(f, 6, -126, 128, xlo, xhi, 0.9, 1, "#d4e3f3", "bf16 normal (2^-126 .. ~2^128)");
    gp_band(f, 7, 128, xhi, xlo, xhi, 0.9, 1, "#e3e3e3", "bf16: inf");
    gp_plot p = {f, dir, 0};
    for (int i = 0; i < n; i++) {
        const plot_log *g = &logs[i];
        if (hist_drawn(&g->grad)) {
            gp_term(&p, 'g', i);
            fprintf(f, " using 1:2 with steps lw 2 lc rgb '%s' notitle", color(i));
        }
        if (hist_drawn(&g->scaled)) {
            gp_term(&p, 'h', i);
            fprintf(f, " using 1:2 with steps lw 1.5 dt 2 lc rgb '%s' notitle", color(i));
        }
    }
    gp_end(&p, "no gradient histograms in these logs");
    fputs("unset object\nunset label\nunset logscale y\nset format y '%g'\n"
          "set xrange [*:*]\nset yrange [*:*]\n",
          f);
}

/* Panel 4: percent of the weight-gradient values that fp16 flushes to zero, per step. */
static void panel_flush(FILE *f, const char *dir, const plot_log *logs, int n) {
    fputs("set title 'weight-gradient values that fp16 would flush to zero'\n"
          "set xlabel 'step'\nset ylabel '% of the values'\nset yrange [0:*]\n",
          f);
    gp_plot p = {f, dir, 0};
    for (int i = 0; i < n; i++) {
        if (!logs[i].flush.n) continue;
        gp_term(&p, 'f', i);
        fprintf(f, " using 1:2 with linespoints pt 7 ps 0.6 lw 1.5 lc rgb '%s' notitle", color(i));
    }
    gp_end(&p, "no numerics events of kind grad with fp16 fractions");
    fputs("set yrange [*:*]\n", f);
}

/* The data files of log i into dir. 0, or -1 after one error line. */
static int write_data(const char *dir, const plot_log *g, int i, double floor_share) {
    FILE *f = data_open(dir, 's', i);
    if (!f) return -1;
    const step_pt *s = g->steps.p;
    for (size_t k = 0; k < g->steps.n; k++) {
        fprintf(f, "%lld ", (long long)s[k].step);
        put_num(f, s[k].loss);
        fputc(' ', f);
        put_num(f, s[k].scale);
        fputc('\n', f);
    }
    if (data_close(f, dir)) return -1;
    if (g->nskipped) {
        if (!(f = data_open(dir, 'k', i))) return -1;
        for (size_t k = 0; k < g->steps.n; k++)
            if (s[k].skipped && !isnan(s[k].scale))
                fprintf(f, "%lld %.9g\n", (long long)s[k].step, s[k].scale);
        if (data_close(f, dir)) return -1;
    }
    if (g->evals.n) {
        if (!(f = data_open(dir, 'e', i))) return -1;
        const eval_pt *e = g->evals.p;
        for (size_t k = 0; k < g->evals.n; k++)
            fprintf(f, "%lld %.9g\n", (long long)e[k].step, e[k].loss);
        if (data_close(f, dir)) return -1;
    }
    if (g->flush.n) {
        if (!(f = data_open(dir, 'f', i))) return -1;
        const flush_pt *u = g->flush.p;
        for (size_t k = 0; k < g->flush.n; k++)
            fprintf(f, "%lld %.9g\n", (long long)u[k].step, 100.0 * u[k].flushed / u[k].n);
        if (data_close(f, dir)) return -1;
    }
    const hist *hs[2] = {&g->grad, &g->scaled};
    for (int j = 0; j < 2; j++) {
        if (!hist_drawn(hs[j])) continue;
        if (!(f = data_open(dir, j ? 'h' : 'g', i))) return -1;
        write_hist(f, hs[j], floor_share);
        if (data_close(f, dir)) return -1;
    }
    return 0;
}

/* The data files and the script (dir/plot.gp) that draws them into png_tmp, W x H pixels.
 * 0, or -1 after one error line. */
static int write_plot(const char *dir, const char *png_tmp, const plot_log *logs, int n,
                      const extent *x, int W, int H, const char *title) {
    /* the histogram's y range: from a power of ten below half the smallest share (so its bin
     * stands clear of the axis), and at least three decades */
    const double ylo = x->numerics ? fmin(pow(10, floor(log10(x->share_lo / 2))), 1e-3) : 1e-6;
    for (int i = 0; i < n; i++)
        if (write_data(dir, &logs[i], i, ylo / 100) != 0) return -1;
    const layout L = find_layout(logs, n, W, H, x->numerics, title && *title);
    char path[4200];
    snprintf(path, sizeof path, "%s/plot.gp", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "mixprec: plot: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    /* pngcairo (antialiased) where this gnuplot has it, else libgd's png; noenhanced: file
     * names and titles show as written (no ^ _ @ markup) */
    fprintf(f,
            "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
            "    set terminal pngcairo size %d,%d noenhanced font 'Sans,10' fontscale %.3g\n"
            "} else {\n"
            "    set terminal png size %d,%d noenhanced\n"
            "}\n"
            "set output ",
            W, H, L.fs, W, H);
    gp_str(f, png_tmp);
    fputs("\nset encoding utf8\nset grid lc rgb '#d8d8d8'\nset key samplen 2 spacing 1.1\n", f);
    fputs("set multiplot", f);
    if (title && *title) {
        fputs(" title ", f);
        gp_str(f, title);
        fputs(" font ',13'", f);
    }
    fputs("\n", f);
    gp_legend(f, logs, n, &L);
    gp_place(f, &L, 0);
    panel_loss(f, dir, logs, n);
    gp_place(f, &L, 1);
    panel_scale(f, dir, logs, n, x);
    if (x->numerics) {
        gp_place(f, &L, 2);
        panel_hist(f, dir, logs, n, x, ylo);
        gp_place(f, &L, 3);
        panel_flush(f, dir, logs, n);
    }
    fputs("unset multiplot\nunset output\n", f);
    return data_close(f, dir);
}

/* ---- running gnuplot ------------------------------------------------------------------------ */

/* SIGINT, SIGTERM or SIGHUP that arrived while temporary files existed: it is acted on (by
 * raising it again) once they are removed. */
static volatile sig_atomic_t stop_signal;

static void on_stop(int sig) { stop_signal = sig; }

/* The gnuplot on PATH into path (room for size bytes); 0 if there is none. */
static int find_gnuplot(char *path, size_t size) {
    const char *env = getenv("PATH");
    char def[256];
    if (!env) {
        if (confstr(_CS_PATH, def, sizeof def) == 0) snprintf(def, sizeof def, "/bin:/usr/bin");
        env = def;
    }
    for (const char *p = env;;) {
        const char *colon = strchr(p, ':');
        const size_t len = colon ? (size_t)(colon - p) : strlen(p);
        /* an empty entry is the current directory, as for execvp */
        snprintf(path, size, "%.*s%sgnuplot", (int)len, len ? p : "", len ? "/" : "");
        struct stat sb;
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0) return 1;
        if (!colon) return 0;
        p = colon + 1;
    }
}

/* The line of gnuplot's stderr (in file err) that says what went wrong: its first error line
 * ("<script>" line N: message, without the script's temporary name), else its first line that
 * is not blank. Into msg, control characters replaced, at most size - 1 bytes. */
static void gnuplot_error(const char *err, char *msg, size_t size) {
    snprintf(msg, size, "(it printed nothing)");
    FILE *f = fopen(err, "r");
    if (!f) return;
    char line[1024], first[1024] = "";
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        const char *s = line + strspn(line, " \t");
        const char *at = strstr(s, "\" line ");
        if (*s == '"' && at && !strstr(at, ": warning:")) {
            snprintf(first, sizeof first, "%s", at + 2);
            break;
        }
        if (*s && !*first) snprintf(first, sizeof first, "%s", s);
    }
    fclose(f);
    if (!*first || !size) return;
    const size_t n = strnlen(first, size - 1); /* truncated to the room there is */
    memcpy(msg, first, n);
    msg[n] = '\0';
    for (char *p = msg; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
}

/* Run gnuplot on dir/plot.gp, its stderr into dir/gnuplot.err. 0, or 1 after one line. */
static int run_gnuplot(const char *gnuplot, const char *dir) {
    char script[4200], err[4200];
    snprintf(script, sizeof script, "%s/plot.gp", dir);
    snprintf(err, sizeof err, "%s/gnuplot.err", dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    /* -d: no ~/.gnuplot or system init file, so a user's settings cannot change the picture */
    char *argv[] = {(char *)gnuplot, "-d", script, NULL};
    pid_t pid;
    fflush(stdout);
    fflush(stderr);
    const int src = posix_spawn(&pid, gnuplot, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (src != 0) {
        fprintf(stderr, "mixprec: plot: cannot run %s: %s\n", gnuplot, strerror(src));
        return CLI_EXIT_RUNTIME;
    }
    int st = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
        if (stop_signal) kill(pid, SIGTERM); /* a Ctrl-C reached it too; a kill of us alone not */
    if (w == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
    if (stop_signal) return CLI_EXIT_RUNTIME; /* we die of the signal; no message */
    char msg[300];
    gnuplot_error(err, msg, sizeof msg);
    if (w == pid && WIFSIGNALED(st))
        fprintf(stderr, "mixprec: plot: gnuplot was killed by signal %d: %s\n", WTERMSIG(st), msg);
    else
        fprintf(stderr, "mixprec: plot: gnuplot failed (exit status %d): %s\n",
                w == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1, msg);
    return CLI_EXIT_RUNTIME;
}

/* Whether file path starts with the PNG signature and an IHDR of W x H. */
static int png_ok(const char *path, int W, int H) {
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    unsigned char b[24];
    FILE *f = fopen(path, "rb");
    const size_t got = f ? fread(b, 1, sizeof b, f) : 0;
    if (f) fclose(f);
    if (got < sizeof b || memcmp(b, sig, 8) != 0 || memcmp(b + 12, "IHDR", 4) != 0) return 0;
    const unsigned long w =
        (unsigned long)b[16] << 24 | (unsigned long)b[17] << 16 | (unsigned long)b[18] << 8 | b[19];
    const unsigned long h =
        (unsigned long)b[20] << 24 | (unsigned long)b[21] << 16 | (unsigned long)b[22] << 8 | b[23];
    return w == (unsigned long)W && h == (unsigned long)H;
}

/* Remove dir and the plain files in it (it holds only what write_plot and gnuplot made). */
static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (d) {
        const struct dirent *e;
        char path[4400];
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

/* ---- the command ---------------------------------------------------------------------------- */

/* "WxH" (or "WXH") with each in [200, 8000]; 0, or CLI_EXIT_USAGE after one line. */
static int parse_size(const char *s, int *W, int *H) {
    const char *x = strpbrk(s, "xX");
    char w[24];
    unsigned long long a, b;
    if (!x || (size_t)(x - s) >= sizeof w || x == s || !x[1])
        return cli_usage_error(
            "plot", "--size needs WIDTHxHEIGHT in pixels like 1280x960, got '%s'", cli_quote(s));
    snprintf(w, sizeof w, "%.*s", (int)(x - s), s);
    if (cli_parse_count("plot", "--size width", w, 200, 8000, &a) != 0 ||
        cli_parse_count("plot", "--size height", x + 1, 200, 8000, &b) != 0)
        return CLI_EXIT_USAGE;
    *W = (int)a;
    *H = (int)b;
    return 0;
}

/* The directory of path into dir ("." when it names none). */
static void dir_of(const char *path, char *dir, size_t size) {
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, size, ".");
    else if (slash == path)
        snprintf(dir, size, "/");
    else
        snprintf(dir, size, "%.*s", (int)(slash - path), path);
}

/* Check -o before any work: a file name in a directory that exists. 0, or CLI_EXIT_USAGE
 * after one line. */
static int check_output(const char *out) {
    char dir[4096];
    const size_t len = strlen(out);
    if (!len) return cli_usage_error("plot", "-o needs a file name like plot.png");
    if (len >= sizeof dir - 256)
        return cli_usage_error("plot", "-o %s: the path is too long", cli_quote(out));
    struct stat sb;
    if (out[len - 1] == '/' || (stat(out, &sb) == 0 && S_ISDIR(sb.st_mode)))
        return cli_usage_error("plot", "-o %s is a directory; give a file name like plot.png",
                               cli_quote(out));
    dir_of(out, dir, sizeof dir);
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return cli_usage_error("plot", "-o %s: directory %s does not exist", cli_quote(out),
                               cli_quote(dir));
    return 0;
}

/* A fresh temporary name beside out into tmp (the file is made, empty, with the permissions
 * the PNG will have), so the PNG appears whole by rename or not at all. 0, or the exit status
 * after one line. */
static int make_output_tmp(const char *out, char *tmp, size_t size) {
    char dir[4096];
    dir_of(out, dir, sizeof dir);
    const char *base = strrchr(out, '/');
    base = base ? base + 1 : out;
    snprintf(tmp, size, "%s/.%.200s.tmp-XXXXXX", dir, base);
    const int fd = mkstemp(tmp);
    if (fd < 0) {
        fprintf(stderr, "mixprec: plot: cannot write in %s: %s\n", cli_quote(dir), strerror(errno));
        tmp[0] = '\0';
        return CLI_EXIT_USAGE;
    }
    /* mkstemp makes it 0600; the PNG gets what any new file gets (0666 less the umask). A
     * failure leaves 0600, which is still a readable picture. */
    const mode_t mask = umask(0);
    umask(mask);
    (void)fchmod(fd, 0666 & ~mask);
    close(fd);
    return 0;
}

/* Draw the logs into out (W x H) with gnuplot: the picture to a temporary name beside out,
 * renamed when whole; the script and data in a temporary directory, removed afterwards. On
 * SIGINT, SIGTERM or SIGHUP everything temporary is removed first, then the signal takes its
 * course. Returns 0, or the exit status after one line. */
static int draw(const char *gnuplot, const plot_log *logs, int n, const extent *x, const char *out,
                int W, int H, const char *title) {
    static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa = {0}, old[3];
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    for (int k = 0; k < 3; k++) {
        sigaction(sigs[k], NULL, &old[k]);
        if (old[k].sa_handler != SIG_IGN) sigaction(sigs[k], &sa, NULL);
    }
    char tmpdir[4096] = "", png_tmp[4400] = "";
    int rc = make_output_tmp(out, png_tmp, sizeof png_tmp);
    if (rc == 0 && !stop_signal) {
        const char *t = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/mixprec-plot.XXXXXX",
                 t && *t && strlen(t) < 3000 ? t : "/tmp");
        if (!mkdtemp(tmpdir)) {
            fprintf(stderr, "mixprec: plot: cannot make a temporary directory %s: %s\n", tmpdir,
                    strerror(errno));
            tmpdir[0] = '\0';
            rc = CLI_EXIT_RUNTIME;
        }
    }
    if (rc == 0 && !stop_signal && write_plot(tmpdir, png_tmp, logs, n, x, W, H, title) != 0)
        rc = CLI_EXIT_RUNTIME;
    if (rc == 0 && !stop_signal) rc = run_gnuplot(gnuplot, tmpdir);
    if (rc == 0 && !stop_signal && !png_ok(png_tmp, W, H)) {
        fprintf(stderr, "mixprec: plot: gnuplot exited without writing a %d x %d PNG\n", W, H);
        rc = CLI_EXIT_RUNTIME;
    }
    if (rc == 0 && !stop_signal && rename(png_tmp, out) != 0) {
        fprintf(stderr, "mixprec: plot: cannot rename the picture to %s: %s\n", cli_quote(out),
                strerror(errno));
        rc = CLI_EXIT_RUNTIME;
    }
    if (stop_signal) rc = CLI_EXIT_RUNTIME;
    if (rc != 0 && *png_tmp) unlink(png_tmp);
    if (*tmpdir) remove_dir(tmpdir);
    for (int k = 0; k < 3; k++) sigaction(sigs[k], &old[k], NULL);
    if (stop_signal) raise(stop_signal);
    return rc;
}

/* `mixprec plot LOG.jsonl... -o FILE.png [--title TEXT] [--size WxH]`. Returns the exit
 * status (0; 2 or 1 after one line on stderr). */
int cmd_plot(int argc, char **argv) {
    /* -o is --output (cli_parse takes only --long options; "-o" would be a word) */
    for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
        if (strcmp(argv[i], "-o") != 0) continue;
        if (i + 1 == argc) return cli_usage_error("plot", "-o needs a value: -o FILE.png");
        argv[i] = (char *)"--output";
    }
    const char *vals[NOPTS];
    char **pos = argv;
    int npos = 0;
    int rc = cli_parse("plot", argc, argv, opts, NOPTS, vals, pos, &npos);
    if (rc) return rc;
    if (npos <= 0)
        return cli_usage_error("plot", "needs at least one LOG.jsonl (written by mixprec train "
                                       "--log; see mixprec help plot)");
    if (!vals[OPT_OUTPUT])
        return cli_usage_error("plot", "needs -o FILE.png, the picture to write");
    int W = 0, H = 0;
    if (vals[OPT_SIZE] && parse_size(vals[OPT_SIZE], &W, &H) != 0) return CLI_EXIT_USAGE;
    const char *out = vals[OPT_OUTPUT];
    if (check_output(out) != 0) return CLI_EXIT_USAGE;
    struct stat so, sl;
    for (int i = 0; i < npos && stat(out, &so) == 0; i++)
        if (stat(pos[i], &sl) == 0 && sl.st_dev == so.st_dev && sl.st_ino == so.st_ino)
            return cli_usage_error("plot", "-o %s is the log %s; write the picture elsewhere",
                                   cli_quote(out), cli_quote(pos[i]));

    plot_log *logs = calloc((unsigned)npos, sizeof *logs); /* npos > 0 */
    if (!logs) return out_of_memory();
    for (int i = 0; i < npos && rc == 0; i++) {
        logs[i].path = pos[i];
        rc = read_log(&logs[i]);
    }
    char gnuplot[4200];
    if (rc == 0 && !find_gnuplot(gnuplot, sizeof gnuplot)) {
        fprintf(stderr, "mixprec: plot: gnuplot is not installed (or not on PATH); install it: "
                        "apt-get install gnuplot-nox\n");
        rc = CLI_EXIT_RUNTIME;
    }
    if (rc == 0) {
        const extent x = find_extent(logs, npos);
        if (!vals[OPT_SIZE]) {
            W = 1280;
            H = x.numerics ? 960 : 720;
        }
        rc = draw(gnuplot, logs, npos, &x, out, W, H, vals[OPT_TITLE]);
    }
    for (int i = 0; i < npos; i++) log_free(&logs[i]);
    free(logs);
    if (rc == 0) {
        printf("wrote ");
        for (const unsigned char *p = (const unsigned char *)out; *p; p++)
            putchar(*p < 0x20 || *p == 0x7f ? '?' : *p);
        printf(" (%d x %d)\n", W, H);
    }
    return rc;
}
