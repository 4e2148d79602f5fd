// libFuzzer target: the safetensors reader: the header (JSON, dtypes, shapes, offsets and
// the data layout), then every tensor read as float32 or integers.
#include <stdint.h>
#include <stdlib.h>

#include "io/safetensors.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_file("model.safetensors", data, size);
    if (!path) return 0;
    SafetensorsFile file;
    Error err;
    if (safetensors_open(&file, path, &err) != 0) return 0;
    for (int i = 0; i < file.n_tensors; i++) {
        const SafetensorsTensor *t = &file.tensors[i];
        if (t->n_elements > (1u << 20)) continue;  // a valid header may describe large tensors
        float *values = malloc(sizeof(float) * (t->n_elements ? t->n_elements : 1));
        safetensors_read_f32(&file, t, values, &err);
        free(values);
    }
    safetensors_close(&file);
    return 0;
}
