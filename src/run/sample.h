// Choosing the next token from a model's logits: greedy (temperature 0), or a draw from
// softmax(logits / temperature) restricted to the top_k most likely tokens and then to
// the smallest set of them whose probability reaches top_p (nucleus sampling, Holtzman et
// al. 2020), renormalised. The draws come from a seeded Rng, so a seed gives one output.
#ifndef MP_RUN_SAMPLE_H
#define MP_RUN_SAMPLE_H

#include <stdint.h>

#include "core/error.h"
#include "core/rng.h"

typedef struct SamplerOptions {
    float temperature;        // >= 0; 0 = greedy (the argmax, first index on ties)
    int top_k;                // >= 0; 0 = no limit
    float top_p;              // (0, 1]; 1 = no limit
    uint64_t seed;
} SamplerOptions;

typedef struct Sampler {
    SamplerOptions options;
    int vocab;                // the tokens that can be drawn: ids 0 .. vocab-1
    Rng rng;
    double *weights;          // (vocab) (owned) unnormalised probabilities of order[0..kept)
    int32_t *order;           // (vocab) (owned) token ids by decreasing logit
    int32_t *tmp;             // (vocab) (owned) merge-sort buffer
} Sampler;

// temperature 1, no top-k or top-p limit, seed 0.
void sampler_options_defaults(SamplerOptions *options);
// Checks the ranges above; the message names the option (--temperature, --top-k, --top-p).
int sampler_options_check(const SamplerOptions *options, int vocab, Error *err);

void sampler_init(Sampler *sampler, const SamplerOptions *options, int vocab);
void sampler_free(Sampler *sampler);

// The distribution the next draw is made from: probs (vocab) over the token ids (zeros
// outside the kept set). logits has at least vocab entries; only the first vocab count.
void sampler_distribution(Sampler *sampler, const float *logits, double *probs);
// The next token: greedy, or one draw from sampler_distribution's distribution.
int32_t sampler_next(Sampler *sampler, const float *logits);

#endif
