// Saving and loading the packed model file (see packed_file.h) through the safetensors
// reader and writer of io/safetensors.h.
#include "run/packed_file.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

// A 64-bit FNV-1a over 8-byte words (then the tail bytes): catches flipped bytes in an array.
static uint64_t checksum(const void *data, size_t size) {
    const unsigned char *p = data;
    uint64_t h = 0xcbf29ce484222325ull;
    size_t i = 0;
    for (; i + 8 <= size; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x100000001b3ull;
    }
    for (; i < size; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h ^ size;
}

// One array of the file: its tensor name, where it lives in the model, its element type.
typedef struct Array {
    char name[160];
    SafetensorsDtype dtype;   // as stored
    int ndim;
    int64_t shape[3];
    size_t count;             // elements
    void *data;               // the model's array (float for F32/BF16)
    bool is_float;
} Array;

// Every array of the model in file order, and the linears with their names.
typedef struct Layout {
    Array *arrays;
    int n;
    char (*linear_names)[96];
    const PackedMatrix **linears;
    int n_linears;
} Layout;

static Array *add(Layout *l, const char *name, SafetensorsDtype dtype, void *data, size_t count, int ndim,
                  int64_t d0, int64_t d1, int64_t d2) {
    Array *a = &l->arrays[l->n++];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->dtype = dtype;
    a->data = data;
    a->count = count;
    a->ndim = ndim;
    a->shape[0] = d0, a->shape[1] = d1, a->shape[2] = d2;
    a->is_float = dtype == SAFETENSORS_F32;
    return a;
}

// Number of floats in a packed matrix's values array (without the padding).
static size_t value_count(const PackedMatrix *m) {
    switch (m->format) {
    case PACKED_DENSE: return (size_t)m->rows * m->cols;
    case PACKED_NM24: return (size_t)m->rows * m->cols / 2;
    default: return m->nnz;
    }
}

static void add_linear(Layout *l, const char *name, const PackedMatrix *m) {
    char buf[160];
    size_t nv = value_count(m);
    snprintf(buf, sizeof buf, "%s.values", name);
    add(l, buf, SAFETENSORS_F32, m->values, nv, 1, (int64_t)nv, 0, 0);
    if (m->bitmap) {
        snprintf(buf, sizeof buf, "%s.bitmap", name);
        add(l, buf, SAFETENSORS_U8, m->bitmap, (size_t)m->rows * m->bitmap_stride, 2, m->rows, m->bitmap_stride, 0);
    }
    if (m->row_start) {
        snprintf(buf, sizeof buf, "%s.row_start", name);
        add(l, buf, SAFETENSORS_U32, m->row_start, (size_t)m->rows + 1, 1, m->rows + 1, 0, 0);
    }
    if (m->col_index) {
        snprintf(buf, sizeof buf, "%s.col_index", name);
        add(l, buf, SAFETENSORS_U16, m->col_index, m->nnz, 1, (int64_t)m->nnz, 0, 0);
    }
    if (m->nm_index) {
        snprintf(buf, sizeof buf, "%s.nm_index", name);
        add(l, buf, SAFETENSORS_U8, m->nm_index, (size_t)m->rows * (m->cols / 4), 2, m->rows, m->cols / 4, 0);
    }
}

// The layout of a model whose linears already have their formats and arrays.
static void layout_build(Layout *l, const InferModel *model) {
    const MambaConfig *c = &model->config;
    int d = c->d_model, D = c->d_inner, N = c->d_state, K = c->d_conv;
    l->n = 0;
    l->arrays = xcalloc((size_t)(3 + c->n_layer * (6 + 5 * INFER_N_LINEARS)), sizeof(Array));
    l->n_linears = c->n_layer * INFER_N_LINEARS;
    l->linear_names = xcalloc((size_t)l->n_linears, sizeof *l->linear_names);
    l->linears = xcalloc((size_t)l->n_linears, sizeof *l->linears);
    const size_t n_embedding = (size_t)c->vocab_padded * d;
    if (model->head_format == LOWP_BF16) {
        add(l, "backbone.embeddings.weight", SAFETENSORS_BF16, model->head.bf16, n_embedding, 2, c->vocab_padded, d, 0);
    } else if (model->head_format == LOWP_INT8) {
        add(l, "backbone.embeddings.weight", SAFETENSORS_I8, model->head.i8, n_embedding, 2, c->vocab_padded, d, 0);
        add(l, "backbone.embeddings.scale", SAFETENSORS_F32, model->head.scale, (size_t)c->vocab_padded, 1,
            c->vocab_padded, 0, 0);
    } else {
        add(l, "backbone.embeddings.weight", SAFETENSORS_F32, model->embedding, n_embedding, 2, c->vocab_padded, d, 0);
    }
    add(l, "backbone.norm_f.weight", SAFETENSORS_F32, model->norm_f_weight, (size_t)d, 1, d, 0, 0);
    char name[96];
    for (int i = 0; i < c->n_layer; i++) {
        InferLayer *ly = &model->layers[i];
#define LAYER_NAME(suffix) (snprintf(name, sizeof name, "backbone.layers.%d.%s", i, suffix), name)
        add(l, LAYER_NAME("norm.weight"), SAFETENSORS_F32, ly->norm_weight, (size_t)d, 1, d, 0, 0);
        add(l, LAYER_NAME("mixer.conv1d.weight"), SAFETENSORS_F32, ly->conv1d_weight, (size_t)D * K, 3, D, 1, K);
        add(l, LAYER_NAME("mixer.conv1d.bias"), SAFETENSORS_F32, ly->conv1d_bias, (size_t)D, 1, D, 0, 0);
        add(l, LAYER_NAME("mixer.dt_proj.bias"), SAFETENSORS_F32, ly->dt_proj_bias, (size_t)D, 1, D, 0, 0);
        add(l, LAYER_NAME("mixer.A_log"), SAFETENSORS_F32, ly->A_log, (size_t)D * N, 2, D, N, 0);
        add(l, LAYER_NAME("mixer.D"), SAFETENSORS_F32, ly->D, (size_t)D, 1, D, 0, 0);
        for (int k = 0; k < INFER_N_LINEARS; k++) {
            int j = i * INFER_N_LINEARS + k;
            snprintf(l->linear_names[j], sizeof l->linear_names[j], "backbone.layers.%d.mixer.%s.weight", i,
                     infer_linear_name((InferLinear)k));
            l->linears[j] = &ly->linear[k];
            add_linear(l, l->linear_names[j], &ly->linear[k]);
        }
#undef LAYER_NAME
    }
}

static void layout_free(Layout *l) {
    free(l->arrays);
    free(l->linear_names);
    free(l->linears);
}

static size_t element_size(const Array *a) { return a->is_float ? sizeof(float) : safetensors_dtype_size(a->dtype); }

// The embedding and the linears' values: what the bf16 option rounds.
static bool roundable(const Array *a) {
    size_t n = strlen(a->name);
    return a->is_float && (strcmp(a->name, "backbone.embeddings.weight") == 0 ||
                           (n > 7 && strcmp(a->name + n - 7, ".values") == 0));
}

int packed_file_save(const char *path, const InferModel *model, const PackedFileOptions *options, Error *err) {
    if (infer_model_check(model, err) != 0) return error_prefix(err, "%s: not saved", path);
    const MambaConfig *c = &model->config;
    Layout l;
    layout_build(&l, model);
    SafetensorsWriteTensor *tensors = xcalloc((size_t)l.n, sizeof *tensors);
    void **converted = xcalloc((size_t)l.n, sizeof *converted);
    int n_meta = 0, max_meta = 16 + l.n + l.n_linears * 2;
    SafetensorsMetadata *meta = xcalloc((size_t)max_meta, sizeof *meta);
    char (*keys)[200] = xcalloc((size_t)max_meta, sizeof *keys);
    char (*values)[64] = xcalloc((size_t)max_meta, sizeof *values);
#define META(fmt_key, fmt_value, ...)                                                                      \
    do {                                                                                                   \
        snprintf(keys[n_meta], sizeof keys[0], "%s", fmt_key);                                             \
        snprintf(values[n_meta], sizeof values[0], fmt_value, __VA_ARGS__);                               \
        meta[n_meta] = (SafetensorsMetadata){keys[n_meta], values[n_meta]};                                \
        n_meta++;                                                                                          \
    } while (0)
    META("format", "%s", PACKED_FILE_FORMAT);
    META("version", "%s", PACKED_FILE_VERSION);
    META("config.d_model", "%d", c->d_model);
    META("config.n_layer", "%d", c->n_layer);
    META("config.vocab_size", "%d", c->vocab_size);
    META("config.vocab_padded", "%d", c->vocab_padded);
    META("config.d_state", "%d", c->d_state);
    META("config.d_conv", "%d", c->d_conv);
    META("config.expand", "%d", c->expand);
    META("config.dt_rank", "%d", c->dt_rank);
    META("config.norm_eps", "%.9g", (double)c->norm_eps);
    META("values", "%s", options && options->bf16 ? "bf16" : "f32");
    META("head", "%s", lowp_format_name(model->head_format));
    char key[200];
    for (int j = 0; j < l.n_linears; j++) {
        snprintf(key, sizeof key, "%s.format", l.linear_names[j]);
        META(key, "%s", packed_format_name(l.linears[j]->format));
        snprintf(key, sizeof key, "%s.nnz", l.linear_names[j]);
        META(key, "%zu", l.linears[j]->nnz);
    }
    for (int i = 0; i < l.n; i++) {
        Array *a = &l.arrays[i];
        SafetensorsWriteTensor *t = &tensors[i];
        t->name = a->name;
        t->dtype = a->dtype;
        t->ndim = a->ndim;
        for (int k = 0; k < a->ndim; k++) t->shape[k] = a->shape[k];
        t->data = a->data;
        if (options && options->bf16 && roundable(a)) {
            // The file holds bf16; the checksum is of the floats the loader will hold.
            uint16_t *half = xmalloc(sizeof(uint16_t) * (a->count ? a->count : 1));
            float *back = xmalloc(sizeof(float) * (a->count ? a->count : 1));
            const float *f = a->data;
            for (size_t e = 0; e < a->count; e++) back[e] = lowp_bf16_to_float(half[e] = lowp_float_to_bf16(f[e]));
            t->dtype = SAFETENSORS_BF16;
            t->data = half;
            converted[i] = half;
            snprintf(key, sizeof key, "%s.checksum", a->name);
            META(key, "%016" PRIx64, checksum(back, sizeof(float) * a->count));
            free(back);
            continue;
        }
        snprintf(key, sizeof key, "%s.checksum", a->name);
        META(key, "%016" PRIx64, checksum(a->data, element_size(a) * a->count));
    }
#undef META
    int rc = safetensors_write(path, tensors, l.n, meta, n_meta, err);
    for (int i = 0; i < l.n; i++) free(converted[i]);
    free(converted), free(tensors), free(meta), free(keys), free(values);
    layout_free(&l);
    return rc;
}

bool packed_file_detect(const char *path) {
    // Only the header's text: a truncated or corrupt packed file is still recognised, so
    // that loading it reports what is wrong with it as a packed file.
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    unsigned char len_bytes[8];
    bool yes = false;
    if (fread(len_bytes, 1, 8, f) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | len_bytes[i];
        if (n > 0 && n <= SAFETENSORS_MAX_HEADER_BYTES) {
            char *text = xmalloc(n + 1);
            size_t got = fread(text, 1, n, f);
            text[got] = '\0';
            yes = text[0] == '{' && strstr(text, "\"" PACKED_FILE_FORMAT "\"") != NULL;
            free(text);
        }
    }
    fclose(f);
    return yes;
}

// An integer metadata value, checked.
static int meta_long(const SafetensorsFile *f, const char *key, long minimum, long *out, Error *err) {
    const char *text = safetensors_metadata_get(f, key);
    if (!text) return error_set(err, "%s: metadata '%s' is missing", f->path, key);
    char *end;
    long v = strtol(text, &end, 10);
    if (*text == '\0' || *end != '\0' || v < minimum)
        return error_set(err, "%s: metadata '%s': expected an integer >= %ld, got '%s'", f->path, key, minimum, text);
    *out = v;
    return 0;
}

static int read_config(const SafetensorsFile *f, MambaConfig *c, Error *err) {
    const char *version = safetensors_metadata_get(f, "version");
    if (!version || strcmp(version, PACKED_FILE_VERSION) != 0)
        return error_set(err, "%s: packed model version '%s', expected '%s'", f->path, version ? version : "(none)",
                         PACKED_FILE_VERSION);
    mamba_config_defaults(c);
    long v[9];
    const char *keys[] = {"config.d_model", "config.n_layer", "config.vocab_size", "config.vocab_padded",
                          "config.d_state", "config.d_conv",  "config.expand",     "config.dt_rank"};
    for (int i = 0; i < 8; i++)
        if (meta_long(f, keys[i], 1, &v[i], err) != 0) return -1;
    for (int i = 0; i < 8; i++)
        if (v[i] > 1000000000L) return error_set(err, "%s: metadata '%s' = %ld is out of range", f->path, keys[i], v[i]);
    c->d_model = (int)v[0], c->n_layer = (int)v[1], c->vocab_size = (int)v[2];
    c->d_state = (int)v[4], c->d_conv = (int)v[5], c->expand = (int)v[6], c->dt_rank = (int)v[7];
    // The padding multiple that gives the stored rows: the rows themselves always do.
    c->pad_vocab_size_multiple = (int)v[3];
    const char *eps = safetensors_metadata_get(f, "config.norm_eps");
    char *end = NULL;
    double e = eps ? strtod(eps, &end) : 0.0;
    if (!eps || *eps == '\0' || *end != '\0' || !(e > 0.0 && e < 1.0))
        return error_set(err, "%s: metadata 'config.norm_eps': expected a number in (0, 1), got '%s'", f->path,
                         eps ? eps : "(missing)");
    c->norm_eps = (float)e;
    if (mamba_config_finish(c, err) != 0) return error_prefix(err, "%s: config", f->path);
    if (c->vocab_padded != v[3])
        return error_set(err, "%s: metadata config.vocab_padded %ld is not vocab_size %d padded", f->path, v[3],
                         c->vocab_size);
    return 0;
}

static int parse_format(const SafetensorsFile *f, const char *name, PackedFormat *out, Error *err) {
    char key[200];
    snprintf(key, sizeof key, "%s.format", name);
    const char *text = safetensors_metadata_get(f, key);
    if (!text) return error_set(err, "%s: metadata '%s' is missing", f->path, key);
    for (int k = 0; k < PACKED_N_FORMATS; k++)
        if (strcmp(text, packed_format_name((PackedFormat)k)) == 0) return *out = (PackedFormat)k, 0;
    return error_set(err, "%s: metadata '%s': unknown format '%s' (expected dense, bitmap, csr16 or 2:4)", f->path, key,
                     text);
}

// Reads one array: the tensor must exist with the dtype (F32 arrays may be stored as
// BF16), the element count and the shape expected, and its checksum must match.
static int read_array(const SafetensorsFile *f, const Array *a, Error *err) {
    const SafetensorsTensor *t = safetensors_find(f, a->name);
    if (!t) return error_set(err, "%s: tensor '%s' is missing", f->path, a->name);
    char want[96], got[96];
    safetensors_format_shape(want, sizeof want, a->ndim, a->shape);
    safetensors_format_shape(got, sizeof got, t->ndim, t->shape);
    if (strcmp(want, got) != 0)
        return error_set(err, "%s: tensor '%s': shape %s, expected %s", f->path, a->name, got, want);
    int rc;
    if (a->is_float) {
        if (t->dtype != SAFETENSORS_F32 && t->dtype != SAFETENSORS_BF16)
            return error_set(err, "%s: tensor '%s': dtype %s, expected F32 or BF16", f->path, a->name,
                             safetensors_dtype_name(t->dtype));
        rc = safetensors_read_f32(f, t, a->data, err);
    } else {
        rc = safetensors_read_raw(f, t, a->dtype, a->data, err);
    }
    if (rc != 0) return -1;
    char key[200];
    snprintf(key, sizeof key, "%s.checksum", a->name);
    const char *text = safetensors_metadata_get(f, key);
    if (!text) return error_set(err, "%s: metadata '%s' is missing", f->path, key);
    char actual[17];
    snprintf(actual, sizeof actual, "%016" PRIx64, checksum(a->data, element_size(a) * a->count));
    if (strcmp(actual, text) != 0)
        return error_set(err, "%s: tensor '%s': checksum %s, expected %s: the file is corrupt", f->path, a->name, actual,
                         text);
    if (a->dtype == SAFETENSORS_BF16 && !a->is_float)  // a bf16 head held as bf16
        for (size_t i = 0; i < a->count; i++)
            if ((((const uint16_t *)a->data)[i] & 0x7f80u) == 0x7f80u)
                return error_set(err, "%s: tensor '%s': element %zu is NaN or infinite: the model cannot be run", f->path,
                                 a->name, i);
    // A model that holds a NaN or an infinity gives garbage, not an error, when it runs.
    if (a->is_float)
        for (size_t i = 0; i < a->count; i++)
            if (!isfinite(((const float *)a->data)[i]))
                return error_set(err, "%s: tensor '%s': element %zu is %s: the model cannot be run", f->path, a->name, i,
                                 isnan(((const float *)a->data)[i]) ? "NaN" : "infinite");
    return 0;
}

int packed_file_load(const char *path, InferModel *model, Error *err) {
    SafetensorsFile f;
    if (safetensors_open(&f, path, err) != 0) return -1;
    const char *format = safetensors_metadata_get(&f, "format");
    MambaConfig c;
    int rc = 0;
    if (!format || strcmp(format, PACKED_FILE_FORMAT) != 0)
        rc = error_set(err, "%s: not a packed model file (metadata format '%s', expected '%s')", path,
                       format ? format : "(none)", PACKED_FILE_FORMAT);
    if (rc == 0) rc = read_config(&f, &c, err);
    if (rc != 0) {
        safetensors_close(&f);
        return -1;
    }
    infer_model_alloc(model, &c);
    // The head's precision (files written before it existed hold fp32).
    const char *head = safetensors_metadata_get(&f, "head");
    int head_format = head ? lowp_format_parse(head) : LOWP_F32;
    if (head_format < 0)
        rc = error_set(err, "%s: metadata 'head': unknown precision '%s' (expected fp32, bf16 or int8)", path, head);
    else
        infer_model_alloc_head(model, (LowpFormat)head_format);
    // Give every linear its format and arrays first, so the layout knows them.
    for (int i = 0; i < c.n_layer && rc == 0; i++) {
        for (int k = 0; k < INFER_N_LINEARS && rc == 0; k++) {
            PackedMatrix *m = &model->layers[i].linear[k];
            char name[96], key[200];
            snprintf(name, sizeof name, "backbone.layers.%d.mixer.%s.weight", i, infer_linear_name((InferLinear)k));
            PackedFormat fmt = PACKED_DENSE;
            long nnz = 0;
            snprintf(key, sizeof key, "%s.nnz", name);
            rc = parse_format(&f, name, &fmt, err);
            if (rc == 0) rc = meta_long(&f, key, 0, &nnz, err);
            if (rc == 0 && (size_t)nnz > (size_t)m->rows * (size_t)m->cols)
                rc = error_set(err, "%s: metadata '%s' = %ld is more than the %d x %d weights", path, key, nnz, m->rows,
                               m->cols);
            if (rc == 0) {
                int rows = m->rows, cols = m->cols;
                packed_matrix_alloc(m, fmt, rows, cols, (size_t)nnz);
                m->nnz = (size_t)nnz;
            }
        }
    }
    Layout l = {0};
    if (rc == 0) layout_build(&l, model);
    for (int i = 0; rc == 0 && i < l.n; i++) rc = read_array(&f, &l.arrays[i], err);
    for (int j = 0; rc == 0 && j < l.n_linears; j++)
        if (packed_matrix_validate(l.linears[j], err) != 0) rc = error_prefix(err, "%s: %s", path, l.linear_names[j]);
    if (rc == 0 && f.n_tensors != l.n) {
        // Every expected tensor was found, so the others are extra: name the first.
        for (int i = 0; i < f.n_tensors; i++) {
            int known = 0;
            for (int j = 0; j < l.n && !known; j++) known = strcmp(f.tensors[i].name, l.arrays[j].name) == 0;
            if (!known) {
                rc = error_set(err, "%s: unexpected tensor '%s' (%d tensors, expected %d)", path, f.tensors[i].name,
                               f.n_tensors, l.n);
                break;
            }
        }
    }
    if (rc == 0) rc = infer_model_check(model, err);
    if (rc == 0) infer_model_derive(model);
    if (l.arrays) layout_free(&l);
    safetensors_close(&f);
    if (rc != 0) infer_model_free(model);
    return rc;
}
