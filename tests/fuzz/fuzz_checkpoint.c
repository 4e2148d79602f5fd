// libFuzzer target: the HDF5 checkpoint reader, as a resume runs it: the format probe,
// /config, the model it describes, then the parameters, AdamW moments and run state.
#include <stdint.h>
#include <stdlib.h>

#include "config/config.h"
#include "io/checkpoint.h"
#include "optim/adamw.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_file("ckpt.h5", data, size);
    if (!path) return 0;
    Error err;
    char *yaml = NULL;
    if (checkpoint_probe(path, &err) != 0 || checkpoint_read_config(path, &yaml, &err) != 0) return 0;
    RunConfig run;
    int rc = config_load_string(&run, yaml, path, &err);
    free(yaml);
    MambaConfig config;
    if (rc == 0) {
        config_to_mamba(&run, &config);
        rc = config.vocab_size > 0 ? mamba_config_finish(&config, &err) : -1;
    }
    config_free(&run);
    // Sizes that pass the checks but would only measure the fuzzer's memory limit.
    if (rc != 0 || mamba_config_param_count(&config) > (1 << 22)) return 0;
    MambaModel model;
    mamba_model_create(&model, &config);
    AdamW optimizer;
    AdamWOptions options = {0.9, 0.999, 1e-8, 0.0};
    adamw_init(&optimizer, &options);
    for (int i = 0; i < model.n_params; i++) adamw_add(&optimizer, model.params[i].tensor, true);
    CheckpointState state = {0};
    checkpoint_load(path, model.params, model.n_params, &optimizer, NULL, 0, &state, &err);
    adamw_free(&optimizer);
    mamba_model_free(&model);
    return 0;
}
