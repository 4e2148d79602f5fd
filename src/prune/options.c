// The names of the pruning choices and the parameter name patterns (see options.h).
#include "prune/options.h"

#include <fnmatch.h>
#include <string.h>

const char *const prune_method_names[PRUNE_METHOD_COUNT] = {"none",      "gradient",  "magnitude", "wanda",
                                                            "sparsegpt", "sparsessm", "shedder"};
const char *const prune_schedule_names[PRUNE_SCHEDULE_COUNT] = {"cubic", "linear", "exponential"};
const char *const prune_strategy_names[PRUNE_STRATEGY_COUNT] = {"global", "layerwise", "component"};
const char *const prune_magnitude_scope_names[PRUNE_MAGNITUDE_COUNT] = {"tensor", "global"};
const char *const prune_grad_stat_names[PRUNE_GRAD_STAT_COUNT] = {"mean", "abs_mean", "rms"};
const char *const prune_score_norm_names[PRUNE_SCORE_NORM_COUNT] = {"none", "mean", "median"};
const char *const prune_weighting_names[SPARSESSM_WINDOW + 1] = {"harmonic", "uniform", "geometric", "window"};
const char *const prune_shedder_target_names[SHEDDER_SSM + 1] = {"block", "ssm"};

bool prune_method_is_oneshot(PruneMethod method) {
    return method != PRUNE_METHOD_NONE && method != PRUNE_METHOD_GRADIENT;
}

bool prune_name_matches(const char *pattern, const char *name) {
    if (strpbrk(pattern, "*?[")) return fnmatch(pattern, name, 0) == 0;
    return strstr(name, pattern) != NULL;
}

bool prune_param_prunable(const PruneOptions *o, const char *name) {
    bool included = false;
    for (int i = 0; i < o->n_include && !included; i++) included = prune_name_matches(o->include[i], name);
    for (int i = 0; i < o->n_exclude && included; i++)
        if (prune_name_matches(o->exclude[i], name)) included = false;
    return included;
}
