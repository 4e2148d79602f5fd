// transformers-format folders: config.json <-> MambaConfig, safetensors (one file or an
// index of shards) <-> a NamedParam table; see hf_folder.h for what is accepted.
#include "io/hf_folder.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// defines: atomic_file_begin, atomic_file_write, atomic_file_commit, atomic_file_abort
#include "core/atomic_file.h"
#include "core/input_file.h"
// defines: safetensors_open, safetensors_read_f32, safetensors_write, ...
#include "io/safetensors.h"

#define EMBEDDING_NAME "backbone.embeddings.weight"
#define HEAD_NAME "lm_head.weight"
#define SINGLE_FILE "model.safetensors"
#define INDEX_FILE "model.safetensors.index.json"

static char *path_join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *path = xmalloc(a + b + 2);
    memcpy(path, dir, a);
    size_t at = a;
    if (a > 0 && dir[a - 1] != '/') path[at++] = '/';
    memcpy(path + at, name, b + 1);
    return path;
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

// 1-based line and column of byte offset in text.
static void line_and_column(const char *text, size_t offset, int *line, int *column) {
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < offset && text[i]; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *column = 1;
        } else {
            (*column)++;
        }
    }
}

// Parses a JSON file that must hold an object; on success *text_out keeps the text for
// error messages that point at a key's line.
static cJSON *parse_json_object_file(const char *path, char **text_out, Error *err) {
    char *text = NULL;
    size_t length = 0;
    if (input_file_read(path, "JSON file", INPUT_TEXT_MAX_BYTES, &text, &length, err) != 0) return NULL;
    if (memchr(text, '\0', length)) {
        error_set(err, "%s: holds a NUL byte, not JSON text", path);
        free(text);
        return NULL;
    }
    // length + 1: cJSON must see the terminating NUL to know that nothing follows the value.
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, length + 1, &end, 1);
    if (!root) {
        int line, column;
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        line_and_column(text, at, &line, &column);
        error_set(err, "%s:%d:%d: not valid JSON (the error is at or just before this point)", path, line, column);
        free(text);
        return NULL;
    }
    if (!cJSON_IsObject(root)) {
        error_set(err, "%s: expected a JSON object at the top level", path);
        cJSON_Delete(root);
        free(text);
        return NULL;
    }
    *text_out = text;
    return root;
}

// ---------------------------------------------------------------------------------------
// config.json -> MambaConfig

typedef struct ConfigFile {
    const char *path;
    const char *text;
    const cJSON *root;
} ConfigFile;

// The line of "key": in the text, for messages (0 if not found).
static int key_line(const ConfigFile *cf, const char *key) {
    size_t n = strlen(key);
    for (const char *p = cf->text; (p = strchr(p, '"')) != NULL; p++) {
        if (strncmp(p + 1, key, n) == 0 && p[n + 1] == '"') {
            const char *q = p + n + 2;
            while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n') q++;
            if (*q == ':') {
                int line, column;
                line_and_column(cf->text, (size_t)(p - cf->text), &line, &column);
                return line;
            }
        }
    }
    return 0;
}

// "PATH:LINE: key 'KEY': " then the message, with the value found.
static int config_error(const ConfigFile *cf, const char *key, const cJSON *value, const char *expected, Error *err) {
    char shown[64] = "nothing";
    if (value) {
        char *printed = cJSON_PrintUnformatted(value);
        if (printed) {
            snprintf(shown, sizeof shown, "%s", printed);
            cJSON_free(printed);
        }
    }
    int line = key_line(cf, key);
    if (line > 0) return error_set(err, "%s:%d: key '%s': expected %s, got %s", cf->path, line, key, expected, shown);
    return error_set(err, "%s: key '%s': expected %s, got %s", cf->path, key, expected, shown);
}

// An integer >= min. Returns 1 if found, 0 if absent (then an error if required), -1 on error.
static int config_int(const ConfigFile *cf, const char *key, bool required, int min, int *out, Error *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(cf->root, key);
    char expected[64];
    snprintf(expected, sizeof expected, "an integer >= %d", min);
    if (!item) return required ? config_error(cf, key, NULL, expected, err) : 0;
    double v = item->valuedouble;
    if (!cJSON_IsNumber(item) || v != floor(v) || v < min || v > 1e9) return config_error(cf, key, item, expected, err);
    *out = (int)v;
    return 1;
}

static int config_positive_float(const ConfigFile *cf, const char *key, float *out, Error *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(cf->root, key);
    if (!item) return 0;
    if (!cJSON_IsNumber(item) || !(item->valuedouble > 0.0) || !isfinite(item->valuedouble))
        return config_error(cf, key, item, "a positive number", err);
    *out = (float)item->valuedouble;
    return 1;
}

static int config_bool(const ConfigFile *cf, const char *key, bool *out, Error *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(cf->root, key);
    if (!item) return 0;
    if (!cJSON_IsBool(item)) return config_error(cf, key, item, "true or false", err);
    *out = cJSON_IsTrue(item);
    return 1;
}

static int parse_config(const ConfigFile *cf, MambaConfig *config, Error *err) {
    const cJSON *model_type = cJSON_GetObjectItemCaseSensitive(cf->root, "model_type");
    if (model_type && (!cJSON_IsString(model_type) || strcmp(model_type->valuestring, "mamba") != 0))
        return config_error(cf, "model_type", model_type, "\"mamba\" (a Mamba-1 MambaForCausalLM)", err);
    if (!cJSON_GetObjectItemCaseSensitive(cf->root, "hidden_size") &&
        cJSON_GetObjectItemCaseSensitive(cf->root, "d_model"))
        return error_set(err,
                         "%s: this is a mamba_ssm config (d_model, n_layer), not a transformers MambaConfig; convert "
                         "the checkpoint with transformers' convert_mamba_ssm_checkpoint_to_pytorch.py first",
                         cf->path);
    MambaConfig c;
    mamba_config_defaults(&c);
    if (config_int(cf, "hidden_size", true, 1, &c.d_model, err) < 0) return -1;
    if (config_int(cf, "num_hidden_layers", true, 1, &c.n_layer, err) < 0) return -1;
    if (config_int(cf, "vocab_size", true, 2, &c.vocab_size, err) < 0) return -1;
    if (config_int(cf, "state_size", false, 1, &c.d_state, err) < 0) return -1;
    if (config_int(cf, "conv_kernel", false, 1, &c.d_conv, err) < 0) return -1;
    if (config_int(cf, "expand", false, 1, &c.expand, err) < 0) return -1;
    const cJSON *rank = cJSON_GetObjectItemCaseSensitive(cf->root, "time_step_rank");
    if (rank && !(cJSON_IsString(rank) && strcmp(rank->valuestring, "auto") == 0) &&
        config_int(cf, "time_step_rank", true, 1, &c.dt_rank, err) < 0)
        return config_error(cf, "time_step_rank", rank, "\"auto\" or an integer >= 1", err);
    if (config_positive_float(cf, "layer_norm_epsilon", &c.norm_eps, err) < 0) return -1;
    if (config_positive_float(cf, "time_step_min", &c.dt_min, err) < 0) return -1;
    if (config_positive_float(cf, "time_step_max", &c.dt_max, err) < 0) return -1;
    if (config_positive_float(cf, "time_step_floor", &c.dt_init_floor, err) < 0) return -1;

    bool use_bias = false, use_conv_bias = true, tied = true;
    if (config_bool(cf, "use_bias", &use_bias, err) < 0) return -1;
    if (use_bias)
        return config_error(cf, "use_bias", cJSON_GetObjectItemCaseSensitive(cf->root, "use_bias"),
                            "false (biases in in_proj and out_proj are not supported)", err);
    if (config_bool(cf, "use_conv_bias", &use_conv_bias, err) < 0) return -1;
    if (!use_conv_bias)
        return config_error(cf, "use_conv_bias", cJSON_GetObjectItemCaseSensitive(cf->root, "use_conv_bias"),
                            "true (a conv1d without bias is not supported)", err);
    if (config_bool(cf, "tie_word_embeddings", &tied, err) < 0) return -1;
    const cJSON *act = cJSON_GetObjectItemCaseSensitive(cf->root, "hidden_act");
    if (act && !(cJSON_IsString(act) && (strcmp(act->valuestring, "silu") == 0 || strcmp(act->valuestring, "swish") == 0)))
        return config_error(cf, "hidden_act", act, "\"silu\"", err);

    // The embedding has exactly vocab_size rows in the file: no padding on import.
    c.pad_vocab_size_multiple = c.vocab_size % 8 == 0 ? 8 : 1;
    if (mamba_config_finish(&c, err) != 0) return error_prefix(err, "%s", cf->path);
    int intermediate = 0;
    if (config_int(cf, "intermediate_size", false, 1, &intermediate, err) < 0) return -1;
    if (intermediate && intermediate != c.d_inner) {
        char expected[96];
        snprintf(expected, sizeof expected, "expand * hidden_size = %d", c.d_inner);
        return config_error(cf, "intermediate_size", cJSON_GetObjectItemCaseSensitive(cf->root, "intermediate_size"),
                            expected, err);
    }
    *config = c;
    return 0;
}

int hf_folder_read_config(const char *dir, MambaConfig *config, Error *err) {
    char *path = path_join(dir, "config.json");
    char *text = NULL;
    cJSON *root = parse_json_object_file(path, &text, err);
    int rc = -1;
    if (root) {
        ConfigFile cf = {.path = path, .text = text, .root = root};
        rc = parse_config(&cf, config, err);
        cJSON_Delete(root);
    }
    free(text);
    free(path);
    return rc;
}

// tie_word_embeddings of DIR/config.json (true when the file or the key is absent).
static int config_ties_head(const char *dir, bool *tied, Error *err) {
    *tied = true;
    char *path = path_join(dir, "config.json");
    if (!file_exists(path)) {
        free(path);
        return 0;
    }
    char *text = NULL;
    cJSON *root = parse_json_object_file(path, &text, err);
    int rc = -1;
    if (root) {
        ConfigFile cf = {.path = path, .text = text, .root = root};
        rc = config_bool(&cf, "tie_word_embeddings", tied, err) < 0 ? -1 : 0;
        cJSON_Delete(root);
    }
    free(text);
    free(path);
    return rc;
}

// ---------------------------------------------------------------------------------------
// The weights: one safetensors file or an index of shards

typedef struct Shard {
    char *file_name;          // as the index names it
    char *path;               // DIR/file_name
    SafetensorsFile file;
    bool open;
} Shard;

typedef struct StoredTensor {
    const char *name;         // owned by the shard's SafetensorsFile
    int shard;
    const SafetensorsTensor *tensor;
    bool claimed;             // matched to a parameter (or to the tied head)
} StoredTensor;

typedef struct Checkpoint {
    Shard *shards;
    int n_shards;
    StoredTensor *tensors;    // of every shard, sorted by name
    int n_tensors;
} Checkpoint;

typedef struct IndexEntry {
    const char *name, *shard_file;  // point into the parsed index JSON
} IndexEntry;

static int compare_stored(const void *a, const void *b) {
    return strcmp(((const StoredTensor *)a)->name, ((const StoredTensor *)b)->name);
}

static int compare_index_entries(const void *a, const void *b) {
    return strcmp(((const IndexEntry *)a)->name, ((const IndexEntry *)b)->name);
}

static StoredTensor *checkpoint_find(const Checkpoint *ckpt, const char *name) {
    StoredTensor key = {.name = name};
    return bsearch(&key, ckpt->tensors, (size_t)ckpt->n_tensors, sizeof key, compare_stored);
}

static void checkpoint_close(Checkpoint *ckpt) {
    for (int i = 0; i < ckpt->n_shards; i++) {
        if (ckpt->shards[i].open) safetensors_close(&ckpt->shards[i].file);
        free(ckpt->shards[i].file_name);
        free(ckpt->shards[i].path);
    }
    free(ckpt->shards);
    free(ckpt->tensors);
    memset(ckpt, 0, sizeof *ckpt);
}

static int add_shard(Checkpoint *ckpt, const char *dir, const char *file_name) {
    for (int i = 0; i < ckpt->n_shards; i++)
        if (strcmp(ckpt->shards[i].file_name, file_name) == 0) return i;
    ckpt->shards = xrealloc(ckpt->shards, sizeof *ckpt->shards * (size_t)(ckpt->n_shards + 1));
    Shard *shard = &ckpt->shards[ckpt->n_shards];
    memset(shard, 0, sizeof *shard);
    shard->file_name = xstrdup(file_name);
    shard->path = path_join(dir, file_name);
    return ckpt->n_shards++;
}

// Reads the index's weight_map: shard names (plain file names in DIR) and their tensors.
static int read_index(Checkpoint *ckpt, const char *dir, const char *index_path, cJSON **root_out,
                      IndexEntry **entries_out, int *n_entries_out, Error *err) {
    char *text = NULL;
    cJSON *root = parse_json_object_file(index_path, &text, err);
    free(text);
    if (!root) return -1;
    *root_out = root;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map))
        return error_set(err, "%s: expected \"weight_map\": an object from tensor names to shard file names",
                         index_path);
    int n = cJSON_GetArraySize(map);
    IndexEntry *entries = xcalloc((size_t)(n ? n : 1), sizeof *entries);
    *entries_out = entries;
    int count = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, map) {
        if (!cJSON_IsString(item))
            return error_set(err, "%s: weight_map entry '%s': expected a shard file name", index_path, item->string);
        const char *file_name = item->valuestring;
        if (!file_name[0] || strchr(file_name, '/') || strcmp(file_name, ".") == 0 || strcmp(file_name, "..") == 0)
            return error_set(err, "%s: weight_map entry '%s': shard '%s' is not a file name inside the folder",
                             index_path, item->string, file_name);
        entries[count++] = (IndexEntry){.name = item->string, .shard_file = file_name};
        add_shard(ckpt, dir, file_name);
    }
    *n_entries_out = count;
    if (ckpt->n_shards == 0) return error_set(err, "%s: weight_map names no shard", index_path);
    return 0;
}

// The index and the shards must agree: each listed tensor is in the shard named for it,
// and each shard holds only listed tensors.
static int check_index(const Checkpoint *ckpt, IndexEntry *entries, int n_entries, const char *index_path,
                       Error *err) {
    qsort(entries, (size_t)n_entries, sizeof *entries, compare_index_entries);
    for (int i = 1; i < n_entries; i++)
        if (strcmp(entries[i - 1].name, entries[i].name) == 0)
            return error_set(err, "%s: weight_map lists '%s' twice", index_path, entries[i].name);
    for (int i = 0; i < n_entries; i++) {
        const StoredTensor *stored = checkpoint_find(ckpt, entries[i].name);
        if (!stored || strcmp(ckpt->shards[stored->shard].file_name, entries[i].shard_file) != 0)
            return error_set(err, "%s: weight_map puts '%s' in shard '%s', which does not hold it", index_path,
                             entries[i].name, entries[i].shard_file);
    }
    for (int i = 0; i < ckpt->n_tensors; i++) {
        IndexEntry key = {.name = ckpt->tensors[i].name};
        if (!bsearch(&key, entries, (size_t)n_entries, sizeof key, compare_index_entries))
            return error_set(err, "%s: holds tensor '%s', which %s does not list", ckpt->shards[ckpt->tensors[i].shard].path,
                             ckpt->tensors[i].name, index_path);
    }
    return 0;
}

// Opens model.safetensors, or the shards of model.safetensors.index.json (as transformers
// does, the single file wins when both exist), and gathers every tensor by name.
static int checkpoint_open(Checkpoint *ckpt, const char *dir, Error *err) {
    memset(ckpt, 0, sizeof *ckpt);
    char *single_path = path_join(dir, SINGLE_FILE);
    char *index_path = path_join(dir, INDEX_FILE);
    cJSON *index_root = NULL;
    IndexEntry *entries = NULL;
    int n_entries = 0, rc = 0;
    if (file_exists(single_path)) {
        add_shard(ckpt, dir, SINGLE_FILE);
    } else if (file_exists(index_path)) {
        rc = read_index(ckpt, dir, index_path, &index_root, &entries, &n_entries, err);
    } else {
        rc = error_set(err, "%s: holds neither %s nor %s (pytorch_model.bin is not supported: re-save the model "
                            "with safetensors)", dir, SINGLE_FILE, INDEX_FILE);
    }
    for (int i = 0; rc == 0 && i < ckpt->n_shards; i++) {
        Shard *shard = &ckpt->shards[i];
        rc = safetensors_open(&shard->file, shard->path, err);
        if (rc != 0 && index_root) error_prefix(err, "%s: shard '%s'", index_path, shard->file_name);
        shard->open = rc == 0;
        if (rc == 0) ckpt->n_tensors += shard->file.n_tensors;
    }
    if (rc == 0) {
        ckpt->tensors = xcalloc((size_t)(ckpt->n_tensors ? ckpt->n_tensors : 1), sizeof *ckpt->tensors);
        int k = 0;
        for (int i = 0; i < ckpt->n_shards; i++)
            for (int j = 0; j < ckpt->shards[i].file.n_tensors; j++) {
                const SafetensorsTensor *t = &ckpt->shards[i].file.tensors[j];
                ckpt->tensors[k++] = (StoredTensor){.name = t->name, .shard = i, .tensor = t};
            }
        qsort(ckpt->tensors, (size_t)ckpt->n_tensors, sizeof *ckpt->tensors, compare_stored);
        for (int i = 1; i < ckpt->n_tensors && rc == 0; i++)
            if (strcmp(ckpt->tensors[i - 1].name, ckpt->tensors[i].name) == 0)
                rc = error_set(err, "%s: tensor '%s' is stored twice, in %s and %s", dir, ckpt->tensors[i].name,
                               ckpt->shards[ckpt->tensors[i - 1].shard].path, ckpt->shards[ckpt->tensors[i].shard].path);
    }
    if (rc == 0 && index_root) rc = check_index(ckpt, entries, n_entries, index_path, err);
    free(entries);
    cJSON_Delete(index_root);
    free(single_path);
    free(index_path);
    if (rc != 0) checkpoint_close(ckpt);
    return rc;
}

// Equal shapes once size-1 dimensions are dropped (a (D, K) conv weight fits (D, 1, K)).
static bool shapes_match(const SafetensorsTensor *stored, const Tensor *param) {
    int64_t a[SAFETENSORS_MAX_DIMS], b[TENSOR_MAX_DIMS];
    int na = 0, nb = 0;
    for (int i = 0; i < stored->ndim; i++)
        if (stored->shape[i] != 1) a[na++] = stored->shape[i];
    for (int i = 0; i < param->ndim; i++)
        if (param->shape[i] != 1) b[nb++] = param->shape[i];
    if (na != nb) return false;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) return false;
    return true;
}

static void format_param_shape(char *buf, size_t size, const Tensor *param) {
    int64_t shape[TENSOR_MAX_DIMS];
    for (int i = 0; i < param->ndim; i++) shape[i] = param->shape[i];
    safetensors_format_shape(buf, size, param->ndim, shape);
}

static bool is_float_dtype(SafetensorsDtype dtype) {
    return dtype == SAFETENSORS_F32 || dtype == SAFETENSORS_F16 || dtype == SAFETENSORS_BF16 ||
           dtype == SAFETENSORS_F64;
}

// A list of names for one message: "'a', 'b', ... and 7 more".
typedef struct NameList {
    char text[1200];
    int count;
} NameList;

static void name_list_add(NameList *list, const char *name) {
    enum { SHOWN = 12 };
    if (list->count < SHOWN) {
        size_t used = strlen(list->text);
        snprintf(list->text + used, sizeof list->text - used, "%s'%s'", list->count ? ", " : "", name);
    }
    list->count++;
}

static void name_list_finish(NameList *list) {
    enum { SHOWN = 12 };
    if (list->count > SHOWN) {
        size_t used = strlen(list->text);
        snprintf(list->text + used, sizeof list->text - used, " and %d more", list->count - SHOWN);
    }
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

// transformers renames an old "backbone.embedding.weight" on load; so do we.
static StoredTensor *find_for_param(const Checkpoint *ckpt, const char *name) {
    StoredTensor *stored = checkpoint_find(ckpt, name);
    if (!stored && strcmp(name, EMBEDDING_NAME) == 0) stored = checkpoint_find(ckpt, "backbone.embedding.weight");
    return stored;
}

// Names, shapes and dtypes, before any data is read.
static int match_params(Checkpoint *ckpt, const char *dir, NamedParam *params, int n_params, StoredTensor **matches,
                        Error *err) {
    NameList missing = {0}, unexpected = {0};
    for (int i = 0; i < n_params; i++) {
        StoredTensor *stored = find_for_param(ckpt, params[i].name);
        matches[i] = stored;
        if (!stored) {
            name_list_add(&missing, params[i].name);
            continue;
        }
        stored->claimed = true;
        const SafetensorsTensor *t = stored->tensor;
        const char *path = ckpt->shards[stored->shard].path;
        char stored_shape[128], wanted_shape[128];
        safetensors_format_shape(stored_shape, sizeof stored_shape, t->ndim, t->shape);
        format_param_shape(wanted_shape, sizeof wanted_shape, params[i].tensor);
        if (!shapes_match(t, params[i].tensor))
            return error_set(err, "%s: tensor '%s': shape %s but the model expects %s", path, params[i].name,
                             stored_shape, wanted_shape);
        if (!is_float_dtype(t->dtype))
            return error_set(err, "%s: tensor '%s': dtype %s but the model expects floats (F32, F16, BF16 or F64)",
                             path, params[i].name, safetensors_dtype_name(t->dtype));
    }
    bool bias_hint = false;
    for (int i = 0; i < ckpt->n_tensors; i++) {
        StoredTensor *stored = &ckpt->tensors[i];
        if (stored->claimed || strcmp(stored->name, HEAD_NAME) == 0) continue;
        name_list_add(&unexpected, stored->name);
        bias_hint = bias_hint || ends_with(stored->name, ".in_proj.bias") || ends_with(stored->name, ".out_proj.bias");
    }
    if (missing.count == 0 && unexpected.count == 0) return 0;
    name_list_finish(&missing);
    name_list_finish(&unexpected);
    char missing_part[1300] = "", unexpected_part[1400] = "";
    if (missing.count)
        snprintf(missing_part, sizeof missing_part, " %d missing tensor%s: %s%s", missing.count,
                 missing.count > 1 ? "s" : "", missing.text, unexpected.count ? ";" : "");
    if (unexpected.count)
        snprintf(unexpected_part, sizeof unexpected_part, " %d unexpected tensor%s: %s%s", unexpected.count,
                 unexpected.count > 1 ? "s" : "", unexpected.text,
                 bias_hint ? " (in_proj/out_proj biases, i.e. use_bias, are not supported)" : "");
    return error_set(err, "%s: the stored tensors do not match the model:%s%s", dir, missing_part, unexpected_part);
}

// A stored lm_head.weight must be the embedding itself: only tied heads are supported.
static int check_tied_head(const Checkpoint *ckpt, const char *dir, const NamedParam *params, int n_params,
                           Error *err) {
    const StoredTensor *head = checkpoint_find(ckpt, HEAD_NAME);
    const Tensor *embedding = NULL;
    for (int i = 0; i < n_params; i++)
        if (strcmp(params[i].name, EMBEDDING_NAME) == 0) embedding = params[i].tensor;
    if (!head) {
        bool tied;
        if (config_ties_head(dir, &tied, err) != 0) return -1;
        if (!tied)
            return error_set(err, "%s: config.json sets tie_word_embeddings false but no %s is stored (an untied "
                                  "output head is not supported)", dir, HEAD_NAME);
        return 0;
    }
    const char *path = ckpt->shards[head->shard].path;
    if (!embedding)
        return error_set(err, "%s: tensor '%s' is stored but the model has no %s to tie it to", path, HEAD_NAME,
                         EMBEDDING_NAME);
    if (!shapes_match(head->tensor, embedding) || !is_float_dtype(head->tensor->dtype)) {
        char stored_shape[128], wanted_shape[128];
        safetensors_format_shape(stored_shape, sizeof stored_shape, head->tensor->ndim, head->tensor->shape);
        format_param_shape(wanted_shape, sizeof wanted_shape, embedding);
        return error_set(err, "%s: tensor '%s': %s %s but the tied head must equal %s, %s (an untied output head is "
                              "not supported)", path, HEAD_NAME, safetensors_dtype_name(head->tensor->dtype),
                         stored_shape, EMBEDDING_NAME, wanted_shape);
    }
    float *values = xmalloc(sizeof(float) * (embedding->size ? embedding->size : 1));
    int rc = safetensors_read_f32(&ckpt->shards[head->shard].file, head->tensor, values, err);
    size_t n_different = 0;
    double max_diff = 0.0;
    for (size_t k = 0; rc == 0 && k < embedding->size; k++) {
        if (memcmp(&values[k], &embedding->data[k], sizeof(float)) != 0) {
            n_different++;
            double diff = fabs((double)values[k] - (double)embedding->data[k]);
            if (diff > max_diff || isnan(diff)) max_diff = diff;
        }
    }
    free(values);
    if (rc == 0 && n_different > 0)
        rc = error_set(err, "%s: tensor '%s' differs from %s in %zu of %zu values (max |difference| %g): an untied "
                            "output head is not supported", path, HEAD_NAME, EMBEDDING_NAME, n_different,
                       embedding->size, max_diff);
    return rc;
}

int hf_folder_load_params(const char *dir, NamedParam *params, int n_params, Error *err) {
    Checkpoint ckpt;
    if (checkpoint_open(&ckpt, dir, err) != 0) return -1;
    StoredTensor **matches = xcalloc((size_t)(n_params ? n_params : 1), sizeof *matches);
    int rc = match_params(&ckpt, dir, params, n_params, matches, err);
    for (int i = 0; rc == 0 && i < n_params; i++)
        rc = safetensors_read_f32(&ckpt.shards[matches[i]->shard].file, matches[i]->tensor, params[i].tensor->data, err);
    if (rc == 0) rc = check_tied_head(&ckpt, dir, params, n_params, err);
    free(matches);
    checkpoint_close(&ckpt);
    return rc;
}

// ---------------------------------------------------------------------------------------
// Export

// Like mkdir -p.
static int make_folders(const char *dir, Error *err) {
    char *path = xstrdup(dir);
    int rc = 0;
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            rc = error_set(err, "%s: cannot create the folder: %s", path, strerror(errno));
        } else if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            rc = error_set(err, "%s: exists and is not a folder", path);
        }
        *p = saved;
        if (rc != 0 || saved == '\0') break;
    }
    free(path);
    return rc;
}

// The shortest decimal that reads back as the same float: 1e-05, not 9.99999974737875e-06.
// The shortest text that reads back as v, always with a '.' or an exponent: transformers
// validates config fields by JSON type, and "1" would be an int where a float is due.
static cJSON *json_float(float v) {
    char text[40];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(text, sizeof text, "%.*g", digits, (double)v);
        if (strtof(text, NULL) == v) break;
    }
    if (!strpbrk(text, ".e")) strcat(text, ".0");
    return cJSON_CreateRaw(text);
}

static char *build_config_json(const MambaConfig *c) {
    cJSON *root = cJSON_CreateObject();
    cJSON *architectures = cJSON_AddArrayToObject(root, "architectures");
    cJSON_AddItemToArray(architectures, cJSON_CreateString("MambaForCausalLM"));
    cJSON_AddNumberToObject(root, "bos_token_id", 0);
    cJSON_AddNumberToObject(root, "conv_kernel", c->d_conv);
    cJSON_AddNumberToObject(root, "eos_token_id", 0);
    cJSON_AddNumberToObject(root, "expand", c->expand);
    cJSON_AddStringToObject(root, "hidden_act", "silu");
    cJSON_AddNumberToObject(root, "hidden_size", c->d_model);
    cJSON_AddItemToObject(root, "initializer_range", json_float(0.1f));
    cJSON_AddNumberToObject(root, "intermediate_size", c->d_inner);
    cJSON_AddItemToObject(root, "layer_norm_epsilon", json_float(c->norm_eps));
    cJSON_AddStringToObject(root, "model_type", "mamba");
    cJSON_AddNumberToObject(root, "num_hidden_layers", c->n_layer);
    cJSON_AddNumberToObject(root, "pad_token_id", 0);
    cJSON_AddFalseToObject(root, "rescale_prenorm_residual");
    cJSON_AddTrueToObject(root, "residual_in_fp32");
    cJSON_AddNumberToObject(root, "state_size", c->d_state);
    cJSON_AddTrueToObject(root, "tie_word_embeddings");
    cJSON_AddItemToObject(root, "time_step_floor", json_float(c->dt_init_floor));
    cJSON_AddStringToObject(root, "time_step_init_scheme", "random");
    cJSON_AddItemToObject(root, "time_step_max", json_float(c->dt_max));
    cJSON_AddItemToObject(root, "time_step_min", json_float(c->dt_min));
    cJSON_AddNumberToObject(root, "time_step_rank", c->dt_rank);
    cJSON_AddItemToObject(root, "time_step_scale", json_float(1.0f));
    cJSON_AddFalseToObject(root, "use_bias");
    cJSON_AddTrueToObject(root, "use_cache");
    cJSON_AddTrueToObject(root, "use_conv_bias");
    // The embedding's row count: transformers sizes the embedding from this.
    cJSON_AddNumberToObject(root, "vocab_size", c->vocab_padded);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

static int check_save_table(const char *dir, const MambaConfig *c, const NamedParam *params, int n_params,
                            Error *err) {
    if (c->d_inner != c->expand * c->d_model || c->vocab_padded < c->vocab_size || c->dt_rank < 1)
        return error_set(err, "%s: the model config is not finished (call mamba_config_finish first)", dir);
    const Tensor *embedding = NULL;
    for (int i = 0; i < n_params; i++) {
        const Tensor *t = params[i].tensor;
        if (strcmp(params[i].name, HEAD_NAME) == 0)
            return error_set(err, "%s: the table holds '%s'; only a tied head (no %s) can be saved", dir, HEAD_NAME,
                             HEAD_NAME);
        if (!t || (t->size > 0 && !t->data))
            return error_set(err, "%s: parameter '%s' has no data", dir, params[i].name);
        if (strcmp(params[i].name, EMBEDDING_NAME) == 0) embedding = t;
    }
    if (!embedding) return error_set(err, "%s: the table has no '%s'", dir, EMBEDDING_NAME);
    if (embedding->ndim != 2 || embedding->shape[0] != c->vocab_padded || embedding->shape[1] != c->d_model)
        return error_set(err, "%s: '%s' is not (vocab_padded %d, d_model %d) as the config says", dir, EMBEDDING_NAME,
                         c->vocab_padded, c->d_model);
    return 0;
}

int hf_folder_save(const char *dir, const MambaConfig *config, const NamedParam *params, int n_params, Error *err) {
    if (check_save_table(dir, config, params, n_params, err) != 0) return -1;
    if (make_folders(dir, err) != 0) return -1;
    SafetensorsWriteTensor *tensors = xcalloc((size_t)(n_params ? n_params : 1), sizeof *tensors);
    for (int i = 0; i < n_params; i++) {
        const Tensor *t = params[i].tensor;
        tensors[i] = (SafetensorsWriteTensor){.name = params[i].name, .dtype = SAFETENSORS_F32, .ndim = t->ndim,
                                              .data = t->data};
        for (int d = 0; d < t->ndim; d++) tensors[i].shape[d] = t->shape[d];
    }
    // transformers refuses safetensors files without format "pt" metadata.
    SafetensorsMetadata metadata[] = {{.key = "format", .value = "pt"}};
    char *weights_path = path_join(dir, SINGLE_FILE);
    int rc = safetensors_write(weights_path, tensors, n_params, metadata, 1, err);
    free(weights_path);
    free(tensors);
    if (rc != 0) return -1;
    char *json = build_config_json(config);
    if (!json) return error_set(err, "%s: could not build config.json", dir);
    char *config_path = path_join(dir, "config.json");
    AtomicFile out;
    rc = atomic_file_begin(&out, config_path, err);
    if (rc == 0) rc = atomic_file_write(&out, json, strlen(json), err);
    if (rc == 0) rc = atomic_file_write(&out, "\n", 1, err);
    if (rc == 0) rc = atomic_file_commit(&out, err);
    else if (out.fp) atomic_file_abort(&out);
    cJSON_free(json);
    free(config_path);
    return rc;
}
