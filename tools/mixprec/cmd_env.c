/*
 * cmd_env.c - `mixprec env`: what this build of mixprec will run here: the
 * version, the CPU features, the kernel family chosen and why, the GEMM
 * kernels, threads, build options, the MPI library, the launched world, the
 * launch config in effect and the MIXPREC_* environment. It reports; it never
 * changes a setting, and a broken config file is reported, not an error.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

extern char **environ;

static const cli_opt opts[] = {
    {"--json", NULL, "one JSON object on one line"},
};
enum { NOPTS = sizeof opts / sizeof opts[0] };

void help_env(FILE *out) {
    fprintf(out,
            "usage: mixprec env [--json]\n"
            "\n"
            "The version; the CPU features libmixprec can use; the kernel family (ISA) the\n"
            "CPU supports and the one in use, and why (detected, MIXPREC_ISA, --isa); the GEMM\n"
            "kernel chosen for fp32, bf16 and fp16 inputs; the thread count and where it came\n"
            "from (--threads, MIXPREC_NUM_THREADS, OpenMP's default); how this binary was\n"
            "built (compiler, optimisation, NDEBUG, sanitizers); the MPI library; the world\n"
            "this process was launched into (MIXPREC_NUM_PROCESSES, OMPI_COMM_WORLD_SIZE); the\n"
            "launch config in effect (its path, where the path came from, whether it exists,\n"
            "its values); and every MIXPREC_* variable set.\n"
            "\n"
            "options:\n");
    cli_print_opts(out, opts, NOPTS);
    cli_print_opts(out, cli_global_opts, cli_nglobal_opts);
    fprintf(out, "\nexample: MIXPREC_ISA=avx2 mixprec env\n");
}

/* libubsan exports this (for debuggers); gcc defines no macro for
 * -fsanitize=undefined, so a weak reference is the only way to tell. */
extern void *__ubsan_get_current_report_data(void) __attribute__((weak));

static void sanitizers(char *buf, size_t size) {
    snprintf(buf, size, "%s%s",
#if defined(__SANITIZE_ADDRESS__)
             "address ",
#else
             "",
#endif
             __ubsan_get_current_report_data ? "undefined " : "");
    size_t n = strlen(buf);
    if (n)
        buf[n - 1] = '\0';
    else
        snprintf(buf, size, "none");
}

static const char *openmp_version(void) {
#if defined(_OPENMP)
    switch (_OPENMP) {
    case 201307: return "4.0";
    case 201511: return "4.5";
    case 201811: return "5.0";
    case 202011: return "5.1";
    case 202111: return "5.2";
    default: return "?";
    }
#else
    return "no";
#endif
}

/* The launch config `mixprec launch` would use with no --config-file. */
typedef struct env_config {
    char path[4096];
    const char *from; /* MIXPREC_CONFIG_FILE, XDG_CONFIG_HOME, HOME; NULL when there is none */
    int exists;
    int ok; /* read without error (or absent: the defaults) */
    char error[512];
    mxp_launch_config c;
} env_config;

static void config_in_effect(env_config *e) {
    memset(e, 0, sizeof *e);
    mxp_launch_config_default(&e->c);
    e->ok = 1;
    if (mxp_launch_config_path(e->path, sizeof e->path, &e->from) != MXP_OK) {
        e->from = NULL;
        snprintf(e->error, sizeof e->error, "%s", mxp_last_error());
        mxp_clear_error();
        return;
    }
    e->exists = access(e->path, F_OK) == 0;
    if (e->exists && mxp_launch_config_read(&e->c, e->path) != MXP_OK) {
        const char *m = mxp_last_error(), *colon = strstr(m, ": ");
        snprintf(e->error, sizeof e->error, "%s", colon ? colon + 2 : m);
        mxp_clear_error();
        e->ok = 0;
    }
}

static int is_mixprec_var(const char *e) {
    return strncmp(e, "MIXPREC_", 8) == 0 && strchr(e, '=');
}

/* a positive whole number from the environment, or 0 */
static long env_count(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) return 0;
    char *end;
    const long n = strtol(v, &end, 10);
    return *end || n < 1 ? 0 : n;
}

static void json_launch_config(const mxp_launch_config *c) {
    printf("{\"compute_environment\":");
    json_str(stdout, c->compute_environment);
    printf(",\"distributed_type\":");
    json_str(stdout, c->distributed_type);
    printf(",\"num_processes\":%d,\"mixed_precision\":", c->num_processes);
    json_str(stdout, c->mixed_precision);
    printf(",\"num_threads\":%d,\"loss_scale\":", c->num_threads);
    json_str(stdout, c->loss_scale);
    printf(",\"init_scale\":");
    json_num(stdout, c->init_scale);
    printf(",\"growth_interval\":%lld,\"hysteresis\":%d,\"gradient_accumulation_steps\":%d}",
           (long long)c->growth_interval, c->hysteresis, c->gradient_accumulation_steps);
}

int cmd_env(int argc, char **argv) {
    const char *vals[NOPTS];
    char **pos = argv;
    int npos;
    int rc = cli_parse("env", argc, argv, opts, NOPTS, vals, pos, &npos);
    if (rc) return rc;
    if (npos)
        return cli_usage_error("env", "unexpected argument '%s' (env takes only --json)",
                               cli_quote(pos[0]));
    const int json = vals[0] != NULL;

    const mxp_isa det = mxp_isa_detect(), act = mxp_isa_active();
    char usable[64] = "";
    for (int i = 0; i <= (int)det; i++) {
        /* each family is a superset of the ones below it */
        strcat(usable, mxp_isa_name((mxp_isa)i));
        if (i < (int)det) strcat(usable, " ");
    }
    char why[96];
    const char *env_isa = getenv("MIXPREC_ISA"), *env_thr = getenv("MIXPREC_NUM_THREADS");
    const char *env_omp = getenv("OMP_NUM_THREADS");
    if (strcmp(cli_g.isa_why, "forced by MIXPREC_ISA") == 0)
        snprintf(why, sizeof why, "forced by MIXPREC_ISA=%s", mxp_isa_name(act));
    else
        snprintf(why, sizeof why, "%s", cli_g.isa_why);
    /* each call reuses one buffer (valid until the next call), so keep copies */
    char k_f32[128], k_bf16[128], k_f16[128];
    snprintf(k_f32, sizeof k_f32, "%s", mxp_gemm_kernel_name(MXP_DTYPE_F32, MXP_DTYPE_F32));
    snprintf(k_bf16, sizeof k_bf16, "%s", mxp_gemm_kernel_name(MXP_DTYPE_BF16, MXP_DTYPE_BF16));
    snprintf(k_f16, sizeof k_f16, "%s", mxp_gemm_kernel_name(MXP_DTYPE_F16, MXP_DTYPE_F16));
    const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    char san[48];
    sanitizers(san, sizeof san);
#if defined(__OPTIMIZE__)
    const int optimized = 1;
#else
    const int optimized = 0;
#endif
#if defined(NDEBUG)
    const int ndebug = 1;
#else
    const int ndebug = 0;
#endif
    /* __VERSION__ is the bare version for gcc ("12.2.0"), a full banner for clang */
#if defined(__clang__)
    const char *cc = "clang";
#elif defined(__GNUC__)
    const char *cc = "gcc";
#else
    const char *cc = "cc";
#endif
#if defined(__VERSION__)
    const char *version = __VERSION__;
#else
    const char *version = "(version unknown)";
#endif
    char compiler[160];
    if (strncmp(version, cc, strlen(cc)) == 0 || strstr(version, "clang"))
        snprintf(compiler, sizeof compiler, "%s", version);
    else
        snprintf(compiler, sizeof compiler, "%s %s", cc, version);

    char mpi[256];
    mxp_dist_library(mpi, sizeof mpi);
    const long world_mixprec = env_count("MIXPREC_NUM_PROCESSES");
    const long world_ompi = env_count("OMPI_COMM_WORLD_SIZE");
    const char *rank = getenv("OMPI_COMM_WORLD_RANK");
    env_config cfg;
    config_in_effect(&cfg);

    if (json) {
        printf("{\"version\":\"%s\",\"cpu_features\":", mxp_version());
        json_str(stdout, mxp_cpu_features());
        printf(",\"isa_detected\":\"%s\",\"isa_active\":\"%s\",\"isa_why\":", mxp_isa_name(det),
               mxp_isa_name(act));
        json_str(stdout, why);
        printf(",\"gemm_kernels\":{\"f32\":");
        json_str(stdout, k_f32);
        printf(",\"bf16\":");
        json_str(stdout, k_bf16);
        printf(",\"f16\":");
        json_str(stdout, k_f16);
        printf("},\"threads\":%d,\"threads_why\":", mxp_num_threads());
        json_str(stdout, cli_g.threads_why);
        printf(",\"cpus_online\":%ld,\"openmp\":%s,\"compiler\":", cpus,
               mxp_have_openmp() ? "true" : "false");
        json_str(stdout, compiler);
        printf(",\"optimized\":%s,\"ndebug\":%s,\"sanitizers\":\"%s\",\"mpi_library\":",
               optimized ? "true" : "false", ndebug ? "true" : "false", san);
        json_str(stdout, mpi);
        printf(",\"world\":{\"num_processes\":");
        if (world_mixprec)
            printf("%ld", world_mixprec);
        else
            printf("null");
        printf(",\"ompi_comm_world_size\":");
        if (world_ompi)
            printf("%ld", world_ompi);
        else
            printf("null");
        printf(",\"ompi_comm_world_rank\":");
        if (rank && *rank)
            json_str(stdout, rank);
        else
            printf("null");
        printf("},\"config_file\":{\"path\":");
        if (cfg.from)
            json_str(stdout, cfg.path);
        else
            printf("null");
        printf(",\"from\":");
        if (cfg.from)
            json_str(stdout, cfg.from);
        else
            printf("null");
        printf(",\"exists\":%s,\"values\":", cfg.exists ? "true" : "false");
        if (cfg.ok)
            json_launch_config(&cfg.c);
        else
            printf("null");
        printf(",\"error\":");
        if (*cfg.error)
            json_str(stdout, cfg.error);
        else
            printf("null");
        printf("},\"mixprec_environment\":{");
        int first = 1;
        for (char **e = environ; *e; e++) {
            if (!is_mixprec_var(*e)) continue;
            const char *eq = strchr(*e, '=');
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
            printf("%s", first ? "" : ",");
            json_str(stdout, name);
            putchar(':');
            json_str(stdout, eq + 1);
            first = 0;
        }
        printf("}}\n");
        return CLI_EXIT_OK;
    }
    printf("mixprec        %s\n", mxp_version());
    printf("cpu features   %s\n", *mxp_cpu_features() ? mxp_cpu_features() : "(none usable)");
    printf("isa detected   %s (usable here: %s)\n", mxp_isa_name(det), usable);
    printf("isa active     %s (%s)\n", mxp_isa_name(act), why);
    printf("gemm kernels   fp32: %s\n", k_f32);
    printf("               bf16: %s\n", k_bf16);
    printf("               fp16: %s\n", k_f16);
    printf("threads        %d (%s; %ld CPUs online)\n", mxp_num_threads(), cli_g.threads_why, cpus);
    printf("openmp         %s (OpenMP %s)\n", mxp_have_openmp() ? "on" : "off", openmp_version());
    printf("environment    MIXPREC_ISA=%s MIXPREC_NUM_THREADS=%s OMP_NUM_THREADS=%s\n",
           env_isa ? cli_quote(env_isa) : "(unset)", env_thr ? cli_quote(env_thr) : "(unset)",
           env_omp ? cli_quote(env_omp) : "(unset)");
    printf("backends       cpu%s (cuda is not built into this version)\n",
           strcmp(mpi, "none") ? ", mpi" : "; mpi is not built into this version");
    printf("mpi            %s\n", mpi);
    if (world_mixprec || world_ompi) {
        const long w = world_ompi ? world_ompi : world_mixprec;
        printf("world          %ld process%s (MIXPREC_NUM_PROCESSES=%s, OMPI_COMM_WORLD_SIZE=%s", w,
               w == 1 ? "" : "es",
               world_mixprec ? cli_quote(getenv("MIXPREC_NUM_PROCESSES")) : "(unset)",
               world_ompi ? cli_quote(getenv("OMPI_COMM_WORLD_SIZE")) : "(unset)");
        if (rank && *rank) printf("; this is rank %s", cli_quote(rank));
        printf(")\n");
    } else {
        printf("world          1 process (not started by mixprec launch or mpirun)\n");
    }
    if (!cfg.from) {
        printf("launch config  none: %s\n", cfg.error);
    } else {
        printf("launch config  %s (from %s; %s)\n", cfg.path, cfg.from,
               !cfg.exists ? "does not exist: mixprec config writes it"
               : cfg.ok    ? "exists"
                           : "exists, but does not read");
        if (!cfg.ok)
            printf("               error: %s\n", cfg.error);
        else if (cfg.exists)
            cli_print_launch_config(stdout, &cfg.c, "               ");
    }
    int nvars = 0;
    for (char **e = environ; *e; e++) {
        if (!is_mixprec_var(*e)) continue;
        fputs(nvars ? "               " : "mixprec vars   ", stdout);
        for (const char *p = *e; *p; p++) /* whole, but on one line */
            putchar((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p);
        putchar('\n');
        nvars++;
    }
    if (!nvars) printf("mixprec vars   (none set)\n");
    printf("build          %s, C %ld, %s, %s, sanitizers: %s\n", compiler, (long)__STDC_VERSION__,
           optimized ? "optimized" : "not optimized",
           ndebug ? "NDEBUG (asserts off)" : "asserts on", san);
    return CLI_EXIT_OK;
}
