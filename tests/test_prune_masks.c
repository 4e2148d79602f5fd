// Pruning masks (prune/masks.h): component names and the component and layer of every
// parameter name; masks created for the prunable tensors only; applying them zeroes exactly
// the pruned weights and their AdamW moments; checkpoint views; masks from zeros; the
// sparsity report's numbers against a direct count, and its Markdown table.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prune/masks.h"
#include "tiny_model.h"

#include "check.h"

static void check_names(void) {
    static const struct { const char *name; PruneComponent component; int layer; } cases[] = {
        {"backbone.layers.0.mixer.in_proj.weight", PRUNE_IN_PROJ, 0},
        {"backbone.layers.1.mixer.conv1d.weight", PRUNE_CONV1D, 1},
        {"backbone.layers.12.mixer.x_proj.weight", PRUNE_X_PROJ, 12},
        {"backbone.layers.3.mixer.dt_proj.weight", PRUNE_DT_PROJ, 3},
        {"backbone.layers.3.mixer.A_log", PRUNE_A_LOG, 3},
        {"backbone.layers.7.mixer.out_proj.weight", PRUNE_OUT_PROJ, 7},
        {"backbone.layers.3.mixer.dt_proj.bias", PRUNE_OTHER, 3},
        {"backbone.layers.3.mixer.conv1d.bias", PRUNE_OTHER, 3},
        {"backbone.layers.3.mixer.D", PRUNE_OTHER, 3},
        {"backbone.layers.3.norm.weight", PRUNE_OTHER, 3},
        {"backbone.embeddings.weight", PRUNE_OTHER, -1},
        {"backbone.norm_f.weight", PRUNE_OTHER, -1},
    };
    bool all = true;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int layer = -99;
        PruneComponent component = prune_component_of(cases[i].name, &layer);
        if (component != cases[i].component || layer != cases[i].layer) {
            all = false;
            printf("       %s: component %d layer %d\n", cases[i].name, component, layer);
        }
    }
    check(all, "component and layer of %zu parameter names", sizeof cases / sizeof cases[0]);
    static const char *const expected[] = {"in_proj", "conv1d", "x_proj", "dt_proj", "A_log", "out_proj", "other"};
    bool names = true;
    for (int c = 0; c < PRUNE_N_COMPONENTS; c++) names = names && strcmp(prune_component_name(c), expected[c]) == 0;
    check(names && strcmp(prune_component_name(PRUNE_N_COMPONENTS), "?") == 0, "component names");
}

int main(void) {
    check_names();

    MambaModel model;
    tiny_model_create(&model, 2, 3);
    bool *prunable = calloc((size_t)model.n_params, sizeof(bool));
    size_t expected_total = 0;
    int expected_n = 0;
    for (int i = 0; i < model.n_params; i++) {
        // The default set minus the second layer's out_proj, to see that only flagged tensors get a mask.
        prunable[i] = prune_component_of(model.params[i].name, NULL) != PRUNE_OTHER &&
                      strcmp(model.params[i].name, "backbone.layers.1.mixer.out_proj.weight") != 0;
        if (prunable[i]) expected_total += model.params[i].tensor->size, expected_n++;
    }
    PruneMasks masks;
    prune_masks_create(&masks, &model, prunable);
    check(masks.n == expected_n && masks.total == expected_total, "masks on %d tensors, %zu weights", masks.n,
          masks.total);
    check(prune_masks_find(&masks, "backbone.layers.1.mixer.out_proj.weight") == NULL &&
              prune_masks_find(&masks, "backbone.layers.1.mixer.A_log") != NULL,
          "only the flagged tensors have a mask");
    check(prune_masks_pruned(&masks) == 0 && prune_masks_sparsity(&masks) == 0.0, "new masks keep everything");

    AdamW optimizer;
    AdamWOptions options;
    adamw_options_defaults(&options);
    adamw_init(&optimizer, &options);
    for (int i = 0; i < model.n_params; i++) {
        adamw_add(&optimizer, model.params[i].tensor, true);
        for (size_t j = 0; j < model.params[i].tensor->size; j++) model.params[i].tensor->grad[j] = 0.01f * (float)(j % 7 + 1);
    }
    adamw_step(&optimizer, 1e-3);  // moments become non-zero

    // Prune every third weight of every mask.
    size_t pruned = 0;
    for (int i = 0; i < masks.n; i++)
        for (size_t j = 0; j < masks.tensors[i].tensor->size; j++)
            if ((j + (size_t)i) % 3 == 0) masks.tensors[i].keep[j] = 0, pruned++;
    prune_masks_apply(&masks, &optimizer);
    bool zero = true, untouched = true;
    for (int i = 0; i < masks.n; i++) {
        const MaskedTensor *m = &masks.tensors[i];
        AdamWSlot *slot = adamw_find(&optimizer, m->tensor);
        for (size_t j = 0; j < m->tensor->size; j++) {
            if (!m->keep[j]) zero = zero && m->tensor->data[j] == 0.0f && slot->m[j] == 0.0f && slot->v[j] == 0.0f;
            else untouched = untouched && m->tensor->data[j] != 0.0f && slot->v[j] != 0.0f;
        }
    }
    check(zero, "applied: pruned weights and both moments exactly 0");
    check(untouched, "applied: kept weights and moments untouched");
    Tensor *unmasked = mamba_model_find(&model, "backbone.layers.1.mixer.out_proj.weight");
    bool unmasked_ok = true;
    for (size_t j = 0; j < unmasked->size; j++) unmasked_ok = unmasked_ok && unmasked->data[j] != 0.0f;
    check(unmasked_ok, "a tensor without a mask is not touched");
    check(prune_masks_pruned(&masks) == pruned && prune_masks_sparsity(&masks) == (double)pruned / (double)expected_total,
          "pruned %zu, sparsity %.4f", prune_masks_pruned(&masks), prune_masks_sparsity(&masks));

    CheckpointMask *views = malloc(sizeof(CheckpointMask) * (size_t)masks.n);
    prune_masks_checkpoint_views(&masks, views);
    bool views_ok = true;
    for (int i = 0; i < masks.n; i++)
        views_ok = views_ok && views[i].mask == masks.tensors[i].keep && strcmp(views[i].name, masks.tensors[i].name) == 0 &&
                   views[i].size == masks.tensors[i].tensor->size;
    check(views_ok, "checkpoint views point at the masks");
    free(views);

    // Masks from zeros: the same masks back, from the weights alone.
    PruneMasks again;
    prune_masks_create(&again, &model, prunable);
    prune_masks_from_zeros(&again);
    bool same = again.n == masks.n;
    for (int i = 0; same && i < masks.n; i++)
        same = memcmp(again.tensors[i].keep, masks.tensors[i].keep, masks.tensors[i].tensor->size) == 0;
    check(same, "masks from zeros = the applied masks");
    prune_masks_free(&again);

    // The report counts zeros of every mixer weight matrix and A_log, masked or not.
    size_t zeros[PRUNE_N_COMPONENTS] = {0}, totals[PRUNE_N_COMPONENTS] = {0}, layer_zeros[2] = {0}, layer_totals[2] = {0};
    for (int i = 0; i < model.n_params; i++) {
        int layer;
        PruneComponent c = prune_component_of(model.params[i].name, &layer);
        if (c == PRUNE_OTHER) continue;
        const Tensor *t = model.params[i].tensor;
        for (size_t j = 0; j < t->size; j++) zeros[c] += t->data[j] == 0.0f, layer_zeros[layer] += t->data[j] == 0.0f;
        totals[c] += t->size;
        layer_totals[layer] += t->size;
    }
    cJSON *report = prune_sparsity_report(&model, &masks);
    bool components_ok = true;
    const cJSON *components = cJSON_GetObjectItemCaseSensitive(report, "components");
    for (int c = 0; c < PRUNE_OTHER; c++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(components, prune_component_name(c));
        double s = cJSON_GetObjectItemCaseSensitive(o, "sparsity")->valuedouble;
        components_ok = components_ok && cJSON_GetObjectItemCaseSensitive(o, "pruned")->valuedouble == (double)zeros[c] &&
                        cJSON_GetObjectItemCaseSensitive(o, "total")->valuedouble == (double)totals[c] &&
                        s == (double)zeros[c] / (double)totals[c];
    }
    check(components_ok, "report: zeros / total of each component");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(report, "layers");
    bool layers_ok = cJSON_GetArraySize(layers) == 2;
    for (int l = 0; layers_ok && l < 2; l++) {
        const cJSON *o = cJSON_GetArrayItem(layers, l);
        layers_ok = cJSON_GetObjectItemCaseSensitive(o, "layer")->valueint == l &&
                    cJSON_GetObjectItemCaseSensitive(o, "sparsity")->valuedouble ==
                        (double)layer_zeros[l] / (double)layer_totals[l];
    }
    check(layers_ok, "report: each layer's sparsity");
    check(cJSON_GetObjectItemCaseSensitive(report, "pruned")->valuedouble == (double)pruned &&
              cJSON_GetObjectItemCaseSensitive(report, "prunable")->valuedouble == (double)expected_total,
          "report: the masks' own counts");

    char *markdown = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&markdown, &size);
    prune_sparsity_markdown(report, out);
    fclose(out);
    int rows = 0;
    for (const char *p = markdown; (p = strchr(p, '\n')) != NULL; p++) rows++;
    check(strstr(markdown, "| layer | in_proj | conv1d | x_proj | dt_proj | A_log | out_proj | all |") != NULL &&
              strstr(markdown, "\n| 0 |") && strstr(markdown, "\n| 1 |") && strstr(markdown, "\n| all |") && rows == 5,
          "markdown: header, separator, 2 layers and a total row (%d lines)", rows);
    free(markdown);
    cJSON_Delete(report);

    prune_masks_free(&masks);
    free(prunable);
    adamw_free(&optimizer);
    mamba_model_free(&model);
    return check_summary("prune masks");
}
