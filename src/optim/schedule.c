// Linear warm-up and linear decay of the learning rate (see schedule.h for the
// conventions and the off-by-one choices).
#include "optim/schedule.h"

double lr_at(long step, long total_steps, long warmup_steps, double lr, double lr_min) {
    if (step < warmup_steps) return lr * (double)(step + 1) / (double)warmup_steps;
    long last = total_steps - 1;
    if (last <= warmup_steps) return lr;  // nothing left to decay over
    if (step >= last) return lr_min;
    double progress = (double)(step - warmup_steps) / (double)(last - warmup_steps);  // in [0, 1)
    return lr_min + (lr - lr_min) * (1.0 - progress);
}
