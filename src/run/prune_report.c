// The pruning report (see prune_report.h).
#include "run/prune_report.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/atomic_file.h"

static const cJSON *item(const cJSON *o, const char *key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

static double number(const cJSON *o, const char *key) {
    const cJSON *v = item(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

static const char *text(const cJSON *o, const char *key) {
    const cJSON *v = item(o, key);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

void prune_report_oneshot_target(const RunConfig *c, char *out, size_t size) {
    // The shedder and structured SparseSSM shrink the model instead of masking
    // final_sparsity of its weights, and N:M sets its own ratio.
    const int steps = c->prune.shedder_steps;
    if (c->prune.method == CFG_PRUNE_SHEDDER && c->prune.shedder_target == CFG_SHEDDER_SSM)
        snprintf(out, size, "removing the SSM of %d layer%s", steps, steps == 1 ? "" : "s");
    else if (c->prune.method == CFG_PRUNE_SHEDDER)
        snprintf(out, size, "removing %d block%s", steps, steps == 1 ? "" : "s");
    else if (c->prune.method == CFG_PRUNE_SPARSESSM && c->prune.sparsessm_structured)
        snprintf(out, size, "removing %.1f%% of the state columns", 100.0 * c->prune.final_sparsity);
    else if (c->prune.nm_n > 0 && c->prune.nm_m > 0)
        snprintf(out, size, "to %d:%d", c->prune.nm_n, c->prune.nm_m);
    else
        snprintf(out, size, "to %.1f%%", 100.0 * c->prune.final_sparsity);
}

cJSON *prune_report_build(const RunConfig *c, const Evaluation *dense, const Evaluation *final,
                          const TrainSummary *s, const MambaModel *model, const PruneMasks *masks,
                          const IterativePruner *pruner, const cJSON *oneshot) {
    cJSON *report = cJSON_CreateObject();
    cJSON *run = cJSON_AddObjectToObject(report, "run");
    cJSON_AddStringToObject(run, "method", prune_method_names[c->prune.method]);
    cJSON_AddStringToObject(run, "strategy", prune_strategy_names[c->prune.strategy]);
    cJSON_AddStringToObject(run, "schedule", prune_schedule_names[c->prune.schedule]);
    cJSON_AddNumberToObject(run, "alpha", c->prune.alpha);
    cJSON_AddStringToObject(run, "grad_stat", prune_grad_stat_names[c->prune.grad_stat]);
    cJSON_AddStringToObject(run, "score_norm", prune_score_norm_names[c->prune.score_norm]);
    cJSON_AddNumberToObject(run, "a_log_sparsity", c->prune.a_log_sparsity);
    cJSON_AddNumberToObject(run, "final_sparsity", c->prune.final_sparsity);
    cJSON_AddNumberToObject(run, "start_step", c->prune.start_step);
    cJSON_AddNumberToObject(run, "end_step", config_prune_end_step(c));
    cJSON_AddNumberToObject(run, "prune_every", c->prune.prune_every);
    cJSON_AddNumberToObject(run, "grad_accum_batches", c->prune.grad_accum_batches);
    cJSON_AddNumberToObject(run, "steps", c->train.steps);

    cJSON *quality = cJSON_AddObjectToObject(report, "quality");
    cJSON_AddItemToObject(quality, "dense", evaluation_json_add(cJSON_CreateObject(), dense));
    cJSON_AddItemToObject(quality, "pruned", evaluation_json_add(cJSON_CreateObject(), final));
    if (final->series) cJSON_AddNumberToObject(quality, "mse_ratio", dense->mse > 0 ? final->mse / dense->mse : 0.0);
    else cJSON_AddNumberToObject(quality, "perplexity_ratio", dense->perplexity > 0 ? final->perplexity / dense->perplexity : 0.0);

    cJSON_AddItemToObject(report, "sparsity", prune_sparsity_report(model, masks));
    if (pruner) {
        cJSON_AddItemToObject(report, "stability", iterative_stability_totals(pruner));
    } else {
        cJSON *stability = cJSON_AddObjectToObject(report, "stability");
        cJSON_AddBoolToObject(stability, "enabled", 0);
    }

    cJSON *time = cJSON_AddObjectToObject(report, "time");
    cJSON_AddNumberToObject(time, "train_seconds", s->train_seconds);
    cJSON_AddNumberToObject(time, "prune_seconds", s->prune_seconds);
    cJSON_AddNumberToObject(time, "prune_fraction", s->train_seconds > 0 ? s->prune_seconds / s->train_seconds : 0.0);
    cJSON_AddNumberToObject(time, "accumulate", s->prune_breakdown.accumulate);
    cJSON_AddNumberToObject(time, "score", s->prune_breakdown.score);
    cJSON_AddNumberToObject(time, "select", s->prune_breakdown.select);
    cJSON_AddNumberToObject(time, "stability", s->prune_breakdown.stability);
    cJSON_AddNumberToObject(time, "apply", s->prune_breakdown.apply);
    cJSON_AddNumberToObject(time, "oneshot", s->prune_breakdown.oneshot);

    if (prune_method_is_oneshot((PruneMethod)c->prune.method)) {
        char target[128];
        prune_report_oneshot_target(c, target, sizeof target);
        cJSON_AddStringToObject(run, "target", target);
        cJSON_AddItemToObject(report, "oneshot", oneshot ? cJSON_Duplicate(oneshot, 1) : cJSON_CreateObject());
    }
    return report;
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

// Forecasting reports MSE and MAE (evaluate.h), the other tasks perplexity and accuracy.
static bool is_series(const cJSON *quality) { return item(item(quality, "dense"), "val_mse") != NULL; }

static void quality_row(FILE *out, const char *name, const cJSON *q) {
    if (item(q, "val_mse"))
        fprintf(out, "| %s | %.4f | %.4f | %.4f |\n", name, number(q, "val_mse"), number(q, "val_mae"),
                number(q, "val_repeat_last_mse"));
    else
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

    if (is_series(quality))
        fprintf(out, "## Quality (held-out split)\n\n| model | MSE | MAE | repeat-last MSE |\n|---|---|---|---|\n");
    else
        fprintf(out, "## Quality (validation)\n\n| model | loss | perplexity | accuracy |\n|---|---|---|---|\n");
    quality_row(out, "dense", item(quality, "dense"));
    quality_row(out, "pruned", item(quality, "pruned"));
    const cJSON *finetuned = item(quality, "dense_finetuned");
    if (finetuned) quality_row(out, "dense fine-tuned (same steps, unpruned)", finetuned);
    if (is_series(quality)) fprintf(out, "\nMSE pruned / dense: %.4f\n", number(quality, "mse_ratio"));
    else fprintf(out, "\nPerplexity pruned / dense: %.4f\n", number(quality, "perplexity_ratio"));
    if (finetuned && !is_series(quality))
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
    if (is_series(quality)) {
        fprintf(out, "  dense  MSE %.4f, MAE %.4f\n", number(dense, "val_mse"), number(dense, "val_mae"));
        fprintf(out, "  pruned MSE %.4f, MAE %.4f (MSE x%.4f)\n", number(pruned, "val_mse"), number(pruned, "val_mae"),
                number(quality, "mse_ratio"));
    } else {
        fprintf(out, "  dense  val loss %.4f, perplexity %.3f, accuracy %.4f\n", number(dense, "val_loss"),
                number(dense, "val_perplexity"), number(dense, "val_accuracy"));
        fprintf(out, "  pruned val loss %.4f, perplexity %.3f, accuracy %.4f (perplexity x%.4f)\n",
                number(pruned, "val_loss"), number(pruned, "val_perplexity"), number(pruned, "val_accuracy"),
                number(quality, "perplexity_ratio"));
    }
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
