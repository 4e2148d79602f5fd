// The summary line of metrics.jsonl (see train_summary.h).
#include "run/train_summary.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/field.h"

// The line's keys in order; "summary": true follows the first N_EVALUATION_FIELDS, which are
// also the keys of an evaluation line.
static const Field summary_fields[] = {
    FIELD_OF(TrainSummary, steps, "step"),
    FIELD_OF(TrainSummary, val_loss, "val_loss"),
    FIELD_OF(TrainSummary, val_perplexity, "val_perplexity"),
    FIELD_OF(TrainSummary, val_accuracy, "val_accuracy"),
    FIELD_OF(TrainSummary, val_tokens, "val_tokens"),
    FIELD_OF(TrainSummary, dense_val_loss, "dense_val_loss"),
    FIELD_OF(TrainSummary, dense_val_perplexity, "dense_val_perplexity"),
    FIELD_OF(TrainSummary, dense_val_accuracy, "dense_val_accuracy"),
    FIELD_OF(TrainSummary, sparsity, "sparsity"),
    FIELD_OF(TrainSummary, train_loss, "train_loss"),
    FIELD_OF(TrainSummary, tokens_per_s, "tokens_per_s"),
    FIELD_OF(TrainSummary, wall_s, "wall_s"),
    FIELD_OF(TrainSummary, train_seconds, "train_seconds"),
    FIELD_OF(TrainSummary, prune_seconds, "prune_seconds"),
    FIELD_OF(TrainSummary, parameters, "parameters"),
};
enum { N_FIELDS = sizeof summary_fields / sizeof summary_fields[0], N_EVALUATION_FIELDS = 5 };

cJSON *train_summary_json(const TrainSummary *s) {
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < N_FIELDS; i++) {
        if (i == N_EVALUATION_FIELDS) cJSON_AddBoolToObject(o, "summary", 1);
        cJSON_AddNumberToObject(o, summary_fields[i].name, field_get(&summary_fields[i], s));
    }
    return o;
}

int train_summary_read(const char *run_dir, TrainSummary *s, Error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    cJSON *summary = NULL;
    long line_number = 0, summary_line = 0;
    char *line = NULL;
    size_t capacity = 0;
    while (getline(&line, &capacity, f) > 0) {
        line_number++;
        cJSON *o = cJSON_Parse(line);
        if (o && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "summary"))) {
            cJSON_Delete(summary);
            summary = o;
            summary_line = line_number;
        } else {
            cJSON_Delete(o);
        }
    }
    free(line);
    fclose(f);
    if (!summary) return 0;
    *s = (TrainSummary){0};
    int rc = 1;
    for (int i = 0; i < N_FIELDS && rc == 1; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(summary, summary_fields[i].name);
        if (cJSON_IsNumber(v)) field_set(&summary_fields[i], s, v->valuedouble);
        else if (cJSON_IsNull(v) && summary_fields[i].type == FIELD_DOUBLE) field_set(&summary_fields[i], s, NAN);  // cJSON writes a non-finite number as null
        else rc = error_set(err, "%s:%ld: the summary line has no number \"%s\"", path, summary_line, summary_fields[i].name);
    }
    cJSON_Delete(summary);
    return rc;
}

const char *train_summary_key(size_t offset) {
    for (int i = 0; i < N_FIELDS; i++)
        if (summary_fields[i].offset == offset) return summary_fields[i].name;
    return NULL;
}
