// Reader and writer of the safetensors format: an 8-byte little-endian header length, a
// JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ..., optional
// "__metadata__": {string: string}} padded with spaces, then the raw little-endian data.
//
// Reading: safetensors_open() reads and checks the whole header (dtypes, shapes, offsets in
// range, no overlap, no hole, sizes = dtype size * elements, file not truncated) and keeps
// the file open; each tensor's bytes are then read on demand with pread() straight into
// the caller's buffer (F32) or through a small staging buffer (converted dtypes). Neither
// the whole data region nor an mmap is held, so loading a model costs its float32 tables
// and no second copy. Floats (F32, F16, BF16, F64) read as float32; integers (I32, I64)
// as int64 or int32. Every error names the file, the tensor and what was expected.
//
// Writing: safetensors_write() writes any dtype's raw little-endian bytes (F32, I32 and
// I64 are what this project writes) with an 8-byte aligned header, through a temporary
// file in the same folder that is fsync'ed and renamed into place (atomic).
#ifndef MP_IO_SAFETENSORS_H
#define MP_IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define SAFETENSORS_MAX_DIMS 8
// The reference implementation refuses headers over 100 MB; so do we.
#define SAFETENSORS_MAX_HEADER_BYTES 100000000ull

typedef enum SafetensorsDtype {
    SAFETENSORS_BOOL,
    SAFETENSORS_U8,
    SAFETENSORS_I8,
    SAFETENSORS_F8_E5M2,
    SAFETENSORS_F8_E4M3,
    SAFETENSORS_I16,
    SAFETENSORS_U16,
    SAFETENSORS_F16,
    SAFETENSORS_BF16,
    SAFETENSORS_I32,
    SAFETENSORS_U32,
    SAFETENSORS_F32,
    SAFETENSORS_F64,
    SAFETENSORS_I64,
    SAFETENSORS_U64,
    SAFETENSORS_N_DTYPES
} SafetensorsDtype;

// "F32", "BF16", ...
const char *safetensors_dtype_name(SafetensorsDtype dtype);
// Bytes per element.
size_t safetensors_dtype_size(SafetensorsDtype dtype);

typedef struct SafetensorsTensor {
    char *name;
    SafetensorsDtype dtype;
    int ndim;                                 // 0 for a scalar (one element)
    int64_t shape[SAFETENSORS_MAX_DIMS];
    size_t n_elements;                        // product of shape
    uint64_t begin, end;                      // byte offsets within the data region
} SafetensorsTensor;

typedef struct SafetensorsMetadata {
    char *key, *value;
} SafetensorsMetadata;

typedef struct SafetensorsFile {
    char *path;
    int fd;                                   // open for the reads that follow
    uint64_t data_start;                      // 8 + header length
    uint64_t data_size;                       // bytes of the data region
    SafetensorsTensor *tensors;               // sorted by name
    int n_tensors;
    SafetensorsMetadata *metadata;            // "__metadata__" entries, in file order
    int n_metadata;
} SafetensorsFile;

// Opens path and checks its header (see the top of this file). On failure nothing is
// left open and err says what is wrong, starting with the path.
int safetensors_open(SafetensorsFile *file, const char *path, Error *err);
void safetensors_close(SafetensorsFile *file);
// The tensor called name, or NULL.
const SafetensorsTensor *safetensors_find(const SafetensorsFile *file, const char *name);
// The "__metadata__" value of key, or NULL.
const char *safetensors_metadata_get(const SafetensorsFile *file, const char *key);

// Reads tensor (F32, F16, BF16 or F64) into out, which holds tensor->n_elements floats.
int safetensors_read_f32(const SafetensorsFile *file, const SafetensorsTensor *tensor, float *out, Error *err);
// Reads tensor (I32 or I64) into out, which holds tensor->n_elements integers.
int safetensors_read_i64(const SafetensorsFile *file, const SafetensorsTensor *tensor, int64_t *out, Error *err);
// Like safetensors_read_i64, with a check that every value fits in int32.
int safetensors_read_i32(const SafetensorsFile *file, const SafetensorsTensor *tensor, int32_t *out, Error *err);

// Reads tensor's bytes as stored into out (n_elements * dtype size bytes); its dtype
// must be dtype (any dtype: U8, U16, U32 index arrays, ...).
int safetensors_read_raw(const SafetensorsFile *file, const SafetensorsTensor *tensor, SafetensorsDtype dtype,
                         void *out, Error *err);

// Writes "[64, 16]" (or "[]" for a scalar) into buf.
void safetensors_format_shape(char *buf, size_t buf_size, int ndim, const int64_t *shape);

typedef struct SafetensorsWriteTensor {
    const char *name;
    SafetensorsDtype dtype;
    int ndim;
    int64_t shape[SAFETENSORS_MAX_DIMS];
    const void *data;                         // elements * dtype size bytes, little-endian
} SafetensorsWriteTensor;

// Writes the tensors, in the order given, and the metadata (key/value strings; may be
// NULL when n_metadata is 0) to path, atomically. Names must be unique and not
// "__metadata__".
int safetensors_write(const char *path, const SafetensorsWriteTensor *tensors, int n_tensors,
                      const SafetensorsMetadata *metadata, int n_metadata, Error *err);

#endif
