/*
 * cmd_config.c - `mixprec config`: a few questions on a terminal (the defaults off one, or
 * with --default) that become the launch config file `mixprec launch` reads. Every answer is
 * checked by the library's mxp_launch_config_set, so the questionnaire and the file agree on
 * what is valid. It launches nothing.
 */
#include <ctype.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

static const cli_opt opts[] = {
    {"--config-file", "FILE", "where to write (default: see below)"},
    {"--default", NULL, "write the defaults without asking"},
};
enum { NOPTS = sizeof opts / sizeof opts[0] };

void help_config(FILE *out) {
    fprintf(out,
            "usage: mixprec config [--config-file FILE] [--default]\n"
            "\n"
            "Ask a few questions, as `accelerate config` does, and write the answers as the\n"
            "launch config that `mixprec launch` reads: the compute environment (this\n"
            "machine), the number of processes [1], threads per process [0 = the cores\n"
            "divided among the processes], mixed precision no/fp16/bf16 [bf16], for fp16 the\n"
            "loss scale [dynamic] with its initial scale [65536], growth interval [2000] and\n"
            "hysteresis [1], and the gradient accumulation steps [1]. An empty answer takes\n"
            "the default shown in brackets; a bad one is explained and asked again.\n"
            "\n"
            "Off a terminal, or with --default, it writes the defaults without asking.\n"
            "\n"
            "The file: --config-file FILE (--config_file too), else $MIXPREC_CONFIG_FILE, else\n"
            "$XDG_CONFIG_HOME/mixprec/default_config.yaml, else\n"
            "~/.config/mixprec/default_config.yaml; missing directories are created.\n"
            "\n"
            "options:\n");
    cli_print_opts(out, opts, NOPTS);
    fprintf(out, "\nexample: mixprec config --default --config-file run.yaml\n"
                 "         mixprec launch --config-file run.yaml train\n"
                 "(docs/LAUNCH.md)\n");
}

void cli_print_launch_config(FILE *out, const mxp_launch_config *c, const char *indent) {
    const unsigned s = c->set;
    fprintf(out, "%scompute_environment: %s\n", indent, c->compute_environment);
    fprintf(out, "%sdistributed_type: %s\n", indent, c->distributed_type);
    fprintf(out, "%snum_processes: %d\n", indent, c->num_processes);
    fprintf(out, "%smixed_precision: %s\n", indent, c->mixed_precision);
    fprintf(out, "%snum_threads: %d%s\n", indent, c->num_threads,
            c->num_threads ? "" : " (the cores divided among the processes)");
    /* the loss-scale keys where they matter: fp16, or a file that gives them */
    const int fp16 = strcmp(c->mixed_precision, "fp16") == 0;
    if (fp16 || (s & MXP_LAUNCH_KEY_LOSS_SCALE))
        fprintf(out, "%sloss_scale: %s\n", indent, c->loss_scale);
    if (fp16 || (s & MXP_LAUNCH_KEY_INIT_SCALE))
        fprintf(out, "%sinit_scale: %.9g\n", indent, (double)c->init_scale);
    if (fp16 || (s & MXP_LAUNCH_KEY_GROWTH_INTERVAL))
        fprintf(out, "%sgrowth_interval: %lld\n", indent, (long long)c->growth_interval);
    if (fp16 || (s & MXP_LAUNCH_KEY_HYSTERESIS))
        fprintf(out, "%shysteresis: %d\n", indent, c->hysteresis);
    fprintf(out, "%sgradient_accumulation_steps: %d\n", indent, c->gradient_accumulation_steps);
}

/* ---- the questionnaire --------------------------------------------------------------------- */

/* One answer from stdin, trimmed, into buf; "" for an empty line. -1 at end of input. */
static int answer(char *buf, size_t size) {
    if (!fgets(buf, (int)size, stdin)) return -1;
    size_t n = strlen(buf);
    if (n && buf[n - 1] != '\n') { /* a line longer than buf: the rest is dropped */
        int ch;
        while ((ch = getchar()) != EOF && ch != '\n') {
        }
    }
    while (n && isspace((unsigned char)buf[n - 1])) buf[--n] = '\0';
    size_t i = 0;
    while (isspace((unsigned char)buf[i])) i++;
    memmove(buf, buf + i, n - i + 1);
    return 0;
}

/* Ask until the answer is a valid value of key. An empty answer takes the default: it is set
 * for accelerate's keys (the file always has them) and leaves mixprec's unset, so the file
 * shows them as comments and `mixprec launch` passes on only what was chosen. 0, or -1 at end
 * of input. */
static int ask(mxp_launch_config *c, const char *key, const char *question, const char *def) {
    const int ours = strcmp(key, "num_processes") != 0 && strcmp(key, "mixed_precision") != 0;
    for (;;) {
        printf("%s [%s]: ", question, def);
        fflush(stdout);
        char buf[256];
        if (answer(buf, sizeof buf) != 0) return -1;
        if (!*buf && ours) return 0;
        if (mxp_launch_config_set(c, key, *buf ? buf : def) == MXP_OK) return 0;
        const char *m = mxp_last_error(), *colon = strstr(m, ": ");
        printf("  %s; try again\n", colon ? colon + 2 : m);
    }
}

/* Which question the input ended at, for the error line. */
static const char *eof_at;

static int questionnaire(mxp_launch_config *c) {
    printf("mixprec config: a launch configuration for `mixprec launch` (Enter takes the "
           "[default])\n");
    for (;;) { /* one choice, asked anyway so the file says where it runs, as accelerate's does */
        printf("In which compute environment are you running? (this machine) [this machine]: ");
        fflush(stdout);
        char buf[256];
        eof_at = "the compute environment";
        if (answer(buf, sizeof buf) != 0) return -1;
        for (char *p = buf; *p; p++) *p = (char)tolower((unsigned char)*p);
        if (!*buf || !strcmp(buf, "this machine") || !strcmp(buf, "local_machine") ||
            !strcmp(buf, "local"))
            break;
        printf("  mixprec runs on this machine only (LOCAL_MACHINE); try again\n");
    }
    mxp_launch_config_set(c, "compute_environment", "LOCAL_MACHINE");
    eof_at = "the number of processes";
    if (ask(c, "num_processes",
            "How many processes on this machine? (more than 1 trains data parallel over MPI)",
            "1") != 0)
        return -1;
    eof_at = "the threads per process";
    if (ask(c, "num_threads", "How many threads per process? (0 = the cores divided among them)",
            "0") != 0)
        return -1;
    eof_at = "the mixed precision";
    if (ask(c, "mixed_precision", "Mixed precision: no, fp16 or bf16?", "bf16") != 0) return -1;
    if (strcmp(c->mixed_precision, "fp16") == 0) {
        eof_at = "the loss scale";
        if (ask(c, "loss_scale", "Loss scale: dynamic or a fixed number?", "dynamic") != 0)
            return -1;
        if (strcmp(c->loss_scale, "dynamic") == 0) {
            eof_at = "the initial loss scale";
            if (ask(c, "init_scale", "Initial loss scale?", "65536") != 0) return -1;
            eof_at = "the growth interval";
            if (ask(c, "growth_interval",
                    "Growth interval (steps without overflow before the scale doubles)?",
                    "2000") != 0)
                return -1;
            eof_at = "the hysteresis";
            if (ask(c, "hysteresis", "Hysteresis (overflows tolerated before the scale halves)?",
                    "1") != 0)
                return -1;
        }
    }
    eof_at = "the gradient accumulation steps";
    if (ask(c, "gradient_accumulation_steps",
            "Gradient accumulation steps (micro-batches per optimizer step)?", "1") != 0)
        return -1;
    return 0;
}

int cmd_config(int argc, char **argv) {
    cli_dashes(argc, argv);
    const char *vals[NOPTS];
    char **pos = argv;
    int npos;
    int rc = cli_parse("config", argc, argv, opts, NOPTS, vals, pos, &npos);
    if (rc) return rc;
    if (npos)
        return cli_usage_error("config",
                               "unexpected argument '%s' (config takes --config-file FILE and "
                               "--default)",
                               cli_quote(pos[0]));
    char path[4096];
    const char *from = "--config-file";
    if (vals[0]) {
        if (!*vals[0]) return cli_usage_error("config", "--config-file needs a file name");
        snprintf(path, sizeof path, "%s", vals[0]);
    } else {
        const mxp_status st = mxp_launch_config_path(path, sizeof path, &from);
        if (st != MXP_OK) return cli_file_error("config", st);
    }
    mxp_launch_config c;
    mxp_launch_config_default(&c);
    if (!vals[1] && isatty(STDIN_FILENO) && isatty(STDOUT_FILENO)) {
        if (questionnaire(&c) != 0) {
            putchar('\n'); /* the prompt had no newline */
            fflush(stdout);
            return cli_usage_error("config", "end of input at %s; nothing written", eof_at);
        }
    }
    const mxp_status st = mxp_launch_config_write(&c, path);
    if (st != MXP_OK) return cli_file_error("config", st);
    printf("wrote %s\n", path);
    cli_print_launch_config(stdout, &c, "  ");
    return CLI_EXIT_OK;
}
