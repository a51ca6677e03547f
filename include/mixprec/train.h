/*
 * mixprec/train.h - the accelerate-style accelerator and the Trainer-style loop.
 *
 * The accelerator is the one object a training program talks to, as in
 * Hugging Face accelerate: it resolves the precision settings (options, then
 * the MIXPREC_* environment that `mixprec launch` sets, then defaults),
 * prepares the model and optimizer for that precision, owns the step's graph
 * (the autocast context) and the loss scaler, and turns "backward, clip,
 * step" into the mixed-precision recipe: the loss times the scale, one pass
 * for the unscaled norm and the overflow check, a skipped step on overflow,
 * the update on fp32 master weights, the cast cache refreshed.
 *
 *     mxp_accelerator_options o;  mxp_accelerator_options_init(&o);
 *     o.mixed_precision = "bf16";                       // Accelerator(mixed_precision="bf16")
 *     mxp_accelerator_t *acc;  mxp_accelerator_create(&acc, &o);
 *     mxp_accelerator_prepare(acc, model, opt, train, valid);
 *     for (;;) {
 *         mxp_var *x; const int32_t *y; int64_t b;
 *         mxp_accelerator_next_batch(acc, train, &x, &y, &b);
 *         if (b == 0) break;                            // end of the epoch
 *         mxp_var *logits, *loss;
 *         mxp_model_forward(model, mxp_accelerator_graph(acc), x, &logits);
 *         mxp_op_cross_entropy(mxp_accelerator_graph(acc), &loss, logits, y);
 *         mxp_accelerator_backward(acc, loss);         // accelerator.backward(loss)
 *         mxp_accelerator_clip_grad_norm(acc, 1.0f, NULL);
 *         mxp_accelerator_step(acc, NULL);             // optimizer.step(); zero_grad()
 *     }
 *
 * The Trainer runs that loop for a whole job from arguments (flags, an
 * `--args FILE.yaml` of Trainer-style keys such as `bf16: true`), evaluates,
 * logs JSON lines and reports through a callback.
 */
#ifndef MIXPREC_TRAIN_H
#define MIXPREC_TRAIN_H

#include "mixprec/amp.h"
#include "mixprec/data.h"
#include "mixprec/io.h"
#include "mixprec/optim.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the accelerator ----------------------------------------------------------- */

/* Unset fields (NULL, -1, 0 as noted) are taken from the environment variable
 * named, else the default. `mixprec launch` sets those variables from its
 * flags and config file; MIXPREC_INIT_SCALE, MIXPREC_GROWTH_INTERVAL and
 * MIXPREC_HYSTERESIS stand for the three scaler fields below. Creating an
 * accelerator joins the MPI job when the process was launched as one of
 * several (mxp_dist_init). */
typedef struct mxp_accelerator_options {
    const char
        *mixed_precision;    /* "no" | "fp16" | "bf16"; NULL: MIXPREC_MIXED_PRECISION, else "no" */
    int master_weights;      /* 1 on, 0 off; -1: MIXPREC_MASTER_WEIGHTS (on/off), else on */
    const char *loss_scale;  /* "dynamic" or a number N > 0 (static); NULL:
                                MIXPREC_LOSS_SCALE, else dynamic in fp16 and off otherwise */
    int64_t growth_interval; /* 0: 2000 */
    int hysteresis;          /* 0: 1 (GradScaler) */
    float init_scale;        /* 0: 65536 */
    float min_scale;         /* the floor: 0 = 1 (DeepSpeed's min_loss_scale); an fp16 run
                                whose scale must back off below it stops (MXP_ERR_NONFINITE) */
    float max_scale;         /* 0: no ceiling */
    int grad_accum;          /* micro-batches per optimizer step; 0: MIXPREC_GRAD_ACCUM, else 1 */
    int num_threads;         /* 0: MIXPREC_NUM_THREADS, else every core */
    uint64_t seed;           /* dropout masks */
    int stats_every;         /* count zero gradients and lost updates every N steps; 0 never */
    int numerics_stats;      /* also measure every tensor on those steps (mxp_numerics: weights,
                                gradients before and after unscaling, activations and their
                                gradients), reported through mxp_accelerator_set_numerics */
    int profile;             /* time every op (mxp_graph_profile) */
} mxp_accelerator_options;

/* Everything unset. */
MXP_API void mxp_accelerator_options_init(mxp_accelerator_options *o);

typedef struct mxp_accelerator mxp_accelerator_t;

/* Resolve the options and the environment. Errors: MXP_ERR_INVALID_ARG with
 * one line naming the bad setting and where it came from (e.g.
 * "MIXPREC_MIXED_PRECISION=fp8: unknown mixed precision 'fp8' ..."). */
MXP_API mxp_status mxp_accelerator_create(mxp_accelerator_t **out,
                                          const mxp_accelerator_options *o);
MXP_API void mxp_accelerator_free(mxp_accelerator_t *acc);

/* accelerator.prepare(model, optimizer, train_loader, valid_loader): switch
 * the model to the working dtype (with or without fp32 master weights), bind
 * the optimizer to it. The loaders (either may be NULL) are part of the
 * signature, as in accelerate. In a job of several processes (mixprec
 * launch), the training loader is sharded by rank (mxp_loader_shard: every
 * rank must have created it alike) and rank 0's weights are broadcast to
 * every rank; the validation loader is left whole. Alone, nothing changes.
 * Retains model and optimizer, which must outlive the accelerator.
 * Errors: MXP_ERR_INVALID_ARG (prepared twice, a loader too small to shard),
 * MXP_ERR_DIST (MPI), from the callees. */
MXP_API mxp_status mxp_accelerator_prepare(mxp_accelerator_t *acc, mxp_model_t *model,
                                           mxp_optimizer_t *opt, mxp_loader_t *train,
                                           mxp_loader_t *valid);

/* Learning rate per applied optimizer step (skipped steps do not advance it).
 * Without one, the optimizer's lr is constant. Copied. */
MXP_API void mxp_accelerator_set_schedule(mxp_accelerator_t *acc, const mxp_schedule *s);

/* The graph of the current micro-batch: run the forward pass on it. */
MXP_API mxp_graph_t *mxp_accelerator_graph(mxp_accelerator_t *acc);

/* Start a micro-batch: reset the graph and read the next batch of ld into it,
 * x (b, H, W, C) in the working dtype and labels (b), both valid until the
 * next call. *b == 0 at the end of the epoch (the loader then needs
 * mxp_loader_start_epoch). Errors: from the loader and the arena. */
MXP_API mxp_status mxp_accelerator_next_batch(mxp_accelerator_t *acc, mxp_loader_t *ld, mxp_var **x,
                                              const int32_t **labels, int64_t *b);

/* As mxp_accelerator_next_batch for a token dataset (the gpt model's): x and
 * y (b, T) int32, y the next-token targets, valid until the next call; *T is
 * the dataset's block. Errors: from the loader (an image dataset). */
MXP_API mxp_status mxp_accelerator_next_tokens(mxp_accelerator_t *acc, mxp_loader_t *ld,
                                               const int32_t **x, const int32_t **y, int64_t *b,
                                               int64_t *T);

/* accelerator.backward(loss): backward from the scalar loss with the seed
 * loss_scale / grad_accum, times this rank's share of the global micro-batch
 * in a job of several processes (so that the all-reduced sum is the global
 * mean), adding into the parameters' gradients. The share is that of the
 * batch last read by mxp_accelerator_next_batch / next_tokens (a batch read
 * from the loader directly counts 1, as alone). Errors: MXP_ERR_INVALID_ARG
 * (not a scalar), from mxp_graph_backward. */
MXP_API mxp_status mxp_accelerator_backward(mxp_accelerator_t *acc, mxp_var *loss);

/* 1 when the micro-batch just backpropagated completes a gradient
 * accumulation cycle (the next mxp_accelerator_step updates the weights). */
MXP_API int mxp_accelerator_sync_gradients(const mxp_accelerator_t *acc);

/* End the accumulation cycle early (the data ran out before grad_accum
 * micro-batches): the next mxp_accelerator_step updates the weights with the
 * gradients accumulated so far, each still weighted 1/grad_accum (as the HF
 * Trainer does at an epoch's end). Nothing happens when no micro-batch is pending. */
MXP_API void mxp_accelerator_end_cycle(mxp_accelerator_t *acc);

/* At the end of an accumulation cycle (mxp_accelerator_sync_gradients):
 * the global norm of the unscaled gradients (one pass that also detects
 * inf/NaN; in a job of several processes after they are summed over the
 * ranks and with the overflow flag agreed, so every rank clips and skips
 * alike), and clip them to max_norm (> 0; 0 = only measure) by folding the
 * coefficient into the update. *norm (optional) gets the norm before clipping
 * (NaN on overflow). Before step. In the middle of a cycle it does nothing
 * (*norm = NaN): a partial sum must neither be all-reduced nor checked.
 * Errors: MXP_ERR_INVALID_ARG (max_norm < 0), MXP_ERR_DIST (MPI). */
MXP_API mxp_status mxp_accelerator_clip_grad_norm(mxp_accelerator_t *acc, float max_norm,
                                                  float *norm);

typedef struct mxp_step_result {
    int stepped;             /* 1: this call ended an accumulation cycle */
    int skipped;             /* 1: the gradients overflowed; weights, moments, schedule unchanged */
    float lr;                /* the learning rate applied (0 if none) */
    float grad_norm;         /* unscaled, before clipping; NaN on overflow */
    float loss_scale;        /* the scale this step's gradients carried */
    int have_stats;          /* the two fractions below were counted on this step */
    double zero_grad_frac;   /* weight-gradient values that are zero in the working dtype */
    double lost_update_frac; /* nonzero updates that rounding to the working dtype loses */
    double lost_fp16_frac;   /* with numerics_stats, on a stats step: nonzero fp32 updates that
                                storing the weights in fp16 (no master) would lose, i.e.
                                round(w + u) == round(w); -1 when not measured (no fp32
                                weights: master weights off) */
    double lost_bf16_frac;   /* the same for bf16 */
    double numerics_s;       /* seconds this step spent on numerics statistics */
    double loss;             /* the cycle's loss: the mean over its micro-batches of each one's
                                loss, over every rank's samples of it */
    size_t comm_bytes;       /* bytes this rank handed to MPI for the step (0 alone): the
                                gradients in the working dtype and two doubles */
    double comm_s;           /* seconds this rank spent in those collectives */
} mxp_step_result;

/* optimizer.step() + zero_grad(): at the end of an accumulation cycle, check
 * for overflow (if clip_grad_norm did not), update the scaler, apply the
 * optimizer unless the step is skipped, advance the schedule, clear the
 * gradients. Between cycles it does nothing (stepped = 0). res is optional.
 * Divergence is an error, never a silent skip: without a loss scaler (fp32,
 * bf16) non-finite gradients, and in fp16 a loss scale that must back off
 * below its floor, return MXP_ERR_NONFINITE naming the step (1-based); the
 * weights are left as they were before the step. Errors: also from the optimizer. */
MXP_API mxp_status mxp_accelerator_step(mxp_accelerator_t *acc, mxp_step_result *res);

/* One measured tensor of a numerics-statistics step (lent to the callback,
 * valid during the call). kind: "weight" (the fp32 masters, or the weights
 * themselves), "grad" (weight gradients unscaled: the loss scale divided
 * out), "grad_scaled" (as stored, when a loss scale other than 1 is in use),
 * "activation" (forward values, per op kind or profile label, merged over
 * the step's last micro-batch) or "activation_grad" (their gradients,
 * unscaled). */
typedef struct mxp_numerics_record {
    int64_t step; /* the optimizer step (1-based) being taken */
    const char *kind;
    const char *name; /* the parameter ("fc1.weight") or op label ("linear", "attn.c_attn") */
    const mxp_numerics *s;
} mxp_numerics_record;
typedef void (*mxp_numerics_fn)(const mxp_numerics_record *r, void *user);

/* Where the numerics statistics go (options.numerics_stats): fn is called
 * once per measured tensor on every stats_every-th step, before the update.
 * NULL turns the reports off (nothing is measured). */
MXP_API void mxp_accelerator_set_numerics(mxp_accelerator_t *acc, mxp_numerics_fn fn, void *user);

/* What the accelerator resolved, and its counters. */
MXP_API mxp_precision mxp_accelerator_precision(const mxp_accelerator_t *acc);
MXP_API const mxp_scaler *mxp_accelerator_scaler(const mxp_accelerator_t *acc);
MXP_API int mxp_accelerator_master_weights(const mxp_accelerator_t *acc);
MXP_API int mxp_accelerator_grad_accum(const mxp_accelerator_t *acc);
MXP_API int64_t mxp_accelerator_applied_steps(const mxp_accelerator_t *acc);
/* accelerate's process_index, num_processes, is_main_process (rank 0): the
 * job this accelerator joined (0, 1, 1 alone). */
MXP_API int mxp_accelerator_process_index(const mxp_accelerator_t *acc);
MXP_API int mxp_accelerator_num_processes(const mxp_accelerator_t *acc);
MXP_API int mxp_accelerator_is_main_process(const mxp_accelerator_t *acc);

/* What a checkpoint must carry for the accelerator to continue exactly where
 * it stopped (at an optimizer-step boundary). */
typedef struct mxp_accel_state {
    int64_t steps;         /* optimizer steps taken, applied or skipped */
    int64_t applied;       /* of those, applied: the schedule's position, AdamW's bias correction */
    int64_t micro_batches; /* micro-batches backpropagated so far: keys the dropout masks */
    mxp_scaler scaler;     /* scale, growth tracker, hysteresis left, skip counters (cfg ignored
                              on restore: the run's own options stay in force) */
} mxp_accel_state;

/* Read the state (any time; meaningful at a step boundary). */
MXP_API void mxp_accelerator_get_state(const mxp_accelerator_t *acc, mxp_accel_state *s);

/* Restore a state saved by mxp_accelerator_get_state, after prepare and
 * before the first micro-batch; also sets the optimizer's step counter to
 * s->applied. Errors: MXP_ERR_INVALID_ARG (not prepared, in the middle of an
 * accumulation cycle, negative counters, applied > steps, a scale that is not
 * a positive finite number). */
MXP_API mxp_status mxp_accelerator_set_state(mxp_accelerator_t *acc, const mxp_accel_state *s);

/* Bytes per kind of memory (DESIGN.md metrics "memory_bytes"). */
typedef struct mxp_memory_report {
    size_t weights;        /* working copies */
    size_t master_weights; /* fp32 masters (0 in fp32 mode: the weights are the masters) */
    size_t grads;
    size_t optimizer;   /* moments */
    size_t activations; /* the step graph's arena at its peak: activations, saved
                           tensors, gradients of activations, the batch */
    size_t workspace;   /* the step's scratch at its peak (per-thread im2col columns, partial
                           sums); reported apart from the five kinds of DESIGN.md */
} mxp_memory_report;
MXP_API void mxp_accelerator_memory(const mxp_accelerator_t *acc, mxp_memory_report *r);

/* ---- evaluation ------------------------------------------------------------------ */

/* Mean cross-entropy and accuracy of model over every sample of ds, in
 * batches of `batch`, in the model's working dtype, without dropout. For a
 * token dataset (a gpt model) over every target token of its windows, in
 * order: the next-token loss (nats) and the share of tokens predicted exactly.
 * Errors: MXP_ERR_INVALID_ARG (a model for the other kind of data), from the
 * callees. */
MXP_API mxp_status mxp_evaluate(mxp_model_t *model, const mxp_dataset_t *ds, int64_t batch,
                                double *loss, double *accuracy);

/* As mxp_evaluate over at most max_batches batches (<= 0: all). */
MXP_API mxp_status mxp_evaluate_limit(mxp_model_t *model, const mxp_dataset_t *ds, int64_t batch,
                                      int64_t max_batches, double *loss, double *accuracy);

/* ---- the Trainer ------------------------------------------------------------------ */

typedef struct mxp_trainer_args {
    char model[16];          /* "mlp" | "cnn" | "gpt" */
    char data[512];          /* "" = the model's default: "fashion-mnist" (the Debian package's
                                directory) or an IDX dir for mlp and cnn; for gpt "fortunes",
                                a text file or directory, llm.c .bin shards (mxp_text_load) */
    char mixed_precision[8]; /* "" = MIXPREC_MIXED_PRECISION, else bf16 */
    int master_weights;      /* -1 unset, 0, 1 */
    char loss_scale[32];     /* "" unset, "dynamic" or N */
    int hysteresis;          /* 0 = default */
    int64_t growth_interval; /* 0 = default */
    float init_scale;        /* 0 = 65536 */
    float min_scale;         /* 0 = the accelerator's default floor, 1 */
    float max_scale;         /* 0 = no ceiling */
    char optimizer[8];       /* "sgd" | "adamw" */
    float lr;                /* 0 = the optimizer's default */
    float weight_decay;      /* < 0 = the optimizer's default */
    float momentum;          /* < 0 = default */
    int nesterov;
    char schedule[12]; /* "constant" | "cosine" */
    int64_t warmup_steps;
    int64_t batch_size; /* 0 = the model's default: 128 (mlp, cnn), 8 sequences (gpt) */
    int64_t epochs;
    int64_t max_steps; /* > 0: stop after this many optimizer steps */
    float grad_clip;   /* 0 = off */
    int grad_accum;    /* 0 = from the environment, else 1 */
    uint64_t seed;
    int threads;        /* 0 = MIXPREC_NUM_THREADS or every core */
    char log[512];      /* JSON-lines file, "" = none */
    char save[512];     /* output directory: checkpoints go to save/checkpoint-<step>, "" = none */
    int64_t save_every; /* save every N optimizer steps; 0 = at the end of every epoch. The
                           final state is always saved. */
    int keep_last;      /* keep the newest K checkpoints in save/, delete older ones; 0 = all */
    char resume[512];   /* continue from this checkpoint (or the newest one in this output
                           directory), "" = a fresh run */
    int64_t log_every;
    int stats_every;         /* numerics counters every N steps (0 = off) */
    int numerics_stats;      /* on those steps also measure every tensor (mxp_numerics), log
                                "numerics" events and end with the advisor's "advice" */
    int stochastic_rounding; /* round the 16-bit weights stochastically (needs master weights
                                off and bf16 or fp16; mxp_optim_config) */
    float dropout;           /* < 0 = the model's default */
    int64_t hidden;          /* 0 = the model's default first hidden width */
    int profile;
    /* gpt (0 = the model's default: 6 layers, 6 heads, 384 wide, block 256) */
    int64_t n_layer, n_head, n_embd, block_size;
    float val_split;      /* share of the text held out for validation when the data has no
                             validation shard; 0 = 0.1 */
    int64_t eval_every;   /* also evaluate every N optimizer steps; 0 = at epoch ends only */
    int64_t eval_batches; /* evaluate on the first N batches of the split; 0 = all of it */
} mxp_trainer_args;

/* The defaults of `mixprec train`: cnn, AdamW lr 1e-3, cosine with 100
 * warmup steps, 5 epochs, clip 1.0, seed 42, log every 1 step, numerics
 * counted every 50 steps; the precision, data, batch size and the gpt sizes
 * are left "" / 0 and resolved when the run starts: MIXPREC_MIXED_PRECISION
 * (set by mixprec launch) else bf16; fashion-mnist and 128 for mlp and cnn,
 * fortunes and 8 for gpt. */
MXP_API void mxp_trainer_args_default(mxp_trainer_args *a);

/* Set one argument from text: the key is an option name without dashes
 * ("lr", "batch-size" or "batch_size") or a Hugging Face TrainingArguments
 * name ("learning_rate", "per_device_train_batch_size", "num_train_epochs",
 * "bf16", "fp16", "gradient_accumulation_steps", "max_grad_norm",
 * "warmup_steps", "lr_scheduler_type", "logging_steps", ...). Used for
 * command-line flags and for --args YAML alike. Errors: MXP_ERR_INVALID_ARG
 * with one line naming the key and saying what is wrong ("batch-size: -3 is
 * not a positive integer"); an unknown key lists where to look. */
MXP_API mxp_status mxp_trainer_args_set(mxp_trainer_args *a, const char *key, const char *value);

/* Apply every key of a flat YAML file (mxp_yaml_read_flat). Errors: as
 * mxp_trainer_args_set, prefixed with file:line. */
MXP_API mxp_status mxp_trainer_args_load(mxp_trainer_args *a, const char *path);

/* Every argument as the text mxp_trainer_args_set accepts, in a fixed order
 * (key spelled with dashes). A checkpoint's config.json records them this way. */
MXP_API void mxp_trainer_args_each(const mxp_trainer_args *a,
                                   void (*fn)(const char *key, const char *value, void *user),
                                   void *user);

/* ---- checkpoints ------------------------------------------------------------------- */
/* A checkpoint is a directory (DESIGN.md "Checkpoints"):
 *   model.safetensors           the fp32 master weights under their layer names
 *                               ("conv1.weight", ...); metadata format, mixprec_version
 *   training_state.safetensors  the optimizer moments, F32, named
 *                               "optimizer.exp_avg.<param>", "optimizer.exp_avg_sq.<param>"
 *                               (AdamW) or "optimizer.momentum_buffer.<param>" (SGD), and in
 *                               __metadata__ the counters: step, applied steps, micro-batches,
 *                               epoch, data position, the loss scale (%.9g, exact), its
 *                               growth tracker, hysteresis left, skipped steps
 *   config.json                 format, mixprec version, model architecture, precision mode,
 *                               master weights, data normalisation, the training arguments
 * The Trainer writes them as <output dir>/checkpoint-<step>. The whole
 * directory is written under a temporary name, every file fsync'd, then
 * renamed into place and the parent fsync'd: a crash or a full disk leaves
 * either the complete new checkpoint or nothing, never a half-written one. */

#define MXP_CHECKPOINT_FORMAT 2 /* config.json "format" written; 1 (no training state) is read */

/* Where a run stands, at an optimizer-step boundary. */
typedef struct mxp_train_state {
    mxp_accel_state accel;
    int64_t epoch;    /* the epoch in progress (0-based) */
    int64_t position; /* samples of it already consumed (0 at an epoch's start) */
} mxp_train_state;

/* Everything in a checkpoint besides the tensors. */
typedef struct mxp_checkpoint_meta {
    int format;               /* read: config.json "format"; ignored when saving */
    char mixprec_version[32]; /* read: the version that wrote it; ignored when saving */
    char mixed_precision[8];  /* "no" | "fp16" | "bf16" */
    int master_weights;
    int processes;   /* the processes of the job that trained it (config.json "processes",
                        written when > 1; 1 when absent): its global batch is processes times
                        the batch size */
    float mean, std; /* the data normalisation the model was trained with */
    int have_args;   /* args is meaningful */
    mxp_trainer_args args;
    int n_chars; /* a character-level gpt's vocabulary: token i is byte chars[i]
                    (config.json data.vocab); 0 when none (images, token shards) */
    uint8_t chars[256];
    int have_state;    /* state is meaningful (training_state.safetensors exists) */
    char optimizer[8]; /* with have_state: "adamw" | "sgd" */
    mxp_train_state state;
} mxp_checkpoint_meta;

/* Zero everything; mixed_precision "no", master_weights 1, processes 1, std 1. */
MXP_API void mxp_checkpoint_meta_init(mxp_checkpoint_meta *meta);

/* Write checkpoint directory dir (its parent must exist; an existing dir is
 * replaced as a whole): model.safetensors from m (fp32 masters, or with master
 * weights off the 16-bit weights widened exactly), config.json from meta and
 * m->config, and when opt is not NULL and meta->have_state,
 * training_state.safetensors with opt's moments and meta->state. m must come
 * from mxp_model_create. Errors: MXP_ERR_INVALID_ARG (a hand-built model, an
 * optimizer bound to another model), MXP_ERR_IO (naming the path and the
 * system error, e.g. "No space left on device"; the temporary directory is
 * removed and a previous dir is left as it was), MXP_ERR_NOMEM. */
MXP_API mxp_status mxp_checkpoint_save(const char *dir, const mxp_model_t *m,
                                       const mxp_optimizer_t *opt, const mxp_checkpoint_meta *meta);

/* Parse a config.json: *meta (format, version, precision, normalisation,
 * training arguments) and the model configuration *mc. Errors: MXP_ERR_IO (cannot
 * open), MXP_ERR_FORMAT (not JSON, a key missing or of the wrong type or out of
 * range, an unknown model, a format newer than MXP_CHECKPOINT_FORMAT or a
 * training argument the setter refuses: one line naming the file and key). */
MXP_API mxp_status mxp_checkpoint_read_config(const char *path, mxp_checkpoint_meta *meta,
                                              mxp_model_config *mc);

/* Rebuild the model saved in dir, in fp32 (ready for mxp_model_set_precision),
 * with *meta filled from config.json and, when present,
 * training_state.safetensors's counters (meta->have_state). Errors: as
 * mxp_checkpoint_read_config; MXP_ERR_IO (a file missing, named);
 * MXP_ERR_FORMAT (a weight missing or of another shape or an extra tensor: the
 * checkpoint is not of this model; a bad counter). One line each, naming the file. */
MXP_API mxp_status mxp_checkpoint_load(const char *dir, mxp_model_t **out,
                                       mxp_checkpoint_meta *meta);

/* Read the optimizer moments of training_state.safetensors in dir into opt
 * (created with the same kind, bound to the model loaded from dir). Errors:
 * MXP_ERR_IO (no training state: the checkpoint is for inference only),
 * MXP_ERR_FORMAT (another optimizer kind, a moment missing, of another shape,
 * or an extra tensor). */
MXP_API mxp_status mxp_checkpoint_load_optimizer(const char *dir, mxp_optimizer_t *opt);

/* Resolve path to a checkpoint directory: path itself when it holds
 * config.json, else its newest checkpoint-<N> subdirectory (largest N) that
 * holds one. out gets the directory (size bytes). Errors: MXP_ERR_IO (path
 * does not exist, or holds no checkpoint: the message says what was looked
 * for), MXP_ERR_INVALID_ARG (out too small). */
MXP_API mxp_status mxp_checkpoint_find(const char *path, char *out, size_t size);

/* In output directory dir, delete all but the newest `keep` checkpoint-<N>
 * directories (each renamed out of sight first, so a crash mid-delete leaves
 * no half-deleted checkpoint), and any temporary directory a killed save left
 * behind. keep < 1 keeps all. Errors: MXP_ERR_IO naming the path. */
MXP_API mxp_status mxp_checkpoint_rotate(const char *dir, int keep);

/* What the trainer reports as it runs. */
typedef enum mxp_train_event_kind {
    MXP_TRAIN_EVENT_START = 0, /* before the first step: totals are known */
    MXP_TRAIN_EVENT_STEP = 1,
    MXP_TRAIN_EVENT_EVAL = 2,
    MXP_TRAIN_EVENT_END = 3
} mxp_train_event_kind;

typedef struct mxp_train_summary {
    char mixed_precision[8];
    int master_weights;
    int64_t steps, skipped_steps, total_steps, epochs;
    double final_loss, test_loss, test_accuracy;
    double wall_s, samples_per_s;
    size_t peak_rss_bytes;
    mxp_memory_report memory;
    int64_t params;
    /* numerics counted on every stats_every-th step (fractions; -1 if never counted) */
    double zero_grad_frac, lost_update_frac;
    float final_loss_scale;
    char model_desc[256];
    int64_t first_step;   /* > 0: resumed from checkpoint at this step */
    char checkpoint[512]; /* the newest checkpoint written (or resumed from), "" if none */
    /* with args.profile: seconds per op kind over the whole run */
    int n_profile;
    struct {
        char op[16];
        double fwd_s, bwd_s;
        int64_t calls;
    } profile[16];
    double tokens_per_s;        /* gpt: samples_per_s times the block; 0 otherwise */
    int processes;              /* the job's processes (data parallel ranks); samples_per_s counts
                                   every rank's samples */
    size_t comm_bytes_per_step; /* bytes each rank handed to MPI per optimizer step (0 alone) */
    double comm_s;              /* seconds rank 0 spent in collectives over the run */
    double numerics_s;          /* with numerics_stats: seconds spent measuring (inside wall_s) */
    int have_advice;            /* numerics_stats measured at least one step: advice is filled */
    mxp_numerics_advice advice;
    char advice_text[1024];
} mxp_train_summary;

typedef struct mxp_train_event {
    mxp_train_event_kind kind;
    int64_t step, epoch, total_steps; /* step: applied + skipped optimizer steps so far */
    double loss;                      /* STEP: mean over the accumulation cycle; EVAL: test loss */
    double accuracy;                  /* EVAL */
    double samples_per_s, elapsed_s;
    mxp_step_result res;              /* STEP */
    const mxp_train_summary *summary; /* START (partial) and END */
} mxp_train_event;

typedef void (*mxp_train_callback)(const mxp_train_event *ev, void *user);

/* Run a whole training job: load the data, build the model, train for
 * epochs (or max_steps), evaluate on the test split after every epoch, write
 * the JSON lines of DESIGN.md "Metrics" to a->log, call cb (optional) on each
 * event. In a job of several processes (mixprec launch) every rank calls it
 * alike and trains its share; rank 0 alone gets the callbacks, writes the
 * log, evaluates (the summary's test fields are meaningful there only) and
 * saves checkpoints. A rank whose call fails must end the job
 * (mxp_dist_abort), not return normally: the others would wait for it in the
 * next all-reduce. *summary (optional) receives the end summary. Errors: one line each,
 * from the data (a missing dataset names the apt package), the arguments and
 * the engine; a non-finite loss in fp32/bf16 mode without a loss scaler is
 * MXP_ERR_NONFINITE naming the step. */
MXP_API mxp_status mxp_trainer_run(const mxp_trainer_args *a, mxp_train_callback cb, void *user,
                                   mxp_train_summary *summary);

/* Peak resident set size of this process in bytes (getrusage), 0 if unknown. */
MXP_API size_t mxp_peak_rss_bytes(void);

#ifdef __cplusplus
}
#endif
#endif
