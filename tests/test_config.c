// Tests of the run configuration (src/config/config.h): the defaults of the task, a full
// file, every class of error with its exact file:line:col and key, --set, strict
// booleans, sweep expansion, the YAML round trip and the cross-field checks.
// Expected values are written out here by hand, never taken from the code under test.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

static int failures;

static void report(bool ok, const char *format, ...) {
    va_list args;
    va_start(args, format);
    printf("%s ", ok ? "OK" : "NOT OK");
    vprintf(format, args);
    printf("\n");
    va_end(args);
    if (!ok) failures++;
}

// ---------------------------------------------------------------------------------------
// Every field, compared one by one (written out by hand, independent of the key table).

#define SAME(field)                                                 \
    if (a->field != b->field) {                                     \
        snprintf(diff, diff_size, "%s", #field);                    \
        return false;                                               \
    }
#define SAME_STRING(field)                                          \
    if (strcmp(a->field, b->field) != 0) {                          \
        snprintf(diff, diff_size, "%s", #field);                    \
        return false;                                               \
    }

static bool same_list(const StringList *a, const StringList *b) {
    if (a->count != b->count) return false;
    for (int i = 0; i < a->count; i++)
        if (strcmp(a->items[i], b->items[i]) != 0) return false;
    return true;
}

static bool same_map(const FloatMap *a, const FloatMap *b) {
    if (a->count != b->count) return false;
    for (int i = 0; i < a->count; i++)
        if (strcmp(a->names[i], b->names[i]) != 0 || a->values[i] != b->values[i]) return false;
    return true;
}

static bool same_config(const RunConfig *a, const RunConfig *b, char *diff, size_t diff_size) {
    SAME(model.d_model) SAME(model.n_layer) SAME(model.vocab_size) SAME(model.pad_vocab_size_multiple)
    SAME(model.d_state) SAME(model.d_conv) SAME(model.expand) SAME(model.dt_rank) SAME_STRING(model.init)
    SAME(data.kind) SAME_STRING(data.path) SAME(data.val_fraction) SAME(data.vocab) SAME(data.n_memorize)
    SAME(data.val_sequences)
    SAME(train.steps) SAME(train.batch_size) SAME(train.seqlen) SAME(train.seed) SAME(train.threads)
    SAME(train.eval_every) SAME(train.eval_batches) SAME(train.log_every) SAME(train.matmul)
    SAME(optim.lr) SAME(optim.lr_min) SAME(optim.warmup_steps) SAME(optim.weight_decay) SAME(optim.beta1)
    SAME(optim.beta2) SAME(optim.eps) SAME(optim.grad_clip)
    SAME(prune.method) SAME(prune.alpha) SAME(prune.grad_stat) SAME(prune.score_norm) SAME(prune.a_log_sparsity) SAME(prune.reference)
    SAME(prune.distill_weight) SAME(prune.distill_temperature)
    SAME(prune.schedule) SAME(prune.exp_k) SAME(prune.initial_sparsity)
    SAME(prune.final_sparsity) SAME(prune.start_step) SAME(prune.end_step) SAME(prune.prune_every)
    SAME(prune.grad_accum_batches) SAME(prune.strategy) SAME(prune.nsamples) SAME(prune.calib_seqlen)
    SAME(prune.percdamp) SAME(prune.blocksize) SAME(prune.nm_n) SAME(prune.nm_m) SAME(prune.magnitude_scope)
    SAME(prune.sparsessm_weighting) SAME(prune.sparsessm_structured)
    SAME(prune.sparsessm_gamma) SAME(prune.sparsessm_alpha) SAME(prune.shedder_steps) SAME(prune.shedder_target)
    SAME(stability.enabled) SAME(stability.epsilon) SAME(stability.batches)
    SAME(eval.seqlen) SAME(eval.batches) SAME(eval.at_end)
    SAME(checkpoint.every) SAME(checkpoint.keep)
    SAME_STRING(log.dir) SAME_STRING(log.name) SAME(log.progress) SAME(log.jsonl)
    if (!same_map(&a->prune.component_sparsity, &b->prune.component_sparsity)) {
        snprintf(diff, diff_size, "prune.component_sparsity");
        return false;
    }
    if (!same_list(&a->prune.include, &b->prune.include) || !same_list(&a->prune.exclude, &b->prune.exclude)) {
        snprintf(diff, diff_size, "prune.include / prune.exclude");
        return false;
    }
    SAME(n_sweep)
    for (int i = 0; i < a->n_sweep; i++) {
        bool same = strcmp(a->sweep[i].key, b->sweep[i].key) == 0 && a->sweep[i].n_values == b->sweep[i].n_values;
        for (int v = 0; same && v < a->sweep[i].n_values; v++)
            same = strcmp(a->sweep[i].values[v], b->sweep[i].values[v]) == 0;
        if (!same) {
            snprintf(diff, diff_size, "sweep axis %d", i);
            return false;
        }
    }
    return true;
}

// Every key, for the dump and the reference.
static const char *const all_keys[] = {
    "model.d_model", "model.n_layer", "model.vocab_size", "model.pad_vocab_size_multiple", "model.d_state",
    "model.d_conv", "model.expand", "model.dt_rank", "model.init", "model.head", "model.n_classes", "model.pool",
    "model.n_features", "model.window_norm",
    "data.kind", "data.path", "data.val_fraction", "data.vocab", "data.n_memorize", "data.val_sequences",
    "data.min_len", "data.max_len", "data.split", "data.horizon", "data.features", "data.train_rows", "data.val_rows",
    "data.test_rows", "data.n_series",
    "train.steps", "train.batch_size", "train.seqlen", "train.seed", "train.threads", "train.eval_every",
    "train.eval_batches", "train.log_every", "train.matmul", "train.recompute", "train.max_memory_gb",
    "optim.lr", "optim.lr_min", "optim.warmup_steps", "optim.weight_decay", "optim.beta1", "optim.beta2",
    "optim.eps", "optim.grad_clip",
    "prune.method", "prune.alpha", "prune.grad_stat", "prune.score_norm", "prune.schedule", "prune.exp_k", "prune.initial_sparsity",
    "prune.final_sparsity", "prune.start_step", "prune.end_step", "prune.prune_every", "prune.grad_accum_batches",
    "prune.strategy", "prune.reference", "prune.distill_weight", "prune.distill_temperature",
    "prune.a_log_sparsity", "prune.component_sparsity", "prune.include", "prune.exclude", "prune.nsamples",
    "prune.calib_seqlen", "prune.percdamp", "prune.blocksize", "prune.nm_n", "prune.nm_m", "prune.magnitude_scope",
    "prune.sparsessm_weighting", "prune.sparsessm_gamma", "prune.sparsessm_alpha", "prune.sparsessm_structured",
    "prune.shedder_steps",
    "prune.shedder_target",
    "stability.enabled", "stability.epsilon", "stability.batches",
    "eval.seqlen", "eval.batches", "eval.at_end",
    "checkpoint.every", "checkpoint.keep",
    "log.dir", "log.name", "log.progress", "log.jsonl",
};
enum { N_KEYS = sizeof all_keys / sizeof all_keys[0] };

// ---------------------------------------------------------------------------------------

static void test_defaults(void) {
    RunConfig c;
    config_defaults(&c);
    bool model = c.model.d_model == 256 && c.model.n_layer == 4 && c.model.vocab_size == 0 &&
                 c.model.pad_vocab_size_multiple == 8 && c.model.d_state == 16 && c.model.d_conv == 4 &&
                 c.model.expand == 2 && c.model.dt_rank == 0 && strcmp(c.model.init, "random") == 0;
    bool data = c.data.kind == CFG_DATA_SELECTIVE_COPYING && strcmp(c.data.path, "") == 0 &&
                c.data.val_fraction == 0.1 && c.data.vocab == 16 && c.data.n_memorize == 16 &&
                c.data.val_sequences == 256;
    bool train = c.train.steps == 1000 && c.train.batch_size == 8 && c.train.seqlen == 256 && c.train.seed == 1234 &&
                 c.train.threads == 0 && c.train.eval_every == 100 && c.train.eval_batches == 16 &&
                 c.train.log_every == 10 && c.train.matmul == CFG_MATMUL_ONEDNN;
    bool optim = c.optim.lr == 1e-4 && c.optim.lr_min == 1e-6 && c.optim.warmup_steps == 0 &&
                 c.optim.weight_decay == 0.1 && c.optim.beta1 == 0.9 && c.optim.beta2 == 0.999 &&
                 c.optim.eps == 1e-8 && c.optim.grad_clip == 1.0;
    static const char *const include[] = {"mixer.in_proj.weight", "mixer.conv1d.weight", "mixer.x_proj.weight",
                                          "mixer.dt_proj.weight", "mixer.A_log", "mixer.out_proj.weight"};
    StringList default_include = {(char **)include, 6};
    bool prune = c.prune.method == CFG_PRUNE_NONE && c.prune.alpha == 1.0 && c.prune.schedule == CFG_SCHEDULE_CUBIC &&
                 c.prune.exp_k == 5.0 && c.prune.initial_sparsity == 0 && c.prune.final_sparsity == 0.5 &&
                 c.prune.start_step == 0 && c.prune.end_step == 0 && c.prune.prune_every == 50 &&
                 c.prune.grad_accum_batches == 4 && c.prune.strategy == CFG_STRATEGY_GLOBAL &&
                 c.prune.component_sparsity.count == 0 && same_list(&c.prune.include, &default_include) &&
                 c.prune.exclude.count == 0 && c.prune.nsamples == 64 && c.prune.calib_seqlen == 256 &&
                 c.prune.percdamp == 0.01 && c.prune.blocksize == 128 && c.prune.nm_n == 0 && c.prune.nm_m == 0 &&
                 c.prune.sparsessm_weighting == CFG_WEIGHTING_HARMONIC && c.prune.sparsessm_gamma == 0.9 &&
                 c.prune.sparsessm_alpha == 0.04 && c.prune.shedder_steps == 1 &&
                 c.prune.shedder_target == CFG_SHEDDER_BLOCK;
    bool rest = c.stability.enabled && c.stability.epsilon == 0.01 && c.stability.batches == 4 && c.eval.seqlen == 0 &&
                c.eval.batches == 0 && c.eval.at_end && c.checkpoint.every == 0 && c.checkpoint.keep == 3 &&
                strcmp(c.log.dir, "runs") == 0 && strcmp(c.log.name, "") == 0 && c.log.progress && c.log.jsonl &&
                c.n_sweep == 0 && c.source_path == NULL;
    report(model, "defaults: model");
    report(data, "defaults: data");
    report(train, "defaults: train");
    report(optim, "defaults: optim");
    report(prune, "defaults: prune");
    report(rest, "defaults: stability, eval, checkpoint, log, no sweep");
    Error err = {{0}};
    report(config_check(&c, &err) == 0, "defaults pass the cross-field checks %s", err.message);
    report(config_sweep_count(&c) == 1, "no sweep is one run");
    report(config_prune_end_step(&c) == 750 && config_eval_seqlen(&c) == 256, "end_step 0 = 750, eval.seqlen 0 = 256");
    char name[64];
    config_run_name(&c, name, sizeof name);
    report(strcmp(name, "run") == 0, "run name without a file: '%s'", name);

    RunConfig empty;
    int status = config_load_file(&empty, "fixtures/config/empty.yaml", &err);
    char diff[128] = "";
    report(status == 0 && same_config(&c, &empty, diff, sizeof diff), "empty file = all defaults %s %s", diff,
           status ? err.message : "");
    config_run_name(&empty, name, sizeof name);
    report(strcmp(name, "empty") == 0, "run name from the file name: '%s'", name);
    config_free(&empty);
    const char *nothing[] = {"", "\n", "---\n", "# comment\n", "~\n"};
    const char *shown[] = {"", "\\n", "---\\n", "# comment\\n", "~\\n"};
    for (int i = 0; i < 5; i++) {
        status = config_load_string(&empty, nothing[i], "x.yaml", &err);
        report(status == 0 && same_config(&c, &empty, diff, sizeof diff), "'%s' = all defaults", shown[i]);
        config_free(&empty);
    }
    config_free(&c);
}

static void test_full_file(void) {
    RunConfig c;
    Error err = {{0}};
    int status = config_load_file(&c, "fixtures/config/full.yaml", &err);
    report(status == 0, "full.yaml loads %s", status ? err.message : "");
    if (status) {
        config_free(&c);
        return;
    }
    report(c.model.d_model == 64 && c.model.n_layer == 2 && c.model.vocab_size == 260 &&
               c.model.pad_vocab_size_multiple == 16 && c.model.d_state == 8 && c.model.d_conv == 3 &&
               c.model.expand == 3 && c.model.dt_rank == 5 && strcmp(c.model.init, "runs/base/checkpoint.h5") == 0,
           "full: model");
    report(c.data.kind == CFG_DATA_TEXT && strcmp(c.data.path, "data/tiny shakespeare.txt") == 0 &&
               c.data.val_fraction == 0.25 && c.data.vocab == 12 && c.data.n_memorize == 8 && c.data.val_sequences == 64,
           "full: data");
    report(c.train.steps == 2000 && c.train.batch_size == 4 && c.train.seqlen == 128 && c.train.seed == 7 &&
               c.train.threads == 2 && c.train.eval_every == 50 && c.train.eval_batches == 0 &&
               c.train.log_every == 5 && c.train.matmul == CFG_MATMUL_OPENBLAS,
           "full: train");
    report(c.optim.lr == 3e-4 && c.optim.lr_min == 1e-5 && c.optim.warmup_steps == 100 &&
               c.optim.weight_decay == 0.01 && c.optim.beta1 == 0.85 && c.optim.beta2 == 0.95 && c.optim.eps == 1e-6 &&
               c.optim.grad_clip == 0,
           "full: optim (1e-4 style, 0.00001 and 1.0e-6 all read)");
    const FloatMap *m = &c.prune.component_sparsity;
    report(m->count == 2 && strcmp(m->names[0], "in_proj") == 0 && m->values[0] == 0.6 &&
               strcmp(m->names[1], "A_log") == 0 && m->values[1] == 0.3 && config_map_get(m, "A_log", -1) == 0.3 &&
               config_map_get(m, "x_proj", -1) == -1,
           "full: prune.component_sparsity {in_proj: 0.6, A_log: 0.3}");
    report(c.prune.include.count == 2 && strcmp(c.prune.include.items[0], "in_proj") == 0 &&
               strcmp(c.prune.include.items[1], "*.A_log") == 0 && c.prune.exclude.count == 1 &&
               strcmp(c.prune.exclude.items[0], "layers.0.") == 0,
           "full: prune.include (block list) and prune.exclude (flow list)");
    report(c.prune.method == CFG_PRUNE_GRADIENT && c.prune.alpha == 0.5 && c.prune.schedule == CFG_SCHEDULE_EXPONENTIAL &&
               c.prune.exp_k == 3 && c.prune.initial_sparsity == 0.1 && c.prune.final_sparsity == 0.7 &&
               c.prune.start_step == 100 && c.prune.end_step == 1500 && c.prune.prune_every == 25 &&
               c.prune.grad_accum_batches == 2 && c.prune.strategy == CFG_STRATEGY_COMPONENT &&
               c.prune.nsamples == 32 && c.prune.calib_seqlen == 512 && c.prune.percdamp == 0.05 &&
               c.prune.blocksize == 64 && c.prune.nm_n == 2 && c.prune.nm_m == 4 &&
               c.prune.sparsessm_weighting == CFG_WEIGHTING_GEOMETRIC && c.prune.sparsessm_gamma == 0.5 &&
               c.prune.sparsessm_alpha == 0.1 && c.prune.shedder_steps == 3 && c.prune.shedder_target == CFG_SHEDDER_SSM,
           "full: prune scalars");
    report(!c.stability.enabled && c.stability.epsilon == 0.05 && c.stability.batches == 2 && c.eval.seqlen == 512 &&
               c.eval.batches == 10 && !c.eval.at_end && c.checkpoint.every == 500 && c.checkpoint.keep == 1 &&
               strcmp(c.log.dir, "/tmp/mp-runs") == 0 && strcmp(c.log.name, "full-test") == 0 && !c.log.progress &&
               !c.log.jsonl,
           "full: stability, eval, checkpoint, log");
    report(c.n_sweep == 3 && strcmp(c.sweep[0].key, "prune.alpha") == 0 && c.sweep[0].n_values == 4 &&
               strcmp(c.sweep[1].key, "prune.final_sparsity") == 0 && c.sweep[1].n_values == 2 &&
               strcmp(c.sweep[2].key, "prune.include") == 0 && c.sweep[2].n_values == 2,
           "full: three sweep axes in file order");
    report(config_check(&c, &err) == 0, "full: passes the cross-field checks %s", err.message);
    report(config_prune_end_step(&c) == 1500 && config_eval_seqlen(&c) == 512, "full: end_step and eval.seqlen as set");
    MambaConfig mc;
    config_to_mamba(&c, &mc);
    report(mc.d_model == 64 && mc.n_layer == 2 && mc.vocab_size == 260 && mc.pad_vocab_size_multiple == 16 &&
               mc.d_state == 8 && mc.d_conv == 3 && mc.expand == 3 && mc.dt_rank == 5 && mc.norm_eps == 1e-5f,
           "config_to_mamba copies the model section");

    // Round trip: dump, reload, and every field (and the sweep) is identical.
    char *yaml = config_to_yaml(&c);
    RunConfig back;
    status = config_load_string(&back, yaml, "resolved.yaml", &err);
    char diff[128] = "";
    report(status == 0 && same_config(&c, &back, diff, sizeof diff), "full: to_yaml -> reload identical %s %s", diff,
           status ? err.message : "");
    char *again = config_to_yaml(&back);
    report(strcmp(yaml, again) == 0, "full: the dump of the reload is the same text");
    free(again);
    config_free(&back);

    // The dump and the reference name every key.
    FILE *md = tmpfile();
    config_write_reference_markdown(md);
    long md_size = ftell(md);
    rewind(md);
    char *reference = calloc((size_t)md_size + 1, 1);
    report(fread(reference, 1, (size_t)md_size, md) == (size_t)md_size, "markdown reference written (%ld bytes)", md_size);
    fclose(md);
    int in_dump = 0, in_reference = 0, dump_lines = 0;
    for (int i = 0; i < N_KEYS; i++) {
        char section[32], needle[96];
        const char *dot = strchr(all_keys[i], '.');
        snprintf(section, sizeof section, "\n%.*s:\n", (int)(dot - all_keys[i]), all_keys[i]);
        snprintf(needle, sizeof needle, "\n  %s: ", dot + 1);
        const char *at = strstr(yaml, section);
        const char *next = at ? strstr(at + 1, ":\n") : NULL;  // the key lines follow the section line
        if (at && next && strstr(at, needle)) in_dump++;
        snprintf(needle, sizeof needle, "| `%s` |", all_keys[i]);
        if (strstr(reference, needle)) in_reference++;
    }
    for (const char *p = yaml; (p = strstr(p, "\n  ")); p++) dump_lines++;
    report(in_dump == N_KEYS && dump_lines == N_KEYS + 3, "dump: %d of %d keys, %d indented lines (keys + 3 axes)",
           in_dump, N_KEYS, dump_lines);
    report(in_reference == N_KEYS, "reference: %d of %d keys", in_reference, N_KEYS);
    report(strstr(reference, "| `prune.end_step` | int | `0` | >= 0 |") != NULL &&
               strstr(reference, "| `optim.beta1` | float | `0.9` | [0, 1) |") != NULL &&
               strstr(reference, "`selective_copying`, `associative_recall`, `text`, `tokens`") != NULL,
           "reference rows show type, default and range");
    free(reference);
    free(yaml);
    config_free(&c);
}

static void expect_file_error(const char *path, const char *expected) {
    RunConfig c;
    Error err = {{0}};
    int status = config_load_file(&c, path, &err);
    bool ok = status == -1 && strcmp(err.message, expected) == 0;
    report(ok, "error: %s%s%s", expected, ok ? "" : "  <- got: ", ok ? "" : err.message);
    config_free(&c);
}

// Loads text as "x.yaml" and expects an error that starts with expected.
static void expect_text_error(const char *text, const char *expected) {
    RunConfig c;
    Error err = {{0}};
    int status = config_load_string(&c, text, "x.yaml", &err);
    bool ok = status == -1 && strncmp(err.message, expected, strlen(expected)) == 0;
    report(ok, "error: %s%s%s", ok ? err.message : expected, ok ? "" : "  <- got: ", ok ? "" : err.message);
    config_free(&c);
}

static void test_errors(void) {
    expect_file_error("fixtures/config/unknown_key.yaml",
                      "fixtures/config/unknown_key.yaml:7:3: train.stpes: unknown key (did you mean 'steps'?)");
    expect_file_error("fixtures/config/bad_number.yaml",
                      "fixtures/config/bad_number.yaml:9:14: optim.lr: expected a number > 0, got '-1'");
    expect_file_error("fixtures/config/bad_bool.yaml",
                      "fixtures/config/bad_bool.yaml:4:12: stability.enabled: expected true or false, got 'False'");
    expect_file_error("fixtures/config/unknown_section.yaml",
                      "fixtures/config/unknown_section.yaml:3:1: 'modle': unknown section (did you mean 'model'? "
                      "expected one of model, data, train, optim, prune, stability, eval, checkpoint, log, sweep)");
    expect_file_error("fixtures/config/duplicate_key.yaml",
                      "fixtures/config/duplicate_key.yaml:4:3: optim.lr: duplicate key (first given at line 2)");
    expect_file_error("fixtures/config/not_mapping.yaml",
                      "fixtures/config/not_mapping.yaml:1:1: expected a mapping of sections (model:, data:, ...) at "
                      "the top level, got a list");
    {
        RunConfig c;
        Error err = {{0}};
        report(config_load_file(&c, "fixtures/config/missing.yaml", &err) == -1 &&
                   strncmp(err.message, "fixtures/config/missing.yaml: cannot open", 41) == 0,
               "missing file: %s", err.message);
        config_free(&c);
    }

    // Integers are integers.
    expect_text_error("train:\n  steps: 1.5\n", "x.yaml:2:10: train.steps: expected an integer >= 0, got '1.5'");
    expect_text_error("train:\n  steps: 1e3\n", "x.yaml:2:10: train.steps: expected an integer >= 0, got '1e3'");
    expect_text_error("train:\n  steps: 0x10\n", "x.yaml:2:10: train.steps: expected an integer >= 0, got '0x10'");
    expect_text_error("train:\n  steps: \"100\"\n",
                      "x.yaml:2:10: train.steps: expected an integer >= 0, got \"100\" (a quoted string)");
    expect_text_error("train:\n  steps:\n", "x.yaml:2:9: train.steps: expected an integer >= 0, got nothing");
    expect_text_error("train:\n  steps: 99999999999\n", "x.yaml:2:10: train.steps: expected an integer >= 0, got");
    expect_text_error("train:\n  steps: [1]\n", "x.yaml:2:10: train.steps: expected an integer >= 0, got a list");
    // Ranges.
    expect_text_error("train:\n  batch_size: 0\n", "x.yaml:2:15: train.batch_size: expected an integer >= 1, got '0'");
    expect_text_error("train:\n  seqlen: 1\n", "x.yaml:2:11: train.seqlen: expected an integer >= 2, got '1'");
    expect_text_error("optim:\n  beta1: 1\n", "x.yaml:2:10: optim.beta1: expected a number in [0, 1), got '1'");
    expect_text_error("optim:\n  eps: 0\n", "x.yaml:2:8: optim.eps: expected a number > 0, got '0'");
    expect_text_error("data:\n  val_fraction: 0\n",
                      "x.yaml:2:17: data.val_fraction: expected a number in (0, 1), got '0'");
    expect_text_error("prune:\n  sparsessm_gamma: 0\n",
                      "x.yaml:2:20: prune.sparsessm_gamma: expected a number in (0, 1], got '0'");
    expect_text_error("prune:\n  final_sparsity: 1.0\n",
                      "x.yaml:2:19: prune.final_sparsity: expected a number in [0, 1), got '1.0'");
    expect_text_error("optim:\n  lr: .inf\n", "x.yaml:2:7: optim.lr: expected a number > 0, got '.inf'");
    expect_text_error("optim:\n  lr: abc\n", "x.yaml:2:7: optim.lr: expected a number > 0, got 'abc'");
    // Enums list the allowed values, and suggest.
    expect_text_error("prune:\n  method: wandaa\n",
                      "x.yaml:2:11: prune.method: expected one of none, gradient, magnitude, wanda, sparsegpt, "
                      "sparsessm, shedder, got 'wandaa' (did you mean 'wanda'?)");
    expect_text_error("train:\n  matmul: mkl\n", "x.yaml:2:11: train.matmul: expected one of openblas, onednn, got 'mkl'");
    // Lists and maps.
    expect_text_error("prune:\n  include: in_proj\n",
                      "x.yaml:2:12: prune.include: expected a list of name patterns such as [\"a\", \"b\"], got 'in_proj'");
    expect_text_error("prune:\n  include: [a, [b]]\n",
                      "x.yaml:2:16: prune.include: item 2: expected a non-empty name pattern, got a list");
    expect_text_error("prune:\n  strategy: component\n  component_sparsity: {inproj: 0.5}\n",
                      "x.yaml:3:24: prune.component_sparsity: unknown name 'inproj' (did you mean 'in_proj'?); "
                      "expected a mapping of in_proj, conv1d, x_proj, dt_proj, A_log, out_proj to numbers in [0, 1)");
    expect_text_error("prune:\n  component_sparsity: {A_log: 1.5}\n",
                      "x.yaml:2:31: prune.component_sparsity.A_log: expected a number in [0, 1), got '1.5'");
    expect_text_error("prune:\n  component_sparsity: {A_log: 0.1, A_log: 0.2}\n",
                      "x.yaml:2:36: prune.component_sparsity: duplicate name 'A_log'");
    expect_text_error("prune:\n  component_sparsity: [0.5]\n",
                      "x.yaml:2:23: prune.component_sparsity: expected a mapping of in_proj");
    // Structure.
    expect_text_error("model: 5\n", "x.yaml:1:8: model: expected a mapping of keys (key: value), got a single value");
    expect_text_error("model:\n  d_model: 5\ndata: {}\nmodel:\n  n_layer: 1\n",
                      "x.yaml:4:1: model: duplicate section (first given at line 1)");
    expect_text_error("train:\n  steps: 5\n---\ntrain:\n  steps: 6\n",
                      "x.yaml:4:1: expected one YAML document, found a second one");
    expect_text_error("train:\n  steps: [1, 2\n", "x.yaml:");
    expect_text_error("train:\n  - steps\n", "x.yaml:2:3: train: expected a mapping of keys (key: value), got a list");
    expect_text_error("train:\n  zzzzzz: 1\n",
                      "x.yaml:2:3: train.zzzzzz: unknown key (the keys of train are steps, batch_size, seqlen, seed, "
                      "threads, eval_every, eval_batches, log_every, matmul, recompute, max_memory_gb)");
    // Sweeps: keys and values checked like everything else.
    expect_text_error("sweep:\n  prune.alpah: [0, 1]\n",
                      "x.yaml:2:3: sweep.prune.alpah: unknown key (did you mean 'alpha'?)");
    expect_text_error("sweep:\n  prnue.alpha: [0, 1]\n", "x.yaml:2:3: 'prnue': unknown section (did you mean 'prune'?");
    expect_text_error("sweep:\n  alpha: [0, 1]\n", "x.yaml:2:3: sweep.alpha: expected section.key, such as train.steps");
    expect_text_error("sweep:\n  prune.alpha: 0.5\n",
                      "x.yaml:2:16: sweep.prune.alpha: expected a list of values, such as [0, 0.5, 1]");
    expect_text_error("sweep:\n  prune.alpha: [0, 0.5,\n    -1]\n",
                      "x.yaml:3:5: sweep.prune.alpha: expected a number >= 0, got '-1'");
    expect_text_error("sweep:\n  stability.enabled: [true, no]\n",
                      "x.yaml:2:29: sweep.stability.enabled: expected true or false, got 'no'");
    expect_text_error("sweep:\n  prune.alpha: [0]\n  prune.alpha: [1]\n",
                      "x.yaml:3:3: sweep: duplicate key 'prune.alpha' (first given at line 2)");
}

static void test_bool_strictness(void) {
    const char *refused[] = {"False", "True", "TRUE", "no", "yes", "on", "off", "y", "n", "0", "1", "\"true\"", "''"};
    for (int i = 0; i < (int)(sizeof refused / sizeof refused[0]); i++) {
        char text[64], expected[128];
        snprintf(text, sizeof text, "eval:\n  at_end: %s\n", refused[i]);
        snprintf(expected, sizeof expected, "x.yaml:2:11: eval.at_end: expected true or false, got ");
        expect_text_error(text, expected);
    }
    RunConfig c;
    Error err = {{0}};
    int status = config_load_string(&c, "eval:\n  at_end: false\nlog:\n  jsonl: true\n", "x.yaml", &err);
    report(status == 0 && !c.eval.at_end && c.log.jsonl, "true and false read as such");
    status = config_set(&c, "eval.at_end=False", &err);
    report(status == -1 && strcmp(err.message, "--set eval.at_end=False: expected true or false, got 'False'") == 0 &&
               !c.eval.at_end,
           "--set eval.at_end=False refused, value unchanged: %s", err.message);
    status = config_set(&c, "eval.at_end=0", &err);
    report(status == -1 && !c.eval.at_end, "--set eval.at_end=0 refused");
    status = config_set(&c, "eval.at_end=true", &err);
    report(status == 0 && c.eval.at_end, "--set eval.at_end=true");
    config_free(&c);
}

static void test_set(void) {
    RunConfig c;
    config_defaults(&c);
    Error err = {{0}};
    report(config_set(&c, "train.steps=42", &err) == 0 && c.train.steps == 42, "--set train.steps=42");
    report(config_set(&c, "optim.lr=3e-4", &err) == 0 && c.optim.lr == 3e-4, "--set optim.lr=3e-4");
    report(config_set(&c, "optim.lr=1", &err) == 0 && c.optim.lr == 1.0, "--set optim.lr=1 (an int is a float)");
    report(config_set(&c, "prune.method=sparsegpt", &err) == 0 && c.prune.method == CFG_PRUNE_SPARSEGPT,
           "--set prune.method=sparsegpt");
    int status = config_set(&c, "data.path=my data: *v2*.txt", &err);
    report(status == 0 && strcmp(c.data.path, "my data: *v2*.txt") == 0,
           "--set of a string takes the text verbatim: '%s'", c.data.path);
    report(config_set(&c, "log.name=", &err) == 0 && strcmp(c.log.name, "") == 0, "--set log.name= is the empty string");
    report(config_set(&c, "prune.include=[a,b]", &err) == 0 && c.prune.include.count == 2 &&
               strcmp(c.prune.include.items[0], "a") == 0 && strcmp(c.prune.include.items[1], "b") == 0,
           "--set prune.include=[a,b]");
    report(config_set(&c, "prune.exclude=[\"*.conv1d.*\", layers.3.]", &err) == 0 && c.prune.exclude.count == 2 &&
               strcmp(c.prune.exclude.items[0], "*.conv1d.*") == 0 && strcmp(c.prune.exclude.items[1], "layers.3.") == 0,
           "--set prune.exclude with a quoted glob");
    report(config_set(&c, "prune.exclude=[]", &err) == 0 && c.prune.exclude.count == 0, "--set prune.exclude=[]");
    report(config_set(&c, "prune.component_sparsity={in_proj: 0.6, out_proj: 0.55}", &err) == 0 &&
               c.prune.component_sparsity.count == 2 &&
               config_map_get(&c.prune.component_sparsity, "in_proj", -1) == 0.6 &&
               config_map_get(&c.prune.component_sparsity, "out_proj", -1) == 0.55,
           "--set prune.component_sparsity={in_proj: 0.6, out_proj: 0.55}");

    struct {
        const char *assignment, *message;
    } errors[] = {
        {"train.steps=abc", "--set train.steps=abc: expected an integer >= 0, got 'abc'"},
        {"train.steps=-5", "--set train.steps=-5: expected an integer >= 0, got '-5'"},
        {"train.steps=", "--set train.steps=: expected an integer >= 0, got nothing"},
        {"optim.lr=0", "--set optim.lr=0: expected a number > 0, got '0'"},
        {"train.stpes=5", "--set train.stpes=5: unknown key (did you mean 'steps'?)"},
        {"trian.steps=5", "--set trian.steps=5: 'trian': unknown section (did you mean 'train'? expected one of model, "
                          "data, train, optim, prune, stability, eval, checkpoint, log, sweep)"},
        {"steps=5", "--set steps=5: expected section.key, such as train.steps"},
        {"train.steps", "--set train.steps: expected section.key=value, such as train.steps=100"},
        {"prune.schedule=cubicc", "--set prune.schedule=cubicc: expected one of cubic, linear, exponential, got "
                                  "'cubicc' (did you mean 'cubic'?)"},
        {"prune.include=a", "--set prune.include=a: expected a list of name patterns such as [\"a\", \"b\"], got 'a'"},
        {"prune.component_sparsity={A_log: 2}",
         "--set prune.component_sparsity={A_log: 2}: prune.component_sparsity.A_log: expected a number in [0, 1), got "
         "'2'"},
        {"prune.include=[a,", "--set prune.include=[a,: YAML syntax error"},
    };
    for (int i = 0; i < (int)(sizeof errors / sizeof errors[0]); i++) {
        int status = config_set(&c, errors[i].assignment, &err);
        bool ok = status == -1 && strncmp(err.message, errors[i].message, strlen(errors[i].message)) == 0;
        report(ok, "error: %s%s%s", ok ? err.message : errors[i].message, ok ? "" : "  <- got: ", ok ? "" : err.message);
    }
    report(c.train.steps == 42 && c.optim.lr == 1.0 && c.prune.schedule == CFG_SCHEDULE_CUBIC &&
               c.prune.include.count == 2 && c.prune.component_sparsity.count == 2,
           "failed --set leaves the config unchanged");

    // Overrides on top of a file, and where cross-field errors point to.
    RunConfig f;
    status = config_load_string(&f, "optim:\n  lr: 1e-3\n  lr_min: 1e-4\n", "x.yaml", &err);
    report(status == 0 && config_set(&f, "optim.lr_min=0.01", &err) == 0 && config_check(&f, &err) == -1 &&
               strcmp(err.message, "--set optim.lr_min=0.01: optim.lr_min: must be <= optim.lr (0.001), got 0.01") == 0,
           "cross-field error names the --set that caused it: %s", err.message);
    config_free(&f);
    config_free(&c);
}

static void expect_check_error(const char *text, const char *expected) {
    RunConfig c;
    Error err = {{0}};
    int status = config_load_string(&c, text, "x.yaml", &err);
    if (status == 0) status = config_check(&c, &err) == -1 ? 1 : 0;
    else status = 0;
    bool ok = status == 1 && strcmp(err.message, expected) == 0;
    report(ok, "check: %s%s%s", expected, ok ? "" : "  <- got: ", ok ? "" : err.message);
    config_free(&c);
}

static void expect_check_ok(const char *text) {
    RunConfig c;
    Error err = {{0}};
    int status = config_load_string(&c, text, "x.yaml", &err);
    if (status == 0) status = config_check(&c, &err);
    char shown[256];
    size_t n = 0;
    for (const char *p = text; *p && n + 3 < sizeof shown; p++) {
        if (*p == '\n') shown[n++] = '\\', shown[n++] = 'n';
        else shown[n++] = *p;
    }
    shown[n] = '\0';
    report(status == 0, "check passes: %s %s", shown, status ? err.message : "");
    config_free(&c);
}

static void test_checks(void) {
    expect_check_error("data:\n  kind: text\n",
                       "x.yaml:2:9: data.path: required when data.kind is text (the file to read)");
    expect_check_error("data:\n  kind: tokens\n  path: \"\"\n",
                       "x.yaml:2:9: data.path: required when data.kind is tokens (the file to read)");
    expect_check_ok("data:\n  kind: text\n  path: a.txt\n");
    expect_check_error("optim:\n  lr_min: 0.001\n", "x.yaml:2:11: optim.lr_min: must be <= optim.lr (0.0001), got 0.001");
    expect_check_error("optim:\n  lr: 1e-7\n", "x.yaml:2:7: optim.lr_min: must be <= optim.lr (1e-07), got 1e-06");
    expect_check_ok("optim:\n  lr: 1e-6\n");
    expect_check_error("prune:\n  nm_n: 2\n",
                       "x.yaml:2:9: prune.nm_n: N:M sparsity needs both prune.nm_n and prune.nm_m > 0 (or both 0), got 2:0");
    expect_check_error("prune:\n  nm_n: 4\n  nm_m: 4\n",
                       "x.yaml:2:9: prune.nm_n: must be < prune.nm_m (N of every M pruned), got 4:4");
    expect_check_ok("prune:\n  nm_n: 2\n  nm_m: 4\n");
    expect_check_error("prune:\n  initial_sparsity: 0.6\n",
                       "x.yaml:2:21: prune.initial_sparsity: must be <= prune.final_sparsity (0.5): sparsity only "
                       "grows, got 0.6");
    // Allowed with the other strategies (unused there), so that a sweep can compare strategies.
    expect_check_ok("prune:\n  component_sparsity: {A_log: 0.3}\n");
    expect_check_ok("prune:\n  strategy: component\n  component_sparsity: {A_log: 0.3}\n");
    expect_check_error("prune:\n  method: gradient\n  start_step: 800\n",
                       "x.yaml:3:15: prune.end_step: the schedule must end after prune.start_step (800), but it ends at "
                       "step 750 (0 = train.steps * 3 / 4)");
    expect_check_ok("prune:\n  method: gradient\n  start_step: 700\n");
    expect_check_error("model:\n  init:\n", "x.yaml:2:8: model.init: expected \"random\" or a path, got \"\"");
    // A default that breaks a check is reported without a location.
    RunConfig c;
    config_defaults(&c);
    Error err = {{0}};
    c.optim.lr_min = 1.0;  // as a caller could do by hand
    report(config_check(&c, &err) == -1 && strcmp(err.message, "optim.lr_min: must be <= optim.lr (0.0001), got 1") == 0,
           "check without an origin: %s", err.message);
    config_free(&c);
}

static void test_sweep(void) {
    RunConfig base;
    Error err = {{0}};
    if (config_load_file(&base, "fixtures/config/full.yaml", &err)) {
        report(false, "full.yaml loads: %s", err.message);
        config_free(&base);
        return;
    }
    int runs = config_sweep_count(&base);
    report(runs == 16, "sweep: 4 * 2 * 2 = %d runs", runs);
    const double alphas[] = {0, 0.5, 1, 2}, finals[] = {0.5, 0.9};
    int matched = 0, labels_ok = 0, round_trips = 0;
    for (int i = 0; i < runs; i++) {
        // Nested loops in file order, the last axis fastest.
        int a = i / 4, f = (i / 2) % 2, inc = i % 2;
        RunConfig run;
        char label[256];
        int status = config_sweep_apply(&base, i, &run, label, sizeof label, &err);
        if (status) {
            report(false, "sweep run %d: %s", i, err.message);
            config_free(&run);
            continue;
        }
        bool include_ok = inc == 0 ? run.prune.include.count == 1 && strcmp(run.prune.include.items[0], "in_proj") == 0
                                   : run.prune.include.count == 2 && strcmp(run.prune.include.items[0], "*.A_log") == 0 &&
                                         strcmp(run.prune.include.items[1], "x_proj") == 0;
        if (run.prune.alpha == alphas[a] && run.prune.final_sparsity == finals[f] && include_ok && run.n_sweep == 0 &&
            run.train.steps == 2000)
            matched++;
        static const char *const alpha_text[] = {"0", "0.5", "1", "2"}, *const final_text[] = {"0.5", "0.9"};
        static const char *const include_text[] = {"[in_proj]", "[\"*.A_log\", x_proj]"};
        char expected[256];
        snprintf(expected, sizeof expected, "prune.alpha=%s,prune.final_sparsity=%s,prune.include=%s", alpha_text[a],
                 final_text[f], include_text[inc]);
        if (strcmp(label, expected) == 0) labels_ok++;
        else printf("  run %d label '%s', expected '%s'\n", i, label, expected);
        // A run's resolved YAML reloads to the same run, without a sweep.
        char *yaml = config_to_yaml(&run);
        RunConfig back;
        char diff[128];
        if (config_load_string(&back, yaml, "run.yaml", &err) == 0 && same_config(&run, &back, diff, sizeof diff))
            round_trips++;
        config_free(&back);
        free(yaml);
        config_free(&run);
    }
    report(matched == 16, "sweep: %d of 16 runs have their axis values (order: last axis fastest)", matched);
    report(labels_ok == 16, "sweep: %d of 16 labels", labels_ok);
    report(round_trips == 16, "sweep: %d of 16 runs round-trip through YAML", round_trips);
    RunConfig run;
    report(config_sweep_apply(&base, 16, &run, NULL, 0, &err) == -1, "sweep run 16 does not exist: %s", err.message);
    config_free(&run);

    // --set adds, replaces and removes axes; its values are checked.
    report(config_set(&base, "sweep.prune.final_sparsity=[0.1, 0.2, 0.3]", &err) == 0 && base.n_sweep == 3 &&
               strcmp(base.sweep[1].key, "prune.final_sparsity") == 0 && base.sweep[1].n_values == 3 &&
               config_sweep_count(&base) == 24,
           "--set replaces an axis in place (24 runs)");
    report(config_set(&base, "sweep.train.seed=[1, 2]", &err) == 0 && base.n_sweep == 4 &&
               strcmp(base.sweep[3].key, "train.seed") == 0 && config_sweep_count(&base) == 48,
           "--set appends an axis (48 runs)");
    report(config_set(&base, "sweep.prune.alpha=[]", &err) == 0 && base.n_sweep == 3 &&
               strcmp(base.sweep[0].key, "prune.final_sparsity") == 0 && config_sweep_count(&base) == 12,
           "--set sweep.prune.alpha=[] removes the axis (12 runs)");
    int status = config_set(&base, "sweep.train.seed=[1, -2]", &err);
    report(status == -1 && strcmp(err.message, "--set sweep.train.seed=[1, -2]: expected an integer >= 0, got '-2'") == 0 &&
               config_sweep_count(&base) == 12,
           "--set of a bad sweep value refused, sweep unchanged: %s", err.message);
    status = config_set(&base, "sweep.train.seed=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]", &err);
    char big[64];
    report(status == 0 && config_sweep_count(&base) == 60, "sweep of 60 runs");
    for (int i = 0; i < 5; i++) {
        snprintf(big, sizeof big, "sweep.model.d_model=[%d,%d,%d,%d,%d,%d,%d,%d,%d,%d]", i * 10 + 1, i * 10 + 2,
                 i * 10 + 3, i * 10 + 4, i * 10 + 5, i * 10 + 6, i * 10 + 7, i * 10 + 8, i * 10 + 9, i * 10 + 10);
        config_set(&base, big, &err);
        snprintf(big, sizeof big, "sweep.model.%s=[1,2,3,4,5,6,7,8,9,10]",
                 (const char *[]){"n_layer", "d_state", "d_conv", "expand", "dt_rank"}[i]);
        status = config_set(&base, big, &err);
    }
    report(status == -1 && strstr(err.message, "more than 1000000") != NULL, "an oversized sweep is refused: %s",
           err.message);

    // A run that breaks a cross-field check names the run.
    RunConfig cross;
    status = config_load_string(&cross, "sweep:\n  optim.lr_min: [1e-6, 1e-3]\n", "x.yaml", &err);
    RunConfig bad;
    status = status || config_sweep_apply(&cross, 0, &bad, NULL, 0, &err);
    config_free(&bad);
    char label[64];
    report(status == 0 && config_sweep_apply(&cross, 1, &bad, label, sizeof label, &err) == -1 &&
               strcmp(err.message, "sweep run 1 of 2 (optim.lr_min=1e-3): x.yaml:2:3: optim.lr_min: must be <= "
                                   "optim.lr (0.0001), got 0.001") == 0,
           "a sweep run that fails a check: %s", err.message);
    config_free(&bad);
    config_free(&cross);
    config_free(&base);
}

static void test_round_trip_strings(void) {
    RunConfig c;
    config_defaults(&c);
    Error err = {{0}};
    const char *odd[] = {"he said \"hi\" \\ and: #x", "null", "true", "*glob", "", "tab\there\nnew line", "ünïcödé",
                         "- dash", "1e5", "'single'"};
    int same = 0;
    for (int i = 0; i < (int)(sizeof odd / sizeof odd[0]); i++) {
        char assignment[128];
        snprintf(assignment, sizeof assignment, "log.name=%s", odd[i]);
        config_set(&c, assignment, &err);
        free(c.prune.include.items[0]);
        c.prune.include.items[0] = strdup(odd[i][0] ? odd[i] : "x");
        char *yaml = config_to_yaml(&c);
        RunConfig back;
        char diff[128] = "";
        if (config_load_string(&back, yaml, "rt.yaml", &err) == 0 && same_config(&c, &back, diff, sizeof diff) &&
            strcmp(back.log.name, odd[i]) == 0)
            same++;
        else
            printf("  round trip of '%s' failed: %s %s\n", odd[i], diff, err.message);
        config_free(&back);
        free(yaml);
    }
    report(same == (int)(sizeof odd / sizeof odd[0]), "odd strings round-trip (%d)", same);
    const char *numbers[] = {"optim.lr=0.1", "optim.lr=0.30000000000000004", "optim.eps=1e-300", "optim.lr=123456789.125",
                             "data.val_fraction=0.1234567890123456789"};
    same = 0;
    for (int i = 0; i < 5; i++) {
        config_set(&c, numbers[i], &err);
        char *yaml = config_to_yaml(&c);
        RunConfig back;
        char diff[128] = "";
        if (config_load_string(&back, yaml, "rt.yaml", &err) == 0 && same_config(&c, &back, diff, sizeof diff)) same++;
        config_free(&back);
        free(yaml);
    }
    report(same == 5, "floats round-trip bit for bit (%d of 5)", same);
    config_free(&c);
}

static void test_copy_and_patterns(void) {
    RunConfig a, b;
    Error err = {{0}};
    config_load_file(&a, "fixtures/config/full.yaml", &err);
    config_copy(&b, &a);
    char diff[128] = "";
    bool equal = same_config(&a, &b, diff, sizeof diff);
    config_set(&b, "prune.include=[changed]", &err);
    report(equal && strcmp(a.prune.include.items[0], "in_proj") == 0, "config_copy is deep %s", diff);
    config_free(&a);
    config_free(&b);

    RunConfig c;
    config_defaults(&c);
    struct {
        const char *name;
        bool prunable;
    } names[] = {
        {"backbone.layers.0.mixer.in_proj.weight", true}, {"backbone.layers.3.mixer.conv1d.weight", true},
        {"backbone.layers.3.mixer.conv1d.bias", false},   {"backbone.layers.1.mixer.x_proj.weight", true},
        {"backbone.layers.1.mixer.dt_proj.weight", true}, {"backbone.layers.1.mixer.dt_proj.bias", false},
        {"backbone.layers.1.mixer.A_log", true},          {"backbone.layers.1.mixer.D", false},
        {"backbone.layers.1.mixer.out_proj.weight", true}, {"backbone.layers.1.norm.weight", false},
        {"backbone.embeddings.weight", false},            {"backbone.norm_f.weight", false},
    };
    int right = 0;
    for (int i = 0; i < 12; i++) right += config_param_prunable(&c, names[i].name) == names[i].prunable;
    report(right == 12, "default include: the mixers' weight matrices and A_log only (%d of 12)", right);
    config_set(&c, "prune.exclude=[\"backbone.layers.1.*\"]", &err);
    report(!config_param_prunable(&c, "backbone.layers.1.mixer.A_log") &&
               config_param_prunable(&c, "backbone.layers.0.mixer.A_log"),
           "exclude glob removes layer 1");
    report(config_name_matches("*.A_log", "backbone.layers.10.mixer.A_log") &&
               !config_name_matches("*.A_log", "backbone.layers.10.mixer.A_log2") &&
               config_name_matches("*layers.1?.*", "backbone.layers.12.mixer.D") &&
               !config_name_matches("layers.1?.", "backbone.layers.12.mixer.D") &&
               config_name_matches("x_proj", "backbone.layers.2.mixer.x_proj.weight") &&
               !config_name_matches("layers.1.", "backbone.layers.12.mixer.D"),
           "glob over the whole name, substring otherwise");
    config_free(&c);
}

int main(void) {
    test_defaults();
    test_full_file();
    test_errors();
    test_bool_strictness();
    test_set();
    test_checks();
    test_sweep();
    test_round_trip_strings();
    test_copy_and_patterns();
    printf("%s: %d failure(s)\n", failures ? "FAILED" : "PASSED", failures);
    return failures ? 1 : 0;
}
