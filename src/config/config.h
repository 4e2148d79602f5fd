// The run configuration of docs/DESIGN.md#configuration: every setting of a training or pruning run as plain
// struct fields (c->train.steps, c->optim.lr, ...), read from YAML with libyaml, changed
// by `--set section.key=value`, expanded into sweeps and written back as YAML. One table
// (config_schema.c) describes every key; all of this is driven by it.
#ifndef MP_CONFIG_CONFIG_H
#define MP_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "core/error.h"
#include "mamba/config.h"
#include "prune/options.h"   // defines: PruneOptions, PruneStabilityOptions

// The enum-valued keys. The names are prefixed (Cfg, CFG_) so that they never clash with
// the modules' own enums; the YAML spelling of each value is the lower-case suffix.
typedef enum CfgDataKind {
    CFG_DATA_SELECTIVE_COPYING,
    CFG_DATA_ASSOCIATIVE_RECALL,
    CFG_DATA_TEXT,
    CFG_DATA_TOKENS,
    CFG_DATA_LISTOPS,
    CFG_DATA_TEXT_CLASSIFICATION,
    CFG_DATA_TIMESERIES,
    CFG_DATA_SEASONAL,
} CfgDataKind;
typedef enum CfgHead { CFG_HEAD_LM, CFG_HEAD_CLASSIFY, CFG_HEAD_FORECAST, CFG_HEAD_DLINEAR } CfgHead;
typedef enum CfgFeatures { CFG_FEATURES_M, CFG_FEATURES_S } CfgFeatures;
typedef enum CfgPool { CFG_POOL_MEAN, CFG_POOL_LAST } CfgPool;
typedef enum CfgWindowNorm {
    CFG_WINDOW_NONE,
    CFG_WINDOW_REVIN,
    CFG_WINDOW_REVIN_AFFINE,
    CFG_WINDOW_LAST
} CfgWindowNorm;
typedef enum CfgSplit { CFG_SPLIT_VALIDATION, CFG_SPLIT_TEST } CfgSplit;
typedef enum CfgMatmul { CFG_MATMUL_OPENBLAS, CFG_MATMUL_ONEDNN } CfgMatmul;
typedef enum CfgPruneMethod {
    CFG_PRUNE_NONE,
    CFG_PRUNE_GRADIENT,
    CFG_PRUNE_MAGNITUDE,
    CFG_PRUNE_WANDA,
    CFG_PRUNE_SPARSEGPT,
    CFG_PRUNE_SPARSESSM,
    CFG_PRUNE_SHEDDER,
} CfgPruneMethod;
typedef enum CfgSchedule { CFG_SCHEDULE_CUBIC, CFG_SCHEDULE_LINEAR, CFG_SCHEDULE_EXPONENTIAL } CfgSchedule;
typedef enum CfgStrategy { CFG_STRATEGY_GLOBAL, CFG_STRATEGY_LAYERWISE, CFG_STRATEGY_COMPONENT } CfgStrategy;
typedef enum CfgWeighting {
    CFG_WEIGHTING_HARMONIC,
    CFG_WEIGHTING_UNIFORM,
    CFG_WEIGHTING_GEOMETRIC,
    CFG_WEIGHTING_WINDOW,
} CfgWeighting;
typedef enum CfgShedderTarget { CFG_SHEDDER_BLOCK, CFG_SHEDDER_SSM } CfgShedderTarget;
typedef enum CfgMagnitudeScope { CFG_MAGNITUDE_TENSOR, CFG_MAGNITUDE_GLOBAL } CfgMagnitudeScope;
typedef enum CfgGradStat { CFG_GRAD_MEAN, CFG_GRAD_ABS_MEAN, CFG_GRAD_RMS } CfgGradStat;
typedef enum CfgScoreNorm { CFG_NORM_NONE, CFG_NORM_MEAN, CFG_NORM_MEDIAN } CfgScoreNorm;
typedef enum CfgReference { CFG_REFERENCE_NONE, CFG_REFERENCE_FINETUNED } CfgReference;

typedef struct StringList {
    char **items;             // count owned strings
    int count;
} StringList;

typedef struct FloatMap {
    char **names;             // count owned names, in the order they were given
    double *values;
    int count;
} FloatMap;

// One sweep axis: a key and the values it takes, each kept as YAML flow text (already
// validated as a value of that key), e.g. key "prune.alpha", values "0", "0.5", "1".
typedef struct SweepAxis {
    char *key;                // "section.key"
    char **values;
    int n_values;
    char *origin;             // where it was given: "file:line:col" or "--set ..."
} SweepAxis;

typedef struct RunConfig {
    struct {
        int d_model, n_layer;
        int vocab_size;               // 0 = from the data
        int pad_vocab_size_multiple;
        int d_state, d_conv, expand;
        int dt_rank;                  // 0 = ceil(d_model / 16)
        char *init;                   // "random", a checkpoint or a transformers folder
        CfgHead head;
        int n_classes;                // classify: 0 = from the data
        CfgPool pool;
        CfgWindowNorm window_norm;
        int n_features;               // forecast, dlinear: values per time step; 0 = from the data
    } model;
    struct {
        CfgDataKind kind;
        char *path;                   // required for text and tokens
        double val_fraction;
        int vocab;                    // alphabet of the synthetic tasks
        int n_memorize;
        int val_sequences;
        int min_len, max_len;         // listops: expression lengths (0 = max_len / 2, 0 = seqlen)
        CfgSplit split;               // the held-out split evaluations read
        int horizon;                  // forecasting: time steps predicted
        CfgFeatures features;         // forecasting: M = every feature, S = the target (last column) only
        int train_rows, val_rows, test_rows;  // forecasting: the chronological splits
        int n_series;                 // seasonal: series generated
    } data;
    struct {
        int steps, batch_size, seqlen, seed;
        int threads;                  // 0 = all cores
        int eval_every;               // 0 = only at the end
        int eval_batches;             // 0 = the whole validation split
        int log_every;
        CfgMatmul matmul;
        double max_memory_gb;         // 0 = the machine's physical memory
        bool recompute;               // each block's activations recomputed in the backward
    } train;
    struct {
        double lr, lr_min;
        int warmup_steps;
        double weight_decay, beta1, beta2, eps;
        double grad_clip;             // 0 = off
    } optim;
    struct {
        CfgPruneMethod method;
        double alpha;
        CfgGradStat grad_stat;
        CfgScoreNorm score_norm;
        CfgReference reference;       // the dense fine-tuned reference (run/reference.h)
        CfgSchedule schedule;
        double exp_k, initial_sparsity, final_sparsity;
        int start_step;
        int end_step;                 // 0 = train.steps * 3 / 4 (config_prune_end_step)
        int prune_every, grad_accum_batches;
        CfgStrategy strategy;
        double a_log_sparsity;        // < 0 = A_log in the global pool
        double distill_weight, distill_temperature;  // run/distill.h; weight 0 = off
        FloatMap component_sparsity;  // component -> final sparsity (strategy component)
        StringList include, exclude;  // parameter name patterns (config_param_prunable)
        int nsamples, calib_seqlen;
        double percdamp;
        int blocksize;
        int nm_n, nm_m;               // N:M when both > 0
        CfgMagnitudeScope magnitude_scope;
        CfgWeighting sparsessm_weighting;
        double sparsessm_gamma, sparsessm_alpha;
        bool sparsessm_structured;    // remove whole state columns (d_state shrinks)
        int shedder_steps;
        CfgShedderTarget shedder_target;
    } prune;
    struct {
        bool enabled;
        double epsilon;
        int batches;
    } stability;
    struct {
        int seqlen;                   // 0 = train.seqlen (config_eval_seqlen)
        int batches;                  // 0 = all
        bool at_end;
    } eval;
    struct {
        int every;                    // 0 = only at the end
        int keep;
    } checkpoint;
    struct {
        char *dir;
        char *name;                   // "" = the config file's base name (config_run_name)
        bool progress, jsonl;
    } log;
    SweepAxis *sweep;                 // n_sweep axes, in the order given
    int n_sweep;
    char *source_path;                // the file loaded, or NULL
    char **origin;                    // private: where each key was set (NULL = default)
} RunConfig;

// Fills every key with its default. c is overwritten, not freed: use it on a fresh
// struct, and release it with config_free.
void config_defaults(RunConfig *c);
void config_free(RunConfig *c);
// A deep copy; dst is overwritten, not freed.
void config_copy(RunConfig *dst, const RunConfig *src);

// Defaults, then the keys of a YAML file (or of text, with name used in messages).
// On failure c still holds a valid config that the caller must config_free.
int config_load_file(RunConfig *c, const char *path, Error *err);
int config_load_string(RunConfig *c, const char *text, const char *name, Error *err);

// One command-line override "section.key=value", or "sweep.section.key=[v1, v2]" to
// set (or, with [], remove) a sweep axis. A string key takes the text after '='
// verbatim; any other value is read as YAML flow text: 5, 1e-4, true, wanda,
// [a, "*.weight"], {in_proj: 0.6, A_log: 0.3}. On failure c is unchanged.
int config_set(RunConfig *c, const char *assignment, Error *err);

// The cross-field checks (data.path for text/tokens, optim.lr_min <= optim.lr, N:M,
// sparsity schedule, component map). Run it after the last config_set.
int config_check(const RunConfig *c, Error *err);

// A sweep axis is a key with its values, or a group axis: a plain name (no dot) whose
// values are mappings that set several keys at once, each with a "name" that labels it,
// e.g. target: [{name: "50%", prune.final_sparsity: 0.5}, {name: "2:4", prune.nm_n: 2, prune.nm_m: 4}].
// A sweep value's label: the "name" of a group axis' mapping, else the value itself.
void config_sweep_value_name(const char *value, char *out, size_t size);
// Sweeps: config_sweep_count() runs (1 without a sweep). Run `index` is the cartesian
// product taken like nested loops over the axes in the order given, the last axis
// varying fastest. config_sweep_apply makes run a deep copy of base with that run's
// values applied and no sweep left, checks it (config_check), and writes a label such
// as "prune.alpha=0.5,prune.final_sparsity=0.7" (truncated to label_size; may be NULL).
// On failure run still holds a config that the caller must config_free.
int config_sweep_count(const RunConfig *c);
// The value (YAML flow text, owned by base) of every axis in run index: values[n_sweep].
void config_sweep_values(const RunConfig *base, int index, const char **values);
int config_sweep_apply(const RunConfig *base, int index, RunConfig *run, char *label, size_t label_size,
                       Error *err);

// The resolved config as YAML: every section and key, then the sweep; loading it gives
// the same config. The caller frees the string.
char *config_to_yaml(const RunConfig *c);
// A Markdown reference of every key (type, default, allowed values, meaning) and of the
// syntax rules, for the README.
void config_write_reference_markdown(FILE *out);

// The values that "0 means ..." keys resolve to.
int config_prune_end_step(const RunConfig *c);      // prune.end_step, or train.steps * 3 / 4
int config_eval_seqlen(const RunConfig *c);         // eval.seqlen, or train.seqlen
// The longest log.name accepted (config_check), well under a file name's 255 bytes.
#define CONFIG_RUN_NAME_MAX 200
// log.name, or the base name of the config file without extension, or "run".
void config_run_name(const RunConfig *c, char *out, size_t out_size);
// The model section as a MambaConfig (defaults for what the YAML does not set); the
// caller fills vocab_size when it is 0 and calls mamba_config_finish.
void config_to_mamba(const RunConfig *c, MambaConfig *m);
// The model section's sizes set to a built model's (its vocabulary, a pretrained folder's
// sizes, a one-shot method's smaller model): the resolved config that a run stores.
void config_set_model_sizes(RunConfig *c, const MambaConfig *m);
// A config against the saved config of the checkpoint (path) it resumes: the model sizes
// (when `sizes`; a one-shot run's model is the checkpoint's own) and prune.method must
// agree; the error lists every difference.
int config_check_resume(const RunConfig *now, const RunConfig *saved, bool sizes, const char *path, Error *err);

// The prune and stability sections as the pruning library's options (prune/options.h):
// the enums as its enums, prune.end_step resolved (config_prune_end_step), the component
// map as one sparsity per component, include/exclude pointing into c, and the training
// batch shape. o is valid while c is.
void config_prune_options(const RunConfig *c, PruneOptions *o);
void config_stability_options(const RunConfig *c, PruneStabilityOptions *o);

// A parameter is prunable when its name matches one of prune.include and none of
// prune.exclude: prune_name_matches and prune_param_prunable (prune/options.h).
bool config_name_matches(const char *pattern, const char *name);
bool config_param_prunable(const RunConfig *c, const char *name);
// The value of name in map, or fallback when the map does not have it.
double config_map_get(const FloatMap *map, const char *name, double fallback);

#endif
