// JSON Lines metrics: one object per logged step, one summary object per run, each line
// flushed as written so a killed run leaves whole lines behind. Every write is checked: the
// first failure (a full disk) is kept, and metrics_check reports it naming the file.
#ifndef MP_RUN_METRICS_H
#define MP_RUN_METRICS_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "core/error.h"

typedef struct MetricsLog {
    FILE *file;        // NULL when metrics are off
    char *path;        // owned
    int write_errno;   // the errno of the first failed write, 0 while none failed
} MetricsLog;

// Opens path for appending (a resumed run continues the same file).
int metrics_open(MetricsLog *log, const char *path, Error *err);
// Keeps the lines of path of steps up to `step` (not the summary of a finished run), so
// that a resumed run's log reads as if it had never stopped; a missing file is left missing.
int metrics_truncate(const char *path, long step, Error *err);
// Writes the object as one line and frees it; a failure is kept for metrics_check.
void metrics_write(MetricsLog *log, cJSON *object);
// 0 while every write succeeded; else -1 and "PATH: writing the metrics failed: why".
int metrics_check(const MetricsLog *log, Error *err);
void metrics_close(MetricsLog *log);

#endif
