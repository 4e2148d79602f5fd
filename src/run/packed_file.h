// The packed model file: an inference model (infer/infer.h) saved as it runs, each linear
// layer in its packed format (the arrays of sparse/packed.h, byte for byte) and the small
// tensors and the tied embedding dense, so that loading it reads straight into the
// kernels' arrays and never builds the dense weights. It is a safetensors file, readable
// by any safetensors reader:
//
//   metadata  format = "mambaprune-packed", version = "1", config.<key> = the model sizes
//             (d_model, n_layer, vocab_size, vocab_padded, d_state, d_conv, expand,
//             dt_rank, norm_eps), <linear>.format = dense | bitmap | csr16 | 2:4,
//             <tensor>.checksum = 16 hex digits, a 64-bit hash of the array as loaded
//             head = fp32 | bf16 | int8: how the tied embedding is held (absent: fp32)
//   tensors   backbone.embeddings.weight (V, d: F32, or BF16 / I8 by head, with
//             backbone.embeddings.scale (V, F32) for int8), backbone.norm_f.weight (d), and for each
//             layer its norm, conv1d weight (D, 1, K) and bias, dt_proj bias, A_log, D
//             under their transformers names; each linear <name> (e.g.
//             backbone.layers.0.mixer.in_proj.weight) as <name>.values (F32, or BF16 with
//             the bf16 option) and, by format, <name>.bitmap (U8, rows x stride),
//             <name>.row_start (U32, rows + 1), <name>.col_index (U16, nnz),
//             <name>.nm_index (U8, rows x cols/4)
//
// Loading checks everything: the header (safetensors_open), every expected tensor and no
// other, dtypes and sizes, the packed arrays' consistency (packed_matrix_validate) and
// each array's checksum; errors name the file and the tensor.
#ifndef MP_RUN_PACKED_FILE_H
#define MP_RUN_PACKED_FILE_H

#include <stdbool.h>

#include "core/error.h"
#include "infer/infer.h"

#define PACKED_FILE_FORMAT "mambaprune-packed"
#define PACKED_FILE_VERSION "1"

typedef struct PackedFileOptions {
    // Store the linears' values and the embedding as bfloat16 (rounded to nearest even):
    // a smaller file, not an exact one (the loaded weights are the rounded ones, in fp32).
    bool bf16;
} PackedFileOptions;

// Writes model to path atomically.
int packed_file_save(const char *path, const InferModel *model, const PackedFileOptions *options, Error *err);
// Whether path looks like a packed model file (a safetensors header that names the format);
// packed_file_load then checks it. Never fails.
bool packed_file_detect(const char *path);
// Reads a packed model file into *model (which the caller frees with infer_model_free).
int packed_file_load(const char *path, InferModel *model, Error *err);

#endif
