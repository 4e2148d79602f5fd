// The sparsity schedule of docs/DESIGN.md#iterative-pruning: s_t of the cubic, linear and exponential shapes against
// the formulas written out here, s_0 before t0 and exactly s_f from T on; the update steps
// (every prune_every steps from t0, T itself, none after T, step 0 when s_0 > 0) against a
// brute-force list, and next/previous update consistent with it; the exact counts.
#include <math.h>
#include <stdio.h>

#include "config/config.h"              // defines: config_defaults, config_prune_options
#include "prune/sparsity_schedule.h"

#include "check.h"

static SparsitySchedule make(PruneSchedule shape, double s0, double sf, long t0, long T, long every) {
    return (SparsitySchedule){.shape = shape, .initial = s0, .final = sf, .exp_k = 5.0, .start = t0, .end = T,
                              .every = every};
}

// The formulas of docs/DESIGN.md#iterative-pruning, written independently of the code under test.
static double reference(const SparsitySchedule *s, long t) {
    if (t < s->start) return s->initial;
    if (t > s->end) return s->final;
    double p = (double)(t - s->start) / (double)(s->end - s->start);
    switch (s->shape) {
    case PRUNE_SCHEDULE_CUBIC: return s->final + (s->initial - s->final) * pow(1.0 - p, 3.0);
    case PRUNE_SCHEDULE_LINEAR: return s->final + (s->initial - s->final) * (1.0 - p);
    case PRUNE_SCHEDULE_EXPONENTIAL:
        return s->initial + (s->final - s->initial) * (1.0 - exp(-s->exp_k * p)) / (1.0 - exp(-s->exp_k));
    }
    return NAN;
}

static void check_shape(PruneSchedule shape, const char *name, double s0) {
    SparsitySchedule s = make(shape, s0, 0.7, 100, 1100, 50);
    double worst = 0.0;
    bool monotone = true;
    for (long t = 0; t <= 1300; t++) {
        double v = sparsity_at(&s, t), r = reference(&s, t);
        if (fabs(v - r) > worst) worst = fabs(v - r);
        if (t > 0 && v < sparsity_at(&s, t - 1)) monotone = false;
    }
    check(worst < 1e-12, "%s, s_0 = %g: s_t = the formula for t in [0, 1300] (worst difference %.2e)", name, s0, worst);
    check(monotone, "%s, s_0 = %g: s_t never decreases", name, s0);
    check(sparsity_at(&s, 0) == s0 && sparsity_at(&s, 100) == s0, "%s: s_0 up to t0 (%g, %g)", name,
          sparsity_at(&s, 0), sparsity_at(&s, 100));
    check(sparsity_at(&s, 1100) == 0.7 && sparsity_at(&s, 5000) == 0.7, "%s: exactly s_f at T and after (%.17g)", name,
          sparsity_at(&s, 1100));
}

// The update steps written out: t0, t0 + every, ... < T, T, and 0 when s_0 > 0.
static bool reference_update(const SparsitySchedule *s, long t) {
    if (t == 0 && s->initial > 0) return true;
    if (t == s->end) return true;
    for (long u = s->start; u < s->end; u += s->every)
        if (u == t) return true;
    return false;
}

static void check_updates(SparsitySchedule s, const char *what) {
    bool same = true, next_ok = true, previous_ok = true;
    for (long t = 0; t <= s.end + 3 * s.every; t++) {
        same = same && sparsity_updates_at(&s, t) == reference_update(&s, t);
        long next = -1, previous = -1;
        for (long u = t + 1; u <= s.end && next < 0; u++)
            if (reference_update(&s, u)) next = u;
        for (long u = t; u >= 0 && previous < 0; u--)
            if (reference_update(&s, u)) previous = u;
        next_ok = next_ok && sparsity_next_update(&s, t) == next;
        previous_ok = previous_ok && sparsity_previous_update(&s, t) == previous;
    }
    long first = -1;
    for (long u = 0; u <= s.end && first < 0; u++)
        if (reference_update(&s, u)) first = u;
    check(same, "%s: updates exactly at t0 + k*every < T, at T, and at 0 when s_0 > 0", what);
    check(next_ok && sparsity_next_update(&s, -1) == first, "%s: next update (first: %ld)", what,
          sparsity_next_update(&s, -1));
    check(previous_ok && sparsity_previous_update(&s, -1) == -1, "%s: previous update", what);
}

int main(void) {
    check_shape(PRUNE_SCHEDULE_CUBIC, "cubic", 0.0);
    check_shape(PRUNE_SCHEDULE_CUBIC, "cubic", 0.2);
    check_shape(PRUNE_SCHEDULE_LINEAR, "linear", 0.0);
    check_shape(PRUNE_SCHEDULE_LINEAR, "linear", 0.2);
    check_shape(PRUNE_SCHEDULE_EXPONENTIAL, "exponential", 0.0);
    check_shape(PRUNE_SCHEDULE_EXPONENTIAL, "exponential", 0.2);

    // A few values by hand: cubic halfway is s_f (1 - 1/8); exponential with s_0 = 0 is
    // The form s_f (1 - e^{-kp}) / (1 - e^{-k}) of docs/DESIGN.md#iterative-pruning.
    SparsitySchedule cubic = make(PRUNE_SCHEDULE_CUBIC, 0.0, 0.8, 0, 100, 10);
    check(fabs(sparsity_at(&cubic, 50) - 0.8 * (1.0 - 0.125)) < 1e-15, "cubic at p = 1/2: %.6f (0.7)",
          sparsity_at(&cubic, 50));
    SparsitySchedule linear = make(PRUNE_SCHEDULE_LINEAR, 0.1, 0.5, 10, 110, 10);
    check(fabs(sparsity_at(&linear, 35) - 0.2) < 1e-15, "linear at p = 1/4 from 0.1 to 0.5: %.6f (0.2)",
          sparsity_at(&linear, 35));
    SparsitySchedule exponential = make(PRUNE_SCHEDULE_EXPONENTIAL, 0.0, 0.5, 0, 10, 1);
    double by_hand = 0.5 * (1.0 - exp(-5.0 * 0.3)) / (1.0 - exp(-5.0));
    check(fabs(sparsity_at(&exponential, 3) - by_hand) < 1e-15, "exponential at p = 0.3: %.6f (%.6f)",
          sparsity_at(&exponential, 3), by_hand);

    check_updates(make(PRUNE_SCHEDULE_CUBIC, 0.0, 0.5, 0, 75, 10), "t0 0, T 75, every 10 (T off the grid)");
    check_updates(make(PRUNE_SCHEDULE_CUBIC, 0.0, 0.5, 20, 80, 20), "t0 20, T 80, every 20 (T on the grid)");
    check_updates(make(PRUNE_SCHEDULE_CUBIC, 0.3, 0.5, 20, 80, 7), "s_0 0.3 from step 0, t0 20, every 7");
    check_updates(make(PRUNE_SCHEDULE_CUBIC, 0.0, 0.5, 5, 6, 50), "every longer than the ramp");
    SparsitySchedule after = make(PRUNE_SCHEDULE_LINEAR, 0.0, 0.5, 0, 75, 10);
    check(!sparsity_updates_at(&after, 80) && sparsity_next_update(&after, 75) == -1,
          "no update after T (80: %d, next after 75: %ld)", sparsity_updates_at(&after, 80),
          sparsity_next_update(&after, 75));

    // Counts: round(s * total), clamped.
    check(sparsity_count(0.5, 7) == 4 && sparsity_count(0.5, 6) == 3 && sparsity_count(0.3, 10) == 3,
          "round(s * total): 0.5 of 7 -> %zu, of 6 -> %zu, 0.3 of 10 -> %zu", sparsity_count(0.5, 7),
          sparsity_count(0.5, 6), sparsity_count(0.3, 10));
    check(sparsity_count(0.0, 100) == 0 && sparsity_count(1.0, 100) == 100 && sparsity_count(0.7, 0) == 0,
          "counts at 0, 1 and of an empty group");
    check(sparsity_count(0.5, 4500000) == 2250000, "0.5 of 4.5 M -> %zu", sparsity_count(0.5, 4500000));

    RunConfig c;
    config_defaults(&c);
    c.train.steps = 1000;
    c.prune.start_step = 10;
    c.prune.prune_every = 25;
    c.prune.schedule = CFG_SCHEDULE_LINEAR;
    SparsitySchedule from_config;
    PruneOptions options;
    config_prune_options(&c, &options);
    sparsity_schedule_from_options(&from_config, &options);
    check(from_config.end == 750 && from_config.start == 10 && from_config.every == 25 &&
              from_config.shape == PRUNE_SCHEDULE_LINEAR && from_config.final == c.prune.final_sparsity,
          "from the config: T = train.steps * 3 / 4 = %ld by default", from_config.end);
    config_free(&c);
    return check_summary("sparsity schedule");
}
