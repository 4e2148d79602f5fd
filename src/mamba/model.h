// The Mamba-1 language model (docs/DESIGN.md#model): parameters as one table of named tensors with
// the transformers MambaForCausalLM names, the training forward on the tape, and the
// recurrent one-token step used for generation.
#ifndef MP_MAMBA_MODEL_H
#define MP_MAMBA_MODEL_H

#include <stdint.h>

#include "autograd/tensor.h"
#include "core/rng.h"
#include "mamba/config.h"

typedef struct MambaLayer {
    Tensor norm_weight;       // (d)
    Tensor in_proj_weight;    // (2D, d)
    Tensor conv1d_weight;     // (D, 1, K)
    Tensor conv1d_bias;       // (D)
    Tensor x_proj_weight;     // (R + 2N, D)
    Tensor dt_proj_weight;    // (D, R)
    Tensor dt_proj_bias;      // (D)
    Tensor A_log;             // (D, N)
    Tensor D;                 // (D)
    Tensor out_proj_weight;   // (d, D)
} MambaLayer;

typedef struct NamedParam {
    char name[96];            // e.g. "backbone.layers.3.mixer.in_proj.weight"
    Tensor *tensor;
} NamedParam;

typedef struct MambaModel {
    MambaConfig config;
    Tensor embedding;         // (V, d), tied to the output head
    MambaLayer *layers;       // n_layer of them
    Tensor norm_f_weight;     // (d)
    Tensor head_weight;       // classify: (n_classes, d), "head.weight" (heads.h); unused by lm
    Tensor head_bias;         // classify: (n_classes), "head.bias"
                              // forecast: (H*F, d) and (H*F); dlinear: "head.seasonal.weight" (H, input_len), (H)
    Tensor input_weight;      // forecast: (d, F) "input_proj.weight", the values into the residual stream
    Tensor input_bias;        // forecast: (d) "input_proj.bias"
    Tensor trend_weight;      // dlinear: (H, input_len) "head.trend.weight"
    Tensor trend_bias;        // dlinear: (H) "head.trend.bias"
    Tensor revin_weight;      // forecast, window_norm revin_affine: (F) "revin.weight"
    Tensor revin_bias;        // forecast, window_norm revin_affine: (F) "revin.bias"
    NamedParam *params;       // every parameter, in a fixed order
    int n_params;
    size_t n_elements;        // total number of parameter floats
} MambaModel;

// Allocates every parameter (zeroed) for a finished config.
void mamba_model_create(MambaModel *model, const MambaConfig *config);
void mamba_model_free(MambaModel *model);
// The initialisation of docs/DESIGN.md#model, reproducible from the rng.
void mamba_model_init_random(MambaModel *model, Rng *rng);
// The parameter called name, or NULL.
Tensor *mamba_model_find(MambaModel *model, const char *name);
void mamba_model_zero_grad(MambaModel *model);

// Training forward: tokens and targets are (batch, seqlen); a target < 0 is ignored.
// Returns the mean cross-entropy (a 1-element tensor on the tape). If logits_out is not
// NULL it receives the (batch*seqlen, V) logits tensor, or for the classification head
// (heads.h) the (batch, n_classes) logits of the pooled rows.
Tensor *mamba_forward(Tape *tape, MambaModel *model, const int32_t *tokens, const int32_t *targets,
                      int batch, int seqlen, Tensor **logits_out);

// What one block computed: the inputs of its linear layers and of its scan, which the
// pruning methods take their statistics from. Every tensor is on the tape and lives
// until the next tape_reset; T = batch * seqlen rows.
typedef struct MambaBlockTrace {
    Tensor *input;            // (T, d) the residual stream entering the block
    Tensor *u;                // (T, d) rmsnorm(input): the input of in_proj
    Tensor *xz;               // (T, 2D) in_proj's output: x (the conv's input), then the gate z
    Tensor *xs;               // (T, D) silu(conv): the input of x_proj and of the scan
    Tensor *delta;            // (T, R) the input of dt_proj
    Tensor *dt;               // (T, D) dt_proj's output, before dt_bias and softplus
    Tensor *B_ssm, *C_ssm;    // (T, N)
    Tensor *gated;            // (T, D) y * silu(z): the input of out_proj
    Tensor *output;           // (T, d) the residual stream leaving the block
} MambaBlockTrace;

// The pieces of mamba_forward, for methods that walk the model block by block:
// the embedding of tokens (T rows), one residual block (trace may be NULL), and the final
// norm, tied head and loss (targets may be NULL: then only logits_out is set, NULL returned).
Tensor *mamba_embed(Tape *tape, MambaModel *model, const int32_t *tokens, int T);
Tensor *mamba_block_forward(Tape *tape, const MambaConfig *config, MambaLayer *layer, Tensor *x, int batch,
                            int seqlen, MambaBlockTrace *trace);
// The block up to dt (mamba_block_forward's first ops, the same to the bit): returns dt and
// fills trace up to it (gated and output NULL). For a caller that needs Δ and not the output.
Tensor *mamba_block_forward_dt(Tape *tape, const MambaConfig *config, MambaLayer *layer, Tensor *x, int batch,
                               int seqlen, MambaBlockTrace *trace);
Tensor *mamba_head(Tape *tape, MambaModel *model, Tensor *x, const int32_t *targets, int T, Tensor **logits_out);

// The forecasting heads (heads.h): values (batch, seqlen, F) in; future (batch, H, F) the
// values to predict, or NULL. Returns the mean squared error over every predicted value
// (NULL without future); pred_out, when not NULL, receives the (batch, H, F) predictions.
// traces as for mamba_forward_traced (NULL, or n_layer entries).
Tensor *mamba_forward_values(Tape *tape, MambaModel *model, const float *values, const float *future, int batch,
                             int seqlen, float *pred_out, MambaBlockTrace *traces);
// The input projection of the forecast head: values (batch, seqlen, F) -> the residual
// stream (batch*seqlen, d), each window normalised first when the model's window_norm says so.
Tensor *mamba_embed_values(Tape *tape, MambaModel *model, const float *values, int batch, int seqlen);

// mamba_forward that also fills traces[i] for every block i (traces has n_layer entries).
Tensor *mamba_forward_traced(Tape *tape, MambaModel *model, const int32_t *tokens, const int32_t *targets,
                             int batch, int seqlen, Tensor **logits_out, MambaBlockTrace *traces);

// Recurrent inference: the (conv, ssm) state of every layer for one sequence.
typedef struct MambaState {
    float *conv;              // (n_layer, D, K-1): the last K-1 inputs of the conv
    float *ssm;               // (n_layer, D, N)
    float *scratch;           // work buffers of one step
} MambaState;

void mamba_state_create(MambaState *state, const MambaConfig *config);
void mamba_state_reset(MambaState *state, const MambaConfig *config);
void mamba_state_free(MambaState *state);
// Feeds one token; writes the (V) logits of the next token.
void mamba_step(const MambaModel *model, MambaState *state, int32_t token, float *logits);

// 0 if every weight is finite; else -1 naming the first tensor and element that is NaN or
// infinite and how many of that tensor's are. eval and generate refuse such a model: its
// outputs would be NaN, reported as numbers.
int mamba_model_check_finite(const MambaModel *model, Error *err);

#endif
