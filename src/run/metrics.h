// JSON Lines metrics: one object per logged step, one summary object per run, each line
// flushed as written so a killed run leaves whole lines behind.
#ifndef MP_RUN_METRICS_H
#define MP_RUN_METRICS_H

#include <cjson/cJSON.h>
#include <stdio.h>

#include "core/error.h"

typedef struct MetricsLog {
    FILE *file;  // NULL when metrics are off
} MetricsLog;

// Opens path for appending (a resumed run continues the same file).
int metrics_open(MetricsLog *log, const char *path, Error *err);
// Writes the object as one line and frees it.
void metrics_write(MetricsLog *log, cJSON *object);
void metrics_close(MetricsLog *log);

#endif
