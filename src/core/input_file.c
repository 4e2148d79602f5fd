// Checked reading of input files (see input_file.h).
#include "core/input_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *file_type_name(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

static int check_stat(const char *path, const char *what, const struct stat *st, uint64_t max_bytes, Error *err) {
    if (!S_ISREG(st->st_mode))
        return error_set(err, "%s: %s is %s, expected a regular file", path, what, file_type_name(st->st_mode));
    if ((uint64_t)st->st_size > max_bytes)
        return error_set(err, "%s: %s is %llu bytes, more than the %llu that are plausible for it", path, what,
                         (unsigned long long)st->st_size, (unsigned long long)max_bytes);
    return 0;
}

int input_file_check(const char *path, const char *what, uint64_t max_bytes, uint64_t *size, Error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return error_set(err, "%s: cannot open the %s: %s", path, what, strerror(errno));
    if (check_stat(path, what, &st, max_bytes, err) != 0) return -1;
    if (size) *size = (uint64_t)st.st_size;
    return 0;
}

int input_file_read(const char *path, const char *what, uint64_t max_bytes, char **data, size_t *size, Error *err) {
    *data = NULL;
    if (size) *size = 0;
    // O_NONBLOCK: opening a FIFO must not wait for a writer before the check refuses it.
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return error_set(err, "%s: cannot open the %s: %s", path, what, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return error_set(err, "%s: cannot read the %s: %s", path, what, strerror(e));
    }
    if (check_stat(path, what, &st, max_bytes, err) != 0) {
        close(fd);
        return -1;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = xmalloc(n + 1);
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            free(buf);
            if (e) return error_set(err, "%s: reading the %s failed at byte %zu: %s", path, what, got, strerror(e));
            return error_set(err, "%s: the %s ended at byte %zu of %zu (it shrank while being read)", path, what,
                             got, n);
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *data = buf;
    if (size) *size = n;
    return 0;
}
