// The run configuration (see config.h): loading YAML files section by section, --set
// overrides, sweeps, the cross-field checks, the resolved YAML dump and the Markdown key
// reference, all walking the one table of config_schema.c.
#include "config/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_schema.h"
#include "core/input_file.h"

enum { MAX_SWEEP_RUNS = 1000000 };

static const char *const sweep_section = "sweep";

void config_defaults(RunConfig *c) {
    memset(c, 0, sizeof *c);
    c->origin = xcalloc((size_t)config_n_keys, sizeof *c->origin);
    for (int i = 0; i < config_n_keys; i++) {
        const ConfigKey *key = &config_keys[i];
        ConfigWhere where = {.path = NULL, .context = "default", .own_key = NULL};
        yaml_document_t doc;
        yaml_node_t *root;
        Error err;
        int status = config_parse_yaml(key->default_yaml, &where, &doc, &root, &err);
        if (status == 0) {
            status = config_assign(c, key, &doc, root, &where, key->name, &err);
            yaml_document_delete(&doc);
        }
        if (status) {
            // The table is wrong: a bug, not bad input (tests/test_config.c checks the defaults).
            fprintf(stderr, "mambaprune: bad default of %s.%s: %s\n", key->section, key->name, err.message);
            abort();
        }
    }
}

static void free_axis(SweepAxis *axis) {
    free(axis->key);
    for (int i = 0; i < axis->n_values; i++) free(axis->values[i]);
    free(axis->values);
    free(axis->origin);
}

static void free_sweep(RunConfig *c) {
    for (int i = 0; i < c->n_sweep; i++) free_axis(&c->sweep[i]);
    free(c->sweep);
    c->sweep = NULL;
    c->n_sweep = 0;
}

void config_free(RunConfig *c) {
    for (int i = 0; i < config_n_keys; i++) config_free_value(c, &config_keys[i]);
    if (c->origin)
        for (int i = 0; i < config_n_keys; i++) free(c->origin[i]);
    free(c->origin);
    free_sweep(c);
    free(c->source_path);
    memset(c, 0, sizeof *c);
}

static char *strdup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

void config_copy(RunConfig *dst, const RunConfig *src) {
    memset(dst, 0, sizeof *dst);
    for (int i = 0; i < config_n_keys; i++) config_copy_value(dst, src, &config_keys[i]);
    dst->origin = xcalloc((size_t)config_n_keys, sizeof *dst->origin);
    for (int i = 0; i < config_n_keys; i++) dst->origin[i] = strdup_or_null(src->origin[i]);
    dst->n_sweep = src->n_sweep;
    dst->sweep = xcalloc((size_t)src->n_sweep, sizeof *dst->sweep);
    for (int a = 0; a < src->n_sweep; a++) {
        const SweepAxis *from = &src->sweep[a];
        SweepAxis *to = &dst->sweep[a];
        to->key = xstrdup(from->key);
        to->origin = strdup_or_null(from->origin);
        to->n_values = from->n_values;
        to->values = xcalloc((size_t)from->n_values, sizeof *to->values);
        for (int v = 0; v < from->n_values; v++) to->values[v] = xstrdup(from->values[v]);
    }
    dst->source_path = strdup_or_null(src->source_path);
}

// ---------------------------------------------------------------------------------------
// Names

static void list_sections(char *out, size_t out_size) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < config_n_sections && used < out_size; i++)
        used += (size_t)snprintf(out + used, out_size - used, "%s, ", config_sections[i].name);
    if (used < out_size) snprintf(out + used, out_size - used, "%s", sweep_section);
}

static void list_keys(const char *section, char *out, size_t out_size) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < config_n_keys && used < out_size; i++)
        if (strcmp(config_keys[i].section, section) == 0)
            used += (size_t)snprintf(out + used, out_size - used, "%s%s", used ? ", " : "", config_keys[i].name);
}

static int fail_unknown_section(Error *err, const ConfigWhere *where, yaml_mark_t mark, const char *name) {
    char suggestion[96], sections[256];
    config_suggest(name, NULL, suggestion, sizeof suggestion);
    list_sections(sections, sizeof sections);
    return config_fail(err, where, mark, NULL, "'%s': unknown section (%sexpected one of %s)", name, suggestion,
                       sections);
}

static int fail_unknown_key(Error *err, const ConfigWhere *where, yaml_mark_t mark, const char *label,
                            const char *section, const char *name) {
    char suggestion[96];
    config_suggest(name, section, suggestion, sizeof suggestion);
    if (suggestion[0]) {
        suggestion[strlen(suggestion) - 1] = '\0';  // drop the trailing space
        return config_fail(err, where, mark, label, "unknown key (%s)", suggestion);
    }
    char keys[1024];
    list_keys(section, keys, sizeof keys);
    return config_fail(err, where, mark, label, "unknown key (the keys of %s are %s)", section, keys);
}

// Finds the key named "section.key"; reports unknown names (with label as the key).
static int resolve_dotted(const char *dotted, const ConfigWhere *where, yaml_mark_t mark, const char *label,
                          int *key_index, Error *err) {
    const char *dot = strchr(dotted, '.');
    if (!dot || dot == dotted || !dot[1])
        return config_fail(err, where, mark, label, "expected section.key, such as train.steps");
    char section[64];
    snprintf(section, sizeof section, "%.*s", (int)(dot - dotted) < 63 ? (int)(dot - dotted) : 63, dotted);
    if (config_find_section(section) < 0) return fail_unknown_section(err, where, mark, section);
    *key_index = config_find_key(section, dot + 1);
    if (*key_index < 0) return fail_unknown_key(err, where, mark, label, section, dot + 1);
    return 0;
}

static void set_origin(RunConfig *c, int key_index, char *origin) {
    free(c->origin[key_index]);
    c->origin[key_index] = origin;
}

// ---------------------------------------------------------------------------------------
// Sweeps

static long sweep_runs(const SweepAxis *axes, int n) {
    long runs = 1;
    for (int a = 0; a < n; a++) runs *= axes[a].n_values;
    return runs;
}

// A group axis has a plain name (no dot) and mappings as values: each value sets several
// keys together, e.g. corpus: [{name: ptb, data.path: ptb.txt, model.init: ptb-model}]; its
// "name" entry is the value's label.
static bool is_group_axis(const char *key) { return strchr(key, '.') == NULL; }

// Assigns every section.key of a group value (a mapping; its "name" must be a scalar)
// into c (a scratch config when only checking), with origin as where each key came from
// (NULL: left as it is).
static int assign_group(RunConfig *c, yaml_document_t *doc, yaml_node_t *value, const ConfigWhere *where,
                        const char *label, const char *origin, Error *err) {
    if (value->type != YAML_MAPPING_NODE)
        return config_fail(err, where, value->start_mark, label,
                           "a group axis takes mappings of section.key to a value, such as {name: a, train.seed: 1}");
    bool named = false;
    for (yaml_node_pair_t *pair = value->data.mapping.pairs.start; pair < value->data.mapping.pairs.top; pair++) {
        yaml_node_t *key_node = yaml_document_get_node(doc, pair->key);
        yaml_node_t *item = yaml_document_get_node(doc, pair->value);
        if (key_node->type != YAML_SCALAR_NODE)
            return config_fail(err, where, key_node->start_mark, label, "expected a key such as prune.alpha");
        const char *dotted = (const char *)key_node->data.scalar.value;
        if (strcmp(dotted, "name") == 0) {
            if (item->type != YAML_SCALAR_NODE)
                return config_fail(err, where, item->start_mark, label, "name: expected a single value");
            named = true;
            continue;
        }
        int key_index;
        if (resolve_dotted(dotted, where, key_node->start_mark, label, &key_index, err)) return -1;
        if (config_assign(c, &config_keys[key_index], doc, item, where, label, err)) return -1;
        if (origin) set_origin(c, key_index, strdup_or_null(origin));
    }
    if (!named) return config_fail(err, where, value->start_mark, label, "each value of a group axis needs a name");
    return 0;
}

void config_sweep_value_name(const char *value, char *out, size_t size) {
    snprintf(out, size, "%s", value);
    if (value[0] != '{') return;
    yaml_document_t doc;
    yaml_node_t *root;
    Error err;
    ConfigWhere where = {0};
    if (config_parse_yaml(value, &where, &doc, &root, &err)) return;
    if (root->type == YAML_MAPPING_NODE)
        for (yaml_node_pair_t *pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top; pair++) {
            yaml_node_t *key_node = yaml_document_get_node(&doc, pair->key);
            yaml_node_t *item = yaml_document_get_node(&doc, pair->value);
            if (key_node->type == YAML_SCALAR_NODE && item->type == YAML_SCALAR_NODE &&
                strcmp((const char *)key_node->data.scalar.value, "name") == 0)
                snprintf(out, size, "%s", (const char *)item->data.scalar.value);
        }
    yaml_document_delete(&doc);
}

// Sets the sweep axis of the key "dotted" to the values of the sequence node (replacing
// an axis of the same key; an empty list removes it). Each value is read exactly as a
// value of that key (or, for a group axis, as the values of its keys), into a scratch
// config, before c is touched.
static int set_sweep_axis(RunConfig *c, const char *dotted, yaml_document_t *doc, yaml_node_t *values,
                          yaml_mark_t key_mark, const ConfigWhere *where, Error *err) {
    char label[256];
    snprintf(label, sizeof label, "%s.%s", sweep_section, dotted);
    int key_index = -1;
    bool group = is_group_axis(dotted);
    if (!group && resolve_dotted(dotted, where, key_mark, label, &key_index, err)) return -1;
    const ConfigKey *key = group ? NULL : &config_keys[key_index];
    bool empty = config_node_is_null(values);
    if (!empty && values->type != YAML_SEQUENCE_NODE)
        return config_fail(err, where, values->start_mark, label, "expected a list of values, such as [0, 0.5, 1]");
    int n = empty ? 0 : (int)(values->data.sequence.items.top - values->data.sequence.items.start);
    for (int i = 0; i < n && group; i++)
        if (yaml_document_get_node(doc, values->data.sequence.items.start[i])->type != YAML_MAPPING_NODE)
            return config_fail(err, where, key_mark, label,
                               "expected section.key, such as train.steps (a plain name is a group axis, whose "
                               "values are mappings such as {name: a, train.seed: 1})");

    SweepAxis axis = {xstrdup(dotted), xcalloc((size_t)n, sizeof(char *)), 0, config_origin_text(where, key_mark)};
    RunConfig scratch;
    config_defaults(&scratch);
    int status = 0;
    for (int i = 0; i < n && status == 0; i++) {
        yaml_node_t *item = yaml_document_get_node(doc, values->data.sequence.items.start[i]);
        status = group ? assign_group(&scratch, doc, item, where, label, NULL, err)
                       : config_assign(&scratch, key, doc, item, where, label, err);
        if (status == 0) axis.values[axis.n_values++] = config_node_to_flow(doc, item);
    }
    config_free(&scratch);

    // The new axes: the old ones but this key's, and this one at its place (or the end).
    int place = -1;
    for (int a = 0; a < c->n_sweep; a++)
        if (strcmp(c->sweep[a].key, dotted) == 0) place = a;
    if (status == 0 && n > 0) {
        long runs = n;
        for (int a = 0; a < c->n_sweep && runs <= MAX_SWEEP_RUNS; a++)
            if (a != place) runs *= c->sweep[a].n_values;
        if (runs > MAX_SWEEP_RUNS)
            status = config_fail(err, where, key_mark, label, "the sweep would have %ld runs, more than %d", runs,
                                 MAX_SWEEP_RUNS);
    }
    if (status) {
        free_axis(&axis);
        return -1;
    }
    if (n == 0) {
        free_axis(&axis);
        if (place >= 0) {
            free_axis(&c->sweep[place]);
            memmove(&c->sweep[place], &c->sweep[place + 1], (size_t)(c->n_sweep - place - 1) * sizeof *c->sweep);
            c->n_sweep--;
        }
    } else if (place >= 0) {
        free_axis(&c->sweep[place]);
        c->sweep[place] = axis;
    } else {
        c->sweep = xrealloc(c->sweep, (size_t)(c->n_sweep + 1) * sizeof *c->sweep);
        c->sweep[c->n_sweep++] = axis;
    }
    return 0;
}

int config_sweep_count(const RunConfig *c) { return (int)sweep_runs(c->sweep, c->n_sweep); }

void config_sweep_values(const RunConfig *base, int index, const char **values) {
    // The digits of index in the mixed radix of the axis sizes, the last axis fastest.
    for (int a = base->n_sweep - 1, rest = index; a >= 0; a--) {
        values[a] = base->sweep[a].values[rest % base->sweep[a].n_values];
        rest /= base->sweep[a].n_values;
    }
}

int config_sweep_apply(const RunConfig *base, int index, RunConfig *run, char *label, size_t label_size,
                       Error *err) {
    config_copy(run, base);
    free_sweep(run);
    if (label && label_size) label[0] = '\0';
    int runs = config_sweep_count(base);
    if (index < 0 || index >= runs) return error_set(err, "sweep run %d does not exist (0..%d)", index, runs - 1);
    const char *values[base->n_sweep > 0 ? base->n_sweep : 1];
    config_sweep_values(base, index, values);
    size_t used = 0;
    for (int a = 0; a < base->n_sweep; a++) {
        const SweepAxis *axis = &base->sweep[a];
        const char *value = values[a];
        char name[256];
        config_sweep_value_name(value, name, sizeof name);
        if (label && used < label_size)
            used += (size_t)snprintf(label + used, label_size - used, "%s%s=%s", a ? "," : "", axis->key, name);
        char context[512];
        snprintf(context, sizeof context, "sweep run %d (%s=%s)", index, axis->key, name);
        ConfigWhere where = {.path = NULL, .context = context, .own_key = axis->key};
        int key_index = -1;
        yaml_document_t doc;
        yaml_node_t *root;
        bool group = is_group_axis(axis->key);
        if (!group && resolve_dotted(axis->key, &where, (yaml_mark_t){0, 0, 0}, axis->key, &key_index, err)) return -1;
        if (config_parse_yaml(value, &where, &doc, &root, err)) return -1;
        int status = group ? assign_group(run, &doc, root, &where, axis->key, axis->origin, err)
                           : config_assign(run, &config_keys[key_index], &doc, root, &where, axis->key, err);
        yaml_document_delete(&doc);
        if (status) return -1;
        if (!group) set_origin(run, key_index, strdup_or_null(axis->origin));
    }
    if (config_check(run, err)) {
        if (base->n_sweep) error_prefix(err, "sweep run %d of %d (%s)", index, runs, label ? label : "");
        return -1;
    }
    return 0;
}

// ---------------------------------------------------------------------------------------
// Loading

static int load_section(RunConfig *c, int section_index, yaml_document_t *doc, yaml_node_t *node,
                        const ConfigWhere *where, Error *err) {
    const char *section = config_sections[section_index].name;
    if (config_node_is_null(node)) return 0;  // "train:" alone
    if (node->type != YAML_MAPPING_NODE)
        return config_fail(err, where, node->start_mark, section, "expected a mapping of keys (key: value), got %s",
                           node->type == YAML_SEQUENCE_NODE ? "a list" : "a single value");
    // Line (from 1) where each key was first given, to refuse duplicates.
    size_t *first_line = xcalloc((size_t)config_n_keys, sizeof *first_line);
    int status = 0;
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top && !status;
         pair++) {
        yaml_node_t *key_node = yaml_document_get_node(doc, pair->key);
        yaml_node_t *value = yaml_document_get_node(doc, pair->value);
        if (key_node->type != YAML_SCALAR_NODE) {
            status = config_fail(err, where, key_node->start_mark, section, "expected a key name");
            break;
        }
        const char *name = (const char *)key_node->data.scalar.value;
        char label[256];
        snprintf(label, sizeof label, "%s.%.160s", section, name);
        int key_index = config_find_key(section, name);
        if (key_index < 0) {
            status = fail_unknown_key(err, where, key_node->start_mark, label, section, name);
        } else if (first_line[key_index]) {
            status = config_fail(err, where, key_node->start_mark, label, "duplicate key (first given at line %zu)",
                                 first_line[key_index]);
        } else {
            first_line[key_index] = key_node->start_mark.line + 1;
            status = config_assign(c, &config_keys[key_index], doc, value, where, label, err);
            if (!status) set_origin(c, key_index, config_origin_text(where, value->start_mark));
        }
    }
    free(first_line);
    return status;
}

static int load_sweep(RunConfig *c, yaml_document_t *doc, yaml_node_t *node, const ConfigWhere *where, Error *err) {
    if (config_node_is_null(node)) return 0;
    if (node->type != YAML_MAPPING_NODE)
        return config_fail(err, where, node->start_mark, sweep_section,
                           "expected a mapping of section.key to a list of values, such as prune.alpha: [0, 1]");
    for (yaml_node_pair_t *pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
        yaml_node_t *key_node = yaml_document_get_node(doc, pair->key);
        if (key_node->type != YAML_SCALAR_NODE)
            return config_fail(err, where, key_node->start_mark, sweep_section, "expected a key such as prune.alpha");
        const char *dotted = (const char *)key_node->data.scalar.value;
        for (yaml_node_pair_t *before = node->data.mapping.pairs.start; before < pair; before++) {
            yaml_node_t *other = yaml_document_get_node(doc, before->key);
            if (other->type == YAML_SCALAR_NODE && strcmp((const char *)other->data.scalar.value, dotted) == 0)
                return config_fail(err, where, key_node->start_mark, sweep_section,
                                   "duplicate key '%s' (first given at line %zu)", dotted, other->start_mark.line + 1);
        }
        if (set_sweep_axis(c, dotted, doc, yaml_document_get_node(doc, pair->value), key_node->start_mark, where, err))
            return -1;
    }
    return 0;
}

static int load_text(RunConfig *c, const char *text, const char *name, Error *err) {
    ConfigWhere where = {.path = name, .context = NULL, .own_key = NULL};
    yaml_document_t doc;
    yaml_node_t *root;
    if (config_parse_yaml(text, &where, &doc, &root, err)) return -1;
    int status = 0;
    if (config_node_is_null(root)) {
        status = 0;  // an empty file: all defaults
    } else if (root->type != YAML_MAPPING_NODE) {
        status = config_fail(err, &where, root->start_mark, NULL,
                             "expected a mapping of sections (model:, data:, ...) at the top level, got %s",
                             root->type == YAML_SEQUENCE_NODE ? "a list" : "a single value");
    } else {
        // Line (from 1) where each section was first given; the sweep's at config_n_sections.
        size_t *first_line = xcalloc((size_t)config_n_sections + 1, sizeof *first_line);
        for (yaml_node_pair_t *pair = root->data.mapping.pairs.start; pair < root->data.mapping.pairs.top && !status;
             pair++) {
            yaml_node_t *key_node = yaml_document_get_node(&doc, pair->key);
            yaml_node_t *value = yaml_document_get_node(&doc, pair->value);
            if (key_node->type != YAML_SCALAR_NODE) {
                status = config_fail(err, &where, key_node->start_mark, NULL, "expected a section name");
                break;
            }
            const char *section = (const char *)key_node->data.scalar.value;
            bool is_sweep = strcmp(section, sweep_section) == 0;
            int index = is_sweep ? config_n_sections : config_find_section(section);
            if (index < 0) {
                status = fail_unknown_section(err, &where, key_node->start_mark, section);
            } else if (first_line[index]) {
                status = config_fail(err, &where, key_node->start_mark, section,
                                     "duplicate section (first given at line %zu)", first_line[index]);
            } else {
                first_line[index] = key_node->start_mark.line + 1;
                status = is_sweep ? load_sweep(c, &doc, value, &where, err)
                                  : load_section(c, index, &doc, value, &where, err);
            }
        }
        free(first_line);
    }
    yaml_document_delete(&doc);
    return status;
}

int config_load_string(RunConfig *c, const char *text, const char *name, Error *err) {
    config_defaults(c);
    return load_text(c, text, name ? name : "<string>", err);
}

int config_load_file(RunConfig *c, const char *path, Error *err) {
    config_defaults(c);
    c->source_path = xstrdup(path);
    char *text = NULL;
    size_t size = 0;
    if (input_file_read(path, "config file", INPUT_TEXT_MAX_BYTES, &text, &size, err) != 0) return -1;
    int status;
    if (strlen(text) != size)
        status = error_set(err, "%s: not a text file (it holds a NUL byte)", path);
    else
        status = load_text(c, text, path, err);
    free(text);
    return status;
}

int config_set(RunConfig *c, const char *assignment, Error *err) {
    const char *equals = strchr(assignment, '=');
    if (!equals || equals == assignment)
        return error_set(err, "--set %s: expected section.key=value, such as train.steps=100", assignment);
    char dotted[256];
    snprintf(dotted, sizeof dotted, "%.*s", (int)(equals - assignment) < 255 ? (int)(equals - assignment) : 255,
             assignment);
    const char *text = equals + 1;
    char context[1024];
    snprintf(context, sizeof context, "--set %s", assignment);
    ConfigWhere where = {.path = NULL, .context = context, .own_key = dotted};
    yaml_mark_t no_mark = {0, 0, 0};

    size_t sweep_length = strlen(sweep_section);
    if (strncmp(dotted, sweep_section, sweep_length) == 0 && dotted[sweep_length] == '.') {
        yaml_document_t doc;
        yaml_node_t *root;
        if (config_parse_yaml(text, &where, &doc, &root, err)) return -1;
        int status = set_sweep_axis(c, dotted + sweep_length + 1, &doc, root, no_mark, &where, err);
        yaml_document_delete(&doc);
        return status;
    }

    int key_index;
    if (resolve_dotted(dotted, &where, no_mark, dotted, &key_index, err)) return -1;
    const ConfigKey *key = &config_keys[key_index];
    int status;
    if (key->type == CT_STRING) {
        // A string takes the text verbatim, as if it had been quoted: no YAML reading of
        // paths or globs that start with '*' or hold ': '.
        yaml_node_t verbatim = {.type = YAML_SCALAR_NODE};
        verbatim.data.scalar.value = (yaml_char_t *)text;
        verbatim.data.scalar.length = strlen(text);
        verbatim.data.scalar.style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        status = config_assign(c, key, NULL, &verbatim, &where, dotted, err);
    } else {
        yaml_document_t doc;
        yaml_node_t *root;
        if (config_parse_yaml(text, &where, &doc, &root, err)) return -1;
        status = config_assign(c, key, &doc, root, &where, dotted, err);
        yaml_document_delete(&doc);
    }
    if (status == 0) set_origin(c, key_index, xstrdup(context));
    return status;
}

// ---------------------------------------------------------------------------------------
// Cross-field checks

// Fails with "origin: label: message", the origin being where the key named by
// origin_key was set (nothing for a default).
static int check_fail(const RunConfig *c, const char *origin_key, const char *label, Error *err, const char *format,
                      ...) __attribute__((format(printf, 5, 6)));
static int check_fail(const RunConfig *c, const char *origin_key, const char *label, Error *err, const char *format,
                      ...) {
    char message[ERROR_MESSAGE_BYTES];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    const char *dot = strchr(origin_key, '.');
    char section[64];
    snprintf(section, sizeof section, "%.*s", (int)(dot - origin_key), origin_key);
    int key_index = config_find_key(section, dot + 1);
    const char *origin = key_index >= 0 && c->origin ? c->origin[key_index] : NULL;
    if (origin) return error_set(err, "%s: %s: %s", origin, label, message);
    return error_set(err, "%s: %s", label, message);
}

static bool is_set(const RunConfig *c, const char *section, const char *name) {
    int key_index = config_find_key(section, name);
    return key_index >= 0 && c->origin && c->origin[key_index];
}

int config_check(const RunConfig *c, Error *err) {
    // The run folder's name is one path component under log.dir, never cut.
    if (c->log.name && c->log.name[0]) {
        size_t n = strlen(c->log.name);
        if (strchr(c->log.name, '/') || strcmp(c->log.name, ".") == 0 || strcmp(c->log.name, "..") == 0)
            return check_fail(c, "log.name", "log.name", err,
                              "expected one folder name (no '/', not '.' or '..'), got \"%s\"", c->log.name);
        if (n > CONFIG_RUN_NAME_MAX)
            return check_fail(c, "log.name", "log.name", err, "is %zu bytes long, at most %d are allowed", n,
                              CONFIG_RUN_NAME_MAX);
    }
    if (c->model.init[0] == '\0')
        return check_fail(c, "model.init", "model.init", err, "expected \"random\" or a path, got \"\"");
    if ((c->data.kind == CFG_DATA_TEXT || c->data.kind == CFG_DATA_TOKENS ||
         c->data.kind == CFG_DATA_TEXT_CLASSIFICATION || c->data.kind == CFG_DATA_TIMESERIES) && c->data.path[0] == '\0')
        return check_fail(c, "data.kind", "data.path", err, "required when data.kind is %s (the file to read)",
                          c->data.kind == CFG_DATA_TEXT ? "text" : c->data.kind == CFG_DATA_TOKENS ? "tokens"
                          : c->data.kind == CFG_DATA_TIMESERIES ? "timeseries" : "text_classification");
    bool classification = c->data.kind == CFG_DATA_LISTOPS || c->data.kind == CFG_DATA_TEXT_CLASSIFICATION;
    bool series = c->data.kind == CFG_DATA_TIMESERIES || c->data.kind == CFG_DATA_SEASONAL;
    bool forecasting = c->model.head == CFG_HEAD_FORECAST || c->model.head == CFG_HEAD_DLINEAR;
    if (classification != (c->model.head == CFG_HEAD_CLASSIFY))
        return check_fail(c, "model.head", "model.head", err, "%s needs data.kind listops or text_classification, and they need "
                          "model.head = classify", c->model.head == CFG_HEAD_CLASSIFY ? "classify" : "lm");
    if (series != forecasting)
        return check_fail(c, "model.head", "model.head", err, "%s needs data.kind timeseries or seasonal, and they need "
                          "model.head = forecast or dlinear", forecasting ? "forecasting" : "lm");
    if ((c->model.n_layer == 0) != (c->model.head == CFG_HEAD_DLINEAR) && strcmp(c->model.init, "random") == 0)
        return check_fail(c, "model.n_layer", "model.n_layer", err, "%s, got %d",
                          c->model.head == CFG_HEAD_DLINEAR ? "must be 0 for model.head = dlinear (it has no Mamba blocks)"
                                                            : "must be >= 1 (0 only for model.head = dlinear)",
                          c->model.n_layer);
    if (c->optim.lr_min > c->optim.lr)
        return check_fail(c, is_set(c, "optim", "lr_min") ? "optim.lr_min" : "optim.lr", "optim.lr_min", err,
                          "must be <= optim.lr (%g), got %g", c->optim.lr, c->optim.lr_min);
    if ((c->prune.nm_n > 0) != (c->prune.nm_m > 0))
        return check_fail(c, c->prune.nm_n > 0 ? "prune.nm_n" : "prune.nm_m", "prune.nm_n", err,
                          "N:M sparsity needs both prune.nm_n and prune.nm_m > 0 (or both 0), got %d:%d",
                          c->prune.nm_n, c->prune.nm_m);
    if (c->prune.nm_n > 0 && c->prune.nm_n >= c->prune.nm_m)
        return check_fail(c, "prune.nm_n", "prune.nm_n", err, "must be < prune.nm_m (N of every M pruned), got %d:%d",
                          c->prune.nm_n, c->prune.nm_m);
    if (c->prune.initial_sparsity > c->prune.final_sparsity)
        return check_fail(c, "prune.initial_sparsity", "prune.initial_sparsity", err,
                          "must be <= prune.final_sparsity (%g): sparsity only grows, got %g",
                          c->prune.final_sparsity, c->prune.initial_sparsity);
    if (c->prune.a_log_sparsity >= 0 && c->prune.strategy != CFG_STRATEGY_GLOBAL)
        return check_fail(c, "prune.a_log_sparsity", "prune.a_log_sparsity", err,
                          "is an allocation of the global strategy, got prune.strategy %s (layerwise prunes A_log "
                          "like every tensor; component takes component_sparsity: {A_log: %g})",
                          prune_strategy_names[c->prune.strategy], c->prune.a_log_sparsity);
    if (c->prune.a_log_sparsity < 0 && c->prune.a_log_sparsity != -1)
        return check_fail(c, "prune.a_log_sparsity", "prune.a_log_sparsity", err,
                          "expected -1 (A_log in the global pool) or a sparsity in [0, 1), got %g",
                          c->prune.a_log_sparsity);
    // A pretrained model's n_layer is known only once it is loaded; the shedder checks it then.
    if (c->prune.method == CFG_PRUNE_SHEDDER && strcmp(c->model.init, "random") == 0 &&
        c->prune.shedder_steps >= c->model.n_layer)
        return check_fail(c, is_set(c, "prune", "shedder_steps") ? "prune.shedder_steps" : "model.n_layer",
                          "prune.shedder_steps", err,
                          "must be < model.n_layer (%d): the shedder removes one %s per step and keeps at least "
                          "one, got %d",
                          c->model.n_layer, c->prune.shedder_target == CFG_SHEDDER_SSM ? "SSM" : "block",
                          c->prune.shedder_steps);
    if (c->prune.method == CFG_PRUNE_GRADIENT && config_prune_end_step(c) <= c->prune.start_step)
        return check_fail(c, is_set(c, "prune", "end_step") ? "prune.end_step" : "prune.start_step", "prune.end_step",
                          err, "the schedule must end after prune.start_step (%d), but it ends at step %d%s",
                          c->prune.start_step, config_prune_end_step(c),
                          c->prune.end_step == 0 ? " (0 = train.steps * 3 / 4)" : "");
    return 0;
}

// ---------------------------------------------------------------------------------------
// Writing

char *config_to_yaml(const RunConfig *c) {
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (!out) {
        fprintf(stderr, "mambaprune: open_memstream failed\n");
        abort();
    }
    fprintf(out, "# mambaprune run configuration, resolved: every key, defaults included.\n");
    for (int s = 0; s < config_n_sections; s++) {
        fprintf(out, "%s:\n", config_sections[s].name);
        for (int i = 0; i < config_n_keys; i++) {
            const ConfigKey *key = &config_keys[i];
            if (strcmp(key->section, config_sections[s].name) != 0) continue;
            fprintf(out, "  %s: ", key->name);
            config_emit_value(out, c, key);
            fputc('\n', out);
        }
    }
    if (c->n_sweep == 0) fprintf(out, "%s: {}\n", sweep_section);
    else fprintf(out, "%s:\n", sweep_section);
    for (int a = 0; a < c->n_sweep; a++) {
        fprintf(out, "  %s: [", c->sweep[a].key);
        for (int v = 0; v < c->sweep[a].n_values; v++) fprintf(out, "%s%s", v ? ", " : "", c->sweep[a].values[v]);
        fprintf(out, "]\n");
    }
    fclose(out);
    return text;
}

// Text in a Markdown table cell: '|' would end the cell, '*' start emphasis (in a code
// span only '|' needs the backslash).
static void markdown_cell(FILE *out, const char *text, bool code) {
    for (const char *p = text; *p; p++) {
        if (*p == '|' || (*p == '*' && !code)) fputc('\\', out);
        fputc(*p, out);
    }
}

static const char *const type_names[] = {
    [CT_INT] = "int", [CT_FLOAT] = "float", [CT_BOOL] = "bool", [CT_STRING] = "string",
    [CT_ENUM] = "enum", [CT_STRINGS] = "list of strings", [CT_FLOATMAP] = "map name → float",
};

static void markdown_allowed(FILE *out, const ConfigKey *key) {
    char range[64];
    config_range_text(key->range, range, sizeof range);
    const char *bare = strncmp(range, "in ", 3) == 0 ? range + 3 : range;
    switch (key->type) {
    case CT_INT:
    case CT_FLOAT: fputs(bare[0] ? bare : "any", out); break;
    case CT_BOOL: fputs("`true`, `false`", out); break;
    case CT_STRING: fputs("any text", out); break;
    case CT_STRINGS: fputs("name patterns", out); break;
    case CT_ENUM:
    case CT_FLOATMAP:
        if (key->type == CT_FLOATMAP) fputs("names ", out);
        for (int i = 0; i < key->n_choices; i++) fprintf(out, "%s`%s`", i ? ", " : "", key->choices[i]);
        if (key->type == CT_FLOATMAP) fprintf(out, "; values %s", bare);
        break;
    }
}

void config_write_reference_markdown(FILE *out) {
    fputs("## Configuration reference\n\n"
          "A run is described by one YAML file with the sections below; a key left out keeps its\n"
          "default, and an empty file is all defaults. Any key can be overridden on the command line\n"
          "with `--set section.key=value`. Unknown sections and keys, duplicate keys, wrong types and\n"
          "out-of-range values are errors that name the file, line and column, the key and what was\n"
          "expected, e.g. `configs/x.yaml:9:12: optim.lr: expected a number > 0, got '-1'`.\n\n"
          "Values:\n\n"
          "- **bool**: exactly `true` or `false` (YAML 1.2); `True`, `yes`, `on`, `1` are errors.\n"
          "- **int**: decimal digits with an optional sign; `1.5`, `1e3` and `0x10` are errors.\n"
          "- **float**: an integer, a decimal or scientific notation (`1e-4`, `.5`, `2.`); not `.inf`/`.nan`.\n"
          "- **int** and **float** values must not be quoted; a quoted value is a string.\n"
          "- **string**: any scalar; an empty value or `null` is the empty string.\n"
          "- **list of strings**: a YAML list, `[\"a\", \"b\"]` or one `- item` per line; quote\n"
          "  patterns that start with `*`. An empty value is the empty list.\n"
          "- **map name → float**: a YAML mapping, `{in_proj: 0.6, A_log: 0.3}`; an empty value is\n"
          "  the empty map.\n"
          "- Anchors and aliases work; YAML tags are ignored; a second document is an error.\n\n"
          "`--set` reads the text after `=` as YAML flow text (`--set prune.alpha=0.5`,\n"
          "`--set 'prune.include=[in_proj, \"*.A_log\"]'`,\n"
          "`--set 'prune.component_sparsity={in_proj: 0.6}'`), except for string keys, which take\n"
          "the text verbatim (`--set 'data.path=my file: v2.txt'`).\n\n",
          out);
    for (int s = 0; s < config_n_sections; s++) {
        fprintf(out, "### `%s`\n\n", config_sections[s].name);
        markdown_cell(out, config_sections[s].help, false);
        fputs("\n\n| key | type | default | allowed | meaning |\n|---|---|---|---|---|\n", out);
        for (int i = 0; i < config_n_keys; i++) {
            const ConfigKey *key = &config_keys[i];
            if (strcmp(key->section, config_sections[s].name) != 0) continue;
            fprintf(out, "| `%s.%s` | %s | `", key->section, key->name, type_names[key->type]);
            markdown_cell(out, key->default_yaml, true);
            fputs("` | ", out);
            markdown_allowed(out, key);
            fputs(" | ", out);
            markdown_cell(out, key->help, false);
            fputs(" |\n", out);
        }
        fputc('\n', out);
    }
    fputs("### `sweep`\n\n"
          "A mapping of `section.key` to a list of values, e.g. `prune.alpha: [0, 0.5, 1, 2]`. The run\n"
          "is repeated for every combination (the cartesian product): the axes are taken in the order\n"
          "written, like nested loops with the last axis innermost, so\n"
          "`{prune.alpha: [0, 1], prune.final_sparsity: [0.5, 0.7]}` runs alpha=0 with 0.5, alpha=0\n"
          "with 0.7, alpha=1 with 0.5, alpha=1 with 0.7. Each value is checked exactly like a value of\n"
          "that key, and each run is labelled `key=value,key=value`. `--set sweep.prune.alpha=[0,1]`\n"
          "sets an axis from the command line, and an empty list removes it. Sweep values are applied\n"
          "after the file and every other `--set`.\n\n"
          "### Cross-field checks\n\n"
          "- `data.path` is required when `data.kind` is `text`, `tokens`, `text_classification` or `timeseries`.\n"
          "- `model.head: classify` goes with `data.kind` `listops` or `text_classification`, and they with it.\n"
          "- `model.head: forecast` or `dlinear` goes with `data.kind` `timeseries` or `seasonal`, and they with it.\n"
          "- `model.n_layer` is 0 exactly when `model.head` is `dlinear` (a random model).\n"
          "- `optim.lr_min` <= `optim.lr`.\n"
          "- `prune.nm_n` and `prune.nm_m` are both 0 or both > 0, and then `nm_n` < `nm_m`.\n"
          "- `prune.initial_sparsity` <= `prune.final_sparsity`.\n"
          "- `prune.component_sparsity` only with `prune.strategy: component`.\n"
          "- `prune.a_log_sparsity` is -1 or in [0, 1), and >= 0 only with `prune.strategy: global`.\n"
          "- With `prune.method: gradient`, the schedule ends (`prune.end_step`, 0 = train.steps * 3 / 4)\n"
          "  after `prune.start_step`.\n"
          "- `model.init` is not empty.\n",
          out);
}

// ---------------------------------------------------------------------------------------
// Resolved values

int config_prune_end_step(const RunConfig *c) {
    return c->prune.end_step > 0 ? c->prune.end_step : (int)((long long)c->train.steps * 3 / 4);
}

int config_eval_seqlen(const RunConfig *c) { return c->eval.seqlen > 0 ? c->eval.seqlen : c->train.seqlen; }

void config_run_name(const RunConfig *c, char *out, size_t out_size) {
    if (c->log.name && c->log.name[0]) {
        snprintf(out, out_size, "%s", c->log.name);
        return;
    }
    const char *base = c->source_path ? c->source_path : "";
    const char *slash = strrchr(base, '/');
    if (slash) base = slash + 1;
    const char *dot = strrchr(base, '.');
    int length = dot && dot != base ? (int)(dot - base) : (int)strlen(base);
    if (length == 0)
        snprintf(out, out_size, "run");
    else
        snprintf(out, out_size, "%.*s", length, base);
}

void config_to_mamba(const RunConfig *c, MambaConfig *m) {
    mamba_config_defaults(m);
    m->d_model = c->model.d_model;
    m->n_layer = c->model.n_layer;
    m->vocab_size = c->model.vocab_size;
    m->pad_vocab_size_multiple = c->model.pad_vocab_size_multiple;
    m->d_state = c->model.d_state;
    m->d_conv = c->model.d_conv;
    m->expand = c->model.expand;
    m->dt_rank = c->model.dt_rank;
    m->head = c->model.head == CFG_HEAD_CLASSIFY ? MAMBA_HEAD_CLASSIFY
              : c->model.head == CFG_HEAD_FORECAST ? MAMBA_HEAD_FORECAST
              : c->model.head == CFG_HEAD_DLINEAR  ? MAMBA_HEAD_DLINEAR
                                                   : MAMBA_HEAD_LM;
    if (mamba_head_reads_values(m->head)) {  // forecasting (heads.h)
        m->n_features = c->model.n_features;  // 0 until the data gives it
        m->horizon = c->data.horizon;
        m->input_len = c->train.seqlen;
    }
    m->n_classes = c->model.n_classes;
    m->pool = c->model.pool == CFG_POOL_LAST ? MAMBA_POOL_LAST : MAMBA_POOL_MEAN;
    m->window_norm = (MambaWindowNorm)c->model.window_norm;
}

void config_set_model_sizes(RunConfig *c, const MambaConfig *m) {
    c->model.d_model = m->d_model;
    c->model.n_layer = m->n_layer;
    c->model.vocab_size = m->vocab_size;
    c->model.pad_vocab_size_multiple = m->pad_vocab_size_multiple;
    c->model.d_state = m->d_state;
    c->model.d_conv = m->d_conv;
    c->model.expand = m->expand;
    c->model.dt_rank = m->dt_rank;
    c->model.n_classes = m->n_classes;  // heads.h
    c->model.n_features = m->n_features;
    c->model.window_norm = (CfgWindowNorm)m->window_norm;  // a loaded forecaster keeps its normalisation
}

int config_check_resume(const RunConfig *now, const RunConfig *saved, bool sizes, const char *path, Error *err) {
    char differences[1024] = "";
    size_t used = 0;
#define SAME_INT(key)                                                                                            \
    if (sizes && now->model.key != saved->model.key)                                                            \
        used += (size_t)snprintf(differences + used, used < sizeof differences ? sizeof differences - used : 0, \
                                 "%smodel.%s: checkpoint %d, config %d", used ? "; " : "", #key,                 \
                                 saved->model.key, now->model.key);
    SAME_INT(d_model)
    SAME_INT(n_layer)
    SAME_INT(vocab_size)
    SAME_INT(pad_vocab_size_multiple)
    SAME_INT(d_state)
    SAME_INT(d_conv)
    SAME_INT(expand)
    SAME_INT(dt_rank)
    SAME_INT(window_norm)  // the enum's number: 0 none, 1 revin, 2 revin_affine, 3 last
#undef SAME_INT
    if (now->prune.method != saved->prune.method)
        used += (size_t)snprintf(differences + used, used < sizeof differences ? sizeof differences - used : 0,
                                 "%sprune.method: checkpoint %s, config %s", used ? "; " : "",
                                 prune_method_names[saved->prune.method], prune_method_names[now->prune.method]);
    if (used) return error_set(err, "%s: the config does not match the checkpoint it resumes: %s", path, differences);
    return 0;
}

bool config_name_matches(const char *pattern, const char *name) { return prune_name_matches(pattern, name); }

bool config_param_prunable(const RunConfig *c, const char *name) {
    PruneOptions o;
    config_prune_options(c, &o);
    return prune_param_prunable(&o, name);
}

// The configuration's enums are the pruning library's, value for value.
_Static_assert((int)CFG_PRUNE_NONE == PRUNE_METHOD_NONE && (int)CFG_PRUNE_GRADIENT == PRUNE_METHOD_GRADIENT &&
                   (int)CFG_PRUNE_MAGNITUDE == PRUNE_METHOD_MAGNITUDE && (int)CFG_PRUNE_WANDA == PRUNE_METHOD_WANDA &&
                   (int)CFG_PRUNE_SPARSEGPT == PRUNE_METHOD_SPARSEGPT &&
                   (int)CFG_PRUNE_SPARSESSM == PRUNE_METHOD_SPARSESSM && (int)CFG_PRUNE_SHEDDER == PRUNE_METHOD_SHEDDER,
               "prune.method");
_Static_assert((int)CFG_SCHEDULE_CUBIC == PRUNE_SCHEDULE_CUBIC && (int)CFG_SCHEDULE_LINEAR == PRUNE_SCHEDULE_LINEAR &&
                   (int)CFG_SCHEDULE_EXPONENTIAL == PRUNE_SCHEDULE_EXPONENTIAL,
               "prune.schedule");
_Static_assert((int)CFG_STRATEGY_GLOBAL == PRUNE_STRATEGY_GLOBAL &&
                   (int)CFG_STRATEGY_LAYERWISE == PRUNE_STRATEGY_LAYERWISE &&
                   (int)CFG_STRATEGY_COMPONENT == PRUNE_STRATEGY_COMPONENT,
               "prune.strategy");
_Static_assert((int)CFG_MAGNITUDE_TENSOR == PRUNE_MAGNITUDE_TENSOR && (int)CFG_MAGNITUDE_GLOBAL == PRUNE_MAGNITUDE_GLOBAL,
               "prune.magnitude_scope");
_Static_assert((int)CFG_GRAD_MEAN == PRUNE_GRAD_MEAN && (int)CFG_GRAD_ABS_MEAN == PRUNE_GRAD_ABS_MEAN &&
                   (int)CFG_GRAD_RMS == PRUNE_GRAD_RMS,
               "prune.grad_stat");
_Static_assert((int)CFG_NORM_NONE == PRUNE_NORM_NONE && (int)CFG_NORM_MEAN == PRUNE_NORM_MEAN &&
                   (int)CFG_NORM_MEDIAN == PRUNE_NORM_MEDIAN,
               "prune.score_norm");
_Static_assert((int)CFG_WEIGHTING_HARMONIC == SPARSESSM_HARMONIC && (int)CFG_WEIGHTING_UNIFORM == SPARSESSM_UNIFORM &&
                   (int)CFG_WEIGHTING_GEOMETRIC == SPARSESSM_GEOMETRIC && (int)CFG_WEIGHTING_WINDOW == SPARSESSM_WINDOW,
               "prune.sparsessm_weighting");
_Static_assert((int)CFG_WINDOW_NONE == MAMBA_WINDOW_NONE && (int)CFG_WINDOW_REVIN == MAMBA_WINDOW_REVIN &&
                   (int)CFG_WINDOW_REVIN_AFFINE == MAMBA_WINDOW_REVIN_AFFINE &&
                   (int)CFG_WINDOW_LAST == MAMBA_WINDOW_LAST,
               "model.window_norm");
_Static_assert((int)CFG_SHEDDER_BLOCK == SHEDDER_BLOCK && (int)CFG_SHEDDER_SSM == SHEDDER_SSM, "prune.shedder_target");

void config_prune_options(const RunConfig *c, PruneOptions *o) {
    *o = (PruneOptions){
        .method = (PruneMethod)c->prune.method,
        .alpha = c->prune.alpha,
        .grad_stat = (PruneGradStat)c->prune.grad_stat,
        .score_norm = (PruneScoreNorm)c->prune.score_norm,
        .a_log_sparsity = c->prune.a_log_sparsity,
        .schedule = (PruneSchedule)c->prune.schedule,
        .exp_k = c->prune.exp_k,
        .initial_sparsity = c->prune.initial_sparsity,
        .final_sparsity = c->prune.final_sparsity,
        .start_step = c->prune.start_step,
        .end_step = config_prune_end_step(c),
        .prune_every = c->prune.prune_every,
        .grad_accum_batches = c->prune.grad_accum_batches,
        .strategy = (PruneStrategy)c->prune.strategy,
        .include = (const char *const *)c->prune.include.items,
        .n_include = c->prune.include.count,
        .exclude = (const char *const *)c->prune.exclude.items,
        .n_exclude = c->prune.exclude.count,
        .nsamples = c->prune.nsamples,
        .calib_seqlen = c->prune.calib_seqlen,
        .percdamp = c->prune.percdamp,
        .blocksize = c->prune.blocksize,
        .nm_n = c->prune.nm_n,
        .nm_m = c->prune.nm_m,
        .magnitude_scope = (PruneMagnitudeScope)c->prune.magnitude_scope,
        .sparsessm_weighting = (SparsessmWeighting)c->prune.sparsessm_weighting,
        .sparsessm_gamma = c->prune.sparsessm_gamma,
        .sparsessm_alpha = c->prune.sparsessm_alpha,
        .sparsessm_structured = c->prune.sparsessm_structured,
        .shedder_steps = c->prune.shedder_steps,
        .shedder_target = (ShedderTarget)c->prune.shedder_target,
        .batch_size = c->train.batch_size,
        .seqlen = c->train.seqlen,
    };
    for (int g = 0; g < PRUNE_N_COMPONENTS; g++)
        o->component_sparsity[g] =
            g < PRUNE_OTHER ? config_map_get(&c->prune.component_sparsity, prune_component_name((PruneComponent)g),
                                             c->prune.final_sparsity)
                            : c->prune.final_sparsity;
}

void config_stability_options(const RunConfig *c, PruneStabilityOptions *o) {
    *o = (PruneStabilityOptions){c->stability.enabled, c->stability.epsilon, c->stability.batches};
}

double config_map_get(const FloatMap *map, const char *name, double fallback) {
    for (int i = 0; i < map->count; i++)
        if (strcmp(map->names[i], name) == 0) return map->values[i];
    return fallback;
}
