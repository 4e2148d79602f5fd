// The machine's memory (see memory.h).
#include "core/memory.h"

#include <unistd.h>

uint64_t memory_physical_bytes(void) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || page <= 0) return 0;
    return (uint64_t)pages * (uint64_t)page;
}
