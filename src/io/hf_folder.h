// Import and export of transformers-format Mamba models (docs/DESIGN.md#files "Pretrained models"): a
// folder with config.json (transformers MambaConfig) and model.safetensors, or several
// shards listed by model.safetensors.index.json. Works on a NamedParam table (docs/DESIGN.md#model
// names) and knows nothing else of the model; the output head is always tied.
#ifndef MP_IO_HF_FOLDER_H
#define MP_IO_HF_FOLDER_H

#include "core/error.h"
#include "mamba/config.h"
#include "mamba/model.h"

// Reads DIR/config.json into config and finishes it (mamba_config_finish). Keys used:
// hidden_size, num_hidden_layers, vocab_size (required); state_size, conv_kernel, expand,
// time_step_rank ("auto" or an integer), layer_norm_epsilon, time_step_min/max/floor,
// intermediate_size (checked = expand * hidden_size), model_type ("mamba"), hidden_act
// ("silu"). Unsupported settings are errors: use_bias true, use_conv_bias false. An
// untied head (tie_word_embeddings false) is accepted here and checked by
// hf_folder_load_params. The embedding keeps the file's vocab_size rows: vocab_padded
// == vocab_size (pad_vocab_size_multiple 8 if that divides it, else 1).
int hf_folder_read_config(const char *dir, MambaConfig *config, Error *err);

// Loads DIR/model.safetensors, or else every shard named in DIR/model.safetensors.index.json
// ("weight_map"), into the tensors of params (converted to float32 from F32/F16/BF16/F64).
// Shapes must match (size-1 dimensions aside: a (D, K) conv1d weight loads into (D, 1, K)).
// Every parameter must be present and no other tensor may be, except lm_head.weight, which
// must then equal backbone.embeddings.weight bit for bit (the head is tied). On failure
// err lists every missing and unexpected name, and the tables' contents are unspecified.
int hf_folder_load_params(const char *dir, NamedParam *params, int n_params, Error *err);

// Writes DIR/config.json (a MambaConfig that transformers loads as MambaForCausalLM, with
// vocab_size = the embedding's rows, tied head, no biases) and DIR/model.safetensors (F32,
// every parameter of the table, no lm_head.weight, metadata format "pt"), creating DIR
// and its parents if needed; each file is written atomically. config must be finished.
int hf_folder_save(const char *dir, const MambaConfig *config, const NamedParam *params, int n_params, Error *err);

#endif
