// The learning-rate schedule of fine-tuning (docs/DESIGN.md#iterative-pruning): linear warm-up, then linear decay
// from lr to lr_min at the last step. Steps are 0-based: step s is the s-th update
// (s = 0 the first), and a run of total_steps updates has steps 0 .. total_steps-1.
#ifndef MP_OPTIM_SCHEDULE_H
#define MP_OPTIM_SCHEDULE_H

// The learning rate of update step (0-based), as llm.c's train_gpt2 does it:
//   step < warmup:            lr * (step + 1) / warmup      (the first update uses lr/warmup,
//                                                           never 0; step warmup-1 uses lr)
//   warmup <= step < total-1: lr_min + (lr - lr_min) * (1 - (step - warmup) / (total - 1 - warmup))
//                                                           (lr at step = warmup)
//   step >= total - 1:        lr_min                        (the last step uses exactly lr_min)
// If total - 1 <= warmup there is no decay: lr after the warm-up. warmup 0 = no warm-up.
double lr_at(long step, long total_steps, long warmup_steps, double lr, double lr_min);

#endif
