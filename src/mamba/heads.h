// The task heads on top of the Mamba blocks (docs/DESIGN.md#task-heads): a classification
// head (pool the positions of each sequence, then a linear layer with bias to n_classes,
// cross-entropy on the labels), a forecasting head (the last position of each sequence,
// norm_f, then a linear layer with bias to horizon x n_features values, mean squared error),
// and DLinear, the linear forecasting baseline that reads the input series directly. Labels travel in the ordinary (B, L) targets of the data:
// a classification row has exactly one target >= 0, its label, at the last position of
// the sequence (the positions after it are padding, which the causal blocks never see
// from the positions before).
#ifndef MP_MAMBA_HEADS_H
#define MP_MAMBA_HEADS_H

#include <stdint.h>

#include "autograd/tensor.h"

struct MambaModel;

// For each of the B rows of targets (B, L): ends[b] = the position of its label and
// labels[b] = the label, or -1 and -1 for a row without one (padding of a last batch).
void heads_row_labels(const int32_t *targets, int B, int L, int *ends, int32_t *labels);

// The classification head: x (B*L, d) the output of the last block. Returns the mean
// cross-entropy over the labelled rows (NULL when targets is NULL); logits_out receives
// the (B, n_classes) logits.
Tensor *heads_classify(Tape *tape, struct MambaModel *model, Tensor *x, const int32_t *targets, int B, int L,
                       Tensor **logits_out);

// The forecasting head: x (B*L, d) the output of the last block. shift, scale (B*F): the
// statistics of model.window_norm (window_norm_stats), the forecast mapped back by them
// (op_window_denorm), or NULL for none. future (B, H, F) or NULL (then NULL is returned);
// pred_out (B, H, F) or NULL.
Tensor *heads_forecast(Tape *tape, struct MambaModel *model, Tensor *x, const float *future, int B, int L,
                       const float *shift, const float *scale, float *pred_out);

// DLinear (Zeng et al. 2023): each of the F series of values (B, L, F) is split by a moving
// average of MAMBA_DLINEAR_KERNEL steps (ends padded by repetition) into trend and the
// seasonal rest, and the forecast is seasonal @ Ws^T + bs + trend @ Wt^T + bt, the two maps
// (H, L) shared by every series. L must be the model's input_len. future and pred_out as
// for heads_forecast.
Tensor *heads_dlinear(Tape *tape, struct MambaModel *model, const float *values, const float *future, int B, int L,
                      float *pred_out);

// The moving-average operator of DLinear as an (L, L) matrix M: trend = M x for a series x
// of L steps (row i averages x at i-12 .. i+12, indices clamped to [0, L-1]).
void heads_moving_average_matrix(int L, int kernel, float *M);

#endif
