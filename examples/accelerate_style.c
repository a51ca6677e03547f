/*
 * accelerate_style.c - the source document's accelerate snippet, in C:
 *
 *     accelerator = Accelerator(mixed_precision="bf16")
 *     model, optimizer, trainloader, validloader = accelerator.prepare(...)
 *     for batch in trainloader:
 *         loss = loss_fn(model(batch))
 *         accelerator.backward(loss)
 *         optimizer.step(); optimizer.zero_grad()
 *
 * Trains the built-in mlp on Fashion-MNIST for one epoch. The precision is
 * "bf16" unless MIXPREC_MIXED_PRECISION says otherwise (set it to no, fp16 or
 * bf16, as `mixprec launch --mixed-precision` does), then prints the test accuracy.
 * The same program runs data parallel, as with `accelerate launch`:
 *
 *     cc examples/accelerate_style.c $(pkg-config --cflags --libs mixprec) -o accel
 *     ./accel [IDX_DIR]
 *     mixprec launch --mixed-precision bf16 --num-processes 2 ./accel [IDX_DIR]
 *
 * On 2 processes prepare() gives each its half of every batch of 2 x 128 and
 * the gradients are averaged over both, so the loss curve is the one process
 * batch-256 curve; the main process (rank 0) prints and evaluates.
 */
#include <stdio.h>
#include <stdlib.h>

#include <mixprec.h>

/* On an error: say so, and end the whole job (every rank, under mixprec launch). */
#define CHECK(call)                                                                                \
    do {                                                                                           \
        mxp_status st_ = (call);                                                                   \
        if (st_ != MXP_OK) {                                                                       \
            fprintf(stderr, "accelerate_style: %s\n", mxp_last_error());                           \
            mxp_dist_abort(1);                                                                     \
        }                                                                                          \
    } while (0)

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : MXP_FASHION_MNIST_DIR;

    /* accelerator = Accelerator(mixed_precision="bf16") */
    mxp_accelerator_options opts;
    mxp_accelerator_options_init(&opts);
    opts.mixed_precision = getenv("MIXPREC_MIXED_PRECISION") ? NULL : "bf16";
    mxp_accelerator_t *accelerator;
    CHECK(mxp_accelerator_create(&accelerator, &opts));

    /* the model, the optimizer and the two loaders, as a user builds them */
    mxp_dataset_t *train, *valid;
    CHECK(mxp_dataset_load_idx(&train, dir, "train"));
    CHECK(mxp_dataset_load_idx(&valid, dir, "test"));
    CHECK(mxp_dataset_set_norm(valid, train->mean, train->std));
    mxp_loader_t *trainloader, *validloader;
    CHECK(mxp_loader_create(&trainloader, train, 128, 1, 42, 0));
    CHECK(mxp_loader_create(&validloader, valid, 256, 0, 0, 0));
    mxp_model_config cfg;
    CHECK(mxp_model_config_default(&cfg, "mlp"));
    mxp_model_t *model;
    CHECK(mxp_model_create(&model, &cfg));
    mxp_optim_config oc;
    CHECK(mxp_optim_config_default(&oc, MXP_OPTIM_ADAMW));
    mxp_optimizer_t *optimizer;
    CHECK(mxp_optimizer_create(&optimizer, &oc));

    /* model, optimizer, trainloader, validloader = accelerator.prepare(...) */
    CHECK(mxp_accelerator_prepare(accelerator, model, optimizer, trainloader, validloader));

    mxp_graph_t *g = mxp_accelerator_graph(accelerator);
    CHECK(mxp_loader_start_epoch(trainloader, 0, 0));
    for (int64_t step = 0;; step++) { /* for batch in trainloader: */
        mxp_var *x, *logits, *loss;
        const int32_t *labels;
        int64_t b;
        CHECK(mxp_accelerator_next_batch(accelerator, trainloader, &x, &labels, &b));
        if (b == 0) break;
        CHECK(mxp_model_forward(model, g, x, &logits));        /* outputs = model(batch) */
        CHECK(mxp_op_cross_entropy(g, &loss, logits, labels)); /* loss = loss_fn(outputs) */
        CHECK(mxp_accelerator_backward(accelerator, loss));    /* accelerator.backward(loss) */
        if (mxp_accelerator_sync_gradients(accelerator))       /* the cycle's last micro-batch */
            CHECK(mxp_accelerator_clip_grad_norm(accelerator, 1.0f, NULL));
        mxp_step_result r;
        CHECK(mxp_accelerator_step(accelerator, &r)); /* optimizer.step(); zero_grad() */
        if (r.stepped && step % 100 == 0 && mxp_accelerator_is_main_process(accelerator))
            printf("step %4lld  loss %.4f (over every process)  loss scale %g%s\n", (long long)step,
                   r.loss, (double)r.loss_scale, r.skipped ? "  (skipped: overflow)" : "");
    }
    if (mxp_accelerator_is_main_process(accelerator)) { /* every replica holds the same model */
        double vloss, vacc;
        CHECK(mxp_evaluate(model, valid, 256, &vloss, &vacc));
        printf("%s on %d process(es): test accuracy %.4f, test loss %.4f\n",
               mxp_precision_name(mxp_accelerator_precision(accelerator)),
               mxp_accelerator_num_processes(accelerator), vacc, vloss);
    }

    mxp_accelerator_free(accelerator);
    mxp_optimizer_free(optimizer);
    mxp_model_free(model);
    mxp_loader_free(trainloader);
    mxp_loader_free(validloader);
    mxp_dataset_free(train);
    mxp_dataset_free(valid);
    mxp_dist_finalize(); /* leave the job together (nothing to do alone) */
    return 0;
}
