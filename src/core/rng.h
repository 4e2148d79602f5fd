// A small, seedable, serialisable random number generator (xoshiro256**), so that a
// run is reproducible to the bit and its state can be saved in a checkpoint.
#ifndef MP_CORE_RNG_H
#define MP_CORE_RNG_H

#include <stdint.h>

typedef struct Rng {
    uint64_t s[4];
} Rng;

void rng_seed(Rng *rng, uint64_t seed);
uint64_t rng_next_u64(Rng *rng);
// Uniform in [0, 1).
float rng_uniform(Rng *rng);
double rng_uniform_double(Rng *rng);
// Uniform integer in [0, n), without modulo bias.
uint64_t rng_below(Rng *rng, uint64_t n);
// Standard normal (Box-Muller).
float rng_normal(Rng *rng);

#endif
