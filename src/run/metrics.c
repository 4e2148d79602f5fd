// JSON Lines metrics (see metrics.h).
#include "run/metrics.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int metrics_open(MetricsLog *log, const char *path, Error *err) {
    log->file = fopen(path, "a");
    if (!log->file) return error_set(err, "%s: cannot open for writing: %s", path, strerror(errno));
    return 0;
}

void metrics_write(MetricsLog *log, cJSON *object) {
    if (log->file) {
        char *text = cJSON_PrintUnformatted(object);
        fprintf(log->file, "%s\n", text);
        fflush(log->file);
        free(text);
    }
    cJSON_Delete(object);
}

void metrics_close(MetricsLog *log) {
    if (log->file) fclose(log->file);
    log->file = NULL;
}
