// The sparsity schedule (see sparsity_schedule.h).
#include "prune/sparsity_schedule.h"

#include <math.h>

void sparsity_schedule_from_options(SparsitySchedule *s, const PruneOptions *o) {
    *s = (SparsitySchedule){
        .shape = o->schedule,
        .initial = o->initial_sparsity,
        .final = o->final_sparsity,
        .exp_k = o->exp_k,
        .start = o->start_step,
        .end = o->end_step,
        .every = o->prune_every,
    };
}

double sparsity_at(const SparsitySchedule *s, long t) {
    if (t <= s->start) return s->initial;
    if (t >= s->end) return s->final;
    double p = (double)(t - s->start) / (double)(s->end - s->start);
    switch (s->shape) {
    case PRUNE_SCHEDULE_CUBIC: {
        double rest = 1.0 - p;
        return s->final + (s->initial - s->final) * rest * rest * rest;
    }
    case PRUNE_SCHEDULE_LINEAR: return s->final + (s->initial - s->final) * (1.0 - p);
    case PRUNE_SCHEDULE_EXPONENTIAL:
        return s->initial + (s->final - s->initial) * -expm1(-s->exp_k * p) / -expm1(-s->exp_k);
    }
    return s->final;
}

bool sparsity_updates_at(const SparsitySchedule *s, long t) {
    if (t == 0 && s->initial > 0.0) return true;
    if (t < s->start || t > s->end) return false;
    return t == s->end || (t - s->start) % s->every == 0;
}

long sparsity_next_update(const SparsitySchedule *s, long t) {
    if (t < 0) return s->initial > 0.0 ? 0 : s->start;
    if (t < s->start) return s->start;
    if (t >= s->end) return -1;
    long next = s->start + ((t - s->start) / s->every + 1) * s->every;
    return next < s->end ? next : s->end;
}

long sparsity_previous_update(const SparsitySchedule *s, long t) {
    if (t < 0) return -1;
    if (t < s->start) return s->initial > 0.0 ? 0 : -1;
    if (t >= s->end) return s->end;
    return s->start + (t - s->start) / s->every * s->every;
}

size_t sparsity_count(double s, size_t total) {
    double count = round(s * (double)total);
    if (count <= 0.0) return 0;
    return count >= (double)total ? total : (size_t)count;
}
