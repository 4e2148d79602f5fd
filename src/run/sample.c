// Token sampling (see sample.h): temperature, then top-k, then top-p, as transformers'
// generate applies them. Weights are exp((logit - max) / temperature) in double; the
// candidates are ordered by decreasing logit, ties by increasing id, so the result does
// not depend on the sort's stability.
#include "run/sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sampler_options_defaults(SamplerOptions *o) {
    *o = (SamplerOptions){.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 0};
}

int sampler_options_check(const SamplerOptions *o, int vocab, Error *err) {
    if (!(o->temperature >= 0.0f) || !isfinite(o->temperature))
        return error_set(err, "--temperature: expected a number >= 0 (0 = greedy), got %g", o->temperature);
    if (o->top_k < 0 || o->top_k > vocab)
        return error_set(err, "--top-k: expected an integer in [0, %d] (0 = no limit; the vocabulary has %d tokens), got %d",
                         vocab, vocab, o->top_k);
    if (!(o->top_p > 0.0f && o->top_p <= 1.0f))
        return error_set(err, "--top-p: expected a number in (0, 1] (1 = no limit), got %g", o->top_p);
    return 0;
}

void sampler_init(Sampler *s, const SamplerOptions *options, int vocab) {
    s->options = *options;
    s->vocab = vocab;
    rng_seed(&s->rng, options->seed);
    s->weights = xmalloc(sizeof(double) * (size_t)vocab);
    s->order = xmalloc(sizeof(int32_t) * (size_t)vocab);
    s->tmp = xmalloc(sizeof(int32_t) * (size_t)vocab);
}

void sampler_free(Sampler *s) {
    free(s->weights);
    free(s->order);
    free(s->tmp);
    memset(s, 0, sizeof *s);
}

// Whether token a comes before token b: higher logit first, then lower id.
static int before(const float *logits, int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
}

// Sorts order[0..n) by rank (a merge sort through tmp, n entries).
static void merge_sort(int32_t *order, int32_t *tmp, int n, const float *logits) {
    if (n < 2) return;
    int h = n / 2;
    merge_sort(order, tmp, h, logits);
    merge_sort(order + h, tmp, n - h, logits);
    int i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = before(logits, order[j], order[i]) ? order[j++] : order[i++];
    while (i < h) tmp[k++] = order[i++];
    while (j < n) tmp[k++] = order[j++];
    memcpy(order, tmp, sizeof(int32_t) * (size_t)n);
}

// Moves the k best-ranked ids of order[0..n) to the front (in any order): quickselect
// with a median-of-three pivot. The rank is a total order, so the set is unique.
static void select_best(int32_t *order, int n, int k, const float *logits) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int32_t a = order[lo], b = order[mid], c = order[hi], pivot;
        if (before(logits, a, b)) pivot = before(logits, b, c) ? b : (before(logits, a, c) ? c : a);
        else pivot = before(logits, a, c) ? a : (before(logits, b, c) ? c : b);
        int i = lo, j = hi;
        while (i <= j) {
            while (before(logits, order[i], pivot)) i++;
            while (before(logits, pivot, order[j])) j--;
            if (i <= j) {
                int32_t t = order[i];
                order[i++] = order[j];
                order[j--] = t;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

// Fills order[0..kept) and weights[0..kept) with the candidates and their unnormalised
// probabilities; returns kept (>= 1). Temperature > 0.
static int candidates(Sampler *s, const float *logits, double *total_out) {
    const SamplerOptions *o = &s->options;
    int V = s->vocab, kept = V;
    for (int i = 0; i < V; i++) s->order[i] = i;
    int limited = (o->top_k > 0 && o->top_k < V) || o->top_p < 1.0f;
    if (o->top_k > 0 && o->top_k < V) {
        select_best(s->order, V, o->top_k, logits);
        kept = o->top_k;
    }
    if (limited) {
        merge_sort(s->order, s->tmp, kept, logits);
    }
    float max = logits[s->order[0]];
    if (!limited)
        for (int i = 1; i < V; i++) max = logits[i] > max ? logits[i] : max;
    double total = 0.0, inv_t = 1.0 / o->temperature;
    for (int i = 0; i < kept; i++) total += s->weights[i] = exp(((double)logits[s->order[i]] - max) * inv_t);
    if (o->top_p < 1.0f) {
        // The smallest prefix (by rank) whose probability reaches top_p.
        double cum = 0.0, target = (double)o->top_p * total;
        int n = 0;
        while (n < kept && cum < target) cum += s->weights[n++];
        kept = n > 0 ? n : 1;
        total = cum > 0.0 ? cum : s->weights[0];
    }
    *total_out = total;
    return kept;
}

static int32_t argmax(const float *logits, int V) {
    int32_t best = 0;
    for (int32_t i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

void sampler_distribution(Sampler *s, const float *logits, double *probs) {
    memset(probs, 0, sizeof(double) * (size_t)s->vocab);
    if (s->options.temperature == 0.0f) {
        probs[argmax(logits, s->vocab)] = 1.0;
        return;
    }
    double total;
    int kept = candidates(s, logits, &total);
    for (int i = 0; i < kept; i++) probs[s->order[i]] = s->weights[i] / total;
}

int32_t sampler_next(Sampler *s, const float *logits) {
    if (s->options.temperature == 0.0f) return argmax(logits, s->vocab);
    double total;
    int kept = candidates(s, logits, &total);
    double u = rng_uniform_double(&s->rng) * total, cum = 0.0;
    for (int i = 0; i < kept; i++) {
        cum += s->weights[i];
        if (u < cum) return s->order[i];
    }
    return s->order[kept - 1];  // u rounded onto the total
}
