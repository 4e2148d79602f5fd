// The summary line of metrics.jsonl (see train_summary.h).
#include "run/train_summary.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/field.h"

// The line's keys in order: the evaluation line's keys, then "summary": true, then the run's.
// A language model's or classifier's line has the TOKENS and BOTH fields, a forecaster's
// the SERIES and BOTH ones (docs/DESIGN.md#forecasting).
typedef enum SummaryLine { BOTH, TOKENS, SERIES } SummaryLine;
typedef struct SummaryField {
    Field field;
    SummaryLine line;
    bool run;                 // after "summary": true
} SummaryField;
#define SUMMARY_FIELD(member, name, line, run) {FIELD_OF(TrainSummary, member, name), line, run}
static const SummaryField summary_fields[] = {
    SUMMARY_FIELD(steps, "step", BOTH, false),
    SUMMARY_FIELD(val_loss, "val_loss", BOTH, false),
    SUMMARY_FIELD(val_perplexity, "val_perplexity", TOKENS, false),
    SUMMARY_FIELD(val_accuracy, "val_accuracy", TOKENS, false),
    SUMMARY_FIELD(val_tokens, "val_tokens", TOKENS, false),
    SUMMARY_FIELD(val_mse, "val_mse", SERIES, false),
    SUMMARY_FIELD(val_mae, "val_mae", SERIES, false),
    SUMMARY_FIELD(val_repeat_last_mse, "val_repeat_last_mse", SERIES, false),
    SUMMARY_FIELD(val_repeat_last_mae, "val_repeat_last_mae", SERIES, false),
    SUMMARY_FIELD(val_tokens, "val_windows", SERIES, false),
    SUMMARY_FIELD(dense_val_loss, "dense_val_loss", BOTH, true),
    SUMMARY_FIELD(dense_val_perplexity, "dense_val_perplexity", TOKENS, true),
    SUMMARY_FIELD(dense_val_accuracy, "dense_val_accuracy", TOKENS, true),
    SUMMARY_FIELD(dense_val_mse, "dense_val_mse", SERIES, true),
    SUMMARY_FIELD(dense_val_mae, "dense_val_mae", SERIES, true),
    SUMMARY_FIELD(sparsity, "sparsity", BOTH, true),
    SUMMARY_FIELD(train_loss, "train_loss", BOTH, true),
    SUMMARY_FIELD(tokens_per_s, "tokens_per_s", BOTH, true),
    SUMMARY_FIELD(wall_s, "wall_s", BOTH, true),
    SUMMARY_FIELD(train_seconds, "train_seconds", BOTH, true),
    SUMMARY_FIELD(prune_seconds, "prune_seconds", BOTH, true),
    SUMMARY_FIELD(parameters, "parameters", BOTH, true),
};
#undef SUMMARY_FIELD
enum { N_FIELDS = sizeof summary_fields / sizeof summary_fields[0] };

static bool in_line(const SummaryField *f, bool series) { return f->line == BOTH || f->line == (series ? SERIES : TOKENS); }

cJSON *train_summary_json(const TrainSummary *s) {
    cJSON *o = cJSON_CreateObject();
    bool marked = false;
    for (int i = 0; i < N_FIELDS; i++) {
        const SummaryField *f = &summary_fields[i];
        if (!in_line(f, s->series)) continue;
        if (f->run && !marked) cJSON_AddBoolToObject(o, "summary", 1), marked = true;
        cJSON_AddNumberToObject(o, f->field.name, field_get(&f->field, s));
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
    int rc = 1;
    for (int i = 0; i < N_FIELDS && rc == 1; i++) {
        if (!in_line(&summary_fields[i], s->series)) continue;
        const Field *f = &summary_fields[i].field;
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(summary, f->name);
        if (cJSON_IsNumber(v)) field_set(f, s, v->valuedouble);
        else if (cJSON_IsNull(v) && f->type == FIELD_DOUBLE) field_set(f, s, NAN);  // cJSON writes a non-finite number as null
        else rc = error_set(err, "%s:%ld: the summary line has no number \"%s\"", path, summary_line, f->name);
    }
    cJSON_Delete(summary);
    return rc;
}

const char *train_summary_key(size_t offset) {
    for (int i = 0; i < N_FIELDS; i++)
        if (summary_fields[i].field.offset == offset) return summary_fields[i].field.name;
    return NULL;
}
