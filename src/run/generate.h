// Generating text with the inference model: load any model source into it, encode the
// prompt, run the prompt through the parallel forward, then decode one token at a time
// with the recurrent step, sampling each next token and handing it to the caller as it
// comes. Also the report of what ran sparse and the process's resident memory.
#ifndef MP_RUN_GENERATE_H
#define MP_RUN_GENERATE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "infer/infer.h"
#include "run/sample.h"
#include "tokenizer/tokenizer.h"

// Loads a packed model file (run/packed_file.h), a checkpoint or a transformers folder
// into the inference model: the last two through the dense model, each linear packed from
// its zeros (a checkpoint's pruned weights are exactly zero), the dense copy freed
// afterwards. force_dense keeps every linear dense (a packed file's are unpacked).
int infer_load(const char *path, bool force_dense, InferModel *model, Error *err);

// Whether the model's tokens are bytes: a vocabulary of 256, plus at most the padding
// (pad_vocab_size_multiple, at least 8).
bool generate_byte_level(const MambaConfig *config);
// The prompt text as tokens (*tokens allocated, the caller frees it): through tokenizer when
// it is not NULL (the model's tokenizer.json), else its bytes for a byte-level model; any
// other model needs token ids.
int generate_encode_prompt(const MambaConfig *config, Tokenizer *tokenizer, const char *text, size_t length,
                           int32_t **tokens, int *n_tokens, Error *err);
// Parses "1,2,3" into token ids below the vocabulary (*tokens allocated).
int generate_parse_token_ids(const MambaConfig *config, const char *text, int32_t **tokens, int *n_tokens,
                             Error *err);

// How generated tokens become output, one at a time: their text through the model's
// tokenizer (a UTF-8 character split over two tokens is held back until it is whole), else
// the byte of a byte-level model, else the id.
typedef struct TokenPrinter {
    FILE *out;
    const MambaConfig *config;
    const Tokenizer *tokenizer;   // (not owned) NULL: bytes or ids
    uint8_t pending[8];           // the start of an unfinished UTF-8 character
    size_t n_pending;
} TokenPrinter;

void generate_print_token(TokenPrinter *printer, int32_t token);
// Writes what is still held back (an unfinished character at the very end, as it is).
void generate_print_finish(TokenPrinter *printer);

typedef struct GenerateStats {
    int prompt_tokens, generated;
    double prompt_s;          // the parallel forward over the prompt
    double decode_s;          // the generated tokens after the first: steps and sampling
} GenerateStats;

// Called with each generated token as soon as it is chosen.
typedef void (*GenerateEmit)(void *context, int32_t token);

// Runs prompt (n_prompt >= 1 tokens, each below the vocabulary) and generates n_tokens
// tokens, drawn by sampler, emitting each.
int generate_run(const InferModel *model, const int32_t *prompt, int n_prompt, int n_tokens, Sampler *sampler,
                 GenerateEmit emit, void *context, GenerateStats *stats, Error *err);

// Up to this many sequences decoded together (generate --batch).
#define GENERATE_MAX_BATCH 16

// Called with each sequence's generated token as soon as it is chosen.
typedef void (*GenerateEmitSeq)(void *context, int sequence, int32_t token);

// batch sequences from the same prompt, decoded together (one step of the batch kernels
// per token), sequence b drawn by samplers[b]: sequence b is what generate_run gives with
// samplers[b] alone. stats count the tokens of every sequence.
int generate_run_batch(const InferModel *model, const int32_t *prompt, int n_prompt, int n_tokens, Sampler *samplers,
                       int batch, GenerateEmitSeq emit, void *context, GenerateStats *stats, Error *err);

// The linears of the model by kind and format, for the report: lines like
// "in_proj: bitmap x24 (density 0.300, prompt sparse x24)", and the bytes the linears
// take against their dense size.
void generate_report_tensors(FILE *out, const InferModel *model);

// VmRSS and VmHWM of this process in kB (from /proc/self/status); -1 each if unknown.
void process_memory_kb(long *rss_kb, long *hwm_kb);

#endif
