// A run folder held by one process: an flock on DIR/.lock (released by the kernel when the
// process ends, however it ends), with the holder's pid written in the file so that a
// second run is refused naming it. Taking the lock also removes the temporary files
// (ckpt-*.h5.tmp-PID, *.tmp.XXXXXX) that processes no longer running left behind.
#ifndef MP_IO_RUN_LOCK_H
#define MP_IO_RUN_LOCK_H

#include "core/error.h"

typedef struct RunLock {
    int fd;  // -1 when not held
} RunLock;

// Locks dir (which must exist) or fails with "DIR is in use by process PID". On success,
// *removed (may be NULL) receives the number of stale temporary files deleted.
int run_lock_acquire(RunLock *lock, const char *dir, int *removed, Error *err);
void run_lock_release(RunLock *lock);

#endif
