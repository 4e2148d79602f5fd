// Where a model's weights come from: a transformers folder (config.json +
// model.safetensors or shards) or a mambaprune HDF5 checkpoint.
#ifndef MP_RUN_MODEL_SOURCE_H
#define MP_RUN_MODEL_SOURCE_H

#include "core/error.h"
#include "mamba/model.h"

// Creates *model from the sizes stored at path and loads its weights.
int model_load(const char *path, MambaModel *model, Error *err);

#endif
