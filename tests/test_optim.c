// Tests of src/optim: AdamW, gradient clipping and the schedule replay PyTorch's
// trajectory (tests/fixtures/optim_reference.txt, made by tools/make_optim_fixture.py);
// schedule values checked against hand computations; clipping's edge cases; a masked
// weight with zeroed moments stays 0; moments and step restored into a new optimizer
// continue the same trajectory to the bit.
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optim/adamw.h"     // defines: adamw_*, clip_grad_norm
#include "optim/schedule.h"  // defines: lr_at

#include "check.h"


// ---- the fixture ----
#define MAX_TENSORS 4
#define MAX_STEPS 32
#define MAX_SIZE 64

typedef struct StepRecord {
    double lr, norm;
    float grad[MAX_TENSORS][MAX_SIZE], clipped[MAX_TENSORS][MAX_SIZE];
    float param[MAX_TENSORS][MAX_SIZE], exp_avg[MAX_TENSORS][MAX_SIZE], exp_avg_sq[MAX_TENSORS][MAX_SIZE];
} StepRecord;

typedef struct Fixture {
    double beta1, beta2, eps, weight_decay, lr, lr_min, max_norm;
    long warmup, total;
    int n_tensors, n_steps;
    char names[MAX_TENSORS][32];
    int decay[MAX_TENSORS], size[MAX_TENSORS];
    float init[MAX_TENSORS][MAX_SIZE];
    StepRecord steps[MAX_STEPS];
} Fixture;

static int tensor_index(const Fixture *f, const char *name) {
    for (int i = 0; i < f->n_tensors; i++)
        if (strcmp(f->names[i], name) == 0) return i;
    return -1;
}

// Reads "NAME v1 v2 ..." (after the record word) into out[size of NAME].
static int read_values(const Fixture *f, char *rest, float out[MAX_TENSORS][MAX_SIZE], int line_no) {
    char *name = strtok(rest, " \n");
    int t = name ? tensor_index(f, name) : -1;
    if (t < 0) {
        fprintf(stderr, "fixture line %d: unknown tensor '%s'\n", line_no, name ? name : "");
        return -1;
    }
    for (int i = 0; i < f->size[t]; i++) {
        char *v = strtok(NULL, " \n");
        if (!v) {
            fprintf(stderr, "fixture line %d: %s has %d values, expected %d\n", line_no, name, i, f->size[t]);
            return -1;
        }
        out[t][i] = strtof(v, NULL);
    }
    return 0;
}

static int load_fixture(const char *path, Fixture *f) {
    FILE *file = fopen(path, "r");
    if (!file) {
        perror(path);
        return -1;
    }
    memset(f, 0, sizeof *f);
    static char line[1 << 14];
    int line_no = 0, rc = 0, step = -1;
    while (rc == 0 && fgets(line, sizeof line, file)) {
        line_no++;
        char word[32];
        int used = 0;
        if (line[0] == '#' || sscanf(line, "%31s%n", word, &used) != 1) continue;
        char *rest = line + used;
        StepRecord *s = step >= 0 ? &f->steps[step] : NULL;
        if (strcmp(word, "options") == 0) {
            if (sscanf(rest, "%lf %lf %lf %lf %lf %lf %ld %ld %lf", &f->beta1, &f->beta2, &f->eps, &f->weight_decay,
                       &f->lr, &f->lr_min, &f->warmup, &f->total, &f->max_norm) != 9)
                rc = -1;
        } else if (strcmp(word, "tensor") == 0) {
            int t = f->n_tensors++;
            if (t >= MAX_TENSORS || sscanf(rest, "%31s %d %d", f->names[t], &f->decay[t], &f->size[t]) != 3 ||
                f->size[t] > MAX_SIZE)
                rc = -1;
        } else if (strcmp(word, "init") == 0) {
            rc = read_values(f, rest, f->init, line_no);
        } else if (strcmp(word, "step") == 0) {
            step = f->n_steps++;
            if (step >= MAX_STEPS || sscanf(rest, "%*d %lf %lf", &f->steps[step].lr, &f->steps[step].norm) != 2)
                rc = -1;
        } else if (s && strcmp(word, "grad") == 0) {
            rc = read_values(f, rest, s->grad, line_no);
        } else if (s && strcmp(word, "clipped") == 0) {
            rc = read_values(f, rest, s->clipped, line_no);
        } else if (s && strcmp(word, "param") == 0) {
            rc = read_values(f, rest, s->param, line_no);
        } else if (s && strcmp(word, "exp_avg") == 0) {
            rc = read_values(f, rest, s->exp_avg, line_no);
        } else if (s && strcmp(word, "exp_avg_sq") == 0) {
            rc = read_values(f, rest, s->exp_avg_sq, line_no);
        } else {
            rc = -1;
        }
        if (rc) fprintf(stderr, "%s:%d: cannot read the '%s' record\n", path, line_no, word);
    }
    fclose(file);
    if (rc == 0 && (f->n_tensors == 0 || f->n_steps == 0)) {
        fprintf(stderr, "%s: no tensors or no steps\n", path);
        rc = -1;
    }
    return rc;
}

// Largest |got - want| / (|want| + floor * max|want|): relative per entry, with a floor at
// a fraction of the tensor's scale so that entries near zero do not blow it up.
static double rel_diff_floor(const float *got, const float *want, int n, double floor) {
    double scale = 0.0, worst = 0.0;
    for (int i = 0; i < n; i++) scale = fmax(scale, fabs(want[i]));
    for (int i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / (fabs(want[i]) + floor * scale + 1e-30);
        worst = fmax(worst, d);
    }
    return worst;
}

static double rel_diff(const float *got, const float *want, int n) { return rel_diff_floor(got, want, n, 1e-3); }

// The first moment is a running mean of gradients of both signs: an entry can be far
// smaller than the gradients that made it, and its rounding error (a float ulp of those
// gradients, as in PyTorch) is relative to them, not to it. So it is compared relative
// to the tensor's largest entry.
static double rel_diff_tensor(const float *got, const float *want, int n) { return rel_diff_floor(got, want, n, 1.0); }

// Replays the fixture: the schedule's lr, the pre-clip norm, the clipped gradients, and
// the parameters and moments after each step, worst relative difference per quantity.
static void test_against_pytorch(const Fixture *f) {
    const double tol = 1e-6;
    AdamWOptions o = {.beta1 = f->beta1, .beta2 = f->beta2, .eps = f->eps, .weight_decay = f->weight_decay};
    AdamW opt;
    adamw_init(&opt, &o);
    Tensor params[MAX_TENSORS];
    for (int t = 0; t < f->n_tensors; t++) {
        tensor_init_param(&params[t], 1, &f->size[t]);
        memcpy(params[t].data, f->init[t], sizeof(float) * (size_t)f->size[t]);
        adamw_add(&opt, &params[t], f->decay[t] != 0);
    }
    double worst_lr = 0, worst_norm = 0;
    double worst_clip[MAX_TENSORS] = {0}, worst_p[MAX_TENSORS] = {0}, worst_m[MAX_TENSORS] = {0},
           worst_v[MAX_TENSORS] = {0};
    int clipped_steps = 0;
    for (int s = 0; s < f->n_steps; s++) {
        const StepRecord *r = &f->steps[s];
        double lr = lr_at(s, f->total, f->warmup, f->lr, f->lr_min);
        worst_lr = fmax(worst_lr, fabs(lr - r->lr) / r->lr);
        for (int t = 0; t < f->n_tensors; t++) memcpy(params[t].grad, r->grad[t], sizeof(float) * (size_t)f->size[t]);
        double norm = adamw_clip_grad_norm(&opt, f->max_norm);
        worst_norm = fmax(worst_norm, fabs(norm - r->norm) / r->norm);
        clipped_steps += norm > f->max_norm;
        adamw_step(&opt, lr);
        for (int t = 0; t < f->n_tensors; t++) {
            int n = f->size[t];
            worst_clip[t] = fmax(worst_clip[t], rel_diff(params[t].grad, r->clipped[t], n));
            worst_p[t] = fmax(worst_p[t], rel_diff(params[t].data, r->param[t], n));
            worst_m[t] = fmax(worst_m[t], rel_diff_tensor(opt.slots[t].m, r->exp_avg[t], n));
            worst_v[t] = fmax(worst_v[t], rel_diff(opt.slots[t].v, r->exp_avg_sq[t], n));
        }
    }
    check(worst_lr < 1e-12, "pytorch: lr_at over %d steps, max rel diff %.3g", f->n_steps, worst_lr);
    check(worst_norm < tol, "pytorch: pre-clip gradient norm, max rel diff %.3g", worst_norm);
    check(clipped_steps > 0 && clipped_steps < f->n_steps, "pytorch: the trajectory clips %d of %d steps",
          clipped_steps, f->n_steps);
    check(opt.step == f->n_steps, "pytorch: step counter %ld after %d steps", opt.step, f->n_steps);
    for (int t = 0; t < f->n_tensors; t++) {
        const char *name = f->names[t];
        check(worst_clip[t] < tol, "pytorch: %s clipped gradients, max rel diff %.3g", name, worst_clip[t]);
        check(worst_p[t] < tol, "pytorch: %s (decay %d) parameters, max rel diff %.3g", name, f->decay[t], worst_p[t]);
        check(worst_m[t] < tol, "pytorch: %s exp_avg, max diff relative to its largest entry %.3g", name, worst_m[t]);
        check(worst_v[t] < tol, "pytorch: %s exp_avg_sq, max rel diff %.3g", name, worst_v[t]);
    }
    for (int t = 0; t < f->n_tensors; t++) tensor_free_param(&params[t]);
    adamw_free(&opt);
}

// The same trajectory with weight decay turned off must miss the reference for decayed
// tensors: the fixture is sensitive to the decay, so the test above can fail.
static void test_decay_matters(const Fixture *f) {
    AdamWOptions o = {.beta1 = f->beta1, .beta2 = f->beta2, .eps = f->eps, .weight_decay = 0.0};
    AdamW opt;
    adamw_init(&opt, &o);
    Tensor params[MAX_TENSORS];
    for (int t = 0; t < f->n_tensors; t++) {
        tensor_init_param(&params[t], 1, &f->size[t]);
        memcpy(params[t].data, f->init[t], sizeof(float) * (size_t)f->size[t]);
        adamw_add(&opt, &params[t], f->decay[t] != 0);
    }
    for (int s = 0; s < f->n_steps; s++) {
        for (int t = 0; t < f->n_tensors; t++)
            memcpy(params[t].grad, f->steps[s].grad[t], sizeof(float) * (size_t)f->size[t]);
        adamw_clip_grad_norm(&opt, f->max_norm);
        adamw_step(&opt, lr_at(s, f->total, f->warmup, f->lr, f->lr_min));
    }
    const StepRecord *last = &f->steps[f->n_steps - 1];
    int decayed_differ = 1, undecayed_same = 1;
    for (int t = 0; t < f->n_tensors; t++) {
        double d = rel_diff(params[t].data, last->param[t], f->size[t]);
        if (f->decay[t]) decayed_differ &= d > 1e-4;
        else undecayed_same &= d < 1e-6;
        tensor_free_param(&params[t]);
    }
    check(decayed_differ && undecayed_same,
          "pytorch: with weight_decay 0 the decayed tensors miss the reference (> 1e-4), the others still match");
    adamw_free(&opt);
}

// ---- schedule, by hand ----
static void test_schedule(void) {
    // lr 1e-3, lr_min 1e-5, warm-up 10 steps, 101 steps (0..100).
    const double lr = 1e-3, lr_min = 1e-5;
    struct {
        long step;
        double want;
        const char *why;
    } cases[] = {
        {0, 1e-4, "warm-up start: 1e-3 * 1/10"},
        {4, 5e-4, "warm-up: 1e-3 * 5/10"},
        {9, 1e-3, "warm-up end: 1e-3 * 10/10"},
        {10, 1e-3, "decay start: progress (10-10)/90 = 0, lr"},
        {55, 5.05e-4, "mid-decay: progress 45/90 = 0.5, 1e-5 + 0.5*(1e-3 - 1e-5)"},
        {91, 1.09e-4, "progress 81/90 = 0.9, 1e-5 + 0.1*9.9e-4"},
        {100, 1e-5, "last step (total-1): lr_min"},
        {150, 1e-5, "past the end: lr_min"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double got = lr_at(cases[i].step, 101, 10, lr, lr_min);
        check(fabs(got - cases[i].want) <= 1e-12 * cases[i].want, "schedule step %ld = %.6g (%s)", cases[i].step, got,
              cases[i].why);
    }
    // No warm-up: step 0 uses lr; 11 steps decay over 10 intervals: step 5 is halfway.
    check(lr_at(0, 11, 0, 1.0, 0.0) == 1.0 && fabs(lr_at(5, 11, 0, 1.0, 0.0) - 0.5) < 1e-15 &&
              lr_at(10, 11, 0, 1.0, 0.0) == 0.0,
          "schedule without warm-up: 1, 0.5, 0 at steps 0, 5, 10 of 11");
    // Warm-up as long as the run: nothing to decay over, lr after the warm-up.
    check(fabs(lr_at(4, 5, 5, 2.0, 0.1) - 2.0) < 1e-15 && lr_at(6, 5, 5, 2.0, 0.1) == 2.0,
          "schedule with warm-up >= total - 1: lr after warm-up");
}

// ---- clipping, by hand ----
static void test_clipping(void) {
    int two = 2, one = 1;
    Tensor a, b;
    tensor_init_param(&a, 1, &two);
    tensor_init_param(&b, 1, &one);
    Tensor *list[2] = {&a, &b};
    // Norm of (3, 4, 12) is 13; max_norm 6.5 scales by 6.5 / (13 + 1e-6).
    a.grad[0] = 3, a.grad[1] = 4, b.grad[0] = 12;
    double norm = clip_grad_norm(list, 2, 6.5);
    double k = 6.5 / (13.0 + 1e-6);
    check(norm == 13.0 && fabs(a.grad[0] - 3 * k) < 1e-6 && fabs(a.grad[1] - 4 * k) < 1e-6 &&
              fabs(b.grad[0] - 12 * k) < 1e-6,
          "clip: norm 13 > 6.5 scaled to (%.6g, %.6g, %.6g)", a.grad[0], a.grad[1], b.grad[0]);
    a.grad[0] = 3, a.grad[1] = 4, b.grad[0] = 12;
    norm = clip_grad_norm(list, 2, 20.0);
    check(norm == 13.0 && a.grad[0] == 3 && a.grad[1] == 4 && b.grad[0] == 12,
          "clip: norm 13 < 20 leaves gradients alone");
    a.grad[1] = NAN;
    norm = clip_grad_norm(list, 2, 1.0);
    check(isnan(norm) && a.grad[0] == 3 && b.grad[0] == 12, "clip: a NaN gradient gives norm %g, gradients untouched",
          norm);
    a.grad[1] = INFINITY;
    norm = clip_grad_norm(list, 2, 1.0);
    check(isinf(norm) && a.grad[0] == 3 && b.grad[0] == 12,
          "clip: an infinite gradient gives norm %g, gradients untouched", norm);
    tensor_free_param(&a);
    tensor_free_param(&b);

    // Over 100003 floats (not a multiple of 8) the double sum matches a plain double loop.
    int n = 100003;
    Tensor big;
    tensor_init_param(&big, 1, &n);
    double want = 0;
    for (int i = 0; i < n; i++) {
        big.grad[i] = (float)sin(0.001 * i) * 1e-3f;
        want += (double)big.grad[i] * big.grad[i];
    }
    Tensor *one_list[1] = {&big};
    norm = clip_grad_norm(one_list, 1, 0.0);
    check(fabs(norm - sqrt(want)) <= 1e-12 * sqrt(want), "clip: norm over 100003 floats, rel diff %.3g",
          fabs(norm - sqrt(want)) / sqrt(want));
    tensor_free_param(&big);

    // Over several pieces (2^18 floats each, summed on the threads): the same bits at 1, 2
    // and 3 threads, and the plain double sum to 1e-12; the scaling touches every piece.
    n = 3 * (1 << 18) + 12345;
    tensor_init_param(&big, 1, &n);
    want = 0;
    for (int i = 0; i < n; i++) {
        big.grad[i] = (float)sin(0.0007 * i + 0.3) * 1e-2f;
        want += (double)big.grad[i] * big.grad[i];
    }
    double norms[3];
    for (int threads = 1; threads <= 3; threads++) {
        omp_set_num_threads(threads);
        norms[threads - 1] = clip_grad_norm(one_list, 1, 0.0);
    }
    omp_set_num_threads(2);
    check(norms[0] == norms[1] && norms[1] == norms[2] && fabs(norms[0] - sqrt(want)) <= 1e-12 * sqrt(want),
          "clip: norm over %d floats in pieces: %.17g at 1, 2, 3 threads (%s), rel diff %.3g to the plain sum", n,
          norms[0], norms[0] == norms[1] && norms[1] == norms[2] ? "equal" : "NOT equal",
          fabs(norms[0] - sqrt(want)) / sqrt(want));
    float last = big.grad[n - 1], first = big.grad[0];
    norm = clip_grad_norm(one_list, 1, 0.5 * sqrt(want));
    float k_float = (float)(0.5 * sqrt(want) / (norm + 1e-6));
    check(big.grad[0] == first * k_float && big.grad[n - 1] == last * k_float,
          "clip: over pieces the first and last gradient are both scaled by %.6g", k_float);
    tensor_free_param(&big);
}

// ---- masked weights and checkpoint resume ----
static void test_masked_and_resume(void) {
    int n = 70000;  // above the threading threshold of the update loop
    Tensor w, w2;
    tensor_init_param(&w, 1, &n);
    tensor_init_param(&w2, 1, &n);
    AdamWOptions o;
    adamw_options_defaults(&o);
    AdamW opt, restored;
    adamw_init(&opt, &o);
    adamw_add(&opt, &w, true);
    for (int i = 0; i < n; i++) w.data[i] = (float)cos(0.01 * i);
    for (int step = 0; step < 5; step++) {
        for (int i = 0; i < n; i++) w.grad[i] = (float)sin(0.37 * i + step);
        adamw_step(&opt, 1e-3);
    }
    // Prune every third weight: weight, gradient and both moments zeroed, as pruning will.
    AdamWSlot *slot = adamw_find(&opt, &w);
    for (int i = 0; i < n; i += 3) w.data[i] = slot->m[i] = slot->v[i] = 0.0f;
    // A checkpoint: the weights, moments and step, restored into a fresh optimizer.
    memcpy(w2.data, w.data, sizeof(float) * (size_t)n);
    adamw_init(&restored, &o);
    adamw_add(&restored, &w2, true);
    memcpy(restored.slots[0].m, slot->m, sizeof(float) * (size_t)n);
    memcpy(restored.slots[0].v, slot->v, sizeof(float) * (size_t)n);
    restored.step = opt.step;
    for (int step = 5; step < 10; step++) {
        for (int i = 0; i < n; i++) w.grad[i] = w2.grad[i] = i % 3 == 0 ? 0.0f : (float)sin(0.37 * i + step);
        adamw_step(&opt, 1e-3);
        adamw_step(&restored, 1e-3);
    }
    int alive = 0;
    for (int i = 0; i < n; i += 3) alive += w.data[i] != 0.0f;
    check(alive == 0, "masked weights with zeroed moments and gradients stay exactly 0 (%d came back)", alive);
    check(adamw_find(&opt, &w2) == NULL && adamw_find(&restored, &w2) == &restored.slots[0], "adamw_find by tensor");
    check(memcmp(w.data, w2.data, sizeof(float) * (size_t)n) == 0 &&
              memcmp(slot->m, restored.slots[0].m, sizeof(float) * (size_t)n) == 0 && restored.step == 10,
          "restored moments and step continue the same trajectory to the bit");
    adamw_free(&opt);
    adamw_free(&restored);
    tensor_free_param(&w);
    tensor_free_param(&w2);
}

// ---- many tensors in one pass ----
// The update and the clipping run as one region over all tensors end to end: sizes on
// either side of the threading threshold and of the 16-float cuts give the same bits at
// 1, 3 and 4 threads, the update matches a plain loop of torch's formula, and the scaling
// reaches every element of every tensor.
enum { MANY = 5 };

static void fill_many(Tensor *t, const int *sizes, int seed) {
    for (int k = 0; k < MANY; k++)
        for (int i = 0; i < sizes[k]; i++) {
            t[k].data[i] = (float)cos(0.013 * i + k + seed);
            t[k].grad[i] = (float)sin(0.37 * i + 2 * k + seed) * 1e-2f;
        }
}

static void test_many_tensors(void) {
    const int sizes[MANY] = {70001, 13, 200003, 17, 65541};
    const double lr = 1e-3;
    AdamWOptions o;
    adamw_options_defaults(&o);
    float *result[3][MANY];
    double norms[3];
    const int thread_counts[3] = {1, 3, 4};
    for (int run = 0; run < 3; run++) {
        omp_set_num_threads(thread_counts[run]);
        Tensor t[MANY];
        Tensor *list[MANY];
        AdamW opt;
        adamw_init(&opt, &o);
        for (int k = 0; k < MANY; k++) {
            tensor_init_param(&t[k], 1, &sizes[k]);
            adamw_add(&opt, &t[k], k % 2 == 0);
            list[k] = &t[k];
        }
        fill_many(t, sizes, 0);
        norms[run] = clip_grad_norm(list, MANY, 0.0);
        adamw_step(&opt, lr);
        if (run == 0) {
            // One update from zero moments, as a plain loop (step 1: bias corrections of t = 1).
            Tensor ref[MANY];
            double worst = 0.0;
            for (int k = 0; k < MANY; k++) tensor_init_param(&ref[k], 1, &sizes[k]);
            fill_many(ref, sizes, 0);
            const float step_size = (float)(lr / (1.0 - o.beta1)), bias2_sqrt = (float)sqrt(1.0 - o.beta2);
            for (int k = 0; k < MANY; k++) {
                const float decay = k % 2 == 0 ? (float)(1.0 - lr * o.weight_decay) : 1.0f;
                for (int i = 0; i < sizes[k]; i++) {
                    float g = ref[k].grad[i], m = (float)(1.0 - o.beta1) * g, v = (float)(1.0 - o.beta2) * g * g;
                    float want = ref[k].data[i] * decay - step_size * (m / (sqrtf(v) / bias2_sqrt + (float)o.eps));
                    double d = fabs((double)t[k].data[i] - want) / (fabs(want) + 1e-3);
                    if (d > worst) worst = d;
                }
                tensor_free_param(&ref[k]);
            }
            check(worst <= 1e-6, "many tensors: one update equals the plain formula (worst rel diff %.3g)", worst);
        }
        for (int k = 0; k < MANY; k++) {
            result[run][k] = xmalloc(sizeof(float) * (size_t)sizes[k]);
            memcpy(result[run][k], t[k].data, sizeof(float) * (size_t)sizes[k]);
        }
        // Clipping to half the norm scales every gradient of every tensor.
        fill_many(t, sizes, 1);
        double half = 0.5 * clip_grad_norm(list, MANY, 0.0);
        fill_many(t, sizes, 1);
        double before = clip_grad_norm(list, MANY, half);
        const float k_float = (float)(half / (before + 1e-6));
        Tensor fresh[MANY];
        long wrong = 0;
        for (int k = 0; k < MANY; k++) tensor_init_param(&fresh[k], 1, &sizes[k]);
        fill_many(fresh, sizes, 1);
        for (int k = 0; k < MANY; k++) {
            for (int i = 0; i < sizes[k]; i++) wrong += t[k].grad[i] != fresh[k].grad[i] * k_float;
            tensor_free_param(&fresh[k]);
        }
        check(wrong == 0, "many tensors, %d threads: clipping scaled every gradient (%ld not)", thread_counts[run],
              wrong);
        adamw_free(&opt);
        for (int k = 0; k < MANY; k++) tensor_free_param(&t[k]);
    }
    omp_set_num_threads(2);
    long differ = 0;
    for (int run = 1; run < 3; run++)
        for (int k = 0; k < MANY; k++) differ += memcmp(result[0][k], result[run][k], sizeof(float) * (size_t)sizes[k]) != 0;
    check(differ == 0 && norms[0] == norms[1] && norms[1] == norms[2],
          "many tensors: the update and the norm have the same bits at 1, 3 and 4 threads (%ld tensors differ)", differ);
    for (int run = 0; run < 3; run++)
        for (int k = 0; k < MANY; k++) free(result[run][k]);
}

int main(void) {
    static Fixture fixture;
    if (load_fixture("fixtures/optim_reference.txt", &fixture)) {
        check(0, "load fixtures/optim_reference.txt (run from tests/)");
    } else {
        test_against_pytorch(&fixture);
        test_decay_matters(&fixture);
    }
    test_schedule();
    test_clipping();
    test_masked_and_resume();
    test_many_tensors();
    printf("%s\n", check_failures ? "FAILED" : "all optim tests passed");
    return check_failures ? 1 : 0;
}
