/*
 * cli.h - what the files of the `mixprec` command share: the command table
 * entry, option parsing, number parsing, error lines and JSON output helpers.
 * Only this tool turns an mxp_status into an exit code; the library never exits.
 */
#ifndef MIXPREC_CLI_H
#define MIXPREC_CLI_H

#include <stdio.h>

#include "mixprec.h"

/* Exit statuses (also documented in `mixprec --help`). */
enum {
    CLI_EXIT_OK = 0,
    CLI_EXIT_RUNTIME = 1, /* the library failed at run time (out of memory, ...) */
    CLI_EXIT_USAGE = 2,   /* bad command line or environment */
    CLI_HELP = -1         /* cli_parse saw --help: print the command's help, exit 0 */
};

/* One option of a command. A flag has metavar NULL. */
typedef struct cli_opt {
    const char *name;    /* "--m" */
    const char *metavar; /* "M", or NULL for a flag */
    const char *help;    /* one line for --help */
} cli_opt;

/* A command: `mixprec NAME ...`. run gets the words after NAME. */
typedef struct cli_cmd {
    const char *name;
    const char *summary; /* one line for the command list */
    void (*help)(FILE *out);
    int (*run)(int argc, char **argv);
} cli_cmd;

/* The options every command accepts, and where their settings came from
 * (for `mixprec env`). */
typedef struct cli_globals {
    const char *threads;     /* --threads value, or NULL */
    const char *isa;         /* --isa value, or NULL */
    const char *isa_why;     /* why the active ISA is active */
    const char *threads_why; /* where the thread count came from */
} cli_globals;

extern cli_globals cli_g;
extern const cli_opt cli_global_opts[];
extern const int cli_nglobal_opts;

/* ---- commands (one file each) ------------------------------------------ */

int cmd_formats(int argc, char **argv);
void help_formats(FILE *out);
int cmd_inspect(int argc, char **argv);
void help_inspect(FILE *out);
int cmd_env(int argc, char **argv);
void help_env(FILE *out);
int cmd_train(int argc, char **argv);
void help_train(FILE *out);
int cmd_eval(int argc, char **argv);
void help_eval(FILE *out);
int cmd_bench(int argc, char **argv);
void help_bench(FILE *out);
int cmd_export(int argc, char **argv);
void help_export(FILE *out);
int cmd_show(int argc, char **argv);
void help_show(FILE *out);
int cmd_plot(int argc, char **argv);
void help_plot(FILE *out);
int cmd_generate(int argc, char **argv);
void help_generate(FILE *out);
int cmd_config(int argc, char **argv);
void help_config(FILE *out);
int cmd_launch(int argc, char **argv);
void help_launch(FILE *out);
int bench_gemm(int argc, char **argv);
extern const cli_opt bench_gemm_opts[];
extern const int bench_gemm_nopts;

/* Whether name is one of the command words of the table in main.c. */
int cli_is_command(const char *name);

/* The values of a launch config, one "  key: value" line each after `indent`,
 * for `mixprec config` and `mixprec env`. */
void cli_print_launch_config(FILE *out, const mxp_launch_config *c, const char *indent);

/* Rewrite the option names among argv[0..argc) from accelerate's spelling to
 * ours, in place: "--num_processes=4" becomes "--num-processes=4" (the name
 * only, never a value or a word after `--`). */
void cli_dashes(int argc, char **argv);

/* Median and best (smallest) of n > 0 timings; sorts t in place. */
void bench_stats(double *t, int n, double *median, double *best);

/* Fill n elements of dtype dt at dst with uniform values in [-1, 1) from a
 * fixed seed, through mxp_convert (so 16-bit data is rounded as usual). */
mxp_status bench_fill(void *dst, mxp_dtype dt, size_t n, uint64_t seed);

/* ---- parsing ----------------------------------------------------------- */

/* Parse the words of command `cmd` ("bench gemm"): options in opts[0..nopts)
 * (vals[i] gets the value of opts[i], "" for a present flag, NULL if absent;
 * the last occurrence wins), the global options (--threads, --isa), --help/-h,
 * `--` (everything after it is positional), and positionals into pos (room
 * for argc entries, and pos may be argv itself: it is filled in order and
 * never ahead of the word being read; a word starting with a single '-',
 * like -0.5, is positional). Then checks MIXPREC_ISA and MIXPREC_NUM_THREADS and applies
 * the global options. Returns 0, CLI_HELP, or CLI_EXIT_USAGE after printing
 * one line. */
int cli_parse(const char *cmd, int argc, char **argv, const cli_opt *opts, int nopts,
              const char **vals, char **pos, int *npos);

/* Store a global option if `name` is one; returns 1 if consumed. */
int cli_set_global(const char *name, const char *value);

/* Parse a whole number in [min, max] given to option `opt` of `cmd`; digits
 * only (no sign, exponent or suffix). Prints one line and returns
 * CLI_EXIT_USAGE when it is not one. */
int cli_parse_count(const char *cmd, const char *opt, const char *s, unsigned long long min,
                    unsigned long long max, unsigned long long *out);

/* ---- errors and output ------------------------------------------------- */

/* "mixprec: CMD: message\n" on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "mixprec: CMD: <status>: <library message>\n" on stderr; returns CLI_EXIT_RUNTIME. */
int cli_lib_error(const char *cmd, mxp_status st);

/* For a file the user named (a checkpoint, a safetensors file): "mixprec: CMD:
 * <library message without its source location>\n" on stderr. Returns
 * CLI_EXIT_RUNTIME for MXP_ERR_NOMEM, else CLI_EXIT_USAGE (a missing, bad or
 * unwritable file is the user's to fix). */
int cli_file_error(const char *cmd, mxp_status st);

/* A printable, shortened copy of a user-supplied word for error lines: no
 * control characters (so the message stays one line), at most ~48 bytes.
 * Returns one of a few rotating static buffers, so up to four may be used
 * in one printf. */
const char *cli_quote(const char *s);

/* Print the options table for --help. */
void cli_print_opts(FILE *out, const cli_opt *opts, int nopts);

/* JSON: a number that reads back as exactly v (shortest round trip), null
 * when v is inf or NaN; a string with escapes. */
void json_num(FILE *out, double v);
void json_str(FILE *out, const char *s);

/* JSON: a measurement, to 6 significant digits (null when not finite). */
void json_meas(FILE *out, double v);

/* v in the shortest decimal that reads back as the same double. */
void fmt_shortest(char *buf, size_t size, double v);

/* The exact decimal value of v (every binary double has one). Returns the
 * number of significant digits; buf gets "~" + 17 digits when they do not fit. */
int fmt_exact(char *buf, size_t size, double v);

/* " (2^-24)" when v is a power of two, else "". */
void fmt_pow2(char *buf, size_t size, double v);

/* Seconds from CLOCK_MONOTONIC. */
double cli_now(void);

/* Whether `bytes` plausibly fits in this machine's memory; if not, prints
 * one line (exit status 1) so a huge size fails cleanly instead of being
 * killed by the OOM killer after overcommit. */
int cli_check_memory(const char *cmd, double bytes);

/* *bytes = rows * cols * elem_size, the size of buffer `what` ("A", "each
 * fp32 buffer"), when it fits in size_t. When it does not, prints one line
 * (out of memory, exit status 1) and returns CLI_EXIT_RUNTIME, leaving *bytes
 * alone. Call it before cli_check_memory, which checks nothing where sysconf
 * cannot tell the memory size: the size_t products must never wrap. */
int cli_buffer_bytes(const char *cmd, const char *what, unsigned long long rows,
                     unsigned long long cols, size_t elem_size, size_t *bytes);

#endif
