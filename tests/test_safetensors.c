// The safetensors reader and writer: a write/read round trip of every written dtype, F16,
// BF16 and F64 conversion from hand-made bytes, and one malformed file per header check,
// each of which must fail with a message that names the file and the problem.
#include <dirent.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/safetensors.h"

#include "check.h"


static char temp_dir[64];

static const char *temp_path(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", temp_dir, name);
    return path;
}

// A file of: the 8-byte little-endian header_length, the header text, data.
static void write_raw(const char *path, uint64_t header_length, const char *header, size_t header_bytes,
                      const void *data, size_t data_size) {
    FILE *fp = fopen(path, "wb");
    unsigned char length_bytes[8];
    for (int i = 0; i < 8; i++) length_bytes[i] = (unsigned char)(header_length >> (8 * i));
    fwrite(length_bytes, 1, 8, fp);
    fwrite(header, 1, header_bytes, fp);
    if (data_size) fwrite(data, 1, data_size, fp);
    fclose(fp);
}

static void write_header_file(const char *path, const char *header, size_t header_bytes, size_t data_size) {
    unsigned char *data = calloc(data_size ? data_size : 1, 1);
    write_raw(path, header_bytes, header, header_bytes, data, data_size);
    free(data);
}

static bool dir_has_temp_files(void) {
    DIR *d = opendir(temp_dir);
    bool found = false;
    for (struct dirent *e; (e = readdir(d)) != NULL;) found = found || strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return found;
}

static bool same_bits(const void *a, const void *b, size_t n) { return memcmp(a, b, n) == 0; }

static void test_round_trip(void) {
    float matrix[12], scalar = 3.25f;
    for (int i = 0; i < 12; i++) matrix[i] = 0.5f * (float)i - 1.0f + 1e-7f * (float)i;
    int64_t ids[6] = {0, 1, -5, (int64_t)1 << 40, INT64_MIN, 63};
    int32_t ids32[4] = {7, -1, INT32_MAX, INT32_MIN};
    SafetensorsWriteTensor tensors[] = {
        {.name = "a.weight", .dtype = SAFETENSORS_F32, .ndim = 2, .shape = {3, 4}, .data = matrix},
        {.name = "scalar", .dtype = SAFETENSORS_F32, .ndim = 0, .data = &scalar},
        {.name = "empty", .dtype = SAFETENSORS_F32, .ndim = 2, .shape = {0, 5}, .data = NULL},
        {.name = "ids", .dtype = SAFETENSORS_I64, .ndim = 2, .shape = {2, 3}, .data = ids},
        {.name = "ids32", .dtype = SAFETENSORS_I32, .ndim = 1, .shape = {4}, .data = ids32},
    };
    SafetensorsMetadata metadata[] = {{"format", "pt"}, {"note", "h\xc3\xa9llo \"quoted\"\n"}};
    const char *path = temp_path("round.safetensors");
    Error err = {{0}};
    int rc = safetensors_write(path, tensors, 5, metadata, 2, &err);
    check(rc == 0, "write 5 tensors (F32 2-d, scalar, empty, I64, I32) %s", rc ? err.message : "");
    check(!dir_has_temp_files(), "no temporary file left after the write");

    // The layout on disk, read without the reader: aligned header padded with spaces.
    FILE *fp = fopen(path, "rb");
    unsigned char length_bytes[8];
    size_t got = fread(length_bytes, 1, 8, fp);
    uint64_t header_length = 0;
    for (int i = 7; i >= 0; i--) header_length = header_length << 8 | length_bytes[i];
    char *header = calloc(header_length + 1, 1);
    got += fread(header, 1, header_length, fp);
    fseek(fp, 0, SEEK_END);
    long file_size = ftell(fp);
    fclose(fp);
    size_t json_end = header_length;
    while (json_end > 0 && header[json_end - 1] == ' ') json_end--;
    check(got == 8 + header_length && header_length % 8 == 0 && header[0] == '{' && header[json_end - 1] == '}',
          "header length %llu is a multiple of 8, JSON object padded with %zu spaces",
          (unsigned long long)header_length, (size_t)header_length - json_end);
    size_t data_bytes = sizeof matrix + sizeof scalar + sizeof ids + sizeof ids32;
    check((size_t)file_size == 8 + header_length + data_bytes, "file size %ld = 8 + header + %zu data bytes", file_size,
          data_bytes);
    free(header);

    SafetensorsFile file;
    rc = safetensors_open(&file, path, &err);
    check(rc == 0, "open the written file %s", rc ? err.message : "");
    if (rc != 0) return;
    check(file.n_tensors == 5 && file.n_metadata == 2, "5 tensors, 2 metadata entries");
    check(safetensors_metadata_get(&file, "format") && strcmp(safetensors_metadata_get(&file, "format"), "pt") == 0 &&
              strcmp(safetensors_metadata_get(&file, "note"), metadata[1].value) == 0 &&
              safetensors_metadata_get(&file, "absent") == NULL,
          "metadata strings read back (escapes and UTF-8 intact)");

    const SafetensorsTensor *t = safetensors_find(&file, "a.weight");
    float matrix_back[12];
    check(t && t->dtype == SAFETENSORS_F32 && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 4 &&
              t->n_elements == 12 && safetensors_read_f32(&file, t, matrix_back, &err) == 0 &&
              same_bits(matrix, matrix_back, sizeof matrix),
          "F32 (3, 4) round trip bit-exact");
    t = safetensors_find(&file, "scalar");
    float scalar_back = 0;
    check(t && t->ndim == 0 && t->n_elements == 1 && safetensors_read_f32(&file, t, &scalar_back, &err) == 0 &&
              scalar_back == scalar,
          "scalar (shape []) round trip");
    t = safetensors_find(&file, "empty");
    check(t && t->n_elements == 0 && t->begin == t->end && safetensors_read_f32(&file, t, NULL, &err) == 0,
          "empty (0, 5) tensor round trip");
    t = safetensors_find(&file, "ids");
    int64_t ids_back[6];
    check(t && t->dtype == SAFETENSORS_I64 && safetensors_read_i64(&file, t, ids_back, &err) == 0 &&
              same_bits(ids, ids_back, sizeof ids),
          "I64 round trip (values beyond int32 included)");
    int32_t narrow[6];
    rc = safetensors_read_i32(&file, t, narrow, &err);
    check_error("I64 value 2^40 read as int32", rc, &err, "'ids'", "does not fit in int32", NULL);
    t = safetensors_find(&file, "ids32");
    int32_t ids32_back[4];
    int64_t ids32_wide[4];
    check(t && safetensors_read_i32(&file, t, ids32_back, &err) == 0 && same_bits(ids32, ids32_back, sizeof ids32) &&
              safetensors_read_i64(&file, t, ids32_wide, &err) == 0 && ids32_wide[3] == INT32_MIN &&
              ids32_wide[2] == INT32_MAX,
          "I32 round trip, as int32 and widened to int64");
    float floats[6];
    rc = safetensors_read_f32(&file, safetensors_find(&file, "ids"), floats, &err);
    check_error("I64 read as float", rc, &err, "'ids'", "cannot be read as float32", NULL);
    rc = safetensors_read_i64(&file, safetensors_find(&file, "a.weight"), ids_back, &err);
    check_error("F32 read as integers", rc, &err, "'a.weight'", "cannot be read as integers", NULL);
    check(safetensors_find(&file, "nope") == NULL, "find of an absent name gives NULL");
    safetensors_close(&file);

    // Overwrite in place: the new content replaces the old one whole.
    float other = -1.5f;
    SafetensorsWriteTensor one = {.name = "x", .dtype = SAFETENSORS_F32, .ndim = 1, .shape = {1}, .data = &other};
    rc = safetensors_write(path, &one, 1, NULL, 0, &err);
    float back = 0;
    rc = rc ? rc : safetensors_open(&file, path, &err);
    check(rc == 0 && file.n_tensors == 1 && file.n_metadata == 0 &&
              safetensors_read_f32(&file, safetensors_find(&file, "x"), &back, &err) == 0 && back == other,
          "overwrite an existing file: only the new tensor is there");
    if (rc == 0) safetensors_close(&file);

    rc = safetensors_write(temp_path("no/such/folder/x.safetensors"), &one, 1, NULL, 0, &err);
    check_error("write into a missing folder", rc, &err, "no/such/folder/x.safetensors", NULL);
    SafetensorsWriteTensor twice[2] = {one, one};
    rc = safetensors_write(temp_path("twice.safetensors"), twice, 2, NULL, 0, &err);
    check_error("write the same name twice", rc, &err, "'x' is given twice", NULL);
    one.name = "__metadata__";
    rc = safetensors_write(temp_path("reserved.safetensors"), &one, 1, NULL, 0, &err);
    check_error("write a tensor called __metadata__", rc, &err, "reserved", NULL);
    check(!dir_has_temp_files(), "no temporary file left after failed writes");
}

static void put_u16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

// Expected values follow from the IEEE definitions, written out by hand.
static void test_conversions(void) {
    const uint16_t half_bits[10] = {0x3C00, 0xC000, 0x3555, 0x7BFF, 0x0001, 0x03FF, 0x0400, 0x8000, 0x7C00, 0x7E00};
    const float half_values[10] = {1.0f, -2.0f, 0.333251953125f, 65504.0f, 0x1p-24f, 0x3ffp-24f, 0x1p-14f,
                                   -0.0f, INFINITY, NAN};
    const uint16_t bf16_bits[6] = {0x3F80, 0xC040, 0x4049, 0x0001, 0x7F80, 0xBF00};
    const float bf16_values[6] = {1.0f, -3.0f, 3.140625f, 0x1p-133f, INFINITY, -0.5f};
    const double f64_values[2] = {0.1, -2.5};
    const int32_t i32_values[3] = {-7, 0, 123456};
    unsigned char data[20 + 12 + 16 + 12];
    for (int i = 0; i < 10; i++) put_u16(data + 2 * i, half_bits[i]);
    for (int i = 0; i < 6; i++) put_u16(data + 20 + 2 * i, bf16_bits[i]);
    memcpy(data + 32, f64_values, 16);
    memcpy(data + 48, i32_values, 12);
    const char *header = "{\"__metadata__\":{\"format\":\"pt\"},"
                         "\"h\":{\"dtype\":\"F16\",\"shape\":[10],\"data_offsets\":[0,20]},"
                         "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[20,32]},"
                         "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[32,48]},"
                         "\"i\":{\"dtype\":\"I32\",\"shape\":[3],\"data_offsets\":[48,60]}}";
    const char *path = temp_path("dtypes.safetensors");
    write_raw(path, strlen(header), header, strlen(header), data, sizeof data);
    SafetensorsFile file;
    Error err = {{0}};
    int rc = safetensors_open(&file, path, &err);
    check(rc == 0, "open a hand-made F16/BF16/F64/I32 file %s", rc ? err.message : "");
    if (rc != 0) return;
    float h[10], b[6], d[2];
    rc = safetensors_read_f32(&file, safetensors_find(&file, "h"), h, &err);
    int bad = 0;
    for (int i = 0; i < 10 && rc == 0; i++) {
        bool ok = isnan(half_values[i]) ? isnan(h[i]) : same_bits(&h[i], &half_values[i], sizeof(float));
        if (!ok) {
            printf("  F16 0x%04X -> %.9g, expected %.9g\n", half_bits[i], h[i], half_values[i]);
            bad++;
        }
    }
    check(rc == 0 && bad == 0, "F16 -> float32: normals, max 65504, subnormals, -0, inf, NaN (%d wrong)", bad);
    rc = safetensors_read_f32(&file, safetensors_find(&file, "b"), b, &err);
    bad = 0;
    for (int i = 0; i < 6 && rc == 0; i++) bad += !same_bits(&b[i], &bf16_values[i], sizeof(float));
    check(rc == 0 && bad == 0, "BF16 -> float32: normals, subnormal, inf (%d wrong)", bad);
    rc = safetensors_read_f32(&file, safetensors_find(&file, "d"), d, &err);
    check(rc == 0 && d[0] == 0.1f && d[1] == -2.5f, "F64 -> float32 rounds to nearest");
    int64_t wide[3];
    rc = safetensors_read_i64(&file, safetensors_find(&file, "i"), wide, &err);
    check(rc == 0 && wide[0] == -7 && wide[1] == 0 && wide[2] == 123456, "I32 -> int64");
    safetensors_close(&file);

    // A large F16 tensor crosses the reader's staging chunks.
    enum { N = 100000 };
    unsigned char *big = malloc(2 * N);
    for (int i = 0; i < N; i++) put_u16(big + 2 * i, (uint16_t)(0x3C00 + (i % 1024)));  // 1 + (i%1024)/1024
    char big_header[128];
    snprintf(big_header, sizeof big_header, "{\"w\":{\"dtype\":\"F16\",\"shape\":[%d],\"data_offsets\":[0,%d]}}", N,
             2 * N);
    write_raw(temp_path("big.safetensors"), strlen(big_header), big_header, strlen(big_header), big, 2 * N);
    free(big);
    float *values = malloc(sizeof(float) * N);
    rc = safetensors_open(&file, temp_path("big.safetensors"), &err);
    rc = rc ? rc : safetensors_read_f32(&file, safetensors_find(&file, "w"), values, &err);
    bad = 0;
    for (int i = 0; rc == 0 && i < N; i++) bad += values[i] != 1.0f + (float)(i % 1024) / 1024.0f;
    check(rc == 0 && bad == 0, "F16 tensor of %d elements (several staging chunks), %d wrong", N, bad);
    if (rc == 0) safetensors_close(&file);
    free(values);
}

typedef struct Malformed {
    const char *label;
    const char *header;
    size_t data_size;     // zero bytes of data after the header
    const char *needle;
} Malformed;

static void test_malformed(void) {
    const Malformed cases[] = {
        {"header not JSON", "{\"a\": {\"dtype\": ", 0, "the header is not valid JSON"},
        {"header not an object", "[1, 2, 3]", 0, "the header is not a JSON object"},
        {"header a JSON string", "\"abc\"", 0, "not a JSON object"},

        {"trailing garbage after the header object", "{} x", 0, "not valid JSON"},
        {"unknown dtype", "{\"w\":{\"dtype\":\"F99\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         "tensor 'w': unknown dtype 'F99'"},
        {"dtype missing", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'w': missing or non-string"},
        {"tensor entry not an object", "{\"w\":[1,2]}", 0, "tensor 'w': expected an object"},
        {"offsets out of range", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4096,4104]}}", 8,
         "tensor 'w': data_offsets [4096, 4104] end beyond the 8 bytes of data"},
        {"overlapping offsets",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, "tensors 'a' [0, 8] and 'b' [4, 12] overlap"},
        {"size mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
         "tensor 'w': data_offsets [0, 8] hold 8 bytes but F32 [3] needs 12"},
        {"end before begin", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8,
         "end before they begin"},
        {"hole in the data region",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         12, "bytes [4, 8) of the data region belong to no tensor"},
        {"bytes after the last tensor", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
         "4 bytes after the last tensor"},
        {"duplicate tensor name",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, "tensor 'w' appears twice"},
        {"negative dimension", "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
         "shape entry 0 is not a non-negative integer"},
        {"fractional dimension", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2, 1.5],\"data_offsets\":[0,4]}}", 4,
         "shape entry 1 is not a non-negative integer"},
        {"nine dimensions", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         "9 dimensions"},
        {"data_offsets with one number", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
         "\"data_offsets\" must be [begin, end]"},
        {"overflowing shape",
         "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}", 4,
         "too many elements"},
        {"metadata value not a string", "{\"__metadata__\":{\"format\":1}}", 0,
         "\"__metadata__\" value of 'format' is not a string"},
        {"metadata not an object", "{\"__metadata__\":[\"pt\"]}", 0, "\"__metadata__\" must be an object"},
    };
    Error err = {{0}};
    SafetensorsFile file;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *path = temp_path("bad.safetensors");
        write_header_file(path, cases[i].header, strlen(cases[i].header), cases[i].data_size);
        int rc = safetensors_open(&file, path, &err);
        check_error(cases[i].label, rc, &err, path, cases[i].needle, NULL);
        if (rc == 0) safetensors_close(&file);
    }

    const char *path = temp_path("nul.safetensors");
    write_header_file(path, "{}\0 abc", 7, 0);
    int rc = safetensors_open(&file, path, &err);
    check_error("header with a NUL byte", rc, &err, path, "NUL byte", NULL);

    // Headers whose length field itself is wrong.
    path = temp_path("bad_length.safetensors");
    write_raw(path, 1000, "{}", 2, NULL, 0);
    rc = safetensors_open(&file, path, &err);
    check_error("header length beyond the file", rc, &err, path, "header length 1000 goes beyond the end of the file (10 bytes)", NULL);
    write_raw(path, (uint64_t)1 << 40, "{}", 2, NULL, 0);
    rc = safetensors_open(&file, path, &err);
    check_error("header length over the 100 MB limit", rc, &err, path, "over the 100000000-byte limit", NULL);
    write_raw(path, 1, "{", 1, NULL, 0);
    rc = safetensors_open(&file, path, &err);
    check_error("header length 1", rc, &err, path, "too short for a JSON object", NULL);
    FILE *fp = fopen(path, "wb");
    fwrite("abcde", 1, 5, fp);
    fclose(fp);
    rc = safetensors_open(&file, path, &err);
    check_error("file of 5 bytes", rc, &err, path, "too short for the 8-byte header length", NULL);
    rc = safetensors_open(&file, temp_path("does_not_exist.safetensors"), &err);
    check_error("missing file", rc, &err, "does_not_exist.safetensors: cannot open", NULL);

    // A good file cut short: the last tensor no longer fits.
    float values[16] = {0};
    SafetensorsWriteTensor w = {.name = "layer.weight", .dtype = SAFETENSORS_F32, .ndim = 2, .shape = {4, 4}, .data = values};
    path = temp_path("truncated.safetensors");
    rc = safetensors_write(path, &w, 1, NULL, 0, &err);
    fp = fopen(path, "rb+");
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fclose(fp);
    rc = rc ? rc : truncate(path, size - 10);
    rc = rc ? rc : safetensors_open(&file, path, &err);
    check_error("truncated data", rc, &err, path, "tensor 'layer.weight'", "end beyond the 54 bytes of data",
                "truncated", NULL);
}

int main(void) {
    snprintf(temp_dir, sizeof temp_dir, "/tmp/test_safetensors_XXXXXX");
    if (!mkdtemp(temp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trip();
    test_conversions();
    test_malformed();
    // Remove what the tests wrote (plain files only).
    DIR *d = opendir(temp_dir);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.') unlink(temp_path(e->d_name));
    closedir(d);
    rmdir(temp_dir);
    printf("%s: %d check(s) failed\n", check_failures ? "FAILED" : "PASSED", check_failures);
    return check_failures ? 1 : 0;
}
