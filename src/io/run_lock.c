// The lock of a run folder and the cleaning of stale temporary files (see run_lock.h).
#include "io/run_lock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

// Whether process pid exists (EPERM: it exists but belongs to someone else).
static int process_alive(long pid) { return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM); }

// A checkpoint's temporary file "ckpt-<step>.h5.tmp-<pid>": its pid, else -1.
static long checkpoint_temp_pid(const char *name) {
    const char *tag = strstr(name, ".h5.tmp-");
    if (strncmp(name, "ckpt-", 5) != 0 || !tag) return -1;
    char *end;
    long pid = strtol(tag + 8, &end, 10);
    return *end == '\0' && pid > 0 ? pid : -1;
}

// An atomic_file temporary "<name>.tmp.XXXXXX" (mkstemp's six characters).
static int is_atomic_temp(const char *name) {
    const char *tag = strstr(name, ".tmp.");
    return tag && strlen(tag + 5) == 6 && tag != name;
}

// Holding the lock, every other writer of dir is gone: its atomic temporaries are stale,
// and so is a checkpoint temporary whose pid no longer runs.
static int remove_stale_temporaries(const char *dir) {
    DIR *folder = opendir(dir);
    if (!folder) return 0;
    int removed = 0;
    struct dirent *entry;
    char path[4352];
    while ((entry = readdir(folder)) != NULL) {
        long pid = checkpoint_temp_pid(entry->d_name);
        int stale = (pid > 0 && pid != (long)getpid() && !process_alive(pid)) || is_atomic_temp(entry->d_name);
        if (!stale) continue;
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        if (unlink(path) == 0) removed++;
    }
    closedir(folder);
    return removed;
}

int run_lock_acquire(RunLock *lock, const char *dir, int *removed, Error *err) {
    lock->fd = -1;
    if (removed) *removed = 0;
    char path[4352];
    if (snprintf(path, sizeof path, "%s/.lock", dir) >= (int)sizeof path)
        return error_set(err, "%s: path too long for its lock file", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return error_set(err, "%s: cannot create the lock file: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char text[32] = "";
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        text[n > 0 ? n : 0] = '\0';
        close(fd);
        long pid = strtol(text, NULL, 10);
        if (e == EWOULDBLOCK && pid > 0)
            return error_set(err, "%s: the run folder is in use by process %ld (another run writes into it; wait for "
                             "it to end or give this run another log.name)", dir, pid);
        if (e == EWOULDBLOCK) return error_set(err, "%s: the run folder is in use by another process", dir);
        return error_set(err, "%s: cannot lock: %s", path, strerror(e));
    }
    char text[32];
    int n = snprintf(text, sizeof text, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return error_set(err, "%s: cannot write the lock file: %s", path, strerror(e));
    }
    lock->fd = fd;
    int count = remove_stale_temporaries(dir);
    if (removed) *removed = count;
    return 0;
}

void run_lock_release(RunLock *lock) {
    if (lock->fd >= 0) close(lock->fd);  // closing releases the flock
    lock->fd = -1;
}
