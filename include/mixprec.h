/*
 * mixprec.h - libmixprec, mixed-precision neural network training in C.
 *
 * Weights, activations and gradients in a 16-bit format (bf16 or fp16), an
 * fp32 master copy of the weights and fp32 optimizer state, loss scaling
 * against fp16 underflow. This umbrella header includes every layer, bottom up:
 *
 *   mixprec/base.h      status codes and errors, allocator hook, ISA dispatch, threads
 *   mixprec/numerics.h  formats as data (fp32, fp16, bf16, fp8), conversions, stochastic
 *                       rounding, classification, range statistics
 *   mixprec/tensor.h    strided tensors, views, the per-step arena
 *   mixprec/kernels.h   GEMM (fp32 accumulation), element-wise, reductions, softmax,
 *                       conv (im2col), pooling, cross-entropy, dropout, optimizer updates
 *   mixprec/autograd.h  the per-step graph: ops with forward, backward, precision class
 *   mixprec/nn.h        parameters (master, work, grad copies), layers, mlp and cnn
 *   mixprec/optim.h     SGD, AdamW, LR schedules, gradient norm and clipping
 *   mixprec/amp.h       precision modes and the loss scaler (GradScaler semantics)
 *   mixprec/data.h      IDX files ((Fashion-)MNIST), datasets, seeded loaders
 *   mixprec/io.h        flat YAML arguments, JSON-lines metrics
 *   mixprec/train.h     the accelerator (accelerate-style) and the Trainer loop
 *
 * Build against the installed library with pkg-config:
 *
 *     cc prog.c $(pkg-config --cflags --libs mixprec)
 *
 *     #include <mixprec.h>
 *     int main(void) {
 *         float x[3] = {0.1f, 1e-8f, 70000.0f};
 *         uint16_t h[3];
 *         if (mxp_convert(h, MXP_DTYPE_F16, x, MXP_DTYPE_F32, 3) != MXP_OK) return 1;
 *         // h = {0x2e66 (0.0999755859375), 0x0000 (flushed to zero), 0x7c00 (inf)}
 *         return 0;
 *     }
 */
#ifndef MIXPREC_H
#define MIXPREC_H

#include "mixprec/base.h"
#include "mixprec/numerics.h"
#include "mixprec/tensor.h"
#include "mixprec/kernels.h"
#include "mixprec/autograd.h"
#include "mixprec/nn.h"
#include "mixprec/optim.h"
#include "mixprec/amp.h"
#include "mixprec/data.h"
#include "mixprec/dist.h"
#include "mixprec/io.h"
#include "mixprec/train.h"

#endif
