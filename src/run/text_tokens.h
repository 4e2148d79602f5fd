// Text files through a model's tokenizer (tokenizer/tokenizer.h): `mambaprune tokenize`
// and its --decode, and the cached tokenization that lets eval and train read a .txt
// with a pretrained model's own tokenizer.
#ifndef MP_RUN_TEXT_TOKENS_H
#define MP_RUN_TEXT_TOKENS_H

#include <stddef.h>

#include "core/error.h"

// Encodes the text file text_path into the token file out_path (data_tokens_write: uint16
// ids, or uint32 for vocabularies beyond 65,536). *n_tokens and *vocab_size say what was written.
int tokenize_file(const char *tokenizer_path, const char *text_path, const char *out_path, long *n_tokens,
                  int *vocab_size, Error *err);
// Decodes the token file tokens_path into the text file out_path (special tokens kept).
int detokenize_file(const char *tokenizer_path, const char *tokens_path, const char *out_path, Error *err);

// When the model at model_path (a transformers folder, or a checkpoint with tokenizer.json
// beside it) has a tokenizer: the token file of text_path in cache_dir (created if needed),
// named <text name>.<16 hex digits>.tokens.bin where the digits hash the tokenizer.json and
// the text together, tokenized now unless that file exists. Writes its path to out and
// returns 1 (*reused says whether it existed); returns 0 when there is no tokenizer, -1 on error.
int tokens_for_model(const char *model_path, const char *text_path, const char *cache_dir, char *out, size_t cap,
                     int *reused, Error *err);

// Copies the tokenizer files of the model at model_path (tokenizer.json and, where present,
// tokenizer_config.json and special_tokens_map.json, from the folder tokenizer_find looks
// in) into the folder to_dir. *copied is how many were copied (0 when the model has none).
int tokenizer_files_copy(const char *model_path, const char *to_dir, int *copied, Error *err);

// A run's text data through the tokenizer of its model.init: when options is text
// (DATA_TEXT with a path) and model_init has a tokenizer, the text is tokenized (cached in
// run_dir/tokens), options becomes that token file (its path written to path_buf, which
// must outlive options), and the tokenizer files are copied into run_dir so that the
// run's checkpoints carry them. Otherwise options is left as it is.
struct DataOptions;
int run_text_tokens(const char *model_init, const char *run_dir, struct DataOptions *options, char *path_buf,
                    size_t cap, Error *err);

#endif
