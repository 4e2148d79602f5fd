// Loading a model by path (see model_source.h).
#include "run/model_source.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <stdlib.h>

#include "config/config.h"
#include "core/memory.h"
#include "io/checkpoint.h"
#include "io/hf_folder.h"

// Refuses, before allocating it, a model whose sizes (from a file) cannot fit in memory.
static int check_model_fits(const char *path, const MambaConfig *config, Error *err) {
    uint64_t memory = memory_physical_bytes();
    if (memory == 0) return 0;
    char what[4200];
    snprintf(what, sizeof what, "the model of %s (%lld parameters)", path, (long long)mamba_config_param_count(config));
    return mamba_check_memory(mamba_model_bytes(config), memory, what, "model sizes", "of this machine's memory", err);
}

// A checkpoint's /config holds the resolved model section: its sizes build the model.
static int load_checkpoint(const char *path, MambaModel *model, Error *err) {
    if (checkpoint_probe(path, err) != 0) return -1;
    char *yaml;
    if (checkpoint_read_config(path, &yaml, err) != 0) return -1;
    RunConfig run;
    int rc = config_load_string(&run, yaml, path, err);
    free(yaml);
    MambaConfig config;
    if (rc == 0) {
        config_to_mamba(&run, &config);
        bool values = mamba_head_reads_values(config.head);  // a forecaster has no vocabulary but its n_features
        if (!values && config.vocab_size == 0) rc = error_set(err, "%s: /config has no model.vocab_size", path);
        if (values && config.n_features == 0) rc = error_set(err, "%s: /config has no model.n_features", path);
    }
    config_free(&run);
    if (rc != 0) return -1;
    if (mamba_config_finish(&config, err) != 0) return error_prefix(err, "%s: /config", path);
    if (check_model_fits(path, &config, err) != 0) return -1;
    mamba_model_create(model, &config);
    if (checkpoint_load(path, model->params, model->n_params, NULL, NULL, 0, NULL, err) != 0) {
        mamba_model_free(model);
        return -1;
    }
    return 0;
}

int model_load(const char *path, MambaModel *model, Error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return error_set(err, "%s: cannot open the model: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return load_checkpoint(path, model, err);
    MambaConfig config;
    if (hf_folder_read_config(path, &config, err) != 0) return -1;
    if (check_model_fits(path, &config, err) != 0) return -1;
    mamba_model_create(model, &config);
    if (hf_folder_load_params(path, model->params, model->n_params, err) != 0) {
        mamba_model_free(model);
        return -1;
    }
    return 0;
}
