/*
 * cmd_generate.c - `mixprec generate`: load a gpt checkpoint and continue a
 * prompt, streaming the text as it is sampled (mxp_model_generate). A
 * character-level model encodes and decodes through the vocabulary stored in
 * its config.json; a model trained on token shards takes and prints ids.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_opt opts[] = {
    {"--checkpoint", "DIR",
     "a gpt checkpoint, or an output directory of train --save (its newest); required"},
    {"--prompt", "TEXT",
     "the text to continue (default: a newline); a model trained on token shards takes "
     "token ids separated by commas or spaces"},
    {"--tokens", "N", "tokens to generate (default 200)"},
    {"--temperature", "T", "divide the logits by T before sampling (default 0.8; 0 = greedy)"},
    {"--top-k", "K", "sample among the K most likely tokens only (default: all)"},
    {"--seed", "N", "the draws' seed: same seed, same text (default 42)"},
    {"--mixed-precision", "P", "no, fp16 or bf16 (default: the precision it was trained in)"},
};
enum { NOPTS = sizeof opts / sizeof opts[0] };

void help_generate(FILE *out) {
    fprintf(out,
            "usage: mixprec generate --checkpoint DIR [--prompt TEXT] [--tokens N] [options]\n\n"
            "Continue a prompt with a gpt checkpoint written by `mixprec train --model gpt\n"
            "--save DIR`: each token is drawn from softmax(logits / temperature) of the\n"
            "last position (top-k if given), the context cropped to the block size. The\n"
            "prompt and its continuation go to stdout as they are produced.\n\noptions:\n");
    cli_print_opts(out, opts, NOPTS);
    cli_print_opts(out, cli_global_opts, cli_nglobal_opts);
    fprintf(out, "\nexample:\n  mixprec generate --checkpoint gpt-out --prompt 'Q: ' --tokens 300 "
                 "--seed 7\n");
}

typedef struct stream {
    const mxp_checkpoint_meta *meta; /* chars: the character vocabulary, or none */
    int first;
    int last; /* the last byte written (char level), -1 before any */
} stream;

static void put_token(int32_t t, void *user) {
    stream *s = user;
    if (s->meta->n_chars > 0) {
        s->last = s->meta->chars[t];
        fputc(s->last, stdout);
    } else
        printf(s->first ? "%d" : " %d", t);
    s->first = 0;
    fflush(stdout);
}

/* The prompt as token ids: bytes through the vocabulary, or ids when there is none.
 * Returns 0 or CLI_EXIT_USAGE after one line. */
static int encode(const char *text, const mxp_checkpoint_meta *meta, int64_t vocab, int32_t *ids,
                  int64_t *n) {
    *n = 0;
    if (meta->n_chars > 0) {
        for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
            int id = -1;
            for (int i = 0; i < meta->n_chars; i++)
                if (meta->chars[i] == *p) id = i;
            if (id < 0)
                return cli_usage_error("generate",
                                       "--prompt: the byte 0x%02x ('%c') is not in the model's "
                                       "vocabulary of %d characters; leave it out",
                                       *p, *p >= 32 && *p < 127 ? *p : '?', meta->n_chars);
            ids[(*n)++] = id;
        }
        return 0;
    }
    const char *p = text;
    while (*p) {
        while (*p == ',' || *p == ' ') p++;
        if (!*p) break;
        char *end;
        errno = 0;
        const long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v >= vocab)
            return cli_usage_error("generate",
                                   "--prompt: '%s' is not a token id in [0, %lld) (this model "
                                   "was trained on token shards: give ids separated by commas)",
                                   cli_quote(p), (long long)vocab);
        ids[(*n)++] = (int32_t)v;
        p = end;
    }
    return 0;
}

int cmd_generate(int argc, char **argv) {
    const char *vals[NOPTS];
    char **pos = argv;
    int npos = 0;
    int rc = cli_parse("generate", argc, argv, opts, NOPTS, vals, pos, &npos);
    if (rc) return rc;
    if (npos) return cli_usage_error("generate", "unexpected argument '%s'", cli_quote(pos[0]));
    if (!vals[0])
        return cli_usage_error("generate", "--checkpoint DIR is required (a directory written "
                                           "by mixprec train --model gpt --save DIR)");
    unsigned long long n_new = 200, top_k = 0, seed = 42;
    if (vals[2] && (rc = cli_parse_count("generate", "--tokens", vals[2], 0, 1u << 24, &n_new)))
        return rc;
    if (vals[4] && (rc = cli_parse_count("generate", "--top-k", vals[4], 1, 1u << 24, &top_k)))
        return rc;
    if (vals[5] && (rc = cli_parse_count("generate", "--seed", vals[5], 0, ~0ull, &seed)))
        return rc;
    double temp = 0.8;
    if (vals[3]) {
        char *end;
        errno = 0;
        temp = strtod(vals[3], &end);
        if (!*vals[3] || *end || errno || !isfinite(temp) || temp < 0 || temp > 1e6)
            return cli_usage_error("generate",
                                   "--temperature: '%s' is not a number in [0, 1e6] (0 = greedy)",
                                   cli_quote(vals[3]));
    }
    mxp_precision prec = MXP_PREC_NO;
    if (vals[6] && mxp_precision_parse(vals[6], &prec) != MXP_OK)
        return cli_file_error("generate", MXP_ERR_INVALID_ARG);

    mxp_checkpoint_meta *meta = calloc(1, sizeof *meta);
    if (!meta) return cli_lib_error("generate", MXP_ERR_NOMEM);
    char dir[4096];
    mxp_model_t *m = NULL;
    int32_t *ids = NULL;
    mxp_status st = mxp_checkpoint_find(vals[0], dir, sizeof dir);
    if (st == MXP_OK) st = mxp_checkpoint_load(dir, &m, meta);
    if (st != MXP_OK) {
        free(meta);
        return cli_file_error("generate", st);
    }
    if (!m->gpt) {
        rc = cli_usage_error("generate",
                             "%s holds a %s, not a gpt: generate needs a language model "
                             "(mixprec train --model gpt)",
                             dir, m->name);
        goto done;
    }
    if (!vals[6]) mxp_precision_parse(meta->mixed_precision, &prec);
    const int64_t vocab = m->config.vocab_size;
    const char *prompt = vals[1] ? vals[1] : meta->n_chars > 0 ? "\n" : "0";
    const size_t cap = strlen(prompt) + 1 + (size_t)n_new;
    ids = malloc(cap * sizeof *ids);
    if (!ids) {
        rc = cli_lib_error("generate", MXP_ERR_NOMEM);
        goto done;
    }
    int64_t n_prompt = 0;
    if ((rc = encode(prompt, meta, vocab, ids, &n_prompt))) goto done;
    if (n_prompt == 0) {
        rc = cli_usage_error("generate", "--prompt is empty: give at least one token");
        goto done;
    }
    st = mxp_model_set_precision(m, mxp_precision_dtype(prec), 1);
    if (st != MXP_OK) {
        rc = cli_lib_error("generate", st);
        goto done;
    }
    stream s = {.meta = meta, .first = 1, .last = -1};
    for (int64_t i = 0; i < n_prompt; i++) put_token(ids[i], &s);
    const mxp_sample_options so = {
        .temperature = (float)temp, .top_k = (int)top_k, .seed = (uint64_t)seed};
    st = mxp_model_generate(m, ids, n_prompt, (int64_t)n_new, &so, ids, put_token, &s);
    if (s.last != '\n') putchar('\n'); /* end on a newline (token ids always need one) */
    rc = st == MXP_OK ? CLI_EXIT_OK : cli_lib_error("generate", st);
done:
    free(ids);
    free(meta);
    mxp_model_free(m);
    return rc;
}
