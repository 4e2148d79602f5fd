// A bump allocator for everything that lives for one training step: activations,
// their gradients, and the tape's saved values. arena_reset() frees it all at once.
// If a step needed more than the arena held, the next reset replaces the chain of
// blocks by one block of the high-water size, so steady-state steps never call malloc
// and memory does not grow from step to step.
#ifndef MP_CORE_ARENA_H
#define MP_CORE_ARENA_H

#include <stddef.h>

typedef struct ArenaBlock ArenaBlock;

typedef struct Arena {
    ArenaBlock *head;      // current block; older blocks follow ->next
    size_t used_total;     // bytes handed out since the last reset
    size_t high_water;     // largest used_total seen
} Arena;

void arena_init(Arena *arena, size_t initial_bytes);
void arena_free(Arena *arena);
// Memory aligned to 64 bytes (one cache line, one AVX-512 vector), not zeroed.
void *arena_alloc(Arena *arena, size_t bytes);
void *arena_calloc(Arena *arena, size_t bytes);
void arena_reset(Arena *arena);
// Bytes currently reserved from the system (for tests of steady-state memory).
size_t arena_capacity(const Arena *arena);

#endif
