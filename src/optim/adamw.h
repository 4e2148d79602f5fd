// AdamW over a list of parameter tensors, exactly as torch.optim.AdamW computes it
// (decoupled weight decay, bias-corrected moments), and global gradient-norm clipping as
// torch.nn.utils.clip_grad_norm_. The moments belong to the optimizer and are exposed per
// tensor so that checkpoints can save and restore them and pruning can zero the moments
// of masked weights.
#ifndef MP_OPTIM_ADAMW_H
#define MP_OPTIM_ADAMW_H

#include <stdbool.h>
#include <stddef.h>

#include "autograd/tensor.h"

// Doubles, like torch's Python scalars, so that the float constants of the update are
// rounded once, as torch rounds them.
typedef struct AdamWOptions {
    double beta1, beta2, eps;
    double weight_decay;  // applied only to tensors added with decay = true
} AdamWOptions;

// One optimized tensor and its moments, each of tensor->size floats.
typedef struct AdamWSlot {
    Tensor *tensor;      // not owned: data updated in place, grad read
    bool decay;          // false for norms, biases, A_log, D (mamba_ssm's _no_weight_decay)
    float *m;            // first moment (exp_avg), owned
    float *v;            // second moment (exp_avg_sq), owned
} AdamWSlot;

typedef struct AdamW {
    AdamWOptions options;
    AdamWSlot *slots;
    int n_slots, capacity;
    long step;           // updates taken so far; the next adamw_step is update step + 1
} AdamW;

// beta1 0.9, beta2 0.999, eps 1e-8, weight_decay 0.01 (torch's defaults).
void adamw_options_defaults(AdamWOptions *o);
void adamw_init(AdamW *opt, const AdamWOptions *o);
void adamw_free(AdamW *opt);
// Adds a tensor (with data and grad) and zeroed moments; returns its slot index.
int adamw_add(AdamW *opt, Tensor *tensor, bool decay);
// The slot of tensor, or NULL if it was never added.
AdamWSlot *adamw_find(AdamW *opt, const Tensor *tensor);

// One update of every tensor with learning rate lr (step t = ++opt->step):
//   p <- p * (1 - lr*wd)                          (decay tensors only)
//   m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2
//   p <- p - lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps)
void adamw_step(AdamW *opt, double lr);
// Zeroes both moments of every slot (e.g. a fresh fine-tuning phase); keeps step.
void adamw_reset_moments(AdamW *opt);

// Global L2 norm of the gradients of n tensors, summed in double in a fixed order (the
// result does not depend on the thread count). If the norm is finite and
// max_norm / (norm + 1e-6) < 1, every gradient is scaled by that factor. Returns the norm
// before clipping; a non-finite return leaves the gradients untouched and tells the
// caller to stop. max_norm <= 0 only measures.
double clip_grad_norm(Tensor *const *tensors, int n, double max_norm);
// The same over the tensors of the optimizer, in slot order.
double adamw_clip_grad_norm(AdamW *opt, double max_norm);

#endif
