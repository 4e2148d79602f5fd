// The summary line of metrics.jsonl (see train_summary.h).
#include "run/train_summary.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/field.h"

// The line's keys in order; "summary": true follows the first n_evaluation fields, which are
// also the keys of an evaluation line. A forecaster's line has its own table.
static const Field token_fields[] = {
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
static const Field series_fields[] = {
    FIELD_OF(TrainSummary, steps, "step"),
    FIELD_OF(TrainSummary, val_loss, "val_loss"),
    FIELD_OF(TrainSummary, val_mse, "val_mse"),
    FIELD_OF(TrainSummary, val_mae, "val_mae"),
    FIELD_OF(TrainSummary, val_repeat_last_mse, "val_repeat_last_mse"),
    FIELD_OF(TrainSummary, val_repeat_last_mae, "val_repeat_last_mae"),
    FIELD_OF(TrainSummary, val_tokens, "val_windows"),
    FIELD_OF(TrainSummary, dense_val_loss, "dense_val_loss"),
    FIELD_OF(TrainSummary, dense_val_mse, "dense_val_mse"),
    FIELD_OF(TrainSummary, dense_val_mae, "dense_val_mae"),
    FIELD_OF(TrainSummary, sparsity, "sparsity"),
    FIELD_OF(TrainSummary, train_loss, "train_loss"),
    FIELD_OF(TrainSummary, tokens_per_s, "tokens_per_s"),
    FIELD_OF(TrainSummary, wall_s, "wall_s"),
    FIELD_OF(TrainSummary, train_seconds, "train_seconds"),
    FIELD_OF(TrainSummary, prune_seconds, "prune_seconds"),
    FIELD_OF(TrainSummary, parameters, "parameters"),
};
typedef struct FieldTable {
    const Field *fields;
    int n, n_evaluation;
} FieldTable;
static const FieldTable token_table = {token_fields, sizeof token_fields / sizeof token_fields[0], 5};
static const FieldTable series_table = {series_fields, sizeof series_fields / sizeof series_fields[0], 7};

cJSON *train_summary_json(const TrainSummary *s) {
    const FieldTable *t = s->series ? &series_table : &token_table;
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; i < t->n; i++) {
        if (i == t->n_evaluation) cJSON_AddBoolToObject(o, "summary", 1);
        cJSON_AddNumberToObject(o, t->fields[i].name, field_get(&t->fields[i], s));
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
    s->series = cJSON_GetObjectItemCaseSensitive(summary, "val_mse") != NULL;  // a forecaster's line
    const FieldTable *t = s->series ? &series_table : &token_table;
    int rc = 1;
    for (int i = 0; i < t->n && rc == 1; i++) {
        const Field *f = &t->fields[i];
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(summary, f->name);
        if (cJSON_IsNumber(v)) field_set(f, s, v->valuedouble);
        else if (cJSON_IsNull(v) && f->type == FIELD_DOUBLE) field_set(f, s, NAN);  // cJSON writes a non-finite number as null
        else rc = error_set(err, "%s:%ld: the summary line has no number \"%s\"", path, summary_line, f->name);
    }
    cJSON_Delete(summary);
    return rc;
}

const char *train_summary_key(size_t offset) {
    for (int i = 0; i < token_table.n; i++)
        if (token_fields[i].offset == offset) return token_fields[i].name;
    for (int i = 0; i < series_table.n; i++)
        if (series_fields[i].offset == offset) return series_fields[i].name;
    return NULL;
}
