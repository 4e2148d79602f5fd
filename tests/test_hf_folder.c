// transformers folders: config.json parsing (and its errors), loading the committed
// fixtures made by tools/make_hf_fixture.py with the real transformers (one file and
// sharded must give identical tables), the reference file's completeness, save -> load
// bit-exact, the tied-head rule, and folders that must fail: missing, unexpected or
// misshapen tensors, broken indexes.
#define _GNU_SOURCE  // nftw
#include <cjson/cJSON.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/rng.h"
#include "io/hf_folder.h"
#include "io/safetensors.h"

#include "check.h"


// ---------------------------------------------------------------------------------------
// Paths

static char temp_root[64];

static char *temp_dir(const char *name) {
    char *path = malloc(256);
    snprintf(path, 256, "%s/%s", temp_root, name);
    mkdir(path, 0755);
    return path;
}

static char *join(const char *dir, const char *name) {
    char *path = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(path, "%s/%s", dir, name);
    return path;
}

// Fixtures are read from tests/ (CTest's working directory) or $MP_SOURCE_DIR/tests.
static char *fixture(const char *name) {
    const char *source = getenv("MP_SOURCE_DIR");
    char *path = malloc(1024);
    snprintf(path, 1024, "%s%sfixtures/%s", source ? source : "", source ? "/tests/" : "", name);
    return path;
}

static void write_text(const char *path, const char *text) {
    FILE *fp = fopen(path, "wb");
    fputs(text, fp);
    fclose(fp);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

// ---------------------------------------------------------------------------------------
// Parameter tables with the docs/DESIGN.md#model names and shapes, built by hand

typedef struct ParamTable {
    NamedParam *params;
    Tensor *tensors;          // params[i].tensor == &tensors[i]
    int n;
} ParamTable;

static void table_add(ParamTable *t, const char *name, int ndim, int d0, int d1, int d2) {
    int shape[3] = {d0, d1, d2};
    snprintf(t->params[t->n].name, sizeof t->params[t->n].name, "%s", name);
    tensor_init_param(&t->tensors[t->n], ndim, shape);
    t->params[t->n].tensor = &t->tensors[t->n];
    t->n++;
}

static void table_create(ParamTable *t, const MambaConfig *c) {
    int d = c->d_model, D = c->d_inner, N = c->d_state, K = c->d_conv, R = c->dt_rank;
    int capacity = 2 + 10 * c->n_layer;
    t->params = calloc((size_t)capacity, sizeof *t->params);
    t->tensors = calloc((size_t)capacity, sizeof *t->tensors);
    t->n = 0;
    table_add(t, "backbone.embeddings.weight", 2, c->vocab_padded, d, 0);
    for (int i = 0; i < c->n_layer; i++) {
        char name[96];
#define LAYER(suffix, ndim, d0, d1, d2)                                           \
    snprintf(name, sizeof name, "backbone.layers.%d.%s", i, suffix);              \
    table_add(t, name, ndim, d0, d1, d2)
        LAYER("norm.weight", 1, d, 0, 0);
        LAYER("mixer.in_proj.weight", 2, 2 * D, d, 0);
        LAYER("mixer.conv1d.weight", 3, D, 1, K);
        LAYER("mixer.conv1d.bias", 1, D, 0, 0);
        LAYER("mixer.x_proj.weight", 2, R + 2 * N, D, 0);
        LAYER("mixer.dt_proj.weight", 2, D, R, 0);
        LAYER("mixer.dt_proj.bias", 1, D, 0, 0);
        LAYER("mixer.A_log", 2, D, N, 0);
        LAYER("mixer.D", 1, D, 0, 0);
        LAYER("mixer.out_proj.weight", 2, d, D, 0);
#undef LAYER
    }
    table_add(t, "backbone.norm_f.weight", 1, d, 0, 0);
}

static void table_free(ParamTable *t) {
    for (int i = 0; i < t->n; i++) tensor_free_param(&t->tensors[i]);
    free(t->params);
    free(t->tensors);
}

static void table_fill(ParamTable *t, float value) {
    for (int i = 0; i < t->n; i++)
        for (size_t k = 0; k < t->tensors[i].size; k++) t->tensors[i].data[k] = value;
}

static void table_fill_random(ParamTable *t, uint64_t seed) {
    Rng rng;
    rng_seed(&rng, seed);
    for (int i = 0; i < t->n; i++)
        for (size_t k = 0; k < t->tensors[i].size; k++) t->tensors[i].data[k] = rng_normal(&rng);
}

static Tensor *table_find(ParamTable *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->params[i].name, name) == 0) return &t->tensors[i];
    return NULL;
}

// Number of parameters whose bits differ; names the first in *first.
static int tables_differ(const ParamTable *a, const ParamTable *b, const char **first) {
    int n_different = 0;
    *first = "";
    for (int i = 0; i < a->n; i++) {
        const Tensor *x = &a->tensors[i], *y = &b->tensors[i];
        if (x->size != y->size || memcmp(x->data, y->data, sizeof(float) * x->size) != 0) {
            if (!n_different) *first = a->params[i].name;
            n_different++;
        }
    }
    return n_different;
}

static size_t table_count_nan(const ParamTable *t) {
    size_t n = 0;
    for (int i = 0; i < t->n; i++)
        for (size_t k = 0; k < t->tensors[i].size; k++) n += isnan(t->tensors[i].data[k]);
    return n;
}

// The table as a list to write, with room for extra entries.
static SafetensorsWriteTensor *table_to_write(const ParamTable *t, int extra) {
    SafetensorsWriteTensor *w = calloc((size_t)(t->n + extra), sizeof *w);
    for (int i = 0; i < t->n; i++) {
        const Tensor *x = &t->tensors[i];
        w[i] = (SafetensorsWriteTensor){.name = t->params[i].name, .dtype = SAFETENSORS_F32, .ndim = x->ndim,
                                        .data = x->data};
        for (int d = 0; d < x->ndim; d++) w[i].shape[d] = x->shape[d];
    }
    return w;
}

static int write_index(const char *index_path, const SafetensorsWriteTensor *w, int n, const char *const *shard_of) {
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(root, "metadata");
    cJSON_AddNumberToObject(meta, "total_size", 0);
    cJSON *map = cJSON_AddObjectToObject(root, "weight_map");
    for (int i = 0; i < n; i++) cJSON_AddStringToObject(map, w[i].name, shard_of[i]);
    char *text = cJSON_Print(root);
    write_text(index_path, text);
    cJSON_free(text);
    cJSON_Delete(root);
    return 0;
}

static const char *tiny_config_text(bool tied) {
    return tied ? "{\"model_type\": \"mamba\", \"hidden_size\": 32, \"num_hidden_layers\": 2, \"vocab_size\": 64,\n"
                  " \"state_size\": 16, \"conv_kernel\": 4, \"expand\": 2, \"time_step_rank\": \"auto\"}\n"
                : "{\"model_type\": \"mamba\", \"hidden_size\": 32, \"num_hidden_layers\": 2, \"vocab_size\": 64,\n"
                  " \"state_size\": 16, \"conv_kernel\": 4, \"expand\": 2, \"time_step_rank\": \"auto\",\n"
                  " \"tie_word_embeddings\": false}\n";
}

// A folder with config.json and one model.safetensors of the given tensors.
static char *write_folder(const char *name, const char *config_text, const SafetensorsWriteTensor *w, int n) {
    char *dir = temp_dir(name);
    char *config_path = join(dir, "config.json");
    write_text(config_path, config_text);
    free(config_path);
    char *weights = join(dir, "model.safetensors");
    SafetensorsMetadata meta = {"format", "pt"};
    Error err;
    if (safetensors_write(weights, w, n, &meta, 1, &err) != 0) printf("# setup failed: %s\n", err.message);
    free(weights);
    return dir;
}

// ---------------------------------------------------------------------------------------

// item[key] (or item itself when key is NULL) is the string value / the number value.
static bool json_string_is(const cJSON *item, const char *key, const char *value) {
    const cJSON *x = key ? cJSON_GetObjectItem(item, key) : item;
    return cJSON_IsString(x) && strcmp(x->valuestring, value) == 0;
}

static bool json_number_is(const cJSON *item, const char *key, double value) {
    const cJSON *x = cJSON_GetObjectItem(item, key);
    return cJSON_IsNumber(x) && x->valuedouble == value;
}

static bool configs_equal(const MambaConfig *a, const MambaConfig *b) {
    return a->d_model == b->d_model && a->n_layer == b->n_layer && a->vocab_size == b->vocab_size &&
           a->vocab_padded == b->vocab_padded && a->d_state == b->d_state && a->d_conv == b->d_conv &&
           a->expand == b->expand && a->dt_rank == b->dt_rank && a->d_inner == b->d_inner &&
           a->norm_eps == b->norm_eps && a->dt_min == b->dt_min && a->dt_max == b->dt_max &&
           a->dt_init_floor == b->dt_init_floor;
}

static void test_fixture_config(MambaConfig *config) {
    char *dir = fixture("hf_tiny");
    Error err = {{0}};
    int rc = hf_folder_read_config(dir, config, &err);
    check(rc == 0, "read %s/config.json %s", dir, rc ? err.message : "");
    check(rc == 0 && config->d_model == 32 && config->n_layer == 2 && config->vocab_size == 64 &&
              config->vocab_padded == 64 && config->d_state == 16 && config->d_conv == 4 && config->expand == 2 &&
              config->dt_rank == 2 && config->d_inner == 64 && config->norm_eps == 1e-5f,
          "hf_tiny config: d 32, 2 layers, V 64 (unpadded), N 16, K 4, expand 2, dt_rank 2, eps 1e-5");
    MambaConfig sharded;
    char *sharded_dir = fixture("hf_tiny_sharded");
    rc = hf_folder_read_config(sharded_dir, &sharded, &err);
    check(rc == 0 && configs_equal(config, &sharded), "hf_tiny_sharded has the same config");
    free(dir);
    free(sharded_dir);
}

// The committed fixtures: one file and three shards hold the same weights.
static void test_fixture_weights(const MambaConfig *config, ParamTable *single) {
    ParamTable sharded;
    table_create(single, config);
    table_create(&sharded, config);
    table_fill(single, NAN);  // every element must be overwritten
    table_fill(&sharded, NAN);
    char *dir = fixture("hf_tiny"), *sharded_dir = fixture("hf_tiny_sharded");
    Error err = {{0}};
    int rc = hf_folder_load_params(dir, single->params, single->n, &err);
    check(rc == 0 && table_count_nan(single) == 0, "load hf_tiny (%d tensors, every element written) %s", single->n,
          rc ? err.message : "");
    rc = hf_folder_load_params(sharded_dir, sharded.params, sharded.n, &err);
    check(rc == 0 && table_count_nan(&sharded) == 0, "load hf_tiny_sharded (index + 3 shards) %s", rc ? err.message : "");
    const char *first;
    int n_different = tables_differ(single, &sharded, &first);
    check(n_different == 0, "one-file and sharded tables are bit-identical (%d differ, first '%s')", n_different, first);

    // The script moved every parameter off its trivial initial value.
    const Tensor *A_log = table_find(single, "backbone.layers.1.mixer.A_log");
    const Tensor *D = table_find(single, "backbone.layers.0.mixer.D");
    double a_diff = 0, d_diff = 0;
    for (int r = 0; r < config->d_inner; r++) {
        for (int n = 0; n < config->d_state; n++)
            a_diff = fmax(a_diff, fabs(A_log->data[r * config->d_state + n] - log(n + 1.0)));
        d_diff = fmax(d_diff, fabs(D->data[r] - 1.0));
    }
    check(a_diff > 1e-3 && d_diff > 1e-3, "loaded A_log and D are not their defaults (max |A_log - log(n+1)| %.3g, "
          "max |D - 1| %.3g)", a_diff, d_diff);
    table_free(&sharded);
    free(dir);
    free(sharded_dir);
}

// What the forward/backward test against transformers needs is in the reference file.
static void test_reference_file(const ParamTable *table) {
    char *path = fixture("hf_tiny_reference.safetensors");
    SafetensorsFile file;
    Error err = {{0}};
    int rc = safetensors_open(&file, path, &err);
    check(rc == 0, "open %s %s", path, rc ? err.message : "");
    free(path);
    if (rc != 0) return;
    const char *torch = safetensors_metadata_get(&file, "torch");
    const char *transformers = safetensors_metadata_get(&file, "transformers");
    check(torch && transformers, "metadata names the versions: torch %s, transformers %s", torch ? torch : "?",
          transformers ? transformers : "?");

    enum { B = 2, L = 12, V = 64 };
    const SafetensorsTensor *tokens_t = safetensors_find(&file, "tokens");
    const SafetensorsTensor *targets_t = safetensors_find(&file, "targets");
    const SafetensorsTensor *logits_t = safetensors_find(&file, "logits");
    const SafetensorsTensor *loss_t = safetensors_find(&file, "loss");
    bool shapes_ok = tokens_t && tokens_t->dtype == SAFETENSORS_I64 && tokens_t->ndim == 2 &&
                     tokens_t->shape[0] == B && tokens_t->shape[1] == L && targets_t && targets_t->ndim == 2 &&
                     targets_t->n_elements == B * L && logits_t && logits_t->dtype == SAFETENSORS_F32 &&
                     logits_t->ndim == 3 && logits_t->shape[0] == B && logits_t->shape[1] == L &&
                     logits_t->shape[2] == V && loss_t && loss_t->n_elements == 1;
    check(shapes_ok, "tokens I64 (2, 12), targets (2, 12), logits F32 (2, 12, 64), loss (1)");
    if (!shapes_ok) {
        safetensors_close(&file);
        return;
    }
    int32_t tokens[B * L], targets[B * L];
    float logits[B * L * V], loss;
    rc = safetensors_read_i32(&file, tokens_t, tokens, &err);
    rc = rc ? rc : safetensors_read_i32(&file, targets_t, targets, &err);
    rc = rc ? rc : safetensors_read_f32(&file, logits_t, logits, &err);
    rc = rc ? rc : safetensors_read_f32(&file, loss_t, &loss, &err);
    bool targets_ok = rc == 0;
    for (int b = 0; b < B && targets_ok; b++)
        for (int t = 0; t < L; t++) {
            targets_ok = targets_ok && tokens[b * L + t] >= 0 && tokens[b * L + t] < V;
            targets_ok = targets_ok && targets[b * L + t] == (t + 1 < L ? tokens[b * L + t + 1] : -1);
        }
    check(targets_ok, "tokens in [0, 64); targets = tokens shifted by one, -1 at the last position");
    // The stored loss is the mean next-token cross-entropy of the stored logits.
    double total = 0;
    int count = 0;
    for (int i = 0; i < B * L && targets_ok; i++) {
        if (targets[i] < 0) continue;
        const float *row = logits + (size_t)i * V;
        double max = row[0], sum = 0;
        for (int v = 1; v < V; v++) max = fmax(max, row[v]);
        for (int v = 0; v < V; v++) sum += exp(row[v] - max);
        total += max + log(sum) - row[targets[i]];
        count++;
    }
    double recomputed = count ? total / count : NAN;
    check(fabs(recomputed - loss) < 1e-5, "loss %.6f = cross-entropy of the stored logits over %d positions "
          "(recomputed %.6f, diff %.2g)", loss, count, recomputed, fabs(recomputed - loss));

    int n_ok = 0;
    const char *bad = NULL;
    for (int i = 0; i < table->n; i++) {
        char name[128];
        snprintf(name, sizeof name, "grad.%s", table->params[i].name);
        const SafetensorsTensor *g = safetensors_find(&file, name);
        const Tensor *p = &table->tensors[i];
        bool ok = g && g->dtype == SAFETENSORS_F32 && g->ndim == p->ndim;
        for (int d = 0; ok && d < p->ndim; d++) ok = g->shape[d] == p->shape[d];
        float *values = ok ? malloc(sizeof(float) * p->size) : NULL;
        ok = ok && safetensors_read_f32(&file, g, values, &err) == 0;
        double max_abs = 0;
        for (size_t k = 0; ok && k < p->size; k++) max_abs = fmax(max_abs, fabs(values[k]));
        ok = ok && max_abs > 0 && isfinite(max_abs);
        free(values);
        if (ok) n_ok++;
        else if (!bad) bad = table->params[i].name;
    }
    check(n_ok == table->n, "grad.<name> for all %d parameters, shapes as the model's, nonzero and finite (first bad: %s)",
          table->n, bad ? bad : "none");
    check(file.n_tensors == 4 + table->n, "no other tensors (%d = 4 + %d)", file.n_tensors, table->n);
    safetensors_close(&file);
}

static void test_save_round_trip(const MambaConfig *config) {
    ParamTable saved, loaded;
    table_create(&saved, config);
    table_create(&loaded, config);
    table_fill_random(&saved, 42);
    table_fill(&loaded, NAN);
    char *base = temp_dir("export");
    char *dir = join(base, "nested/model");  // parents are created too
    Error err = {{0}};
    int rc = hf_folder_save(dir, config, saved.params, saved.n, &err);
    check(rc == 0, "save to a new nested folder %s", rc ? err.message : "");
    rc = rc ? rc : hf_folder_save(dir, config, saved.params, saved.n, &err);
    check(rc == 0, "save again over the existing files %s", rc ? err.message : "");
    MambaConfig back;
    rc = hf_folder_read_config(dir, &back, &err);
    check(rc == 0 && configs_equal(config, &back), "config.json reads back to the same config %s",
          rc ? err.message : "");
    rc = hf_folder_load_params(dir, loaded.params, loaded.n, &err);
    const char *first;
    int n_different = rc == 0 ? tables_differ(&saved, &loaded, &first) : -1;
    check(rc == 0 && n_different == 0, "save -> load is bit-exact (%d tensors differ) %s", n_different,
          rc ? err.message : "");

    // What transformers needs to see in config.json.
    char *config_path = join(dir, "config.json");
    FILE *fp = fopen(config_path, "rb");
    char text[4096] = {0};
    size_t got = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    cJSON *root = cJSON_Parse(text);
    const cJSON *arch = cJSON_GetObjectItem(root, "architectures");
    check(got > 0 && root && json_string_is(root, "model_type", "mamba") &&
              json_string_is(cJSON_GetArrayItem(arch, 0), NULL, "MambaForCausalLM") &&
              cJSON_IsTrue(cJSON_GetObjectItem(root, "tie_word_embeddings")) &&
              cJSON_IsFalse(cJSON_GetObjectItem(root, "use_bias")) &&
              cJSON_IsTrue(cJSON_GetObjectItem(root, "use_conv_bias")) && json_number_is(root, "vocab_size", 64) &&
              json_number_is(root, "time_step_rank", 2) && json_number_is(root, "intermediate_size", 64) &&
              strstr(text, "\"layer_norm_epsilon\":\t1e-05") != NULL,
          "config.json: model_type mamba, MambaForCausalLM, tied, no biases, vocab 64, dt_rank 2, eps 1e-05");
    // transformers checks JSON types: its float fields must not be written as integers.
    check(strstr(text, "\"time_step_scale\":\t1.0") && strstr(text, "\"initializer_range\":\t0.1") &&
              strstr(text, "\"time_step_max\":\t0.1"),
          "config.json: float fields written as floats (time_step_scale 1.0)");
    cJSON_Delete(root);
    free(config_path);
    char *weights = join(dir, "model.safetensors");
    SafetensorsFile file;
    rc = safetensors_open(&file, weights, &err);
    const char *format = rc == 0 ? safetensors_metadata_get(&file, "format") : NULL;
    check(rc == 0 && file.n_tensors == saved.n && !safetensors_find(&file, "lm_head.weight") && format &&
              strcmp(format, "pt") == 0,
          "model.safetensors: %d F32 tensors, no lm_head.weight, metadata format pt", saved.n);
    if (rc == 0) safetensors_close(&file);
    free(weights);

    // A config padded on our side exports the padded row count as vocab_size.
    MambaConfig padded = *config;
    padded.vocab_size = 50;
    padded.pad_vocab_size_multiple = 8;
    mamba_config_finish(&padded, &err);
    ParamTable padded_table;
    table_create(&padded_table, &padded);
    char *padded_dir = join(base, "padded");
    rc = hf_folder_save(padded_dir, &padded, padded_table.params, padded_table.n, &err);
    rc = rc ? rc : hf_folder_read_config(padded_dir, &back, &err);
    check(rc == 0 && back.vocab_size == 56 && back.vocab_padded == 56,
          "vocab 50 padded to 56 is exported as vocab_size 56 (read back: %d)", back.vocab_size);
    table_free(&padded_table);

    Error save_err = {{0}};
    rc = hf_folder_save(padded_dir, config, saved.params, saved.n, &save_err);
    check(rc == 0, "control: the same folder takes another save %s", rc ? save_err.message : "");
    snprintf(saved.params[0].name, sizeof saved.params[0].name, "lm_head.weight");
    rc = hf_folder_save(padded_dir, config, saved.params, saved.n, &save_err);
    check_error("save a table holding lm_head.weight", rc, &save_err, "only a tied head", NULL);
    snprintf(saved.params[0].name, sizeof saved.params[0].name, "backbone.embeddings.weight");
    MambaConfig other = *config;
    other.vocab_size = other.vocab_padded = 72;
    rc = hf_folder_save(padded_dir, &other, saved.params, saved.n, &save_err);
    check_error("save an embedding that disagrees with the config", rc, &save_err, "backbone.embeddings.weight",
                "vocab_padded 72", NULL);
    free(padded_dir);
    table_free(&saved);
    table_free(&loaded);
    free(dir);
    free(base);
}

// Folders that differ from the table in one way each.
static void test_mismatched_tensors(const MambaConfig *config, ParamTable *reference) {
    ParamTable table;
    table_create(&table, config);
    Error err = {{0}};
    int n = reference->n;
    int rc;

    SafetensorsWriteTensor *w = table_to_write(reference, 2);
    int a_log = -1, d_index = -1, conv = -1, embedding = 0;
    for (int i = 0; i < n; i++) {
        if (strcmp(w[i].name, "backbone.layers.0.mixer.A_log") == 0) a_log = i;
        if (strcmp(w[i].name, "backbone.layers.1.mixer.D") == 0) d_index = i;
        if (strcmp(w[i].name, "backbone.layers.1.mixer.conv1d.weight") == 0) conv = i;
    }

    // Missing: D of layer 1 and the final norm.
    SafetensorsWriteTensor last = w[n - 1], removed = w[d_index];
    w[d_index] = w[n - 2];
    char *dir = write_folder("missing", tiny_config_text(true), w, n - 2);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check_error("two tensors missing", rc, &err, dir, "2 missing tensors", "'backbone.layers.1.mixer.D'",
                "'backbone.norm_f.weight'", NULL);
    w[n - 2] = w[d_index];
    w[d_index] = removed;
    w[n - 1] = last;
    free(dir);

    // Wrong shape: A_log stored as (64, 8) (the same bytes, half the rows' worth of columns).
    w[a_log].shape[1] = 8;
    dir = write_folder("shape", tiny_config_text(true), w, n);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check_error("A_log of the wrong shape", rc, &err,
                "model.safetensors: tensor 'backbone.layers.0.mixer.A_log': shape [64, 8] but the model expects "
                "[64, 16]", NULL);
    w[a_log].shape[1] = 16;
    free(dir);

    // Unexpected: an in_proj bias (use_bias) and a stray tensor.
    float bias[128] = {0}, stray[3] = {1, 2, 3};
    w[n] = (SafetensorsWriteTensor){.name = "backbone.layers.0.mixer.in_proj.bias", .dtype = SAFETENSORS_F32,
                                    .ndim = 1, .shape = {128}, .data = bias};
    w[n + 1] = (SafetensorsWriteTensor){.name = "something.else", .dtype = SAFETENSORS_F32, .ndim = 1, .shape = {3},
                                        .data = stray};
    dir = write_folder("unexpected", tiny_config_text(true), w, n + 2);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check_error("two unexpected tensors", rc, &err, "2 unexpected tensors",
                "'backbone.layers.0.mixer.in_proj.bias'", "'something.else'", "use_bias", NULL);
    free(dir);

    // A conv weight stored as (D, K) fits our (D, 1, K).
    w[conv].ndim = 2;
    w[conv].shape[1] = config->d_conv;
    dir = write_folder("conv2d", tiny_config_text(true), w, n);
    table_fill(&table, NAN);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    const char *first;
    int n_different = rc == 0 ? tables_differ(reference, &table, &first) : -1;
    check(rc == 0 && n_different == 0, "conv1d weight stored as (D, K) loads into (D, 1, K) %s",
          rc ? err.message : "");
    w[conv].ndim = 3;
    w[conv].shape[1] = 1;
    w[conv].shape[2] = config->d_conv;
    free(dir);

    // Integers where floats are expected.
    SafetensorsWriteTensor saved_d = w[d_index];
    int32_t ints[64] = {0};
    w[d_index].dtype = SAFETENSORS_I32;
    w[d_index].data = ints;
    dir = write_folder("ints", tiny_config_text(true), w, n);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check_error("D stored as I32", rc, &err, "'backbone.layers.1.mixer.D': dtype I32", NULL);
    w[d_index] = saved_d;
    free(dir);

    // BF16 weights load, converted exactly.
    uint16_t **bf16 = calloc((size_t)n, sizeof *bf16);
    ParamTable truncated;
    table_create(&truncated, config);
    for (int i = 0; i < n; i++) {
        const Tensor *x = &reference->tensors[i];
        bf16[i] = malloc(2 * x->size);
        for (size_t k = 0; k < x->size; k++) {
            uint32_t bits;
            memcpy(&bits, &x->data[k], 4);
            bf16[i][k] = (uint16_t)(bits >> 16);
            bits &= 0xffff0000u;
            memcpy(&truncated.tensors[i].data[k], &bits, 4);
        }
    }
    SafetensorsWriteTensor *w16 = table_to_write(reference, 0);
    for (int i = 0; i < n; i++) {
        w16[i].dtype = SAFETENSORS_BF16;
        w16[i].data = bf16[i];
    }
    dir = write_folder("bf16", tiny_config_text(true), w16, n);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    n_different = rc == 0 ? tables_differ(&truncated, &table, &first) : -1;
    check(rc == 0 && n_different == 0, "BF16 folder loads as the bf16-rounded values (%d differ) %s", n_different,
          rc ? err.message : "");
    for (int i = 0; i < n; i++) free(bf16[i]);
    free(bf16);
    free(w16);
    table_free(&truncated);
    free(dir);

    // lm_head.weight: fine when equal to the embedding, an error when not.
    float *head = malloc(sizeof(float) * reference->tensors[embedding].size);
    memcpy(head, reference->tensors[embedding].data, sizeof(float) * reference->tensors[embedding].size);
    w[n] = w[embedding];
    w[n].name = "lm_head.weight";
    w[n].data = head;
    dir = write_folder("head_equal", tiny_config_text(true), w, n + 1);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check(rc == 0, "lm_head.weight equal to the embedding is accepted %s", rc ? err.message : "");
    free(dir);
    dir = write_folder("head_equal_untied", tiny_config_text(false), w, n + 1);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check(rc == 0, "... also with tie_word_embeddings false %s", rc ? err.message : "");
    free(dir);
    head[100] += 0.25f;
    dir = write_folder("head_different", tiny_config_text(true), w, n + 1);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check_error("lm_head.weight different from the embedding", rc, &err, "'lm_head.weight' differs from",
                "1 of 2048 values", "untied output head is not supported", NULL);
    free(dir);
    w[n].shape[0] = 32;
    dir = write_folder("head_shape", tiny_config_text(true), w, n + 1);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check_error("lm_head.weight of another shape", rc, &err, "'lm_head.weight': F32 [32, 32]", NULL);
    free(dir);
    free(head);
    dir = write_folder("untied_no_head", tiny_config_text(false), w, n);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check_error("tie_word_embeddings false without lm_head.weight", rc, &err, "tie_word_embeddings false", NULL);
    free(dir);

    // A model built for another d_state.
    MambaConfig small = *config;
    small.d_state = 8;
    ParamTable small_table;
    table_create(&small_table, &small);
    rc = hf_folder_load_params(dir = fixture("hf_tiny"), small_table.params, small_table.n, &err);
    check_error("hf_tiny into a d_state 8 model", rc, &err,
                "tensor 'backbone.layers.0.mixer.x_proj.weight': shape [34, 64] but the model expects [18, 64]",
                NULL);
    free(dir);
    table_free(&small_table);
    free(w);
    table_free(&table);
}

static void test_indexes(const MambaConfig *config, ParamTable *reference) {
    ParamTable table;
    table_create(&table, config);
    Error err = {{0}};
    int n = reference->n, half = n / 2, rc;
    SafetensorsWriteTensor *w = table_to_write(reference, 0);
    const char *one = "model-00001-of-00002.safetensors", *two = "model-00002-of-00002.safetensors";
    const char **shard_of = malloc(sizeof *shard_of * (size_t)n);
    for (int i = 0; i < n; i++) shard_of[i] = i < half ? one : two;
    SafetensorsMetadata meta = {"format", "pt"};

    char *dir = temp_dir("sharded");
    char *path = join(dir, "config.json");
    write_text(path, tiny_config_text(true));
    free(path);
    char *index_path = join(dir, "model.safetensors.index.json");
    char *one_path = join(dir, one), *two_path = join(dir, two);
    safetensors_write(one_path, w, half, &meta, 1, &err);
    write_index(index_path, w, n, shard_of);

    // Index naming a shard that is not there.
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check_error("index names a missing shard", rc, &err, "model.safetensors.index.json: shard "
                "'model-00002-of-00002.safetensors'", "cannot open", NULL);

    safetensors_write(two_path, w + half, n - half, &meta, 1, &err);
    table_fill(&table, NAN);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    const char *first;
    int n_different = rc == 0 ? tables_differ(reference, &table, &first) : -1;
    check(rc == 0 && n_different == 0, "two shards written here load bit-exact %s", rc ? err.message : "");

    shard_of[0] = two;  // the index puts a first-shard tensor in the second shard
    write_index(index_path, w, n, shard_of);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check_error("index names the wrong shard", rc, &err, "weight_map puts 'backbone.embeddings.weight' in shard "
                "'model-00002-of-00002.safetensors', which does not hold it", NULL);
    shard_of[0] = one;

    write_index(index_path, w + 1, n - 1, shard_of + 1);  // the embedding is in a shard, not in the index
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check_error("a shard holds a tensor the index does not list", rc, &err, "holds tensor 'backbone.embeddings.weight'",
                "does not list", NULL);

    shard_of[3] = "../model-00001-of-00002.safetensors";
    write_index(index_path, w, n, shard_of);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check_error("index names a shard outside the folder", rc, &err, "not a file name inside the folder", NULL);
    shard_of[3] = one;

    write_text(index_path, "{\"metadata\": {}}");
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check_error("index without weight_map", rc, &err, "model.safetensors.index.json", "\"weight_map\"", NULL);

    write_text(index_path, "{\"weight_map\": {\"a\": \"x\",}");
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check_error("index that is not JSON", rc, &err, "model.safetensors.index.json:1:", "not valid JSON", NULL);

    unlink(index_path);
    rc = hf_folder_load_params(dir, table.params, table.n, &err);
    check_error("folder with neither model.safetensors nor an index", rc, &err, "holds neither model.safetensors",
                NULL);

    free(index_path);
    free(one_path);
    free(two_path);
    free(dir);
    free(shard_of);
    free(w);
    table_free(&table);
}

typedef struct BadConfig {
    const char *label;
    const char *text;
    const char *needle1, *needle2;
} BadConfig;

static void test_config_errors(void) {
#define BASE "\"model_type\": \"mamba\", \"num_hidden_layers\": 2, \"vocab_size\": 64"
    const BadConfig cases[] = {
        {"not JSON", "{\n  \"hidden_size\": 32,\n  oops\n}", "config.json:3:", "not valid JSON"},
        {"not an object", "[1, 2]", "expected a JSON object", NULL},
        {"use_bias true", "{" BASE ", \"hidden_size\": 32,\n \"use_bias\": true}", "config.json:2: key 'use_bias'",
         "not supported"},
        {"use_conv_bias false", "{" BASE ", \"hidden_size\": 32, \"use_conv_bias\": false}", "key 'use_conv_bias'",
         "not supported"},
        {"time_step_rank a word", "{" BASE ", \"hidden_size\": 32, \"time_step_rank\": \"big\"}",
         "key 'time_step_rank'", "\"auto\" or an integer >= 1, got \"big\""},
        {"hidden_size a string", "{" BASE ",\n\n \"hidden_size\": \"abc\"}", "config.json:3: key 'hidden_size'",
         "expected an integer >= 1, got \"abc\""},
        {"hidden_size missing", "{" BASE "}", "key 'hidden_size'", "got nothing"},
        {"num_hidden_layers 0", "{\"hidden_size\": 32, \"num_hidden_layers\": 0, \"vocab_size\": 64}",
         "key 'num_hidden_layers'", "got 0"},
        {"model_type mamba2", "{\"model_type\": \"mamba2\", \"hidden_size\": 32, \"num_hidden_layers\": 2, "
                              "\"vocab_size\": 64}", "key 'model_type'", "got \"mamba2\""},
        {"intermediate_size inconsistent", "{" BASE ", \"hidden_size\": 32, \"intermediate_size\": 100}",
         "key 'intermediate_size'", "expand * hidden_size = 64, got 100"},
        {"hidden_act gelu", "{" BASE ", \"hidden_size\": 32, \"hidden_act\": \"gelu\"}", "key 'hidden_act'", "silu"},
        {"tie_word_embeddings a string", "{" BASE ", \"hidden_size\": 32, \"tie_word_embeddings\": \"yes\"}",
         "key 'tie_word_embeddings'", "true or false"},
        {"layer_norm_epsilon negative", "{" BASE ", \"hidden_size\": 32, \"layer_norm_epsilon\": -1}",
         "key 'layer_norm_epsilon'", "a positive number"},
        {"a mamba_ssm config", "{\"d_model\": 768, \"n_layer\": 24, \"vocab_size\": 50277}", "mamba_ssm config",
         NULL},
    };
#undef BASE
    char *dir = temp_dir("configs");
    char *path = join(dir, "config.json");
    MambaConfig config;
    Error err = {{0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_text(path, cases[i].text);
        int rc = hf_folder_read_config(dir, &config, &err);
        check_error(cases[i].label, rc, &err, path, cases[i].needle1, cases[i].needle2, NULL);
    }
    // Accepted variants.
    write_text(path, "{\"hidden_size\": 40, \"num_hidden_layers\": 1, \"vocab_size\": 50, \"time_step_rank\": 5,"
                     " \"state_size\": 8, \"conv_kernel\": 3, \"expand\": 3, \"layer_norm_epsilon\": 1e-6}");
    int rc = hf_folder_read_config(dir, &config, &err);
    check(rc == 0 && config.vocab_size == 50 && config.vocab_padded == 50 && config.dt_rank == 5 &&
              config.d_state == 8 && config.d_conv == 3 && config.d_inner == 120 && config.norm_eps == 1e-6f,
          "vocab 50 stays 50 rows, explicit time_step_rank 5, N 8, K 3, expand 3, eps 1e-6 %s", rc ? err.message : "");
    write_text(path, "{\"hidden_size\": 40, \"num_hidden_layers\": 1, \"vocab_size\": 64}");
    rc = hf_folder_read_config(dir, &config, &err);
    check(rc == 0 && config.dt_rank == 3 && config.d_state == 16 && config.d_conv == 4 && config.expand == 2,
          "defaults as transformers': dt_rank ceil(40/16) = 3, N 16, K 4, expand 2");
    unlink(path);
    rc = hf_folder_read_config(dir, &config, &err);
    check_error("no config.json", rc, &err, "config.json: cannot open", NULL);
    free(path);
    free(dir);
}

int main(void) {
    snprintf(temp_root, sizeof temp_root, "/tmp/test_hf_folder_XXXXXX");
    if (!mkdtemp(temp_root)) {
        perror("mkdtemp");
        return 1;
    }
    MambaConfig config;
    ParamTable fixture_table = {0};
    test_fixture_config(&config);
    if (check_failures == 0) {
        test_fixture_weights(&config, &fixture_table);
        test_reference_file(&fixture_table);
        test_save_round_trip(&config);
        test_mismatched_tensors(&config, &fixture_table);
        test_indexes(&config, &fixture_table);
        table_free(&fixture_table);
    }
    test_config_errors();
    nftw(temp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    printf("%s: %d check(s) failed\n", check_failures ? "FAILED" : "PASSED", check_failures);
    return check_failures ? 1 : 0;
}
