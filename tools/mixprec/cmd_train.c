/*
 * cmd_train.c - `mixprec train`: flags and --args YAML into the Trainer's
 * arguments, a progress bar on a terminal (plain periodic lines otherwise),
 * and the end summary. The training itself is mxp_trainer_run.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Every option maps to the Trainer argument of the same name (without "--"). */
static const cli_opt opts[] = {
    {"--model", "NAME", "mlp, cnn or gpt (default cnn)"},
    {"--data", "DIR",
     "mlp, cnn: fashion-mnist (default: /usr/share/datasets/fashion-mnist) or an IDX "
     "directory; gpt: fortunes (default: /usr/share/games/fortunes), a text file or directory, "
     "or llm.c .bin token shards (a file or a directory)"},
    {"--mixed-precision", "P", "no, fp16 or bf16 (default bf16, or $MIXPREC_MIXED_PRECISION)"},
    {"--master-weights", "on|off", "keep fp32 master weights (default on; off is an ablation)"},
    {"--loss-scale", "S",
     "dynamic or a number N (static); default dynamic in fp16, none otherwise"},
    {"--hysteresis", "N", "overflows tolerated before the loss scale backs off (default 1)"},
    {"--growth-interval", "N", "clean steps before the loss scale doubles (default 2000)"},
    {"--init-loss-scale", "S", "the dynamic loss scale's start (default 65536)"},
    {"--min-loss-scale", "S",
     "floor of the dynamic loss scale (default 1); overflowing there stops the run"},
    {"--max-loss-scale", "S", "ceiling of the dynamic loss scale (default none)"},
    {"--optimizer", "NAME", "adamw or sgd (default adamw)"},
    {"--lr", "R", "base learning rate (default 1e-3 adamw, 0.01 sgd)"},
    {"--weight-decay", "W", "default 0.01 adamw (decoupled), 0 sgd; never on biases"},
    {"--momentum", "M", "sgd momentum (default 0.9)"},
    {"--nesterov", "on|off", "sgd Nesterov momentum"},
    {"--schedule", "NAME", "cosine or constant (default cosine)"},
    {"--warmup-steps", "N", "linear warmup steps (default 100)"},
    {"--batch-size", "N", "samples per micro-batch (default 128; gpt: 8 sequences)"},
    {"--epochs", "N", "passes over the training set (default 5)"},
    {"--max-steps", "N", "stop after N optimizer steps (default: all epochs)"},
    {"--grad-clip", "X", "clip the global gradient norm to X (default 1.0; 0 = off)"},
    {"--grad-accum", "N", "micro-batches per optimizer step (default 1)"},
    {"--seed", "N", "initialisation, shuffling and dropout (default 42)"},
    {"--dropout", "P", "dropout before the last layer (default 0.25 cnn, 0 mlp)"},
    {"--hidden", "N", "width of the first hidden layer (default 256 cnn, 512 mlp)"},
    {"--n-layer", "N", "gpt: transformer blocks (default 6)"},
    {"--n-head", "N", "gpt: attention heads; must divide --n-embd (default 6)"},
    {"--n-embd", "N", "gpt: model width (default 384)"},
    {"--block-size", "T", "gpt: context length in tokens (default 256)"},
    {"--val-split", "F", "gpt: share of the text held out for validation (default 0.1)"},
    {"--eval-every", "N", "also evaluate every N optimizer steps (default: at epoch ends)"},
    {"--eval-batches", "N", "evaluate on the first N batches only (default: the whole split)"},
    {"--log", "FILE", "JSON-lines metrics (DESIGN.md: step, eval, summary events)"},
    {"--save", "DIR",
     "write checkpoints to DIR/checkpoint-<step> (weights, optimizer and scaler state, "
     "config) after every epoch and at the end"},
    {"--save-every", "N", "save every N optimizer steps instead of every epoch"},
    {"--keep-last", "K", "keep only the newest K checkpoints in DIR (default: all)"},
    {"--resume", "DIR",
     "continue exactly from a checkpoint, or from the newest one in an output DIR"},
    {"--log-every", "N", "write a step line every N steps (default 1)"},
    {"--stats-every", "N", "count zero gradients and lost updates every N steps (default 50)"},
    {"--stochastic-rounding", NULL,
     "with --master-weights off: round the 16-bit weights stochastically instead of to "
     "nearest (small updates survive on average)"},
    {"--numerics-stats", NULL,
     "on those steps also log every tensor's log2|x| histogram and what fp16/bf16 would do to "
     "it, and end with advice on fp16 vs bf16 and the loss scale (docs/NUMERICS.md)"},
    {"--profile", NULL, "time every op and print the split per op kind"},
    {"--args", "FILE.yaml", "Trainer-style arguments (bf16: true, learning_rate: ...); flags win"},
    {"--quiet", NULL, "no progress output, only the summary"},
};
enum { NOPTS = sizeof opts / sizeof opts[0] };

void help_train(FILE *out) {
    fprintf(out, "usage: mixprec train [options]\n"
                 "\n"
                 "Train a model (mlp or cnn on (Fashion-)MNIST, gpt on text) in mixed\n"
                 "precision: weights, activations and\n"
                 "gradients in the working precision (bf16 or fp16), fp32 master weights and\n"
                 "optimizer state, loss scaling in fp16 (GradScaler semantics: start 65536, x2\n"
                 "after 2000 clean steps, x0.5 and a skipped step on overflow). Evaluates on the\n"
                 "test set (gpt: the validation split) after every epoch.\n"
                 "\n"
                 "options:\n");
    cli_print_opts(out, opts, NOPTS);
    cli_print_opts(out, cli_global_opts, cli_nglobal_opts);
    fprintf(out,
            "\nSettings resolve as: flag, then --args FILE, then the environment\n"
            "(MIXPREC_MIXED_PRECISION, MIXPREC_LOSS_SCALE, MIXPREC_MASTER_WEIGHTS,\n"
            "MIXPREC_GRAD_ACCUM, MIXPREC_NUM_THREADS), then the defaults.\n"
            "\nexamples:\n"
            "  mixprec train                                   # cnn, bf16, 5 epochs\n"
            "  mixprec train --model mlp --mixed-precision fp16 --log run.jsonl\n"
            "  mixprec train --mixed-precision fp16 --loss-scale 1   # the underflow ablation\n"
            "  mixprec train --save out --save-every 200 --keep-last 3\n"
            "  mixprec train --save out --save-every 200 --resume out  # after a crash\n"
            "  mixprec train --model gpt --max-steps 500 --save gpt-out   # fortunes, bf16\n"
            "  mixprec generate --checkpoint gpt-out --prompt 'The ' --tokens 200\n"
            "\n--epochs and --max-steps count from the start of training, so a resumed run\n"
            "stops where an uninterrupted one would and computes the same numbers.\n");
}

typedef struct progress {
    int tty, quiet;
    int gpt;            /* a language model: tokens/s, validation loss */
    int64_t every;      /* plain-line period */
    int64_t first_step; /* the step a resumed run started from */
    double last_draw;
} progress;

static void fmt_eta(char *buf, size_t n, double s) {
    if (!(s >= 0) || s > 359999) s = 0;
    const int v = (int)(s + 0.5);
    snprintf(buf, n, "%d:%02d:%02d", v / 3600, v / 60 % 60, v % 60);
}

static void on_event(const mxp_train_event *ev, void *user) {
    progress *p = user;
    if (p->quiet) return;
    if (ev->kind == MXP_TRAIN_EVENT_START) {
        const mxp_train_summary *s = ev->summary;
        fprintf(stderr, "mixprec: %s\n", s->model_desc);
        p->gpt = strncmp(s->model_desc, "gpt:", 4) == 0;
        if (s->first_step > 0)
            fprintf(stderr, "mixprec: resumed from %s at step %lld\n", s->checkpoint,
                    (long long)s->first_step);
        fprintf(stderr, "mixprec: %s%s, %lld optimizer steps\n", s->mixed_precision,
                strcmp(s->mixed_precision, "no") == 0 ? " (fp32)"
                : s->master_weights                   ? " with fp32 master weights"
                                                      : " without master weights (ablation)",
                (long long)ev->total_steps);
        p->every = ev->total_steps / 20 > 0 ? ev->total_steps / 20 : 1;
        p->first_step = s->first_step;
        return;
    }
    if (ev->kind == MXP_TRAIN_EVENT_STEP) {
        const int64_t done_here = ev->step - p->first_step; /* steps this process ran */
        const double left =
            ev->total_steps > ev->step && done_here > 0
                ? ev->elapsed_s / (double)done_here * (double)(ev->total_steps - ev->step)
                : 0.0;
        char eta[32];
        fmt_eta(eta, sizeof eta, left);
        if (p->tty) {
            const double now = cli_now();
            if (now - p->last_draw < 0.1 && ev->step < ev->total_steps) return;
            p->last_draw = now;
            const int width = 24;
            const int done = (int)(width * ev->step / (ev->total_steps ? ev->total_steps : 1));
            char bar[32];
            for (int i = 0; i < width; i++) bar[i] = i < done ? '=' : i == done ? '>' : ' ';
            bar[width] = '\0';
            fprintf(stderr,
                    "\r\033[Kepoch %lld [%s] step %lld/%lld loss %.4f scale %g %.0f %s/s ETA %s",
                    (long long)ev->epoch + 1, bar, (long long)ev->step, (long long)ev->total_steps,
                    ev->loss, (double)ev->res.loss_scale, ev->samples_per_s,
                    p->gpt ? "seq" : "samples", eta);
        } else if (ev->step % p->every == 0 || ev->step == ev->total_steps) {
            fprintf(stderr,
                    "epoch %lld step %lld/%lld loss %.4f loss_scale %g%s samples/s %.0f eta %s\n",
                    (long long)ev->epoch + 1, (long long)ev->step, (long long)ev->total_steps,
                    ev->loss, (double)ev->res.loss_scale, ev->res.skipped ? " (skipped)" : "",
                    ev->samples_per_s, eta);
        }
        return;
    }
    if (ev->kind == MXP_TRAIN_EVENT_EVAL) {
        if (p->tty) fputs("\r\033[K", stderr);
        fprintf(stderr, "epoch %lld step %lld: %s loss %.4f accuracy %.4f\n",
                (long long)ev->epoch + 1, (long long)ev->step, p->gpt ? "val" : "test", ev->loss,
                ev->accuracy);
    }
}

static void print_summary(const mxp_train_summary *s, const mxp_trainer_args *a) {
    const char *model = a->model;
    const int gpt = strcmp(model, "gpt") == 0;
    const double mib = 1024.0 * 1024.0;
    printf("model %s, mixed precision %s%s\n", model, s->mixed_precision,
           strcmp(s->mixed_precision, "no") == 0 ? " (fp32)"
           : s->master_weights                   ? " (fp32 master weights)"
                                                 : " (no master weights)");
    if (gpt)
        printf("val loss %.4f  (next-token accuracy %.4f, final train loss %.4f)\n", s->test_loss,
               s->test_accuracy, s->final_loss);
    else
        printf("test accuracy %.4f  (test loss %.4f, final train loss %.4f)\n", s->test_accuracy,
               s->test_loss, s->final_loss);
    printf("steps %lld, skipped %lld, final loss scale %g\n", (long long)s->steps,
           (long long)s->skipped_steps, (double)s->final_loss_scale);
    if (s->checkpoint[0]) printf("checkpoint %s\n", s->checkpoint);
    if (gpt)
        printf("speed %.0f tokens/s (%.0f sequences/s), wall %.1f s, peak RSS %.1f MiB\n",
               s->tokens_per_s, s->samples_per_s, s->wall_s, (double)s->peak_rss_bytes / mib);
    else
        printf("speed %.0f samples/s, wall %.1f s, peak RSS %.1f MiB\n", s->samples_per_s,
               s->wall_s, (double)s->peak_rss_bytes / mib);
    if (s->processes > 1)
        printf("data parallel: %d processes, %zu bytes all-reduced per step by each, %.2f s in "
               "collectives on rank 0\n",
               s->processes, s->comm_bytes_per_step, s->comm_s);
    printf("memory bytes: weights %zu, master weights %zu, grads %zu, optimizer %zu, "
           "activations %zu (+ workspace %zu)\n",
           s->memory.weights, s->memory.master_weights, s->memory.grads, s->memory.optimizer,
           s->memory.activations, s->memory.workspace);
    if (s->zero_grad_frac >= 0)
        printf("numerics: %.4f%% of weight-gradient values are zero, %.4f%% of updates are lost "
               "to rounding in the working precision\n",
               100.0 * s->zero_grad_frac, 100.0 * s->lost_update_frac);
    if (s->have_advice) {
        printf("numerics advice (%s run; measuring took %.2f s, %.1f%% of the wall time):\n",
               strcmp(s->mixed_precision, "no") ? s->mixed_precision : "fp32", s->numerics_s,
               s->wall_s > 0 ? 100.0 * s->numerics_s / s->wall_s : 0.0);
        for (const char *l = s->advice_text; *l;) { /* each line indented */
            const char *e = strchr(l, '\n');
            const int len = e ? (int)(e - l) : (int)strlen(l);
            printf("  %.*s\n", len, l);
            l += len + (e != NULL);
        }
    }
    if (s->n_profile) {
        double total = 0;
        for (int i = 0; i < s->n_profile; i++) total += s->profile[i].fwd_s + s->profile[i].bwd_s;
        printf("profile (seconds, share of op time):\n");
        for (int i = 0; i < s->n_profile; i++)
            printf("  %-14s forward %8.3f  backward %8.3f  %5.1f%%  (%lld calls)\n",
                   s->profile[i].op, s->profile[i].fwd_s, s->profile[i].bwd_s,
                   total > 0 ? 100.0 * (s->profile[i].fwd_s + s->profile[i].bwd_s) / total : 0.0,
                   (long long)s->profile[i].calls);
    }
}

/* the library's message without its "file.c:123: " prefix */
static const char *lib_msg(void) {
    const char *msg = mxp_last_error();
    const char *colon = strstr(msg, ": ");
    return colon ? colon + 2 : msg;
}

int cmd_train(int argc, char **argv) {
    const char *vals[NOPTS];
    char **pos = argv;
    int npos = 0;
    int rc = cli_parse("train", argc, argv, opts, NOPTS, vals, pos, &npos);
    if (rc) return rc;
    if (npos)
        return cli_usage_error("train", "unexpected argument '%s' (options start with --)",
                               cli_quote(pos[0]));
    mxp_trainer_args a;
    mxp_trainer_args_default(&a);
    int quiet = 0, profile = 0;
    for (int i = 0; i < NOPTS; i++) {
        if (!vals[i] || strcmp(opts[i].name, "--args") != 0) continue;
        if (mxp_trainer_args_load(&a, vals[i]) != MXP_OK)
            return cli_usage_error("train", "%s", lib_msg());
    }
    for (int i = 0; i < NOPTS; i++) {
        const char *name = opts[i].name + 2;
        if (!vals[i] || !strcmp(name, "args")) continue;
        if (!strcmp(name, "quiet")) {
            quiet = 1;
            continue;
        }
        if (!strcmp(name, "profile")) {
            profile = 1;
            continue;
        }
        if (!strcmp(name, "numerics-stats")) {
            a.numerics_stats = 1;
            continue;
        }
        if (!strcmp(name, "stochastic-rounding")) {
            a.stochastic_rounding = 1;
            continue;
        }
        if (mxp_trainer_args_set(&a, name, vals[i]) != MXP_OK) {
            const char *msg = lib_msg();
            const size_t n = strlen(name);
            if (!strncmp(msg, name, n) && msg[n] == ':')
                return cli_usage_error("train", "--%s", msg);
            return cli_usage_error("train", "--%s: %s", name, msg);
        }
    }
    a.profile |= profile;
    if (cli_g.threads) a.threads = mxp_num_threads();
    progress p = {.tty = isatty(2), .quiet = quiet};
    mxp_train_summary s;
    memset(&s, 0, sizeof s);
    mxp_status st = mxp_trainer_run(&a, on_event, &p, &s);
    if (p.tty && !quiet) fputs("\r\033[K", stderr);
    if (st != MXP_OK) {
        /* bad data and settings are the user's to fix: usage status, one line */
        if (mxp_dist_world() > 1) /* each rank speaks for itself */
            fprintf(stderr, "mixprec: train: rank %d of %d: %s\n", mxp_dist_rank(),
                    mxp_dist_world(), lib_msg());
        else
            fprintf(stderr, "mixprec: train: %s\n", lib_msg());
        return st == MXP_ERR_NOMEM || st == MXP_ERR_BACKEND    ? CLI_EXIT_RUNTIME
               : st == MXP_ERR_NONFINITE || st == MXP_ERR_DIST ? CLI_EXIT_RUNTIME
                                                               : CLI_EXIT_USAGE;
    }
    if (mxp_dist_rank() == 0) print_summary(&s, &a); /* rank 0 reports for the job */
    return CLI_EXIT_OK;
}
