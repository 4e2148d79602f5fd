// libFuzzer target: a transformers folder's config.json (hf_folder_read_config): JSON
// syntax, the keys and types, and the model sizes derived from them.
#include <stdint.h>
#include <string.h>

#include "io/hf_folder.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_file("config.json", data, size);
    if (!path) return 0;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = '\0';
    MambaConfig config;
    Error err;
    if (hf_folder_read_config(dir, &config, &err) == 0) mamba_config_param_count(&config);
    return 0;
}
