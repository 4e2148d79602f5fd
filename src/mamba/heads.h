// The task heads on top of the Mamba blocks (docs/DESIGN.md): a classification head
// (pool the positions of each sequence, then a linear layer with bias to n_classes,
// cross-entropy on the labels). Labels travel in the ordinary (B, L) targets of the data:
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

#endif
