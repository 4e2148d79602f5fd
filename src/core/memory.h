// The machine's memory, for refusing up front work that could not fit in it.
#ifndef MP_CORE_MEMORY_H
#define MP_CORE_MEMORY_H

#include <stdint.h>

// Physical memory in bytes (sysconf), or 0 when the system does not say.
uint64_t memory_physical_bytes(void);

#endif
