// All-or-nothing file writes through a temporary file and rename (see atomic_file.h).
#include "core/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void atomic_file_release(AtomicFile *file) {
    free(file->path);
    free(file->temp_path);
    memset(file, 0, sizeof *file);
}

int atomic_file_begin(AtomicFile *file, const char *path, Error *err) {
    memset(file, 0, sizeof *file);
    size_t n = strlen(path);
    char *temp_path = xmalloc(n + sizeof ".tmp.XXXXXX");
    memcpy(temp_path, path, n);
    memcpy(temp_path + n, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
    int fd = mkstemp(temp_path);
    if (fd < 0) {
        int e = errno;
        free(temp_path);
        return error_set(err, "%s: cannot create a temporary file next to it: %s", path, strerror(e));
    }
    // mkstemp makes the file 0600; a saved model or config is meant to be shared like
    // any file the user writes.
    fchmod(fd, 0644);
    FILE *fp = fdopen(fd, "wb");
    if (!fp) {
        int e = errno;
        close(fd);
        unlink(temp_path);
        free(temp_path);
        return error_set(err, "%s: cannot open the temporary file: %s", path, strerror(e));
    }
    file->fp = fp;
    file->path = xstrdup(path);
    file->temp_path = temp_path;
    return 0;
}

int atomic_file_write(AtomicFile *file, const void *data, size_t size, Error *err) {
    if (size > 0 && fwrite(data, 1, size, file->fp) != size)
        return error_set(err, "%s: write failed: %s", file->temp_path, strerror(errno));
    return 0;
}

// fsync of the folder makes the rename itself durable.
static void fsync_parent_folder(const char *path) {
    const char *slash = strrchr(path, '/');
    char *folder = slash ? strndup(path, (size_t)(slash - path) + (slash == path)) : xstrdup(".");
    if (!folder) return;
    int fd = open(folder, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(folder);
}

int atomic_file_commit(AtomicFile *file, Error *err) {
    const char *failed_step = NULL;
    int saved_errno = 0;
    if (fflush(file->fp) != 0) failed_step = "flush";
    else if (fsync(fileno(file->fp)) != 0) failed_step = "fsync";
    if (failed_step) saved_errno = errno;
    if (fclose(file->fp) != 0 && !failed_step) {
        failed_step = "close";
        saved_errno = errno;
    }
    file->fp = NULL;
    if (!failed_step && rename(file->temp_path, file->path) != 0) {
        failed_step = "rename";
        saved_errno = errno;
    }
    if (failed_step) {
        unlink(file->temp_path);
        error_set(err, "%s: %s of the temporary file failed: %s", file->path, failed_step, strerror(saved_errno));
        atomic_file_release(file);
        return -1;
    }
    fsync_parent_folder(file->path);
    atomic_file_release(file);
    return 0;
}

void atomic_file_abort(AtomicFile *file) {
    if (file->fp) fclose(file->fp);
    if (file->temp_path) unlink(file->temp_path);
    atomic_file_release(file);
}

int atomic_write_file(const char *path, const void *data, size_t size, Error *err) {
    AtomicFile file;
    if (atomic_file_begin(&file, path, err) != 0) return -1;
    if (atomic_file_write(&file, data, size, err) != 0) {
        atomic_file_abort(&file);
        return -1;
    }
    return atomic_file_commit(&file, err);
}

int make_directories(const char *path, Error *err) {
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return error_set(err, "%s: path too long", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) return error_set(err, "%s: cannot create: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return error_set(err, "%s: cannot create: %s", buf, strerror(errno));
    return 0;
}
