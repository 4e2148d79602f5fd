// Training checkpoints (docs/DESIGN.md#files): one HDF5 file with the parameters, the pruning masks,
// the AdamW moments, the run state (step, RNG, data cursor, schedule values) and the
// resolved YAML config. Every dataset carries a Fletcher32 checksum; files are written
// to a temporary name and renamed into place, so a crash leaves the old or the new file.
//
// Layout:  /params/<name>  float32, the parameter's shape (names of the NamedParam table)
//          /masks/<name>   uint8, same shape, only the tensors that have a mask
//          /optim/step     int64 (1);  /optim/m/<name>, /optim/v/<name>  float32
//          /state/step, /state/data_cursor  int64 (1);  /state/rng  uint64 (4)
//          /state/schedule/<name>  float64 (1), in the caller's order
//          /prune/<name>   float32 (size), optional arrays of the run state (a pruner's
//                          gradient accumulator, its running totals)
//          /config         the YAML text, one fixed-length string (1)
//          root attributes format = "mambaprune-checkpoint", version = 1
#ifndef MP_IO_CHECKPOINT_H
#define MP_IO_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/field.h"   // defines: Field
#include "core/rng.h"
#include "mamba/model.h"   // defines: NamedParam
#include "optim/adamw.h"   // defines: AdamW, adamw_find

#define CHECKPOINT_FORMAT "mambaprune-checkpoint"
#define CHECKPOINT_VERSION 1
#define CHECKPOINT_MAX_VALUES 32

// A named scalar of the schedule state, e.g. {"lr", 3e-4} or {"sparsity", 0.5}.
// The name is non-empty and has no '/'.
typedef struct CheckpointValue {
    char name[32];
    double value;
} CheckpointValue;

// A named float array of the run state, saved as /prune/<name> (1-d, size floats). The name
// is non-empty and has no '/'.
typedef struct CheckpointArray {
    char name[32];
    float *data;              // size floats, the caller's
    size_t size;
    bool found;               // set by checkpoint_load: whether the file holds it
} CheckpointArray;

typedef struct CheckpointState {
    long step;
    Rng rng;
    long data_cursor;
    CheckpointValue values[CHECKPOINT_MAX_VALUES];
    int n_values;
    // Optional arrays, given by the caller for saving and for loading alike (checkpoint_load
    // keeps these two fields). Saving writes each of them. Loading reads each one the file
    // holds into its data (the sizes must agree) and sets found; an array of the file that
    // the caller does not list is an error. With arrays NULL, /prune is neither written nor read.
    CheckpointArray *arrays;
    int n_arrays;
} CheckpointState;

// The 0/1 mask of the parameter called name: size bytes, size == the tensor's size.
typedef struct CheckpointMask {
    const char *name;
    uint8_t *mask;
    size_t size;
} CheckpointMask;

// Appends {name, value} to state->values; -1 (and a message) when all
// CHECKPOINT_MAX_VALUES are in use or the name is too long.
int checkpoint_state_add(CheckpointState *state, const char *name, double value, Error *err);
// The value called name, or fallback when the state has none.
double checkpoint_state_value(const CheckpointState *state, const char *name, double fallback);

// A typed struct saved as schedule values (core/field.h): its table of fields names the
// /state/schedule datasets.
// Appends the n fields of object (a struct of the table's type) to state->values, in order.
int checkpoint_fields_add(CheckpointState *state, const Field *fields, int n, const void *object,
                          Error *err);
// Reads the n fields of object from a loaded state; a field the state does not hold is an
// error "PATH: /state/schedule/NAME is missing".
int checkpoint_fields_read(const CheckpointState *state, const Field *fields, int n, void *object,
                           const char *path, Error *err);

// Writes a checkpoint to path (its folder must exist). optimizer may be NULL (no /optim);
// each of its slots must hold a tensor of params. Every mask names a parameter and has
// its size. state may be NULL (no /state), config_yaml NULL (an empty /config).
int checkpoint_save(const char *path, const NamedParam *params, int n_params, const AdamW *optimizer,
                    const CheckpointMask *masks, int n_masks, const CheckpointState *state,
                    const char *config_yaml, Error *err);

// Reads /config into a new NUL-terminated string (the caller frees it), so that the
// caller can build the model from it before checkpoint_load.
int checkpoint_read_config(const char *path, char **config_yaml, Error *err);

// Fills an already-created model: every name of params must be saved with the same shape,
// and every saved parameter must be in params (the error lists the missing or extra
// names). If optimizer is not NULL, its step and the moments of each slot (found by the
// parameter name of the slot's tensor) are read; the saved moments must be exactly those
// of its slots. If masks is not NULL, each mask is read and the saved masks must be
// exactly those given; with masks NULL, /masks is ignored. If state is not NULL it is
// filled. On failure the message names the file and the dataset, and what was already
// read into the model, optimizer or masks is unspecified.
int checkpoint_load(const char *path, NamedParam *params, int n_params, AdamW *optimizer,
                    CheckpointMask *masks, int n_masks, CheckpointState *state, Error *err);

// The masks that a starting checkpoint (model.init) holds for the caller's masks: each
// mask saved under /masks with the caller's name is read (its shape must match) and
// found[i] set; the others are left as they are. *unlisted receives how many saved masks
// the caller did not ask for. A file without /masks finds none.
int checkpoint_read_masks_found(const char *path, const NamedParam *params, int n_params, CheckpointMask *masks,
                                int n_masks, bool *found, int *unlisted, Error *err);

// 0 if path is an HDF5 file with this format and version, else -1 and why.
int checkpoint_probe(const char *path, Error *err);

// The name of the checkpoint of a step in dir: "DIR/ckpt-%08ld.h5".
int checkpoint_path_for_step(char *path, size_t size, const char *dir, long step, Error *err);
// Deletes all but the keep (>= 1) newest files of dir named ckpt-<step>.h5 (newest by step).
int checkpoint_prune_old(const char *dir, int keep, Error *err);
// Writes the path of the newest ckpt-<step>.h5 of dir; -1 and a message if there is none.
int checkpoint_find_latest(const char *dir, char *path, size_t size, Error *err);

#endif
