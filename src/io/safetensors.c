// The safetensors reader (header checks, on-demand reads with dtype conversion) and
// writer (aligned header, atomic file); see safetensors.h for the format and the choices.
#include "io/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// defines: atomic_file_begin, atomic_file_write, atomic_file_commit, atomic_file_abort
#include "core/atomic_file.h"

// The format is little-endian; tensors are copied as raw bytes.
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

static const struct {
    const char *name;
    size_t size;
} dtype_info[SAFETENSORS_N_DTYPES] = {
    [SAFETENSORS_BOOL] = {"BOOL", 1},       [SAFETENSORS_U8] = {"U8", 1},   [SAFETENSORS_I8] = {"I8", 1},
    [SAFETENSORS_F8_E5M2] = {"F8_E5M2", 1}, [SAFETENSORS_F8_E4M3] = {"F8_E4M3", 1},
    [SAFETENSORS_I16] = {"I16", 2},         [SAFETENSORS_U16] = {"U16", 2}, [SAFETENSORS_F16] = {"F16", 2},
    [SAFETENSORS_BF16] = {"BF16", 2},       [SAFETENSORS_I32] = {"I32", 4}, [SAFETENSORS_U32] = {"U32", 4},
    [SAFETENSORS_F32] = {"F32", 4},         [SAFETENSORS_F64] = {"F64", 8}, [SAFETENSORS_I64] = {"I64", 8},
    [SAFETENSORS_U64] = {"U64", 8},
};

const char *safetensors_dtype_name(SafetensorsDtype dtype) {
    return (unsigned)dtype < SAFETENSORS_N_DTYPES ? dtype_info[dtype].name : "?";
}

size_t safetensors_dtype_size(SafetensorsDtype dtype) {
    return (unsigned)dtype < SAFETENSORS_N_DTYPES ? dtype_info[dtype].size : 0;
}

static int dtype_from_name(const char *name, SafetensorsDtype *dtype) {
    for (int i = 0; i < SAFETENSORS_N_DTYPES; i++) {
        if (strcmp(name, dtype_info[i].name) == 0) {
            *dtype = (SafetensorsDtype)i;
            return 0;
        }
    }
    return -1;
}

void safetensors_format_shape(char *buf, size_t buf_size, int ndim, const int64_t *shape) {
    size_t used = (size_t)snprintf(buf, buf_size, "[");
    for (int i = 0; i < ndim && used < buf_size; i++)
        used += (size_t)snprintf(buf + used, buf_size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < buf_size) snprintf(buf + used, buf_size - used, "]");
}

// ---------------------------------------------------------------------------------------
// Reading the header

// JSON numbers arrive as doubles: integers are exact up to 2^53.
static bool json_exact_uint(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return false;
    double v = item->valuedouble;
    if (!(v >= 0.0 && v <= 9007199254740992.0 && v == floor(v))) return false;
    *out = (uint64_t)v;
    return true;
}

// Reads exactly size bytes at offset; a short read means the file changed under us.
static int read_at(int fd, void *buf, size_t size, uint64_t offset, const char *path, Error *err) {
    unsigned char *p = buf;
    while (size > 0) {
        ssize_t got = pread(fd, p, size, (off_t)offset);
        if (got < 0) {
            if (errno == EINTR) continue;
            return error_set(err, "%s: read failed at byte %llu: %s", path, (unsigned long long)offset, strerror(errno));
        }
        if (got == 0)
            return error_set(err, "%s: unexpected end of file at byte %llu (was the file truncated?)", path,
                             (unsigned long long)offset);
        p += got;
        size -= (size_t)got;
        offset += (uint64_t)got;
    }
    return 0;
}

// Parses one "name": {"dtype", "shape", "data_offsets"} entry of the header.
static int parse_tensor_entry(const cJSON *entry, SafetensorsTensor *t, const char *path, Error *err) {
    const char *name = entry->string;
    if (!cJSON_IsObject(entry))
        return error_set(err, "%s: tensor '%s': expected an object with dtype, shape and data_offsets", path, name);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsString(dtype)) return error_set(err, "%s: tensor '%s': missing or non-string \"dtype\"", path, name);
    if (dtype_from_name(dtype->valuestring, &t->dtype) != 0)
        return error_set(err,
                         "%s: tensor '%s': unknown dtype '%s' (expected one of BOOL, U8, I8, F8_E5M2, F8_E4M3, "
                         "I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64)",
                         path, name, dtype->valuestring);
    if (!cJSON_IsArray(shape)) return error_set(err, "%s: tensor '%s': missing or non-array \"shape\"", path, name);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > SAFETENSORS_MAX_DIMS)
        return error_set(err, "%s: tensor '%s': %d dimensions, at most %d are supported", path, name, ndim,
                         SAFETENSORS_MAX_DIMS);
    t->ndim = ndim;
    uint64_t n_elements = 1;
    int d = 0;
    const cJSON *dim;
    cJSON_ArrayForEach(dim, shape) {
        uint64_t v;
        if (!json_exact_uint(dim, &v) || v > INT64_MAX)
            return error_set(err, "%s: tensor '%s': shape entry %d is not a non-negative integer", path, name, d);
        t->shape[d++] = (int64_t)v;
        if (__builtin_mul_overflow(n_elements, v, &n_elements))
            return error_set(err, "%s: tensor '%s': shape has too many elements", path, name);
    }
    uint64_t n_bytes;
    if (n_elements > SIZE_MAX || __builtin_mul_overflow(n_elements, (uint64_t)dtype_info[t->dtype].size, &n_bytes))
        return error_set(err, "%s: tensor '%s': shape has too many elements", path, name);
    t->n_elements = (size_t)n_elements;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        !json_exact_uint(cJSON_GetArrayItem(offsets, 0), &t->begin) ||
        !json_exact_uint(cJSON_GetArrayItem(offsets, 1), &t->end))
        return error_set(err, "%s: tensor '%s': \"data_offsets\" must be [begin, end] with non-negative integers",
                         path, name);
    char shape_text[128];
    safetensors_format_shape(shape_text, sizeof shape_text, t->ndim, t->shape);
    if (t->end < t->begin)
        return error_set(err, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin", path, name,
                         (unsigned long long)t->begin, (unsigned long long)t->end);
    if (t->end - t->begin != n_bytes)
        return error_set(err, "%s: tensor '%s': data_offsets [%llu, %llu] hold %llu bytes but %s %s needs %llu", path,
                         name, (unsigned long long)t->begin, (unsigned long long)t->end,
                         (unsigned long long)(t->end - t->begin), dtype_info[t->dtype].name, shape_text,
                         (unsigned long long)n_bytes);
    return 0;
}

static int compare_tensor_names(const void *a, const void *b) {
    return strcmp(((const SafetensorsTensor *)a)->name, ((const SafetensorsTensor *)b)->name);
}

static int compare_tensor_offsets(const void *a, const void *b) {
    const SafetensorsTensor *x = *(const SafetensorsTensor *const *)a, *y = *(const SafetensorsTensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

// The data region must be covered exactly: tensors in range, no overlap, no hole, nothing
// after the last one (the format's rule against polyglot files), and all there.
static int check_data_layout(const SafetensorsFile *file, Error *err) {
    const char *path = file->path;
    for (int i = 0; i < file->n_tensors; i++) {
        const SafetensorsTensor *t = &file->tensors[i];
        if (t->end > file->data_size)
            return error_set(err,
                             "%s: tensor '%s': data_offsets [%llu, %llu] end beyond the %llu bytes of data in the "
                             "file (offsets out of range, or the file is truncated)",
                             path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                             (unsigned long long)file->data_size);
    }
    const SafetensorsTensor **by_offset = xmalloc(sizeof *by_offset * (size_t)(file->n_tensors ? file->n_tensors : 1));
    for (int i = 0; i < file->n_tensors; i++) by_offset[i] = &file->tensors[i];
    qsort(by_offset, (size_t)file->n_tensors, sizeof *by_offset, compare_tensor_offsets);
    uint64_t covered = 0;  // bytes [0, covered) belong to the tensors seen so far
    const SafetensorsTensor *last = NULL;
    int rc = 0;
    for (int i = 0; i < file->n_tensors && rc == 0; i++) {
        const SafetensorsTensor *t = by_offset[i];
        if (t->begin < covered)
            rc = error_set(err, "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap in the data region", path,
                           last->name, (unsigned long long)last->begin, (unsigned long long)last->end, t->name,
                           (unsigned long long)t->begin, (unsigned long long)t->end);
        else if (t->begin > covered)
            rc = error_set(err, "%s: bytes [%llu, %llu) of the data region belong to no tensor (a hole before '%s')",
                           path, (unsigned long long)covered, (unsigned long long)t->begin, t->name);
        covered = t->end;
        last = t;
    }
    free(by_offset);
    if (rc == 0 && covered != file->data_size)
        rc = error_set(err, "%s: %llu bytes after the last tensor belong to no tensor", path,
                       (unsigned long long)(file->data_size - covered));
    return rc;
}

static int parse_metadata(SafetensorsFile *file, const cJSON *metadata, Error *err) {
    if (!cJSON_IsObject(metadata))
        return error_set(err, "%s: \"__metadata__\" must be an object of strings", file->path);
    int n = cJSON_GetArraySize(metadata);
    file->metadata = xcalloc((size_t)(n ? n : 1), sizeof *file->metadata);
    const cJSON *item;
    cJSON_ArrayForEach(item, metadata) {
        if (!cJSON_IsString(item))
            return error_set(err, "%s: \"__metadata__\" value of '%s' is not a string", file->path, item->string);
        file->metadata[file->n_metadata].key = xstrdup(item->string);
        file->metadata[file->n_metadata].value = xstrdup(item->valuestring);
        file->n_metadata++;
    }
    return 0;
}

static int parse_header(SafetensorsFile *file, const char *text, size_t length, Error *err) {
    if (memchr(text, '\0', length))
        return error_set(err, "%s: the header holds a NUL byte (not a safetensors file?)", file->path);
    // The length passed includes the terminating NUL: cJSON requires to see it after the
    // object (and the padding spaces) to accept that nothing else follows.
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, length + 1, &end, 1);
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        return error_set(err, "%s: the header is not valid JSON (error near byte %zu of %zu: \"%.20s\")", file->path,
                         at, length, at < length ? text + at : "");
    }
    int rc = 0;
    if (!cJSON_IsObject(root)) {
        rc = error_set(err, "%s: the header is not a JSON object", file->path);
        goto done;
    }
    int n_entries = cJSON_GetArraySize(root);
    file->tensors = xcalloc((size_t)(n_entries ? n_entries : 1), sizeof *file->tensors);
    const cJSON *entry;
    cJSON_ArrayForEach(entry, root) {
        if (strcmp(entry->string, "__metadata__") == 0) {
            if (file->metadata) {
                rc = error_set(err, "%s: \"__metadata__\" appears twice", file->path);
                goto done;
            }
            if ((rc = parse_metadata(file, entry, err)) != 0) goto done;
            continue;
        }
        SafetensorsTensor *t = &file->tensors[file->n_tensors];
        if ((rc = parse_tensor_entry(entry, t, file->path, err)) != 0) goto done;
        t->name = xstrdup(entry->string);
        file->n_tensors++;
    }
    qsort(file->tensors, (size_t)file->n_tensors, sizeof *file->tensors, compare_tensor_names);
    for (int i = 1; i < file->n_tensors; i++) {
        if (strcmp(file->tensors[i - 1].name, file->tensors[i].name) == 0) {
            rc = error_set(err, "%s: tensor '%s' appears twice in the header", file->path, file->tensors[i].name);
            goto done;
        }
    }
done:
    cJSON_Delete(root);
    return rc;
}

int safetensors_open(SafetensorsFile *file, const char *path, Error *err) {
    memset(file, 0, sizeof *file);
    file->fd = -1;
    file->path = xstrdup(path);
    file->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (file->fd < 0) {
        error_set(err, "%s: cannot open: %s", path, strerror(errno));
        safetensors_close(file);
        return -1;
    }
    struct stat st;
    if (fstat(file->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        error_set(err, "%s: not a regular file", path);
        safetensors_close(file);
        return -1;
    }
    uint64_t file_size = (uint64_t)st.st_size;
    unsigned char length_bytes[8];
    char *header = NULL;
    int rc = 0;
    if (file_size < 8) {
        rc = error_set(err, "%s: the file is %llu bytes, too short for the 8-byte header length", path,
                       (unsigned long long)file_size);
        goto done;
    }
    if ((rc = read_at(file->fd, length_bytes, 8, 0, path, err)) != 0) goto done;
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; i--) header_length = header_length << 8 | length_bytes[i];
    if (header_length > SAFETENSORS_MAX_HEADER_BYTES) {
        rc = error_set(err, "%s: header length %llu is over the %llu-byte limit (not a safetensors file?)", path,
                       (unsigned long long)header_length, SAFETENSORS_MAX_HEADER_BYTES);
        goto done;
    }
    if (header_length > file_size - 8) {
        rc = error_set(err, "%s: header length %llu goes beyond the end of the file (%llu bytes)", path,
                       (unsigned long long)header_length, (unsigned long long)file_size);
        goto done;
    }
    if (header_length < 2) {
        rc = error_set(err, "%s: header length %llu is too short for a JSON object", path,
                       (unsigned long long)header_length);
        goto done;
    }
    header = xmalloc((size_t)header_length + 1);
    if ((rc = read_at(file->fd, header, (size_t)header_length, 8, path, err)) != 0) goto done;
    header[header_length] = '\0';
    file->data_start = 8 + header_length;
    file->data_size = file_size - file->data_start;
    if ((rc = parse_header(file, header, (size_t)header_length, err)) != 0) goto done;
    rc = check_data_layout(file, err);
done:
    free(header);
    if (rc != 0) safetensors_close(file);
    return rc;
}

void safetensors_close(SafetensorsFile *file) {
    if (file->fd >= 0) close(file->fd);
    for (int i = 0; i < file->n_tensors; i++) free(file->tensors[i].name);
    free(file->tensors);
    for (int i = 0; i < file->n_metadata; i++) {
        free(file->metadata[i].key);
        free(file->metadata[i].value);
    }
    free(file->metadata);
    free(file->path);
    memset(file, 0, sizeof *file);
    file->fd = -1;
}

const SafetensorsTensor *safetensors_find(const SafetensorsFile *file, const char *name) {
    SafetensorsTensor key = {.name = (char *)name};
    return bsearch(&key, file->tensors, (size_t)file->n_tensors, sizeof *file->tensors, compare_tensor_names);
}

const char *safetensors_metadata_get(const SafetensorsFile *file, const char *key) {
    for (int i = 0; i < file->n_metadata; i++)
        if (strcmp(file->metadata[i].key, key) == 0) return file->metadata[i].value;
    return NULL;
}

// ---------------------------------------------------------------------------------------
// Reading tensor data, with conversion

// IEEE half: 1 sign, 5 exponent (bias 15), 10 mantissa bits; subnormals, inf and NaN too.
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31;
    uint32_t exponent = (h >> 10) & 0x1f;
    uint32_t mantissa = h & 0x3ff;
    float magnitude;
    if (exponent == 0) {
        magnitude = ldexpf((float)mantissa, -24);  // zero or subnormal: mantissa * 2^-24
    } else if (exponent == 0x1f) {
        magnitude = mantissa ? NAN : INFINITY;
    } else {
        uint32_t bits = (exponent + (127 - 15)) << 23 | mantissa << 13;
        memcpy(&magnitude, &bits, sizeof magnitude);
    }
    uint32_t bits;
    memcpy(&bits, &magnitude, sizeof bits);
    bits |= sign;
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

// bfloat16 is the top half of a float32.
static float bf16_to_float(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

enum { STAGING_BYTES = 1 << 16 };

int safetensors_read_f32(const SafetensorsFile *file, const SafetensorsTensor *t, float *out, Error *err) {
    uint64_t offset = file->data_start + t->begin;
    if (t->dtype == SAFETENSORS_F32) return read_at(file->fd, out, t->n_elements * sizeof(float), offset, file->path, err);
    if (t->dtype != SAFETENSORS_F16 && t->dtype != SAFETENSORS_BF16 && t->dtype != SAFETENSORS_F64)
        return error_set(err, "%s: tensor '%s': dtype %s cannot be read as float32 (expected F32, F16, BF16 or F64)",
                         file->path, t->name, dtype_info[t->dtype].name);
    size_t element_size = dtype_info[t->dtype].size;
    size_t per_chunk = STAGING_BYTES / element_size;
    unsigned char *staging = xmalloc(STAGING_BYTES);
    int rc = 0;
    for (size_t done = 0; done < t->n_elements && rc == 0; done += per_chunk) {
        size_t count = t->n_elements - done < per_chunk ? t->n_elements - done : per_chunk;
        rc = read_at(file->fd, staging, count * element_size, offset + done * element_size, file->path, err);
        for (size_t i = 0; rc == 0 && i < count; i++) {
            if (t->dtype == SAFETENSORS_F64) {
                double v;
                memcpy(&v, staging + 8 * i, 8);
                out[done + i] = (float)v;
            } else {
                uint16_t v;
                memcpy(&v, staging + 2 * i, 2);
                out[done + i] = t->dtype == SAFETENSORS_F16 ? half_to_float(v) : bf16_to_float(v);
            }
        }
    }
    free(staging);
    return rc;
}

int safetensors_read_i64(const SafetensorsFile *file, const SafetensorsTensor *t, int64_t *out, Error *err) {
    uint64_t offset = file->data_start + t->begin;
    if (t->dtype == SAFETENSORS_I64) return read_at(file->fd, out, t->n_elements * 8, offset, file->path, err);
    if (t->dtype != SAFETENSORS_I32)
        return error_set(err, "%s: tensor '%s': dtype %s cannot be read as integers (expected I32 or I64)", file->path,
                         t->name, dtype_info[t->dtype].name);
    int32_t *staging = xmalloc(STAGING_BYTES);
    size_t per_chunk = STAGING_BYTES / sizeof(int32_t);
    int rc = 0;
    for (size_t done = 0; done < t->n_elements && rc == 0; done += per_chunk) {
        size_t count = t->n_elements - done < per_chunk ? t->n_elements - done : per_chunk;
        rc = read_at(file->fd, staging, count * 4, offset + done * 4, file->path, err);
        for (size_t i = 0; rc == 0 && i < count; i++) out[done + i] = staging[i];
    }
    free(staging);
    return rc;
}

int safetensors_read_i32(const SafetensorsFile *file, const SafetensorsTensor *t, int32_t *out, Error *err) {
    if (t->dtype == SAFETENSORS_I32)
        return read_at(file->fd, out, t->n_elements * 4, file->data_start + t->begin, file->path, err);
    int64_t *wide = xmalloc(sizeof *wide * (t->n_elements ? t->n_elements : 1));
    int rc = safetensors_read_i64(file, t, wide, err);
    for (size_t i = 0; rc == 0 && i < t->n_elements; i++) {
        if (wide[i] < INT32_MIN || wide[i] > INT32_MAX)
            rc = error_set(err, "%s: tensor '%s': element %zu = %lld does not fit in int32", file->path, t->name, i,
                           (long long)wide[i]);
        else
            out[i] = (int32_t)wide[i];
    }
    free(wide);
    return rc;
}

int safetensors_read_raw(const SafetensorsFile *file, const SafetensorsTensor *t, SafetensorsDtype dtype, void *out,
                         Error *err) {
    if (t->dtype != dtype)
        return error_set(err, "%s: tensor '%s': dtype %s, expected %s", file->path, t->name, dtype_info[t->dtype].name,
                         dtype_info[dtype].name);
    return read_at(file->fd, out, t->n_elements * dtype_info[dtype].size, file->data_start + t->begin, file->path, err);
}

// ---------------------------------------------------------------------------------------
// Writing

static cJSON *json_uint(uint64_t v) {
    char text[32];
    snprintf(text, sizeof text, "%llu", (unsigned long long)v);
    return cJSON_CreateRaw(text);  // exact, where a double would round past 2^53
}

static int check_write_tensors(const char *path, const SafetensorsWriteTensor *tensors, int n_tensors,
                               uint64_t *n_bytes, Error *err) {
    for (int i = 0; i < n_tensors; i++) {
        const SafetensorsWriteTensor *t = &tensors[i];
        if (!t->name || strcmp(t->name, "__metadata__") == 0)
            return error_set(err, "%s: tensor %d has no name or the reserved name __metadata__", path, i);
        for (int j = 0; j < i; j++)
            if (strcmp(tensors[j].name, t->name) == 0)
                return error_set(err, "%s: tensor '%s' is given twice", path, t->name);
        if ((unsigned)t->dtype >= SAFETENSORS_N_DTYPES)
            return error_set(err, "%s: tensor '%s': invalid dtype %d", path, t->name, (int)t->dtype);
        if (t->ndim < 0 || t->ndim > SAFETENSORS_MAX_DIMS)
            return error_set(err, "%s: tensor '%s': %d dimensions (0 to %d allowed)", path, t->name, t->ndim,
                             SAFETENSORS_MAX_DIMS);
        uint64_t count = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) return error_set(err, "%s: tensor '%s': negative dimension", path, t->name);
            count *= (uint64_t)t->shape[d];
        }
        n_bytes[i] = count * dtype_info[t->dtype].size;
        if (n_bytes[i] > 0 && !t->data) return error_set(err, "%s: tensor '%s': no data", path, t->name);
    }
    return 0;
}

// The header JSON, padded with spaces so that the data starts on an 8-byte boundary.
static char *build_header(const SafetensorsWriteTensor *tensors, int n_tensors, const uint64_t *n_bytes,
                          const SafetensorsMetadata *metadata, int n_metadata, size_t *header_length) {
    cJSON *root = cJSON_CreateObject();
    if (n_metadata > 0) {
        cJSON *meta = cJSON_AddObjectToObject(root, "__metadata__");
        for (int i = 0; i < n_metadata; i++) cJSON_AddStringToObject(meta, metadata[i].key, metadata[i].value);
    }
    uint64_t offset = 0;
    for (int i = 0; i < n_tensors; i++) {
        const SafetensorsWriteTensor *t = &tensors[i];
        cJSON *entry = cJSON_AddObjectToObject(root, t->name);
        cJSON_AddStringToObject(entry, "dtype", dtype_info[t->dtype].name);
        cJSON *shape = cJSON_AddArrayToObject(entry, "shape");
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, json_uint((uint64_t)t->shape[d]));
        cJSON *offsets = cJSON_AddArrayToObject(entry, "data_offsets");
        cJSON_AddItemToArray(offsets, json_uint(offset));
        cJSON_AddItemToArray(offsets, json_uint(offset + n_bytes[i]));
        offset += n_bytes[i];
    }
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return NULL;
    size_t length = strlen(json);
    size_t padded = (length + 7) / 8 * 8;
    char *header = xmalloc(padded + 1);
    memcpy(header, json, length);
    memset(header + length, ' ', padded - length);
    header[padded] = '\0';
    cJSON_free(json);
    *header_length = padded;
    return header;
}

int safetensors_write(const char *path, const SafetensorsWriteTensor *tensors, int n_tensors,
                      const SafetensorsMetadata *metadata, int n_metadata, Error *err) {
    uint64_t *n_bytes = xmalloc(sizeof *n_bytes * (size_t)(n_tensors > 0 ? n_tensors : 1));
    if (check_write_tensors(path, tensors, n_tensors, n_bytes, err) != 0) {
        free(n_bytes);
        return -1;
    }
    for (int i = 0; i < n_metadata; i++) {
        if (!metadata[i].key || !metadata[i].value) {
            free(n_bytes);
            return error_set(err, "%s: metadata entry %d has no key or value", path, i);
        }
    }
    size_t header_length = 0;
    char *header = build_header(tensors, n_tensors, n_bytes, metadata, n_metadata, &header_length);
    if (!header) {
        free(n_bytes);
        return error_set(err, "%s: could not build the JSON header", path);
    }
    unsigned char length_bytes[8];
    for (int i = 0; i < 8; i++) length_bytes[i] = (unsigned char)((uint64_t)header_length >> (8 * i));
    AtomicFile out;
    int rc = atomic_file_begin(&out, path, err);
    if (rc == 0) rc = atomic_file_write(&out, length_bytes, 8, err);
    if (rc == 0) rc = atomic_file_write(&out, header, header_length, err);
    for (int i = 0; i < n_tensors && rc == 0; i++) rc = atomic_file_write(&out, tensors[i].data, n_bytes[i], err);
    if (rc == 0) rc = atomic_file_commit(&out, err);
    else if (out.fp) atomic_file_abort(&out);
    free(header);
    free(n_bytes);
    return rc;
}
