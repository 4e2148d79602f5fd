// Loading a model by path (see model_source.h).
#include "cli/model_source.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "io/hf_folder.h"

int model_load(const char *path, MambaModel *model, Error *err) {
    struct stat st;
    if (stat(path, &st) != 0) return error_set(err, "%s: cannot open the model: %s", path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return error_set(err, "%s: loading a model from a checkpoint file is not implemented yet; give a "
                              "transformers folder (config.json + model.safetensors)", path);
    MambaConfig config;
    if (hf_folder_read_config(path, &config, err) != 0) return -1;
    mamba_model_create(model, &config);
    if (hf_folder_load_params(path, model->params, model->n_params, err) != 0) {
        mamba_model_free(model);
        return -1;
    }
    return 0;
}
