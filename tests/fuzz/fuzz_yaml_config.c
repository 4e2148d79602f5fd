// libFuzzer target: the YAML config loader and its checks (config_load_string,
// config_check), as `mambaprune train --config` runs them on a file's text.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (memchr(data, '\0', size)) return 0;  // the file reader refuses NUL bytes before parsing
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    RunConfig config;
    Error err;
    if (config_load_string(&config, text, "fuzz.yaml", &err) == 0) {
        config_check(&config, &err);
        char *yaml = config_to_yaml(&config);  // what config.yaml and checkpoints store
        RunConfig again;
        if (config_load_string(&again, yaml, "fuzz.yaml (dumped)", &err) != 0) abort();  // a dump always reloads
        config_free(&again);
        free(yaml);
    }
    config_free(&config);
    free(text);
    return 0;
}
