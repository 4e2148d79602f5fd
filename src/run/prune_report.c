// The pruning report (see prune_report.h).
#include "run/prune_report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"
#include "prune/masks.h"

static const cJSON *item(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static double number(const cJSON *o, const char *key) {
    const cJSON *v = item(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

static const char *text(const cJSON *o, const char *key) {
    const cJSON *v = item(o, key);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

int prune_report_write(const cJSON *report, const char *run_dir, Error *err) {
    char path[4096];
    char *json = cJSON_Print(report);
    snprintf(path, sizeof path, "%s/report.json", run_dir);
    size_t length = strlen(json);
    json = xrealloc(json, length + 2);
    json[length] = '\n';
    json[length + 1] = '\0';
    int rc = atomic_write_file(path, json, length + 1, err);
    free(json);
    if (rc != 0) return -1;

    char *markdown = NULL;
    size_t markdown_size = 0;
    FILE *out = open_memstream(&markdown, &markdown_size);
    if (!out) return error_set(err, "%s/report.md: open_memstream failed: %s", run_dir, strerror(errno));
    prune_report_markdown(report, out);
    fclose(out);
    snprintf(path, sizeof path, "%s/report.md", run_dir);
    rc = atomic_write_file(path, markdown, markdown_size, err);
    free(markdown);
    return rc;
}

static void quality_row(FILE *out, const char *name, const cJSON *q) {
    fprintf(out, "| %s | %.4f | %.4f | %.4f |\n", name, number(q, "val_loss"), number(q, "val_perplexity"),
            number(q, "val_accuracy"));
}

void prune_report_markdown(const cJSON *report, FILE *out) {
    const cJSON *run = item(report, "run"), *quality = item(report, "quality"), *sparsity = item(report, "sparsity"),
                *stability = item(report, "stability"), *time = item(report, "time");
    fprintf(out, "# Pruning report\n\n");
    if (strcmp(text(run, "method"), "gradient") == 0)
        fprintf(out,
                "Method `gradient` (scores |w|·|g|^%g, %s strategy, %s schedule from step %d to %d, masks every %d "
                "steps, gradients of %d steps), final sparsity %.1f%%, %d training steps.\n\n",
                number(run, "alpha"), text(run, "strategy"), text(run, "schedule"), (int)number(run, "start_step"),
                (int)number(run, "end_step"), (int)number(run, "prune_every"), (int)number(run, "grad_accum_batches"),
                100.0 * number(run, "final_sparsity"), (int)number(run, "steps"));
    else
        fprintf(out, "Method `%s` (one-shot) %s, then %d fine-tuning steps with the masks held.\n\n",
                text(run, "method"), text(run, "target"), (int)number(run, "steps"));

    fprintf(out, "## Quality (validation)\n\n| model | loss | perplexity | accuracy |\n|---|---|---|---|\n");
    quality_row(out, "dense", item(quality, "dense"));
    quality_row(out, "pruned", item(quality, "pruned"));
    const cJSON *finetuned = item(quality, "dense_finetuned");
    if (finetuned) quality_row(out, "dense fine-tuned (same steps, unpruned)", finetuned);
    fprintf(out, "\nPerplexity pruned / dense: %.4f\n", number(quality, "perplexity_ratio"));
    if (finetuned)
        fprintf(out, "Perplexity pruned / dense fine-tuned: **%.4f** (reference %s, key %s)\n",
                number(quality, "perplexity_ratio_finetuned"), text(finetuned, "run_dir"), text(finetuned, "key"));
    fputc('\n', out);

    fprintf(out, "## Sparsity\n\n%.0f of %.0f prunable weights pruned (%.2f%%). Zeros per layer and component:\n\n",
            number(sparsity, "pruned"), number(sparsity, "prunable"), 100.0 * number(sparsity, "sparsity"));
    prune_sparsity_markdown(sparsity, out);

    fprintf(out, "\n## Stability (docs/DESIGN.md#stability-check)\n\n");
    if (!cJSON_IsTrue(item(stability, "enabled"))) {
        fprintf(out, "The stability check was off.\n");
    } else {
        fprintf(out,
                "%.0f mask updates; %.0f entries pushed past the bound; %.0f weights given back (%.0f A_log, %.0f "
                "dt_proj), %.0f pruned elsewhere instead; %.0f violations left.\n\n",
                number(stability, "updates"), number(stability, "violations"), number(stability, "corrected"),
                number(stability, "corrected_a_log"), number(stability, "corrected_dt_proj"),
                number(stability, "rebalanced"), number(stability, "remaining"));
        fprintf(out, "| layer | violations | corrected | corrected / masked weights |\n|---|---|---|---|\n");
        const cJSON *layer;
        cJSON_ArrayForEach(layer, item(stability, "layers"))
            fprintf(out, "| %d | %.0f | %.0f | %.3f%% |\n", (int)number(layer, "layer"), number(layer, "violations"),
                    number(layer, "corrected"), 100.0 * number(layer, "corrected_fraction"));
    }

    double train = number(time, "train_seconds");
    fprintf(out, "\n## Time\n\n| part | seconds | of training time |\n|---|---|---|\n");
    fprintf(out, "| training (forward, backward, AdamW) | %.2f | 100%% |\n", train);
    static const struct { const char *key, *name; } parts[] = {
        {"accumulate", "gradient accumulation"}, {"score", "scoring"},      {"select", "selection"},
        {"stability", "stability check"},        {"apply", "mask application"}, {"oneshot", "one-shot pass"},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        fprintf(out, "| %s | %.3f | %.2f%% |\n", parts[i].name, number(time, parts[i].key),
                train > 0 ? 100.0 * number(time, parts[i].key) / train : 0.0);
    fprintf(out, "| **pruning, all** | %.3f | %.2f%% |\n", number(time, "prune_seconds"),
            100.0 * number(time, "prune_fraction"));
}

void prune_report_brief(const cJSON *report, FILE *out) {
    const cJSON *quality = item(report, "quality"), *sparsity = item(report, "sparsity"),
                *stability = item(report, "stability"), *time = item(report, "time");
    fprintf(out, "pruning: sparsity %.2f%% (%.0f of %.0f weights;", 100.0 * number(sparsity, "sparsity"),
            number(sparsity, "pruned"), number(sparsity, "prunable"));
    const cJSON *component;
    cJSON_ArrayForEach(component, item(sparsity, "components"))
        if (number(component, "total") > 0) fprintf(out, " %s %.1f%%", component->string, 100.0 * number(component, "sparsity"));
    fprintf(out, ")\n");
    const cJSON *dense = item(quality, "dense"), *pruned = item(quality, "pruned");
    fprintf(out, "  dense  val loss %.4f, perplexity %.3f, accuracy %.4f\n", number(dense, "val_loss"),
            number(dense, "val_perplexity"), number(dense, "val_accuracy"));
    fprintf(out, "  pruned val loss %.4f, perplexity %.3f, accuracy %.4f (perplexity x%.4f)\n",
            number(pruned, "val_loss"), number(pruned, "val_perplexity"), number(pruned, "val_accuracy"),
            number(quality, "perplexity_ratio"));
    if (cJSON_IsTrue(item(stability, "enabled")))
        fprintf(out, "  stability: %.0f violations, %.0f weights given back (%.0f A_log, %.0f dt_proj), %.0f left\n",
                number(stability, "violations"), number(stability, "corrected"), number(stability, "corrected_a_log"),
                number(stability, "corrected_dt_proj"), number(stability, "remaining"));
    fprintf(out,
            "  time: training %.1f s, pruning %.2f s (%.2f%%: accumulate %.2f, score %.2f, select %.2f, stability "
            "%.2f, apply %.2f, one-shot %.2f)\n",
            number(time, "train_seconds"), number(time, "prune_seconds"), 100.0 * number(time, "prune_fraction"),
            number(time, "accumulate"), number(time, "score"), number(time, "select"), number(time, "stability"),
            number(time, "apply"), number(time, "oneshot"));
}
