// The options of a pruning run as plain values: everything the pruning library reads, with
// the field names of the run configuration's prune and stability sections (the run fills
// them with config_prune_options). The pruning code never sees the configuration itself.
// Also the one table of names of each choice, which the configuration's keys use too.
#ifndef MP_PRUNE_OPTIONS_H
#define MP_PRUNE_OPTIONS_H

#include <stdbool.h>

#include "prune/masks.h"       // defines: PruneComponent, PRUNE_N_COMPONENTS
#include "prune/shedder.h"     // defines: ShedderTarget
#include "prune/sparsessm.h"   // defines: SparsessmWeighting

typedef enum PruneMethod {
    PRUNE_METHOD_NONE,
    PRUNE_METHOD_GRADIENT,    // iterative, during fine-tuning (prune/iterative.h)
    PRUNE_METHOD_MAGNITUDE,   // the one-shot methods (prune/oneshot.h)
    PRUNE_METHOD_WANDA,
    PRUNE_METHOD_SPARSEGPT,
    PRUNE_METHOD_SPARSESSM,
    PRUNE_METHOD_SHEDDER,
} PruneMethod;
typedef enum PruneSchedule { PRUNE_SCHEDULE_CUBIC, PRUNE_SCHEDULE_LINEAR, PRUNE_SCHEDULE_EXPONENTIAL } PruneSchedule;
typedef enum PruneStrategy { PRUNE_STRATEGY_GLOBAL, PRUNE_STRATEGY_LAYERWISE, PRUNE_STRATEGY_COMPONENT } PruneStrategy;
typedef enum PruneMagnitudeScope { PRUNE_MAGNITUDE_TENSOR, PRUNE_MAGNITUDE_GLOBAL } PruneMagnitudeScope;
// The gradient statistic g of the score |w| * g^alpha over the window (docs/DESIGN.md#gradient-statistics).
typedef enum PruneGradStat { PRUNE_GRAD_MEAN, PRUNE_GRAD_ABS_MEAN, PRUNE_GRAD_RMS } PruneGradStat;
// The per-tensor normalisation of the scores before the selection (docs/DESIGN.md#gradient-statistics).
typedef enum PruneScoreNorm { PRUNE_NORM_NONE, PRUNE_NORM_MEAN, PRUNE_NORM_MEDIAN } PruneScoreNorm;
#define PRUNE_METHOD_COUNT (PRUNE_METHOD_SHEDDER + 1)
#define PRUNE_SCHEDULE_COUNT (PRUNE_SCHEDULE_EXPONENTIAL + 1)
#define PRUNE_STRATEGY_COUNT (PRUNE_STRATEGY_COMPONENT + 1)
#define PRUNE_MAGNITUDE_COUNT (PRUNE_MAGNITUDE_GLOBAL + 1)
#define PRUNE_GRAD_STAT_COUNT (PRUNE_GRAD_RMS + 1)
#define PRUNE_SCORE_NORM_COUNT (PRUNE_NORM_MEDIAN + 1)

// The spelling of each value, in enum order (also the YAML values of the configuration).
extern const char *const prune_method_names[PRUNE_METHOD_COUNT];
extern const char *const prune_schedule_names[PRUNE_SCHEDULE_COUNT];
extern const char *const prune_strategy_names[PRUNE_STRATEGY_COUNT];
extern const char *const prune_magnitude_scope_names[PRUNE_MAGNITUDE_COUNT];
extern const char *const prune_grad_stat_names[PRUNE_GRAD_STAT_COUNT];
extern const char *const prune_score_norm_names[PRUNE_SCORE_NORM_COUNT];
extern const char *const prune_weighting_names[SPARSESSM_WINDOW + 1];
extern const char *const prune_shedder_target_names[SHEDDER_SSM + 1];

// One-shot methods prune once before training; the gradient method during it.
bool prune_method_is_oneshot(PruneMethod method);

typedef struct PruneOptions {
    PruneMethod method;
    double alpha;                     // S = |w| * g^alpha
    PruneGradStat grad_stat;          // g: |mean grad|, mean |grad| or sqrt(mean grad^2)
    PruneScoreNorm score_norm;        // each tensor's scores divided by their mean or median
    PruneSchedule schedule;
    double exp_k, initial_sparsity, final_sparsity;
    int start_step;
    int end_step;                     // resolved: never 0 here
    int prune_every, grad_accum_batches;
    PruneStrategy strategy;
    // Strategy global: A_log's own final sparsity (its own selection group), the other
    // weights then get the sparsity that keeps the total at final_sparsity; < 0 = A_log is
    // in the one global pool.
    double a_log_sparsity;
    // The final sparsity of each component under strategy component: the configured one,
    // or final_sparsity for a component not named (and for PRUNE_OTHER).
    double component_sparsity[PRUNE_N_COMPONENTS];
    const char *const *include;       // n_include parameter name patterns (not owned)
    int n_include;
    const char *const *exclude;       // n_exclude patterns never pruned (not owned)
    int n_exclude;
    int nsamples, calib_seqlen;
    double percdamp;
    int blocksize;
    int nm_n, nm_m;                   // N:M when both > 0
    PruneMagnitudeScope magnitude_scope;
    SparsessmWeighting sparsessm_weighting;
    double sparsessm_gamma, sparsessm_alpha;
    bool sparsessm_structured;        // remove whole state columns (d_state shrinks)
    int shedder_steps;
    ShedderTarget shedder_target;
    // The run's training batches: the stability check's calibration batches have this
    // shape, and the one-shot forward passes are at most batch_size windows at a time.
    int batch_size, seqlen;
} PruneOptions;

// The stability check of iterative pruning (prune/stability.h).
typedef struct PruneStabilityOptions {
    bool enabled;
    double epsilon;                   // the bound is 1 - epsilon
    int batches;                      // calibration batches
} PruneStabilityOptions;

// A pattern with '*', '?' or '[' is a glob over the whole name (fnmatch, '*' also crosses
// dots); any other pattern matches as a substring.
bool prune_name_matches(const char *pattern, const char *name);
// A parameter is prunable when its name matches one of include and none of exclude.
bool prune_param_prunable(const PruneOptions *o, const char *name);

#endif
