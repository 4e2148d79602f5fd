// Pruning masks (see masks.h).
#include "prune/masks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const component_names[PRUNE_N_COMPONENTS] = {
    "in_proj", "conv1d", "x_proj", "dt_proj", "A_log", "out_proj", "other",
};

const char *prune_component_name(PruneComponent component) {
    return component >= 0 && component < PRUNE_N_COMPONENTS ? component_names[component] : "?";
}

PruneComponent prune_component_of(const char *name, int *layer) {
    int index = -1, used = 0;
    if (sscanf(name, "backbone.layers.%d.%n", &index, &used) != 1 || used == 0) index = -1;
    if (layer) *layer = index;
    if (index < 0) return PRUNE_OTHER;
    const char *rest = name + used;
    static const struct { const char *suffix; PruneComponent component; } table[] = {
        {"mixer.in_proj.weight", PRUNE_IN_PROJ},   {"mixer.conv1d.weight", PRUNE_CONV1D},
        {"mixer.x_proj.weight", PRUNE_X_PROJ},     {"mixer.dt_proj.weight", PRUNE_DT_PROJ},
        {"mixer.A_log", PRUNE_A_LOG},              {"mixer.out_proj.weight", PRUNE_OUT_PROJ},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(rest, table[i].suffix) == 0) return table[i].component;
    return PRUNE_OTHER;
}

void prune_masks_create(PruneMasks *masks, MambaModel *model, const bool *prunable) {
    memset(masks, 0, sizeof *masks);
    masks->tensors = xcalloc((size_t)model->n_params, sizeof(MaskedTensor));
    for (int i = 0; i < model->n_params; i++) {
        if (!prunable[i]) continue;
        MaskedTensor *m = &masks->tensors[masks->n++];
        m->name = model->params[i].name;
        m->tensor = model->params[i].tensor;
        m->keep = xmalloc(m->tensor->size);
        memset(m->keep, 1, m->tensor->size);
        m->component = prune_component_of(m->name, &m->layer);
        masks->total += m->tensor->size;
    }
}

void prune_masks_free(PruneMasks *masks) {
    for (int i = 0; i < masks->n; i++) free(masks->tensors[i].keep);
    free(masks->tensors);
    memset(masks, 0, sizeof *masks);
}

MaskedTensor *prune_masks_find(PruneMasks *masks, const char *name) {
    for (int i = 0; i < masks->n; i++)
        if (strcmp(masks->tensors[i].name, name) == 0) return &masks->tensors[i];
    return NULL;
}

size_t prune_masks_pruned(const PruneMasks *masks) {
    size_t pruned = 0;
    for (int i = 0; i < masks->n; i++) {
        const MaskedTensor *m = &masks->tensors[i];
        for (size_t j = 0; j < m->tensor->size; j++) pruned += m->keep[j] == 0;
    }
    return pruned;
}

double prune_masks_sparsity(const PruneMasks *masks) {
    return masks->total ? (double)prune_masks_pruned(masks) / (double)masks->total : 0.0;
}

// Runs after every optimizer step over every prunable weight, so it is written to
// vectorize (a select, no branch) and spread over the threads.
static void zero_pruned(float *restrict values, const uint8_t *restrict keep, size_t n) {
    #pragma omp parallel for schedule(static) if (n >= 65536)
    for (size_t j = 0; j < n; j++) values[j] = keep[j] ? values[j] : 0.0f;
}

void prune_masks_apply(const PruneMasks *masks, AdamW *optimizer) {
    for (int i = 0; i < masks->n; i++) {
        const MaskedTensor *m = &masks->tensors[i];
        zero_pruned(m->tensor->data, m->keep, m->tensor->size);
        AdamWSlot *slot = optimizer ? adamw_find(optimizer, m->tensor) : NULL;
        if (slot) {
            zero_pruned(slot->m, m->keep, m->tensor->size);
            zero_pruned(slot->v, m->keep, m->tensor->size);
        }
    }
}

void prune_masks_checkpoint_views(const PruneMasks *masks, CheckpointMask *views) {
    for (int i = 0; i < masks->n; i++)
        views[i] = (CheckpointMask){masks->tensors[i].name, masks->tensors[i].keep, masks->tensors[i].tensor->size};
}

void prune_masks_from_zeros(PruneMasks *masks) {
    for (int i = 0; i < masks->n; i++) {
        MaskedTensor *m = &masks->tensors[i];
        for (size_t j = 0; j < m->tensor->size; j++) m->keep[j] = m->tensor->data[j] != 0.0f;
    }
}

static const MaskedTensor *masked_tensor_of(const PruneMasks *masks, const Tensor *tensor) {
    for (int i = 0; i < masks->n; i++)
        if (masks->tensors[i].tensor == tensor) return &masks->tensors[i];
    return NULL;
}

typedef struct ZeroCount {
    size_t zeros, total;
} ZeroCount;

static double ratio(ZeroCount c) { return c.total ? (double)c.zeros / (double)c.total : 0.0; }

static cJSON *count_json(ZeroCount c) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "sparsity", ratio(c));
    cJSON_AddNumberToObject(o, "pruned", (double)c.zeros);
    cJSON_AddNumberToObject(o, "total", (double)c.total);
    return o;
}

cJSON *prune_sparsity_report(const MambaModel *model, const PruneMasks *masks) {
    int n_layer = model->config.n_layer;
    ZeroCount by_component[PRUNE_N_COMPONENTS] = {{0}};
    ZeroCount *by_layer = xcalloc((size_t)n_layer * PRUNE_N_COMPONENTS, sizeof(ZeroCount));
    for (int i = 0; i < model->n_params; i++) {
        int layer;
        PruneComponent component = prune_component_of(model->params[i].name, &layer);
        if (component == PRUNE_OTHER || layer < 0 || layer >= n_layer) continue;
        const Tensor *t = model->params[i].tensor;
        const MaskedTensor *m = masks ? masked_tensor_of(masks, t) : NULL;
        size_t zeros = 0;
        if (m)
            for (size_t j = 0; j < t->size; j++) zeros += m->keep[j] == 0;
        else
            for (size_t j = 0; j < t->size; j++) zeros += t->data[j] == 0.0f;
        by_component[component].zeros += zeros;
        by_component[component].total += t->size;
        by_layer[layer * PRUNE_N_COMPONENTS + component].zeros += zeros;
        by_layer[layer * PRUNE_N_COMPONENTS + component].total += t->size;
    }
    cJSON *report = cJSON_CreateObject();
    size_t pruned = masks ? prune_masks_pruned(masks) : 0;
    cJSON_AddNumberToObject(report, "sparsity", masks && masks->total ? (double)pruned / (double)masks->total : 0.0);
    cJSON_AddNumberToObject(report, "pruned", (double)pruned);
    cJSON_AddNumberToObject(report, "prunable", masks ? (double)masks->total : 0.0);
    cJSON *components = cJSON_AddObjectToObject(report, "components");
    for (int c = 0; c < PRUNE_OTHER; c++) cJSON_AddItemToObject(components, component_names[c], count_json(by_component[c]));
    cJSON *layers = cJSON_AddArrayToObject(report, "layers");
    for (int l = 0; l < n_layer; l++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "layer", l);
        ZeroCount all = {0};
        for (int c = 0; c < PRUNE_OTHER; c++) {
            ZeroCount count = by_layer[l * PRUNE_N_COMPONENTS + c];
            all.zeros += count.zeros;
            all.total += count.total;
        }
        cJSON_AddNumberToObject(o, "sparsity", ratio(all));
        for (int c = 0; c < PRUNE_OTHER; c++)
            cJSON_AddNumberToObject(o, component_names[c], ratio(by_layer[l * PRUNE_N_COMPONENTS + c]));
        cJSON_AddItemToArray(layers, o);
    }
    free(by_layer);
    return report;
}

static double number_at(const cJSON *o, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(item) ? item->valuedouble : 0.0;
}

void prune_sparsity_markdown(const cJSON *report, FILE *out) {
    fprintf(out, "| layer |");
    for (int c = 0; c < PRUNE_OTHER; c++) fprintf(out, " %s |", component_names[c]);
    fprintf(out, " all |\n|---|");
    for (int c = 0; c <= PRUNE_OTHER; c++) fprintf(out, "---|");
    fprintf(out, "\n");
    const cJSON *layer;
    cJSON_ArrayForEach(layer, cJSON_GetObjectItemCaseSensitive(report, "layers")) {
        fprintf(out, "| %d |", (int)number_at(layer, "layer"));
        for (int c = 0; c < PRUNE_OTHER; c++) fprintf(out, " %.1f%% |", 100.0 * number_at(layer, component_names[c]));
        fprintf(out, " %.1f%% |\n", 100.0 * number_at(layer, "sparsity"));
    }
    const cJSON *components = cJSON_GetObjectItemCaseSensitive(report, "components");
    ZeroCount all = {0};
    fprintf(out, "| all |");
    for (int c = 0; c < PRUNE_OTHER; c++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(components, component_names[c]);
        all.zeros += (size_t)number_at(o, "pruned");
        all.total += (size_t)number_at(o, "total");
        fprintf(out, " %.1f%% |", 100.0 * number_at(o, "sparsity"));
    }
    fprintf(out, " %.1f%% |\n", 100.0 * ratio(all));
}
