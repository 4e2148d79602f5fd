// The data options of a run (see run_data.h).
#include "run/run_data.h"

static DataKind data_kind_of(CfgDataKind kind) {
    switch (kind) {
    case CFG_DATA_SELECTIVE_COPYING: return DATA_SELECTIVE_COPYING;
    case CFG_DATA_ASSOCIATIVE_RECALL: return DATA_ASSOCIATIVE_RECALL;
    case CFG_DATA_TEXT: return DATA_TEXT;
    case CFG_DATA_TOKENS: return DATA_TOKENS;
    case CFG_DATA_LISTOPS: return DATA_LISTOPS;                           // classification (heads.h)
    case CFG_DATA_TEXT_CLASSIFICATION: return DATA_TEXT_CLASSIFICATION;
    case CFG_DATA_TIMESERIES: return DATA_TIMESERIES;                     // forecasting (heads.h)
    case CFG_DATA_SEASONAL: return DATA_SEASONAL;
    }
    return DATA_SELECTIVE_COPYING;
}

void run_data_options(const RunConfig *c, DataOptions *o) {
    data_options_defaults(o);
    o->kind = data_kind_of(c->data.kind);
    o->path = c->data.path && c->data.path[0] ? c->data.path : NULL;
    o->val_fraction = (float)c->data.val_fraction;
    // data.vocab is the synthetic tasks' alphabet; files bring their own ids (checked against the model).
    bool synthetic = c->data.kind == CFG_DATA_SELECTIVE_COPYING || c->data.kind == CFG_DATA_ASSOCIATIVE_RECALL;
    o->vocab = synthetic ? c->data.vocab : 0;
    o->n_memorize = c->data.n_memorize;
    o->val_sequences = c->data.val_sequences;
    o->seed = (uint64_t)c->train.seed;
    o->min_len = c->data.min_len;  // classification (heads.h)
    o->max_len = c->data.max_len;
    o->split = c->data.split == CFG_SPLIT_TEST ? DATA_SPLIT_TEST : DATA_SPLIT_VALIDATION;
    o->horizon = c->data.horizon;  // forecasting (data.h)
    o->target_only = c->data.features == CFG_FEATURES_S;
    o->train_rows = c->data.train_rows;
    o->val_rows = c->data.val_rows;
    o->test_rows = c->data.test_rows;
    o->n_series = c->data.n_series;
    if (c->data.kind == CFG_DATA_SEASONAL) o->path = NULL;  // generated: no file
}
