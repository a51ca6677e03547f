/*
 * cmd_eval.c - `mixprec eval`: load a checkpoint written by `mixprec train
 * --save`, evaluate it on the test split, print loss and accuracy (and an
 * eval line to --log). It trains nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const cli_opt opts[] = {
    {"--checkpoint", "DIR",
     "a checkpoint directory, or an output directory of train --save (its newest "
     "checkpoint-<step>); required"},
    {"--data", "DIR",
     "fashion-mnist (default) or an IDX directory with t10k-* files; for a gpt, the text or "
     "shards it was trained on (default: its training data)"},
    {"--mixed-precision", "P", "no, fp16 or bf16 (default: the precision it was trained in)"},
    {"--batch-size", "N", "evaluation batch (default 256; gpt: 8 sequences)"},
    {"--log", "FILE", "append an eval line (JSON) to FILE"},
};
enum { NOPTS = sizeof opts / sizeof opts[0] };

void help_eval(FILE *out) {
    fprintf(out, "usage: mixprec eval --checkpoint DIR [options]\n\n"
                 "Test loss and accuracy of a trained model, computed in the given precision\n"
                 "(weights rounded once from the fp32 checkpoint).\n\noptions:\n");
    cli_print_opts(out, opts, NOPTS);
    cli_print_opts(out, cli_global_opts, cli_nglobal_opts);
}

static const char *lib_msg(void) {
    const char *msg = mxp_last_error();
    const char *colon = strstr(msg, ": ");
    return colon ? colon + 2 : msg;
}

int cmd_eval(int argc, char **argv) {
    const char *vals[NOPTS];
    char **pos = argv;
    int npos = 0;
    int rc = cli_parse("eval", argc, argv, opts, NOPTS, vals, pos, &npos);
    if (rc) return rc;
    if (npos) return cli_usage_error("eval", "unexpected argument '%s'", cli_quote(pos[0]));
    if (!vals[0])
        return cli_usage_error("eval", "--checkpoint DIR is required (a directory written by "
                                       "mixprec train --save DIR)");
    unsigned long long batch = 256;
    if (vals[3] && (rc = cli_parse_count("eval", "--batch-size", vals[3], 1, 1u << 20, &batch)))
        return rc;
    mxp_precision prec = MXP_PREC_NO;
    if (vals[2] && mxp_precision_parse(vals[2], &prec) != MXP_OK)
        return cli_usage_error("eval", "--mixed-precision: %s", lib_msg());
    mxp_model_t *m = NULL;
    char dir[4096];
    mxp_checkpoint_meta *meta = calloc(1, sizeof *meta);
    if (!meta) {
        fprintf(stderr, "mixprec: eval: out of memory\n");
        return CLI_EXIT_RUNTIME;
    }
    mxp_status st = mxp_checkpoint_find(vals[0], dir, sizeof dir);
    if (st == MXP_OK) st = mxp_checkpoint_load(dir, &m, meta);
    const float mean = meta->mean, std = meta->std;
    if (st == MXP_OK && !vals[2]) mxp_precision_parse(meta->mixed_precision, &prec);
    if (st != MXP_OK) {
        free(meta);
        fprintf(stderr, "mixprec: eval: %s\n", lib_msg());
        return st == MXP_ERR_NOMEM ? CLI_EXIT_RUNTIME : CLI_EXIT_USAGE;
    }
    char data[4096];
    mxp_dataset_t *test = NULL, *train = NULL;
    double loss = 0, acc = 0;
    const int gpt = m->gpt != NULL;
    if (gpt) { /* the validation split of its text, read with its vocabulary */
        mxp_text_options to;
        mxp_text_options_default(&to);
        to.block = m->config.block_size;
        if (meta->have_args && meta->args.val_split > 0.0f) to.val_frac = meta->args.val_split;
        if (meta->n_chars > 0) {
            to.chars = meta->chars;
            to.n_chars = meta->n_chars;
        }
        const char *src = vals[1]                                 ? vals[1]
                          : meta->have_args && meta->args.data[0] ? meta->args.data
                                                                  : "fortunes";
        st = mxp_text_load(&train, &test, src, &to);
        mxp_dataset_free(train);
        if (!vals[3]) batch = 8;
        if (st == MXP_OK && (test->n_chars > 0) != (meta->n_chars > 0))
            st = MXP_ERR_SHAPE, fprintf(stderr,
                                        "mixprec: eval: %s is %s but the model was trained on "
                                        "%s; give --data the kind it was trained on\n",
                                        src, test->n_chars > 0 ? "text" : "token shards",
                                        meta->n_chars > 0 ? "text" : "token shards");
        else if (st == MXP_OK && test->vocab_size > m->config.vocab_size)
            st = MXP_ERR_SHAPE, fprintf(stderr,
                                        "mixprec: eval: %s holds token ids up to %d; the "
                                        "model's vocabulary has %lld\n",
                                        src, test->vocab_size - 1, (long long)m->config.vocab_size);
    } else {
        st = mxp_dataset_dir(data, sizeof data, vals[1] ? vals[1] : "fashion-mnist");
        if (st == MXP_OK) st = mxp_dataset_load_idx(&test, data, "test");
        if (st == MXP_OK) st = mxp_dataset_set_norm(test, mean, std);
    }
    free(meta);
    if (st == MXP_OK && !gpt && (test->H != m->in_shape[0] || test->W != m->in_shape[1]))
        st = MXP_ERR_SHAPE, fprintf(stderr,
                                    "mixprec: eval: the test images are %lldx%lld but the "
                                    "model takes %lldx%lld\n",
                                    (long long)test->H, (long long)test->W,
                                    (long long)m->in_shape[0], (long long)m->in_shape[1]);
    else if (st == MXP_OK)
        st = mxp_model_set_precision(m, mxp_precision_dtype(prec), 1);
    if (st == MXP_OK) st = mxp_evaluate(m, test, (int64_t)batch, &loss, &acc);
    if (st == MXP_OK && vals[4]) {
        mxp_jsonl_t *log;
        st = mxp_jsonl_open(&log, vals[4], 1);
        if (st == MXP_OK) {
            mxp_json o;
            mxp_json_begin(&o);
            mxp_json_str(&o, "event", "eval");
            mxp_json_str(&o, "split", gpt ? "val" : "test");
            mxp_json_str(&o, "checkpoint", dir);
            mxp_json_str(&o, "mixed_precision", mxp_precision_name(prec));
            mxp_json_num(&o, "loss", loss);
            mxp_json_num(&o, "accuracy", acc);
            st = mxp_jsonl_write(log, &o);
            mxp_json_free(&o);
            mxp_status cst = mxp_jsonl_close(log);
            if (st == MXP_OK) st = cst;
        }
    }
    const int64_t n_test = test ? (gpt ? test->n * test->block : test->n) : 0;
    mxp_dataset_free(test);
    mxp_model_free(m);
    if (st == MXP_ERR_SHAPE) return CLI_EXIT_USAGE;
    if (st != MXP_OK) {
        fprintf(stderr, "mixprec: eval: %s\n", lib_msg());
        return st == MXP_ERR_NOMEM ? CLI_EXIT_RUNTIME : CLI_EXIT_USAGE;
    }
    if (gpt)
        printf("val loss %.4f  (next-token accuracy %.4f, %s, %lld tokens)\n", loss, acc,
               mxp_precision_name(prec), (long long)n_test);
    else
        printf("test accuracy %.4f  (test loss %.4f, %s, %lld samples)\n", acc, loss,
               mxp_precision_name(prec), (long long)n_test);
    return CLI_EXIT_OK;
}
