// Values of configuration keys: reading a libyaml node as a value of a key (strictly:
// true/false only, decimal integers, YAML 1.2 floats, ranges, enum spellings) and
// writing a value back as YAML flow text that reads back the same.
#include "config/config_schema.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int config_fail(Error *err, const ConfigWhere *where, yaml_mark_t mark, const char *label, const char *format, ...) {
    char message[ERROR_MESSAGE_BYTES];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof message, format, args);
    va_end(args);
    if (where->path) {
        // libyaml counts lines and columns from 0.
        if (label)
            return error_set(err, "%s:%zu:%zu: %s: %s", where->path, mark.line + 1, mark.column + 1, label, message);
        return error_set(err, "%s:%zu:%zu: %s", where->path, mark.line + 1, mark.column + 1, message);
    }
    bool show_label = label && !(where->own_key && strcmp(label, where->own_key) == 0);
    return error_set(err, "%s: %s%s%s", where->context, show_label ? label : "", show_label ? ": " : "", message);
}

char *config_origin_text(const ConfigWhere *where, yaml_mark_t mark) {
    if (!where->path) return xstrdup(where->context);
    size_t size = strlen(where->path) + 48;
    char *text = xmalloc(size);
    snprintf(text, size, "%s:%zu:%zu", where->path, mark.line + 1, mark.column + 1);
    return text;
}

int config_parse_yaml(const char *text, const ConfigWhere *where, yaml_document_t *doc, yaml_node_t **root,
                      Error *err) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) return error_set(err, "libyaml: cannot initialise a parser");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, strlen(text));
    int status = -1;
    if (!yaml_parser_load(&parser, doc)) goto syntax_error;
    // A second document is refused: the config is one mapping.
    yaml_document_t next;
    if (!yaml_parser_load(&parser, &next)) {
        yaml_document_delete(doc);
        goto syntax_error;
    }
    yaml_node_t *next_root = yaml_document_get_root_node(&next);
    if (next_root) {
        yaml_mark_t mark = next_root->start_mark;
        yaml_document_delete(&next);
        yaml_document_delete(doc);
        config_fail(err, where, mark, NULL, "expected one YAML document, found a second one");
        goto done;
    }
    yaml_document_delete(&next);
    *root = yaml_document_get_root_node(doc);
    status = 0;
    goto done;
syntax_error:
    if (parser.error == YAML_READER_ERROR) {
        // libyaml's reader gives a byte offset and no mark: find the line and column.
        yaml_mark_t mark = {parser.problem_offset, 0, 0};
        for (size_t i = 0; i < parser.problem_offset && text[i]; i++) {
            if (text[i] == '\n') {
                mark.line++;
                mark.column = 0;
            } else if (((unsigned char)text[i] & 0xc0) != 0x80) {
                mark.column++;  // count characters, not UTF-8 continuation bytes
            }
        }
        if (parser.problem_value >= 0)
            config_fail(err, where, mark, NULL, "%s (byte 0x%02x; the config must be UTF-8 text)",
                        parser.problem ? parser.problem : "unreadable input", (unsigned)parser.problem_value & 0xffu);
        else
            config_fail(err, where, mark, NULL, "%s (the config must be UTF-8 text)",
                        parser.problem ? parser.problem : "unreadable input");
    } else if (parser.context)
        config_fail(err, where, parser.problem_mark, NULL, "YAML syntax error: %s (%s)",
                    parser.problem ? parser.problem : "unknown", parser.context);
    else
        config_fail(err, where, parser.problem_mark, NULL, "YAML syntax error: %s",
                    parser.problem ? parser.problem : "unknown");
done:
    yaml_parser_delete(&parser);
    return status;
}

// ---------------------------------------------------------------------------------------
// Reading values

// A scalar as text; a missing node (an empty --set value) reads as an empty plain scalar.
typedef struct Scalar {
    const char *text;
    size_t length;
    bool plain;                   // not quoted, not a block scalar: may be a number, bool or null
} Scalar;

static bool get_scalar(const yaml_node_t *node, Scalar *s) {
    if (!node) {
        *s = (Scalar){"", 0, true};
        return true;
    }
    if (node->type != YAML_SCALAR_NODE) return false;
    s->text = (const char *)node->data.scalar.value;
    s->length = node->data.scalar.length;
    s->plain = node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    return true;
}

// The YAML 1.2 core schema's null: an empty value, ~ or null.
static bool is_null(Scalar s) {
    if (!s.plain) return false;
    return s.length == 0 || strcmp(s.text, "~") == 0 || strcmp(s.text, "null") == 0 || strcmp(s.text, "Null") == 0 ||
           strcmp(s.text, "NULL") == 0;
}

bool config_node_is_null(const yaml_node_t *node) {
    Scalar s;
    return get_scalar(node, &s) && is_null(s);
}

// What the user wrote, for "got ...": 'text', nothing, "text" (a quoted string), a list.
static void describe_got(const yaml_node_t *node, char *out, size_t out_size) {
    Scalar s;
    if (!get_scalar(node, &s)) {
        snprintf(out, out_size, "%s", node->type == YAML_SEQUENCE_NODE ? "a list" : "a mapping");
        return;
    }
    int shown = s.length > 60 ? 60 : (int)s.length;
    const char *more = s.length > 60 ? "..." : "";
    if (s.plain && s.length == 0)
        snprintf(out, out_size, "nothing");
    else if (s.plain)
        snprintf(out, out_size, "'%.*s%s'", shown, s.text, more);
    else
        snprintf(out, out_size, "\"%.*s%s\" (a quoted string)", shown, s.text, more);
}

// YAML 1.2 core integers, decimal only: [-+]?[0-9]+ (no 1.5, no 1e3, no 0x10).
static bool parse_integer(Scalar s, long long *out) {
    const char *p = s.text;
    if (*p == '+' || *p == '-') p++;
    if (!*p) return false;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return false;
    if ((size_t)(strchr(s.text, '\0') - s.text) != s.length) return false;  // an embedded NUL
    errno = 0;
    long long v = strtoll(s.text, NULL, 10);
    if (errno == ERANGE) return false;
    *out = v;
    return true;
}

// YAML 1.2 core floats without .inf/.nan: [-+]? (.[0-9]+ | [0-9]+(.[0-9]*)?) ([eE][-+]?[0-9]+)?
static bool parse_number(Scalar s, double *out) {
    const char *p = s.text;
    if (*p == '+' || *p == '-') p++;
    int digits = 0;
    while (*p >= '0' && *p <= '9') p++, digits++;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') p++, digits++;
    }
    if (digits == 0) return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-') p++;
        if (!(*p >= '0' && *p <= '9')) return false;
        while (*p >= '0' && *p <= '9') p++;
    }
    if (*p || (size_t)(p - s.text) != s.length) return false;
    double v = strtod(s.text, NULL);
    if (!isfinite(v)) return false;
    *out = v;
    return true;
}

static bool in_range(ConfigRange r, double v) {
    if (r.lo_kind == BOUND_INCLUSIVE && !(v >= r.lo)) return false;
    if (r.lo_kind == BOUND_EXCLUSIVE && !(v > r.lo)) return false;
    if (r.hi_kind == BOUND_INCLUSIVE && !(v <= r.hi)) return false;
    if (r.hi_kind == BOUND_EXCLUSIVE && !(v < r.hi)) return false;
    return true;
}

static bool has_nul(Scalar s) { return strlen(s.text) != s.length; }

static int find_choice(const ConfigKey *key, Scalar s) {
    for (int i = 0; i < key->n_choices; i++)
        if (strcmp(key->choices[i], s.text) == 0 && !has_nul(s)) return i;
    return -1;
}

// " (did you mean 'x'?)" for a misspelt choice, or "".
static void suggest_choice(const ConfigKey *key, Scalar s, char *out, size_t out_size) {
    const char *best = config_closest(s.text, key->choices, key->n_choices);
    if (best)
        snprintf(out, out_size, " (did you mean '%s'?)", best);
    else
        snprintf(out, out_size, "%s", "");
}

static void free_strings(char **items, int count) {
    for (int i = 0; i < count; i++) free(items[i]);
    free(items);
}

static int read_string_list(const ConfigKey *key, yaml_document_t *doc, yaml_node_t *node, const ConfigWhere *where,
                            const char *label, StringList *out, Error *err) {
    *out = (StringList){NULL, 0};
    if (config_node_is_null(node)) return 0;  // an empty value is an empty list
    if (node->type != YAML_SEQUENCE_NODE) {
        char expected[256], got[128];
        config_describe_expected(key, expected, sizeof expected);
        describe_got(node, got, sizeof got);
        return config_fail(err, where, node->start_mark, label, "expected %s such as [\"a\", \"b\"], got %s", expected,
                           got);
    }
    int n = (int)(node->data.sequence.items.top - node->data.sequence.items.start);
    char **items = xcalloc((size_t)n, sizeof *items);
    for (int i = 0; i < n; i++) {
        yaml_node_t *item = yaml_document_get_node(doc, node->data.sequence.items.start[i]);
        Scalar s;
        if (!get_scalar(item, &s) || is_null(s) || s.length == 0 || has_nul(s)) {
            char got[128];
            describe_got(item, got, sizeof got);
            free_strings(items, i);
            return config_fail(err, where, item->start_mark, label, "item %d: expected a non-empty name pattern, got %s",
                               i + 1, got);
        }
        items[i] = xstrdup(s.text);
    }
    *out = (StringList){items, n};
    return 0;
}

static void free_float_map(FloatMap *map) {
    free_strings(map->names, map->count);
    free(map->values);
    *map = (FloatMap){NULL, NULL, 0};
}

static int read_float_map(const ConfigKey *key, yaml_document_t *doc, yaml_node_t *node, const ConfigWhere *where,
                          const char *label, FloatMap *out, Error *err) {
    *out = (FloatMap){NULL, NULL, 0};
    if (config_node_is_null(node)) return 0;
    char expected[256], got[128];
    config_describe_expected(key, expected, sizeof expected);
    if (node->type != YAML_MAPPING_NODE) {
        describe_got(node, got, sizeof got);
        return config_fail(err, where, node->start_mark, label, "expected %s, got %s", expected, got);
    }
    int n = (int)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
    FloatMap map = {xcalloc((size_t)n, sizeof(char *)), xcalloc((size_t)n, sizeof(double)), 0};
    for (int i = 0; i < n; i++) {
        yaml_node_pair_t pair = node->data.mapping.pairs.start[i];
        yaml_node_t *name_node = yaml_document_get_node(doc, pair.key);
        yaml_node_t *value_node = yaml_document_get_node(doc, pair.value);
        Scalar name, value;
        if (!get_scalar(name_node, &name) || find_choice(key, name) < 0) {
            char suggestion[96] = "";
            describe_got(name_node, got, sizeof got);
            if (get_scalar(name_node, &name)) suggest_choice(key, name, suggestion, sizeof suggestion);
            free_float_map(&map);
            return config_fail(err, where, name_node->start_mark, label, "unknown name %s%s; expected %s", got,
                               suggestion, expected);
        }
        for (int j = 0; j < map.count; j++) {
            if (strcmp(map.names[j], name.text) == 0) {
                free_float_map(&map);
                return config_fail(err, where, name_node->start_mark, label, "duplicate name '%s'", name.text);
            }
        }
        double v;
        if (!get_scalar(value_node, &value) || !value.plain || !parse_number(value, &v) || !in_range(key->range, v)) {
            char range[64], item_label[256];
            config_range_text(key->range, range, sizeof range);
            describe_got(value_node, got, sizeof got);
            snprintf(item_label, sizeof item_label, "%s.%s", label, name.text);
            free_float_map(&map);
            return config_fail(err, where, value_node->start_mark, item_label, "expected a number %s, got %s", range, got);
        }
        map.names[map.count] = xstrdup(name.text);
        map.values[map.count] = v;
        map.count++;
    }
    *out = map;
    return 0;
}

int config_assign(RunConfig *c, const ConfigKey *key, yaml_document_t *doc, yaml_node_t *node,
                  const ConfigWhere *where, const char *label, Error *err) {
    yaml_mark_t mark = node ? node->start_mark : (yaml_mark_t){0, 0, 0};
    void *field = config_field(c, key);
    char expected[256], got[128];
    config_describe_expected(key, expected, sizeof expected);
    describe_got(node, got, sizeof got);
    Scalar s;
    bool scalar = get_scalar(node, &s);
    switch (key->type) {
    case CT_INT: {
        long long v;
        if (!scalar || !s.plain || !parse_integer(s, &v) || v < INT_MIN || v > INT_MAX || !in_range(key->range, (double)v))
            return config_fail(err, where, mark, label, "expected %s, got %s", expected, got);
        *(int *)field = (int)v;
        return 0;
    }
    case CT_FLOAT: {
        double v;
        if (!scalar || !s.plain || !parse_number(s, &v) || !in_range(key->range, v))
            return config_fail(err, where, mark, label, "expected %s, got %s", expected, got);
        *(double *)field = v;
        return 0;
    }
    case CT_BOOL:
        // Strict, as YAML 1.2's core schema: "False", "no", "0" are errors, never true.
        if (scalar && s.plain && strcmp(s.text, "true") == 0) {
            *(bool *)field = true;
            return 0;
        }
        if (scalar && s.plain && strcmp(s.text, "false") == 0) {
            *(bool *)field = false;
            return 0;
        }
        return config_fail(err, where, mark, label, "expected %s, got %s", expected, got);
    case CT_STRING: {
        if (!scalar) return config_fail(err, where, mark, label, "expected %s, got %s", expected, got);
        if (has_nul(s)) return config_fail(err, where, mark, label, "a string may not hold a NUL character");
        char **slot = field;
        free(*slot);
        *slot = xstrdup(is_null(s) ? "" : s.text);
        return 0;
    }
    case CT_ENUM: {
        int choice = scalar ? find_choice(key, s) : -1;
        if (choice < 0) {
            char suggestion[96] = "";
            if (scalar) suggest_choice(key, s, suggestion, sizeof suggestion);
            return config_fail(err, where, mark, label, "expected %s, got %s%s", expected, got, suggestion);
        }
        *(int *)field = choice;
        return 0;
    }
    case CT_STRINGS: {
        StringList list;
        if (read_string_list(key, doc, node, where, label, &list, err)) return -1;
        StringList *slot = field;
        free_strings(slot->items, slot->count);
        *slot = list;
        return 0;
    }
    case CT_FLOATMAP: {
        FloatMap map;
        if (read_float_map(key, doc, node, where, label, &map, err)) return -1;
        FloatMap *slot = field;
        free_float_map(slot);
        *slot = map;
        return 0;
    }
    }
    return error_set(err, "%s: unhandled key type", label);
}

void config_free_value(RunConfig *c, const ConfigKey *key) {
    void *field = config_field(c, key);
    if (key->type == CT_STRING) {
        char **slot = field;
        free(*slot);
        *slot = NULL;
    } else if (key->type == CT_STRINGS) {
        StringList *slot = field;
        free_strings(slot->items, slot->count);
        *slot = (StringList){NULL, 0};
    } else if (key->type == CT_FLOATMAP) {
        free_float_map(field);
    }
}

void config_copy_value(RunConfig *dst, const RunConfig *src, const ConfigKey *key) {
    void *to = config_field(dst, key);
    const void *from = config_field_const(src, key);
    switch (key->type) {
    case CT_INT:
    case CT_ENUM: *(int *)to = *(const int *)from; break;
    case CT_FLOAT: *(double *)to = *(const double *)from; break;
    case CT_BOOL: *(bool *)to = *(const bool *)from; break;
    case CT_STRING: {
        const char *s = *(char *const *)from;
        *(char **)to = s ? xstrdup(s) : NULL;
        break;
    }
    case CT_STRINGS: {
        const StringList *a = from;
        StringList b = {xcalloc((size_t)a->count, sizeof(char *)), a->count};
        for (int i = 0; i < a->count; i++) b.items[i] = xstrdup(a->items[i]);
        *(StringList *)to = b;
        break;
    }
    case CT_FLOATMAP: {
        const FloatMap *a = from;
        FloatMap b = {xcalloc((size_t)a->count, sizeof(char *)), xcalloc((size_t)a->count, sizeof(double)), a->count};
        for (int i = 0; i < a->count; i++) {
            b.names[i] = xstrdup(a->names[i]);
            b.values[i] = a->values[i];
        }
        *(FloatMap *)to = b;
        break;
    }
    }
}

// ---------------------------------------------------------------------------------------
// Writing values

void config_emit_quoted(FILE *out, const char *s) {
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\x%02X", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

// The shortest %g text that reads back as exactly v.
void config_emit_double(FILE *out, double v) {
    char text[40];
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, sizeof text, "%.*g", precision, v);
        if (strtod(text, NULL) == v) break;
    }
    fputs(text, out);
}

void config_emit_value(FILE *out, const RunConfig *c, const ConfigKey *key) {
    const void *field = config_field_const(c, key);
    switch (key->type) {
    case CT_INT: fprintf(out, "%d", *(const int *)field); break;
    case CT_FLOAT: config_emit_double(out, *(const double *)field); break;
    case CT_BOOL: fputs(*(const bool *)field ? "true" : "false", out); break;
    case CT_STRING: config_emit_quoted(out, *(char *const *)field ? *(char *const *)field : ""); break;
    case CT_ENUM: fputs(key->choices[*(const int *)field], out); break;
    case CT_STRINGS: {
        const StringList *list = field;
        fputc('[', out);
        for (int i = 0; i < list->count; i++) {
            if (i) fputs(", ", out);
            config_emit_quoted(out, list->items[i]);
        }
        fputc(']', out);
        break;
    }
    case CT_FLOATMAP: {
        const FloatMap *map = field;
        fputc('{', out);
        for (int i = 0; i < map->count; i++) {
            fprintf(out, "%s%s: ", i ? ", " : "", map->names[i]);
            config_emit_double(out, map->values[i]);
        }
        fputc('}', out);
        break;
    }
    }
}

// A plain scalar can be written back plain in flow context when it has only these
// characters; numbers, booleans and enum names always do.
static bool plain_is_safe(const char *s) {
    if (!*s || (s[0] == '-' && !s[1])) return false;
    for (const char *p = s; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                  ch == '.' || ch == '/' || ch == '+' || ch == '-';
        if (!ok) return false;
    }
    return true;
}

static void emit_node(FILE *out, yaml_document_t *doc, yaml_node_t *node) {
    Scalar s;
    if (get_scalar(node, &s)) {
        if (is_null(s))
            fputs("null", out);
        else if (s.plain && plain_is_safe(s.text))
            fputs(s.text, out);
        else
            config_emit_quoted(out, s.text);  // a plain scalar here is only valid as a string anyway
    } else if (node->type == YAML_SEQUENCE_NODE) {
        fputc('[', out);
        for (yaml_node_item_t *item = node->data.sequence.items.start; item < node->data.sequence.items.top; item++) {
            if (item != node->data.sequence.items.start) fputs(", ", out);
            emit_node(out, doc, yaml_document_get_node(doc, *item));
        }
        fputc(']', out);
    } else {
        fputc('{', out);
        for (yaml_node_pair_t *pair = node->data.mapping.pairs.start; pair < node->data.mapping.pairs.top; pair++) {
            if (pair != node->data.mapping.pairs.start) fputs(", ", out);
            emit_node(out, doc, yaml_document_get_node(doc, pair->key));
            fputs(": ", out);
            emit_node(out, doc, yaml_document_get_node(doc, pair->value));
        }
        fputc('}', out);
    }
}

char *config_node_to_flow(yaml_document_t *doc, yaml_node_t *node) {
    char *text = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&text, &size);
    if (!out) {
        fprintf(stderr, "mambaprune: open_memstream failed\n");
        abort();
    }
    emit_node(out, doc, node);
    fclose(out);
    return text;
}
