// libFuzzer target: the data file reader (data_open on a file of unknown kind, as `eval
// --data` opens it): llm.c token files by their magic, else byte text; then its batches.
#include <stdint.h>
#include <stdlib.h>

#include "data/data.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_file("tokens.bin", data, size);
    if (!path) return 0;
    DataOptions options;
    data_options_defaults(&options);
    options.kind = DATA_FILE;
    options.path = path;
    options.val_fraction = 0.5f;
    Dataset ds;
    Error err;
    const int L = 4, B = 2;
    if (data_open(&ds, &options, L, &err) != 0) return 0;
    int32_t tokens[B * L], targets[B * L];
    data_train_batch(&ds, 0, B, L, tokens, targets);
    data_train_batch(&ds, 12345, B, L, tokens, targets);
    long n_val = data_val_batch_count(&ds, B, L);
    if (n_val > 0) data_val_batch(&ds, n_val - 1, B, L, tokens, targets);
    data_close(&ds);
    return 0;
}
