/*
 * cmd_launch.c - `mixprec launch`: settings from flags, then the launch config file, then the
 * defaults, exported as MIXPREC_* variables to PROGRAM, run directly (one process) or under
 * mpirun (several), whose exit status it returns. It parses nothing of PROGRAM's arguments
 * and starts no MPI itself: the library's accelerator joins the job mpirun made.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

static const cli_opt opts[] = {
    {"--num-processes", "N", "processes on this machine, 1..1024 (N > 1 runs them under mpirun)"},
    {"--mixed-precision", "P", "no|fp16|bf16, exported as MIXPREC_MIXED_PRECISION"},
    {"--num-threads", "T", "threads per process, 0..1024 (0: the cores / N when N > 1)"},
    {"--loss-scale", "S", "dynamic or a positive number, exported as MIXPREC_LOSS_SCALE"},
    {"--grad-accum", "K", "micro-batches per optimizer step, exported as MIXPREC_GRAD_ACCUM"},
    {"--config-file", "FILE", "the launch config to read (default: see below)"},
    {"--dry-run", NULL, "print the command and its MIXPREC_* environment; run nothing"},
    /* accelerate's names for two of the above; not listed by --help */
    {"--num-cpu-threads-per-process", "T", "same as --num-threads"},
    {"--gradient-accumulation-steps", "K", "same as --grad-accum"},
};
enum {
    NOPTS = sizeof opts / sizeof opts[0],
    NSHOWN = 7,
    O_NPROC = 0,
    O_PREC,
    O_THREADS,
    O_SCALE,
    O_ACCUM,
    O_CONFIG,
    O_DRY,
    O_THREADS2,
    O_ACCUM2
};

void help_launch(FILE *out) {
    fprintf(out,
            "usage: mixprec launch [--num-processes N] [--mixed-precision P] [--num-threads T]\n"
            "                      [--loss-scale S] [--grad-accum K] [--config-file FILE]\n"
            "                      [--dry-run] PROGRAM [ARGS...]\n"
            "\n"
            "Run PROGRAM with ARGS on N processes of this machine, as `accelerate launch`\n"
            "does. Each setting comes from its flag, else the launch config (written by\n"
            "mixprec config), else the default. The settings given by a flag or the file are\n"
            "exported as MIXPREC_MIXED_PRECISION, MIXPREC_NUM_THREADS, MIXPREC_LOSS_SCALE,\n"
            "MIXPREC_INIT_SCALE, MIXPREC_GROWTH_INTERVAL, MIXPREC_HYSTERESIS and\n"
            "MIXPREC_GRAD_ACCUM, always with MIXPREC_NUM_PROCESSES=N and MIXPREC_CONFIG_FILE\n"
            "(the file used, if any). With N > 1 and no thread count, MIXPREC_NUM_THREADS is\n"
            "the online cores / N (at least 1) unless already set in the environment.\n"
            "\n"
            "N = 1 runs PROGRAM in place. N > 1 runs `mpirun -np N --oversubscribe --bind-to\n"
            "none [--allow-run-as-root] -x MIXPREC_... PROGRAM ARGS`; if a rank fails, mpirun\n"
            "ends the others, and launch exits with mpirun's status. SIGINT and SIGTERM reach\n"
            "mpirun once, which ends every rank.\n"
            "\n"
            "PROGRAM is a path or a command on PATH; a mixprec command word (train, eval,\n"
            "generate, env, ...) runs this mixprec with that command (./train for a file).\n"
            "\n"
            "The config file: --config-file FILE, else $MIXPREC_CONFIG_FILE (both must\n"
            "exist), else $XDG_CONFIG_HOME/mixprec/default_config.yaml or\n"
            "~/.config/mixprec/default_config.yaml when it exists. accelerate's spellings\n"
            "--num_processes, --mixed_precision, --config_file, --num_cpu_threads_per_process\n"
            "and --gradient_accumulation_steps are accepted.\n"
            "\n"
            "options:\n");
    cli_print_opts(out, opts, NSHOWN);
    fprintf(out, "\nexamples:\n"
                 "  mixprec launch --num-processes 2 --mixed-precision bf16 train --epochs 1\n"
                 "  mixprec launch --dry-run --num-processes 4 ./my_program --lr 0.1\n"
                 "  mixprec launch --num-processes 2 sh -c 'echo rank $OMPI_COMM_WORLD_RANK'\n"
                 "(docs/LAUNCH.md)\n");
}

/* ---- shared with cmd_config.c -------------------------------------------------------------- */

void cli_dashes(int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (strcmp(a, "--") == 0) return;
        if (strncmp(a, "--", 2) != 0) continue;
        for (char *p = a + 2; *p && *p != '='; p++)
            if (*p == '_') *p = '-';
    }
}

/* ---- finding programs ---------------------------------------------------------------------- */

static int executable_file(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode) && access(path, X_OK) == 0;
}

/* name (no '/') found on PATH into buf, as execvp would find it; 0 or -1 */
static int search_path(const char *name, char *buf, size_t size) {
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    for (const char *p = path;;) {
        const char *colon = strchr(p, ':');
        const size_t n = colon ? (size_t)(colon - p) : strlen(p);
        /* an empty entry is the current directory, as for execvp */
        const int len =
            n ? snprintf(buf, size, "%.*s/%s", (int)n, p, name) : snprintf(buf, size, "%s", name);
        if (len > 0 && (size_t)len < size && executable_file(buf)) return 0;
        if (!colon) return -1;
        p = colon + 1;
    }
}

/* ---- the environment ----------------------------------------------------------------------- */

enum { MAXVARS = 12 };

typedef struct launch_env {
    int n;
    char name[MAXVARS][32];
    char value[MAXVARS][PATH_MAX];
} launch_env;

static void put(launch_env *e, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void put(launch_env *e, const char *name, const char *fmt, ...) {
    snprintf(e->name[e->n], sizeof e->name[0], "%s", name);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->value[e->n], sizeof e->value[0], fmt, ap);
    va_end(ap);
    e->n++;
}

static void build_env(launch_env *e, const mxp_launch_config *c, const char *config_path) {
    const unsigned s = c->set;
    e->n = 0;
    put(e, "MIXPREC_NUM_PROCESSES", "%d", c->num_processes);
    if (config_path) put(e, "MIXPREC_CONFIG_FILE", "%s", config_path);
    if (s & MXP_LAUNCH_KEY_MIXED_PRECISION)
        put(e, "MIXPREC_MIXED_PRECISION", "%s", c->mixed_precision);
    const char *inherited = getenv("MIXPREC_NUM_THREADS");
    if ((s & MXP_LAUNCH_KEY_NUM_THREADS) && c->num_threads > 0) {
        put(e, "MIXPREC_NUM_THREADS", "%d", c->num_threads);
    } else if (c->num_processes > 1 && !(inherited && *inherited)) {
        /* N processes of T threads each should not ask for more than the cores */
        const long cores = sysconf(_SC_NPROCESSORS_ONLN);
        const long t = cores > 0 ? cores / c->num_processes : 1;
        put(e, "MIXPREC_NUM_THREADS", "%ld", t > 1024 ? 1024 : t < 1 ? 1 : t);
    }
    if (s & MXP_LAUNCH_KEY_LOSS_SCALE) put(e, "MIXPREC_LOSS_SCALE", "%s", c->loss_scale);
    if (s & MXP_LAUNCH_KEY_INIT_SCALE) put(e, "MIXPREC_INIT_SCALE", "%.9g", (double)c->init_scale);
    if (s & MXP_LAUNCH_KEY_GROWTH_INTERVAL)
        put(e, "MIXPREC_GROWTH_INTERVAL", "%lld", (long long)c->growth_interval);
    if (s & MXP_LAUNCH_KEY_HYSTERESIS) put(e, "MIXPREC_HYSTERESIS", "%d", c->hysteresis);
    if (s & MXP_LAUNCH_KEY_GRAD_ACCUM)
        put(e, "MIXPREC_GRAD_ACCUM", "%d", c->gradient_accumulation_steps);
}

/* ---- printing a command line --------------------------------------------------------------- */

static void print_word(FILE *out, const char *w) {
    int plain = *w != '\0';
    for (const char *p = w; *p && plain; p++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./=:,+-@%",
                       *p) != NULL;
    if (plain) {
        fputs(w, out);
        return;
    }
    fputc('\'', out);
    for (const char *p = w; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", out);
        else
            fputc(*p, out);
    }
    fputc('\'', out);
}

/* ---- running ------------------------------------------------------------------------------- */

static volatile sig_atomic_t child_pid, forwarded;

/* mpirun ends the job on its first SIGINT or SIGTERM; a second one within seconds makes it
 * exit at once and leave the ranks running, so it gets exactly one. */
static void forward(int sig) {
    if (child_pid > 0 && !forwarded) {
        forwarded = sig;
        kill((pid_t)child_pid, sig);
    }
}

static const char *signal_name(int sig) {
    switch (sig) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGKILL: return "SIGKILL";
    case SIGSEGV: return "SIGSEGV";
    case SIGABRT: return "SIGABRT";
    case SIGHUP: return "SIGHUP";
    default: return "a signal";
    }
}

/* Set SIGTTOU's disposition to ign while calling tcsetpgrp from a process group that may be in
 * the background (as shells do). */
static void give_terminal(pid_t pgrp) {
    struct sigaction ign = {0}, old;
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGTTOU, &ign, &old);
    tcsetpgrp(STDIN_FILENO, pgrp);
    sigaction(SIGTTOU, &old, NULL);
}

/* Fork mpirun in a process group of its own (so a signal sent to our group reaches it once,
 * through us), in the terminal's foreground when we held it (so Ctrl-C and reading stdin work
 * as for a bare mpirun), and wait for it. Returns its exit status, 128 + signal if killed. */
static int run_mpirun(char **argv, const char *program, int nproc) {
    const int tty = isatty(STDIN_FILENO) && tcgetpgrp(STDIN_FILENO) == getpgrp();
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &old);
    fflush(stdout);
    fflush(stderr);
    const pid_t parent = getpid();
    const pid_t pid = fork();
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        fprintf(stderr, "mixprec: launch: cannot start mpirun: fork failed: %s\n", strerror(errno));
        return CLI_EXIT_RUNTIME;
    }
    if (pid == 0) {
        setpgid(0, 0);
        if (tty) give_terminal(getpid());
        /* if the launcher dies (even by SIGKILL), mpirun still ends the job */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(CLI_EXIT_RUNTIME);
        sigprocmask(SIG_SETMASK, &old, NULL);
        execv(argv[0], argv);
        const char msg[] = "mixprec: launch: cannot run mpirun\n";
        if (write(STDERR_FILENO, msg, sizeof msg - 1) < 0) _exit(127);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: whichever runs first, the group exists before we wait */
    if (tty) give_terminal(pid);
    child_pid = pid;
    forwarded = 0;
    struct sigaction sa = {0}, old_int, old_term;
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    /* a signal ignored on entry (a background job of a script) stays ignored, as in a shell */
    sigaction(SIGINT, NULL, &old_int);
    sigaction(SIGTERM, NULL, &old_term);
    if (old_int.sa_handler != SIG_IGN) sigaction(SIGINT, &sa, NULL);
    if (old_term.sa_handler != SIG_IGN) sigaction(SIGTERM, &sa, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    int st = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {
    }
    child_pid = 0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (tty) give_terminal(getpgrp());
    if (w < 0) {
        fprintf(stderr, "mixprec: launch: waiting for mpirun failed: %s\n", strerror(errno));
        return CLI_EXIT_RUNTIME;
    }
    char after[48] = "";
    if (forwarded) snprintf(after, sizeof after, " after %s", signal_name(forwarded));
    if (WIFEXITED(st)) {
        const int code = WEXITSTATUS(st);
        if (code)
            fprintf(stderr,
                    "mixprec launch: %s failed on %d processes (exit status %d%s; mpirun's report "
                    "is above)\n",
                    cli_quote(program), nproc, code, after);
        return code;
    }
    const int sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    fprintf(stderr,
            "mixprec launch: %s failed on %d processes (mpirun was killed by signal %d, %s%s; its "
            "report, if any, is above)\n",
            cli_quote(program), nproc, sig, signal_name(sig), after);
    return 128 + sig;
}

/* ---- the command --------------------------------------------------------------------------- */

static int takes_value(const char *a) {
    const char *eq = strchr(a, '=');
    if (eq) return 0;
    for (int i = 0; i < NOPTS; i++)
        if (strcmp(a, opts[i].name) == 0) return opts[i].metavar != NULL;
    for (int i = 0; i < cli_nglobal_opts; i++)
        if (strcmp(a, cli_global_opts[i].name) == 0) return cli_global_opts[i].metavar != NULL;
    return 0;
}

/* A flag's value into c under the file's key name; the message names the flag. */
static int set_flag(mxp_launch_config *c, const char *key, const char *flag, const char *v) {
    if (mxp_launch_config_set(c, key, v) == MXP_OK) return 0;
    /* "launch_config.c:12: num_processes: 'x' is not ..." -> "--num-processes: 'x' is not ..." */
    const char *m = mxp_last_error(), *colon = strstr(m, ": ");
    m = colon ? colon + 2 : m;
    if (strncmp(m, key, strlen(key)) == 0 && strncmp(m + strlen(key), ": ", 2) == 0)
        m += strlen(key) + 2;
    return cli_usage_error("launch", "%s: %s", flag, m);
}

int cmd_launch(int argc, char **argv) {
    /* launch's own words end at PROGRAM; everything after it is PROGRAM's */
    int prog = -1, nwords = argc;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            nwords = i;
            prog = i + 1 < argc ? i + 1 : -1;
            break;
        }
        if (strncmp(a, "--", 2) != 0 && strcmp(a, "-h") != 0) {
            nwords = i;
            prog = i;
            break;
        }
        cli_dashes(1, &argv[i]);
        if (takes_value(a) && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) i++;
    }
    const char *vals[NOPTS];
    char **pos = argv;
    int npos;
    int rc = cli_parse("launch", nwords, argv, opts, NOPTS, vals, pos, &npos);
    if (rc) return rc;
    if (prog < 0)
        return cli_usage_error("launch",
                               "no PROGRAM given (mixprec launch [options] PROGRAM [ARGS...], e.g. "
                               "mixprec launch --num-processes 2 train)");
    const char *program = argv[prog];
    if (!*program) return cli_usage_error("launch", "PROGRAM is an empty word");

    /* the config file: named (must exist), or the default location (when it exists) */
    char cfg[PATH_MAX];
    const char *cfg_from = "--config-file", *cfg_path = NULL;
    if (vals[O_CONFIG]) {
        if (!*vals[O_CONFIG]) return cli_usage_error("launch", "--config-file needs a file name");
        snprintf(cfg, sizeof cfg, "%s", vals[O_CONFIG]);
        cfg_path = cfg;
    } else if (mxp_launch_config_path(cfg, sizeof cfg, &cfg_from) == MXP_OK) {
        if (strcmp(cfg_from, "MIXPREC_CONFIG_FILE") == 0 || access(cfg, F_OK) == 0) cfg_path = cfg;
    } else {
        mxp_clear_error(); /* no HOME: no default file, which is fine */
    }
    mxp_launch_config c;
    mxp_launch_config_default(&c);
    if (cfg_path) {
        struct stat sb;
        if (stat(cfg_path, &sb) != 0)
            return cli_usage_error("launch", "%s%s%s: %s", cfg_from,
                                   strcmp(cfg_from, "--config-file") ? "=" : " ",
                                   cli_quote(cfg_path), strerror(errno));
        if (S_ISDIR(sb.st_mode))
            return cli_usage_error("launch", "%s%s%s is a directory, not a launch config file",
                                   cfg_from, strcmp(cfg_from, "--config-file") ? "=" : " ",
                                   cli_quote(cfg_path));
        const mxp_status st = mxp_launch_config_read(&c, cfg_path);
        if (st != MXP_OK) return cli_file_error("launch", st);
    }

    /* flags win over the file */
    static const struct {
        int opt;
        const char *key;
    } flags[] = {{O_NPROC, "num_processes"},
                 {O_PREC, "mixed_precision"},
                 {O_THREADS2, "num_threads"},
                 {O_THREADS, "num_threads"},
                 {O_SCALE, "loss_scale"},
                 {O_ACCUM2, "gradient_accumulation_steps"},
                 {O_ACCUM, "gradient_accumulation_steps"}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (vals[flags[i].opt] &&
            set_flag(&c, flags[i].key, opts[flags[i].opt].name, vals[flags[i].opt]) != 0)
            return CLI_EXIT_USAGE;
    const int nproc = c.num_processes;

    /* PROGRAM: one of our command words runs this very binary */
    char path[PATH_MAX], mpirun[PATH_MAX];
    const int ours =
        !strchr(program, '/') && cli_is_command(program) && strcmp(program, "launch") != 0;
    if (ours) {
        /* the path itself: under mpirun, /proc/self/exe would be each rank's own */
        const ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
        if (n <= 0)
            return cli_usage_error("launch", "cannot find this mixprec binary (/proc/self/exe): %s",
                                   strerror(errno));
        path[n] = '\0';
    } else if (strchr(program, '/')) {
        if (!executable_file(program))
            return cli_usage_error("launch", "PROGRAM %s: %s", cli_quote(program),
                                   access(program, F_OK) != 0 ? strerror(errno)
                                                              : "not an executable file");
        snprintf(path, sizeof path, "%s", program);
    } else if (search_path(program, path, sizeof path) != 0) {
        return cli_usage_error("launch",
                               "PROGRAM '%s' is neither a mixprec command nor a program on PATH "
                               "(use ./%s for a file here)",
                               cli_quote(program), cli_quote(program));
    }
    if (nproc > 1 && search_path("mpirun", mpirun, sizeof mpirun) != 0)
        return cli_usage_error("launch",
                               "%d processes need mpirun, which is not on PATH (hint: apt-get "
                               "install openmpi-bin)",
                               nproc);

    launch_env env;
    build_env(&env, &c, cfg_path);

    /* the command: [mpirun -np N ... -x VAR...] PATH [COMMAND] ARGS... */
    const int nargs = argc - prog - 1;
    char **cmd = calloc((size_t)(nargs + 2 * MAXVARS + 16), sizeof *cmd);
    if (!cmd) {
        fprintf(stderr, "mixprec: launch: out of memory\n");
        return CLI_EXIT_RUNTIME;
    }
    int k = 0;
    char np[16];
    if (nproc > 1) {
        snprintf(np, sizeof np, "%d", nproc);
        cmd[k++] = mpirun;
        cmd[k++] = "-np";
        cmd[k++] = np;
        cmd[k++] = "--oversubscribe"; /* N may exceed the cores (or mpirun's idea of slots) */
        cmd[k++] = "--bind-to";       /* each rank runs threads: pinning to one core would */
        cmd[k++] = "none";            /* serialise them */
        if (geteuid() == 0) cmd[k++] = "--allow-run-as-root";
        for (int i = 0; i < env.n; i++) {
            cmd[k++] = "-x"; /* passes the variable to every rank, on any node */
            cmd[k++] = env.name[i];
        }
    }
    const int prog_word = k;
    cmd[k++] = ours || nproc > 1 ? path : (char *)program;
    if (ours) cmd[k++] = (char *)program;
    for (int i = 0; i < nargs; i++) cmd[k++] = argv[prog + 1 + i];
    cmd[k] = NULL;

    if (vals[O_DRY]) {
        for (int i = 0; i < k; i++) {
            if (i) putchar(' ');
            /* show where PROGRAM was found */
            print_word(stdout, i == prog_word ? path : cmd[i]);
        }
        putchar('\n');
        for (int i = 0; i < env.n; i++) printf("%s=%s\n", env.name[i], env.value[i]);
        free(cmd);
        return CLI_EXIT_OK;
    }
    for (int i = 0; i < env.n; i++) {
        if (setenv(env.name[i], env.value[i], 1) != 0) {
            free(cmd);
            fprintf(stderr, "mixprec: launch: cannot set %s: %s\n", env.name[i], strerror(errno));
            return CLI_EXIT_RUNTIME;
        }
    }
    if (nproc == 1) {
        fflush(stdout);
        fflush(stderr);
        execv(path, cmd);
        const int err = errno;
        free(cmd);
        fprintf(stderr, "mixprec: launch: cannot run %s: %s\n", cli_quote(path), strerror(err));
        return err == ENOENT ? 127 : 126; /* as a shell would */
    }
    rc = run_mpirun(cmd, program, nproc);
    free(cmd);
    return rc;
}
