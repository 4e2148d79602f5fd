// Per-step bump allocator (see arena.h).
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#define ARENA_ALIGN 64

struct ArenaBlock {
    ArenaBlock *next;
    size_t capacity;
    size_t used;
    unsigned char *memory;
};

static ArenaBlock *block_new(size_t capacity) {
    ArenaBlock *block = xmalloc(sizeof *block);
    block->next = NULL;
    block->capacity = capacity;
    block->used = 0;
    block->memory = aligned_alloc(ARENA_ALIGN, (capacity + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN);
    if (!block->memory) xmalloc((size_t)-1 / 2);  // reports out of memory and aborts
    return block;
}

static void blocks_free(ArenaBlock *block) {
    while (block) {
        ArenaBlock *next = block->next;
        free(block->memory);
        free(block);
        block = next;
    }
}

void arena_init(Arena *arena, size_t initial_bytes) {
    arena->head = block_new(initial_bytes < 4096 ? 4096 : initial_bytes);
    arena->used_total = 0;
    arena->high_water = 0;
}

void arena_free(Arena *arena) {
    blocks_free(arena->head);
    memset(arena, 0, sizeof *arena);
}

void *arena_alloc(Arena *arena, size_t bytes) {
    size_t rounded = (bytes + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (rounded == 0) rounded = ARENA_ALIGN;
    ArenaBlock *block = arena->head;
    if (block->used + rounded > block->capacity) {
        size_t capacity = block->capacity * 2;
        if (capacity < rounded) capacity = rounded;
        ArenaBlock *fresh = block_new(capacity);
        fresh->next = block;
        arena->head = block = fresh;
    }
    void *p = block->memory + block->used;
    block->used += rounded;
    arena->used_total += rounded;
    if (arena->used_total > arena->high_water) arena->high_water = arena->used_total;
    return p;
}

void *arena_calloc(Arena *arena, size_t bytes) {
    void *p = arena_alloc(arena, bytes);
    memset(p, 0, bytes);
    return p;
}

void arena_reset(Arena *arena) {
    if (arena->head->next) {
        // The last step overflowed into several blocks: replace them by one that holds it all.
        size_t capacity = arena->high_water;
        blocks_free(arena->head);
        arena->head = block_new(capacity);
    }
    arena->head->used = 0;
    arena->used_total = 0;
}

size_t arena_capacity(const Arena *arena) {
    size_t total = 0;
    for (const ArenaBlock *b = arena->head; b; b = b->next) total += b->capacity;
    return total;
}
