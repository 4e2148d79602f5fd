// JSON Lines metrics (see metrics.h).
#include "run/metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/atomic_file.h"

int metrics_open(MetricsLog *log, const char *path, Error *err) {
    log->write_errno = 0;
    log->path = NULL;
    log->file = fopen(path, "a");
    if (!log->file) return error_set(err, "%s: cannot open for writing: %s", path, strerror(errno));
    log->path = xstrdup(path);
    return 0;
}

void metrics_write(MetricsLog *log, cJSON *object) {
    if (log->file && !log->write_errno) {
        // One write(2) per line, unbuffered: a failure is seen at once, for the line it hits.
        char *text = cJSON_PrintUnformatted(object);
        size_t n = strlen(text);
        text[n] = '\n';  // over the NUL; the length is known
        int fd = fileno(log->file);
        for (size_t done = 0; done < n + 1 && !log->write_errno;) {
            ssize_t w = write(fd, text + done, n + 1 - done);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) log->write_errno = w < 0 ? errno : EIO;
            else done += (size_t)w;
        }
        free(text);
    }
    cJSON_Delete(object);
}

int metrics_check(const MetricsLog *log, Error *err) {
    if (!log->write_errno) return 0;
    return error_set(err, "%s: writing the metrics failed: %s", log->path ? log->path : "metrics.jsonl",
                     strerror(log->write_errno));
}

void metrics_close(MetricsLog *log) {
    if (log->file) fclose(log->file);
    free(log->path);
    log->file = NULL;
    log->path = NULL;
}

int metrics_truncate(const char *path, long step, Error *err) {
    FILE *f = fopen(path, "r");
    if (!f) return 0;  // nothing logged yet
    size_t capacity = 1 << 16, used = 0;
    char *kept = xmalloc(capacity);
    char *line = NULL;
    size_t line_capacity = 0;
    ssize_t n;
    while ((n = getline(&line, &line_capacity, f)) > 0) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *line_step = o ? cJSON_GetObjectItemCaseSensitive(o, "step") : NULL;
        bool keep = o && cJSON_IsNumber(line_step) && line_step->valuedouble <= (double)step &&
                    !cJSON_GetObjectItemCaseSensitive(o, "summary") && line[n - 1] == '\n';
        cJSON_Delete(o);
        if (!keep) continue;
        if (used + (size_t)n > capacity) {
            while (used + (size_t)n > capacity) capacity *= 2;
            kept = xrealloc(kept, capacity);
        }
        memcpy(kept + used, line, (size_t)n);
        used += (size_t)n;
    }
    free(line);
    fclose(f);
    int rc = atomic_write_file(path, kept, used, err);
    free(kept);
    return rc;
}
