// Internal to the config module: the table that describes every key (config_schema.c)
// and the conversions between YAML nodes, typed struct fields and YAML text
// (config_value.c). Only src/config/config*.c include this header.
#ifndef MP_CONFIG_CONFIG_SCHEMA_H
#define MP_CONFIG_CONFIG_SCHEMA_H

#include <stdio.h>
#include <yaml.h>

#include "config/config.h"

typedef enum ConfigType {
    CT_INT,
    CT_FLOAT,
    CT_BOOL,
    CT_STRING,
    CT_ENUM,
    CT_STRINGS,   // StringList
    CT_FLOATMAP,  // FloatMap, names from choices, values in range
} ConfigType;

typedef enum Bound { BOUND_NONE, BOUND_INCLUSIVE, BOUND_EXCLUSIVE } Bound;

// Allowed values of an int, a float, or the values of a float map.
typedef struct ConfigRange {
    Bound lo_kind, hi_kind;
    double lo, hi;
} ConfigRange;

typedef struct ConfigKey {
    const char *section, *name;
    ConfigType type;
    size_t offset;                // of the field in RunConfig
    const char *default_yaml;     // the default, as YAML flow text
    ConfigRange range;
    const char *const *choices;   // enum values (in enum order), or the names of a map
    int n_choices;
    const char *help;             // one line for the reference
} ConfigKey;

typedef struct ConfigSection {
    const char *name, *help;
} ConfigSection;

// Every key, grouped by section in the order of config_sections.
extern const ConfigKey config_keys[];
extern const int config_n_keys;
// The sections that hold keys ("sweep" is handled apart).
extern const ConfigSection config_sections[];
extern const int config_n_sections;

// Index into config_sections / config_keys, or -1.
int config_find_section(const char *name);
int config_find_key(const char *section, const char *name);
// Edit distance with adjacent transpositions, for "did you mean" suggestions.
int config_edit_distance(const char *a, const char *b);
// Writes "did you mean 'x'? " (or "") for word among the names of section (or, with
// section NULL, among the section names) into out.
void config_suggest(const char *word, const char *section, char *out, size_t out_size);
// The closest of names to word within a small edit distance, or NULL.
const char *config_closest(const char *word, const char *const *names, int n);
// "an integer >= 1", "a number in (0, 1)", ... ; and the bare range ">= 1", "(0, 1)".
void config_describe_expected(const ConfigKey *key, char *out, size_t out_size);
void config_range_text(ConfigRange range, char *out, size_t out_size);

static inline void *config_field(RunConfig *c, const ConfigKey *key) { return (char *)c + key->offset; }
static inline const void *config_field_const(const RunConfig *c, const ConfigKey *key) {
    return (const char *)c + key->offset;
}

// Where a value comes from, for error messages: a YAML file (path, plus the node's
// mark), or else a context such as "--set train.steps=abc", whose key (own_key) is not
// repeated in its messages.
typedef struct ConfigWhere {
    const char *path;
    const char *context;
    const char *own_key;
} ConfigWhere;

// Writes "path:line:col: label: message" or "context: [label: ]message" into err and
// returns -1. label may be NULL.
int config_fail(Error *err, const ConfigWhere *where, yaml_mark_t mark, const char *label, const char *format, ...)
    __attribute__((format(printf, 5, 6)));
// "path:line:col", or the context; owned by the caller.
char *config_origin_text(const ConfigWhere *where, yaml_mark_t mark);

// Reads node (NULL = an empty value) as a value of key and stores it in c, replacing
// (and freeing) the old one; on failure c is unchanged. label names the value in
// messages ("optim.lr", "sweep.prune.alpha").
int config_assign(RunConfig *c, const ConfigKey *key, yaml_document_t *doc, yaml_node_t *node,
                  const ConfigWhere *where, const char *label, Error *err);
// An absent node, or a YAML 1.2 null: an empty value, ~ or null.
bool config_node_is_null(const yaml_node_t *node);
// Parses text as one YAML document; *root is NULL for empty text. On success the caller
// deletes doc.
int config_parse_yaml(const char *text, const ConfigWhere *where, yaml_document_t *doc, yaml_node_t **root,
                      Error *err);
// Releases the value of key in c (strings, lists, maps) and copies one from src to dst.
void config_free_value(RunConfig *c, const ConfigKey *key);
void config_copy_value(RunConfig *dst, const RunConfig *src, const ConfigKey *key);

// The value of key in c as YAML flow text (re-loadable).
void config_emit_value(FILE *out, const RunConfig *c, const ConfigKey *key);
// A node as YAML flow text that reads back as the same value. Caller frees.
char *config_node_to_flow(yaml_document_t *doc, yaml_node_t *node);
void config_emit_quoted(FILE *out, const char *s);
void config_emit_double(FILE *out, double v);

#endif
