/*
 * main.c - the `mixprec` command: the table of subcommands, the global
 * options before the subcommand, --help/--version, and the exit status.
 * Each subcommand parses its own words (cli_parse) in its cmd_*.c file.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static void help_help(FILE *out);
static int cmd_help(int argc, char **argv);

static const cli_cmd commands[] = {
    {"train", "train mlp or cnn on (Fashion-)MNIST, or gpt on text, in fp32, bf16 or fp16",
     help_train, cmd_train},
    {"eval", "test (gpt: validation) loss and accuracy of a checkpoint written by train --save",
     help_eval, cmd_eval},
    {"generate", "continue a prompt with a gpt checkpoint (temperature, top-k, seed)",
     help_generate, cmd_generate},
    {"export", "a checkpoint's weights as one bf16, fp16 or fp32 safetensors file for inference",
     help_export, cmd_export},
    {"show", "name, dtype, shape, size of each tensor of a safetensors file or checkpoint",
     help_show, cmd_show},
    {"plot", "loss, loss scale and gradient ranges of training logs as one PNG (gnuplot)",
     help_plot, cmd_plot},
    {"formats", "range of fp32, fp16, bf16 (fp8 with --all): max, min normal/subnormal, epsilon",
     help_formats, cmd_formats},
    {"inspect", "each VALUE's bits, stored value, rounding error and ulp in fp32, fp16, bf16",
     help_inspect, cmd_inspect},
    {"env", "version, CPU features, the ISA and kernels in use, threads, build options", help_env,
     cmd_env},
    {"bench", "time GEMM (bench gemm) or bulk conversion against memcpy (bench convert)",
     help_bench, cmd_bench},
    {"config", "a few questions that write the launch config (like accelerate config)", help_config,
     cmd_config},
    {"launch", "run a program or command on N processes (mpirun) with the launch settings",
     help_launch, cmd_launch},
    {"help", "describe a command: mixprec help CMD", help_help, cmd_help},
};
enum { NCOMMANDS = sizeof commands / sizeof commands[0] };

static const char command_list[] =
    "train, eval, generate, export, show, plot, formats, inspect, env, bench, config, launch, "
    "help";

static const cli_cmd *find_command(const char *name) {
    for (int i = 0; i < NCOMMANDS; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

int cli_is_command(const char *name) { return find_command(name) != NULL; }

static void print_usage(FILE *out) {
    fprintf(out,
            "mixprec %s - mixed-precision training toolkit (fp32, fp16, bf16)\n"
            "\n"
            "usage: mixprec [--threads N] [--isa NAME] COMMAND [ARGS...]\n"
            "       mixprec help COMMAND | mixprec COMMAND --help\n"
            "       mixprec --version\n"
            "\n"
            "commands:\n",
            mxp_version());
    for (int i = 0; i < NCOMMANDS; i++)
        fprintf(out, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\noptions for every command:\n");
    cli_print_opts(out, cli_global_opts, cli_nglobal_opts);
    fprintf(out,
            "  %-22s %s\n"
            "  %-22s %s\n"
            "\n"
            "environment:\n"
            "  MIXPREC_ISA=NAME          force a kernel family (ref, avx2, avx512, avx512bf16);\n"
            "                            a name this CPU cannot run is an error\n"
            "  MIXPREC_NUM_THREADS=N     kernel threads, 1..1024\n"
            "  MIXPREC_CONFIG_FILE=FILE  the launch config of mixprec config and launch\n"
            "\n"
            "exit status: 0 success, 1 the library failed at run time (e.g. out of memory),\n"
            "2 bad command line or environment. Errors are one line on stderr.\n"
            "\n"
            "try: mixprec formats\n"
            "     mixprec inspect 0.1 1e-8 70000\n",
            "--help, -h", "describe the command", "--version", "print the version");
}

static void help_help(FILE *out) {
    fprintf(out,
            "usage: mixprec help [COMMAND]\n\n"
            "Describe COMMAND (one of %s), or list every command.\n",
            command_list);
}

static int cmd_help(int argc, char **argv) {
    /* help must work even when MIXPREC_ISA is broken, so no cli_parse here */
    if (argc == 0) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        help_help(stdout);
        return CLI_EXIT_OK;
    }
    if (argc > 1)
        return cli_usage_error("help",
                               "expects one command name, got %d words (try mixprec "
                               "help bench)",
                               argc);
    const cli_cmd *c = find_command(argv[0]);
    if (!c)
        return cli_usage_error("help", "unknown command '%s' (commands: %s)", cli_quote(argv[0]),
                               command_list);
    c->help(stdout);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv) {
    int i = 1;
    /* global options before the command word */
    while (i < argc && strncmp(argv[i], "--", 2) == 0) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0) {
            print_usage(stdout);
            return CLI_EXIT_OK;
        }
        if (strcmp(a, "--version") == 0) {
            printf("mixprec %s\n", mxp_version());
            return CLI_EXIT_OK;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        char name[16];
        if (len >= sizeof name || len < 3) len = 0;
        memcpy(name, a, len);
        name[len] = '\0';
        const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[i + 1] : NULL);
        if (!len || (strcmp(name, "--threads") != 0 && strcmp(name, "--isa") != 0))
            return cli_usage_error(NULL,
                                   "unknown option '%s' before the command (see mixprec "
                                   "--help)",
                                   cli_quote(a));
        if (!v || (!eq && strncmp(v, "--", 2) == 0))
            return cli_usage_error(NULL, "option %s needs a value (see mixprec --help)", name);
        cli_set_global(name, v);
        i += eq ? 1 : 2;
    }
    if (i < argc && strcmp(argv[i], "-h") == 0) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (i >= argc)
        return cli_usage_error(NULL, "no command given (commands: %s; see mixprec --help)",
                               command_list);
    const cli_cmd *c = find_command(argv[i]);
    if (!c)
        return cli_usage_error(NULL, "unknown command '%s' (commands: %s; see mixprec --help)",
                               cli_quote(argv[i]), command_list);
    int rc = c->run(argc - i - 1, argv + i + 1);
    if (rc == CLI_HELP) {
        c->help(stdout);
        rc = CLI_EXIT_OK;
    }
    if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
        fprintf(stderr, "mixprec: %s: cannot write the output\n", c->name);
        rc = CLI_EXIT_RUNTIME;
    }
    /* one rank of a data-parallel job (mixprec launch): leave it together, or take every
     * other rank down with this one rather than leave them waiting in a collective */
    if (mxp_dist_world() > 1) {
        if (rc != CLI_EXIT_OK) mxp_dist_abort(rc);
        mxp_dist_finalize();
    }
    return rc;
}
