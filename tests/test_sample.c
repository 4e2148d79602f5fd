// Token sampling (src/run/sample.c) against a direct computation: softmax(logits / T) in
// double, the top_k most likely kept, then the most likely ones until their mass reaches
// top_p, renormalised. The sampler's distribution must equal it, and its draws must follow
// it (every frequency within 5 standard errors; nothing outside the kept set ever drawn).
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "run/sample.h"

// The expected distribution, written the slow, obvious way (O(V^2) ranking).
static void direct(const float *logits, int V, double T, int top_k, double top_p, double *p) {
    double max = logits[0], total = 0.0;
    for (int i = 1; i < V; i++) max = fmax(max, logits[i]);
    double *soft = malloc(sizeof(double) * V);
    int *rank = malloc(sizeof(int) * V);
    for (int i = 0; i < V; i++) total += soft[i] = exp((logits[i] - max) / T);
    for (int i = 0; i < V; i++) soft[i] /= total;
    for (int i = 0; i < V; i++) {  // rank: how many tokens come before i
        rank[i] = 0;
        for (int j = 0; j < V; j++) rank[i] += logits[j] > logits[i] || (logits[j] == logits[i] && j < i);
    }
    int k = top_k > 0 ? top_k : V;
    double kept_mass = 0.0;
    for (int i = 0; i < V; i++) kept_mass += rank[i] < k ? soft[i] : 0.0;
    // Nucleus: walk the ranks in order; keep until the (renormalised) mass reaches top_p.
    int n_keep = 0;
    for (double cum = 0.0; n_keep < k && cum < top_p * kept_mass;) {
        for (int i = 0; i < V; i++)
            if (rank[i] == n_keep) cum += soft[i];
        n_keep++;
    }
    double mass = 0.0;
    for (int i = 0; i < V; i++) mass += rank[i] < n_keep ? soft[i] : 0.0;
    for (int i = 0; i < V; i++) p[i] = rank[i] < n_keep ? soft[i] / mass : 0.0;
    free(soft);
    free(rank);
}

static void check_case(const char *label, const float *logits, int V, float T, int top_k, float top_p) {
    SamplerOptions o = {.temperature = T, .top_k = top_k, .top_p = top_p, .seed = 42};
    Sampler s;
    sampler_init(&s, &o, V);
    double *want = malloc(sizeof(double) * V), *got = malloc(sizeof(double) * V);
    direct(logits, V, T, top_k, top_p, want);
    sampler_distribution(&s, logits, got);
    double worst = 0.0;
    for (int i = 0; i < V; i++) worst = fmax(worst, fabs(got[i] - want[i]));
    check(worst < 1e-12, "%s: distribution = direct computation (max difference %.2e)", label, worst);

    const int n = V > 100 ? 20000 : 60000;  // draws: enough for 5 standard errors to be tight, and fast
    long *count = calloc(V, sizeof(long));
    for (int t = 0; t < n; t++) {
        int32_t k = sampler_next(&s, logits);
        if (k >= 0 && k < V) count[k]++;
    }
    int outside = 0, off = 0;
    double worst_z = 0.0;
    for (int i = 0; i < V; i++) {
        if (want[i] == 0.0) {
            outside += count[i] != 0;
            continue;
        }
        double f = (double)count[i] / n, se = sqrt(want[i] * (1.0 - want[i]) / n) + 1e-12;
        double z = fabs(f - want[i]) / se;
        worst_z = fmax(worst_z, z);
        off += z > 5.0;
    }
    check(outside == 0 && off == 0, "%s: %d draws follow it (worst %.2f standard errors; %d tokens outside the kept set drawn)",
          label, n, worst_z, outside);
    free(count);
    free(want);
    free(got);
    sampler_free(&s);
}

int main(void) {
    float small[8] = {1.0f, 2.5f, -0.5f, 2.5f, 0.0f, 3.0f, -2.0f, 1.5f};  // a tie at 2.5
    check_case("T 1", small, 8, 1.0f, 0, 1.0f);
    check_case("T 0.5", small, 8, 0.5f, 0, 1.0f);
    check_case("T 2, top-k 3", small, 8, 2.0f, 3, 1.0f);
    check_case("T 1, top-k 2 (cuts the tie)", small, 8, 1.0f, 2, 1.0f);
    check_case("T 1, top-p 0.6", small, 8, 1.0f, 0, 0.6f);
    check_case("T 0.7, top-k 5, top-p 0.9", small, 8, 0.7f, 5, 0.9f);
    check_case("T 1, top-p tiny (one token)", small, 8, 1.0f, 0, 1e-6f);

    enum { V = 400 };
    static float big[V];
    Rng rng;
    rng_seed(&rng, 3);
    for (int i = 0; i < V; i++) big[i] = 3.0f * rng_normal(&rng);
    big[17] = big[300];  // a tie: two tokens with the same logit
    check_case("V 400, T 1, top-k 50", big, V, 1.0f, 50, 1.0f);
    check_case("V 400, T 0.8, top-p 0.95", big, V, 0.8f, 0, 0.95f);
    check_case("V 400, T 1.3, top-k 200, top-p 0.5", big, V, 1.3f, 200, 0.5f);

    // Greedy: the first maximum, whatever the seed.
    SamplerOptions greedy = {.temperature = 0.0f, .top_k = 0, .top_p = 1.0f, .seed = 9};
    Sampler s;
    sampler_init(&s, &greedy, 8);
    float tie[8] = {0, 5, 1, 5, 2, 3, 4, 0};
    check(sampler_next(&s, tie) == 1 && sampler_next(&s, small) == 5, "temperature 0: the argmax, first on ties");
    sampler_free(&s);

    // Same seed, same draws; another seed, other draws.
    SamplerOptions o = {.temperature = 1.0f, .top_k = 0, .top_p = 1.0f, .seed = 5};
    Sampler a, b, c;
    sampler_init(&a, &o, V);
    sampler_init(&b, &o, V);
    o.seed = 6;
    sampler_init(&c, &o, V);
    int same = 1, differ = 0;
    for (int t = 0; t < 200; t++) {
        int32_t x = sampler_next(&a, big), y = sampler_next(&b, big), z = sampler_next(&c, big);
        same = same && x == y;
        differ += x != z;
    }
    check(same && differ > 0, "seed 5 twice: the same 200 draws; seed 6: %d of 200 differ", differ);
    sampler_free(&a), sampler_free(&b), sampler_free(&c);

    // Ranges.
    Error err;
    SamplerOptions bad = o;
    bad.temperature = -1.0f;
    check_error("temperature -1", sampler_options_check(&bad, V, &err), &err, "--temperature", NULL);
    bad = o, bad.top_k = V + 1;
    check_error("top-k beyond the vocabulary", sampler_options_check(&bad, V, &err), &err, "--top-k", "400", NULL);
    bad = o, bad.top_p = 0.0f;
    check_error("top-p 0", sampler_options_check(&bad, V, &err), &err, "--top-p", NULL);
    bad = o, bad.top_p = 1.5f;
    check_error("top-p 1.5", sampler_options_check(&bad, V, &err), &err, "--top-p", NULL);
    check(sampler_options_check(&o, V, &err) == 0, "defaults-like options accepted");
    return check_summary("sampling");
}
