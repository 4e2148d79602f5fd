// HDF5 checkpoints (see checkpoint.h): chunked, Fletcher32-checksummed datasets written
// to "<path>.tmp-<pid>" and renamed into place; strict reading that names the file and
// the dataset of every failure; the ckpt-<step>.h5 files of a run folder.
#include "io/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/memory.h"
#include "core/input_file.h"

// ---- HDF5 errors ----

// HDF5 prints its whole error stack to stderr by default; our messages replace that.
// The previous handler is given back at the end of each public call.
typedef struct Hdf5Quiet {
    H5E_auto2_t func;
    void *data;
} Hdf5Quiet;

static void hdf5_quiet_begin(Hdf5Quiet *quiet) {
    H5Eget_auto2(H5E_DEFAULT, &quiet->func, &quiet->data);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

static void hdf5_quiet_end(const Hdf5Quiet *quiet) { H5Eset_auto2(H5E_DEFAULT, quiet->func, quiet->data); }

typedef struct Hdf5Reason {
    char text[256];
} Hdf5Reason;

// Keeps the innermost entry (the most specific reason, e.g. a checksum failure).
static herr_t keep_innermost(unsigned n, const H5E_error2_t *entry, void *data) {
    Hdf5Reason *reason = data;
    if (n == 0 && entry->desc) snprintf(reason->text, sizeof reason->text, "%s", entry->desc);
    return 0;
}

// Why the last HDF5 call failed; call it before any other HDF5 call.
static const char *hdf5_reason(Hdf5Reason *reason) {
    reason->text[0] = '\0';
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, keep_innermost, reason);
    if (!reason->text[0]) snprintf(reason->text, sizeof reason->text, "HDF5 error");
    // A failed read or write of the file driver lists its buffers and times; keep the
    // system's reason ("file write failed: No space left on device").
    const char *tag = "error message = '";
    char *at = strstr(reason->text, tag), *end = at ? strchr(at + strlen(tag), '\'') : NULL;
    char *colon = strchr(reason->text, ':');
    if (at && end && colon && colon < at) {
        size_t n = (size_t)(end - at - strlen(tag));
        memmove(colon + 2, at + strlen(tag), n);
        colon[1] = ' ';
        colon[2 + n] = '\0';
    }
    return reason->text;
}

// "(16, 8)"
static void format_shape(char *out, size_t size, int ndim, const hsize_t *dims) {
    size_t used = (size_t)snprintf(out, size, "(");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%llu", i ? ", " : "", (unsigned long long)dims[i]);
    if (used < size) snprintf(out + used, size - used, ")");
}

static int tensor_dims(const Tensor *tensor, hsize_t dims[TENSOR_MAX_DIMS]) {
    for (int i = 0; i < tensor->ndim; i++) dims[i] = (hsize_t)tensor->shape[i];
    return tensor->ndim;
}

static const NamedParam *find_param_by_name(const NamedParam *params, int n_params, const char *name) {
    for (int i = 0; i < n_params; i++)
        if (strcmp(params[i].name, name) == 0) return &params[i];
    return NULL;
}

static const NamedParam *find_param_by_tensor(const NamedParam *params, int n_params, const Tensor *tensor) {
    for (int i = 0; i < n_params; i++)
        if (params[i].tensor == tensor) return &params[i];
    return NULL;
}

// ---- writing ----

typedef struct Writer {
    hid_t file;
    const char *path;         // the destination, for messages
    Error *err;
} Writer;

// Chunks of at most ~1 MiB, split along the leading dimensions: Fletcher32 checks each
// chunk, and a chunk this size fits HDF5's default chunk cache.
static void choose_chunk(int ndim, const hsize_t *dims, size_t element_size, hsize_t *chunk) {
    const hsize_t target = ((hsize_t)1 << 20) / element_size;
    hsize_t elements = 1;
    for (int i = 0; i < ndim; i++) {
        chunk[i] = dims[i] > 0 ? dims[i] : 1;
        elements *= chunk[i];
    }
    for (int i = 0; i < ndim && elements > target; i++) {
        hsize_t rest = elements / chunk[i];
        chunk[i] = rest >= target ? 1 : target / rest;
        elements = chunk[i] * rest;
    }
}

static int write_dataset(Writer *w, hid_t group, const char *group_path, const char *name, hid_t file_type,
                         hid_t memory_type, int ndim, const hsize_t *dims, const void *data) {
    hsize_t chunk[TENSOR_MAX_DIMS];
    choose_chunk(ndim, dims, H5Tget_size(file_type), chunk);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t space = H5Screate_simple(ndim, dims, NULL);
    hid_t dataset = -1;
    int ok = dcpl >= 0 && space >= 0 && H5Pset_chunk(dcpl, ndim, chunk) >= 0 && H5Pset_fletcher32(dcpl) >= 0 &&
             H5Pset_obj_track_times(dcpl, 0) >= 0;  // no time stamps: same state, same bytes
    if (ok) dataset = H5Dcreate2(group, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ok = ok && dataset >= 0 && H5Dwrite(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
    Hdf5Reason reason;
    if (!ok) error_set(w->err, "%s: cannot write %s/%s: %s", w->path, group_path, name, hdf5_reason(&reason));
    if (dataset >= 0 && H5Dclose(dataset) < 0 && ok) {
        ok = 0;
        error_set(w->err, "%s: cannot write %s/%s: %s", w->path, group_path, name, hdf5_reason(&reason));
    }
    if (space >= 0) H5Sclose(space);
    if (dcpl >= 0) H5Pclose(dcpl);
    return ok ? 0 : -1;
}

// Groups remember the order of their links, so that the schedule values come back in the
// order the caller gave them. Their links stay in the group's object header, which has a
// checksum, instead of moving to "dense" storage past 8 links: that storage (a fractal
// heap) has none, and HDF5 1.10 crashes on some damaged bytes there.
static hid_t create_group(Writer *w, hid_t parent, const char *name, const char *full_path) {
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE);
    hid_t group = -1;
    if (gcpl >= 0 && H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED) >= 0 &&
        H5Pset_link_phase_change(gcpl, 65535, 65535) >= 0 && H5Pset_obj_track_times(gcpl, 0) >= 0)
        group = H5Gcreate2(parent, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    Hdf5Reason reason;
    if (group < 0) error_set(w->err, "%s: cannot create the group %s: %s", w->path, full_path, hdf5_reason(&reason));
    if (gcpl >= 0) H5Pclose(gcpl);
    return group;
}

static int close_group(Writer *w, hid_t group, const char *full_path, int status) {
    Hdf5Reason reason;
    if (H5Gclose(group) < 0 && status == 0)
        return error_set(w->err, "%s: cannot write the group %s: %s", w->path, full_path, hdf5_reason(&reason));
    return status;
}

// A fixed-length string type of size bytes (at least 1), padded with NULs.
static hid_t string_type(size_t size) {
    hid_t type = H5Tcopy(H5T_C_S1);
    if (type < 0) return -1;
    if (H5Tset_size(type, size > 0 ? size : 1) < 0 || H5Tset_strpad(type, H5T_STR_NULLPAD) < 0) {
        H5Tclose(type);
        return -1;
    }
    return type;
}

static int write_root_attributes(Writer *w) {
    Hdf5Reason reason;
    int version = CHECKPOINT_VERSION;
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t type = string_type(strlen(CHECKPOINT_FORMAT));
    hid_t format = -1, version_attr = -1;
    int ok = space >= 0 && type >= 0;
    if (ok) format = H5Acreate2(w->file, "format", type, space, H5P_DEFAULT, H5P_DEFAULT);
    ok = ok && format >= 0 && H5Awrite(format, type, CHECKPOINT_FORMAT) >= 0;
    if (ok) version_attr = H5Acreate2(w->file, "version", H5T_STD_I32LE, space, H5P_DEFAULT, H5P_DEFAULT);
    ok = ok && version_attr >= 0 && H5Awrite(version_attr, H5T_NATIVE_INT, &version) >= 0;
    if (!ok) error_set(w->err, "%s: cannot write the root attributes: %s", w->path, hdf5_reason(&reason));
    if (format >= 0) H5Aclose(format);
    if (version_attr >= 0) H5Aclose(version_attr);
    if (type >= 0) H5Tclose(type);
    if (space >= 0) H5Sclose(space);
    return ok ? 0 : -1;
}

static int write_config(Writer *w, const char *config_yaml) {
    const char *text = config_yaml ? config_yaml : "";
    hid_t type = string_type(strlen(text));
    if (type < 0) return error_set(w->err, "%s: cannot make the string type of /config", w->path);
    // A string type of size 1 for "" still reads one byte: its NUL.
    hsize_t one = 1;
    int status = write_dataset(w, w->file, "", "config", type, type, 1, &one, text);
    H5Tclose(type);
    return status;
}

static int write_params(Writer *w, const NamedParam *params, int n_params) {
    hid_t group = create_group(w, w->file, "params", "/params");
    if (group < 0) return -1;
    int status = 0;
    for (int i = 0; i < n_params && status == 0; i++) {
        hsize_t dims[TENSOR_MAX_DIMS];
        int ndim = tensor_dims(params[i].tensor, dims);
        status = write_dataset(w, group, "/params", params[i].name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ndim, dims,
                               params[i].tensor->data);
    }
    return close_group(w, group, "/params", status);
}

static int write_masks(Writer *w, const NamedParam *params, int n_params, const CheckpointMask *masks, int n_masks) {
    for (int i = 0; i < n_masks; i++) {
        const NamedParam *param = find_param_by_name(params, n_params, masks[i].name);
        if (!param)
            return error_set(w->err, "%s: the mask '%s' names no parameter of the model", w->path, masks[i].name);
        if (masks[i].size != param->tensor->size)
            return error_set(w->err, "%s: the mask '%s' has %zu elements but the parameter has %zu", w->path,
                             masks[i].name, masks[i].size, param->tensor->size);
    }
    hid_t group = create_group(w, w->file, "masks", "/masks");
    if (group < 0) return -1;
    int status = 0;
    for (int i = 0; i < n_masks && status == 0; i++) {
        hsize_t dims[TENSOR_MAX_DIMS];
        int ndim = tensor_dims(find_param_by_name(params, n_params, masks[i].name)->tensor, dims);
        status = write_dataset(w, group, "/masks", masks[i].name, H5T_STD_U8LE, H5T_NATIVE_UINT8, ndim, dims,
                               masks[i].mask);
    }
    return close_group(w, group, "/masks", status);
}

// One moment (m or v) of every slot into /optim/<which>.
static int write_moments(Writer *w, hid_t optim, const AdamW *optimizer, const NamedParam *params, int n_params,
                         const char *which) {
    char group_path[16];
    snprintf(group_path, sizeof group_path, "/optim/%s", which);
    hid_t group = create_group(w, optim, which, group_path);
    if (group < 0) return -1;
    int status = 0;
    for (int i = 0; i < optimizer->n_slots && status == 0; i++) {
        const AdamWSlot *slot = &optimizer->slots[i];
        const NamedParam *param = find_param_by_tensor(params, n_params, slot->tensor);
        if (!param) {
            status = error_set(w->err, "%s: optimizer slot %d holds a tensor that is not in the parameter table",
                               w->path, i);
            break;
        }
        hsize_t dims[TENSOR_MAX_DIMS];
        int ndim = tensor_dims(slot->tensor, dims);
        status = write_dataset(w, group, group_path, param->name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, ndim, dims,
                               which[0] == 'm' ? slot->m : slot->v);
    }
    return close_group(w, group, group_path, status);
}

static int write_optimizer(Writer *w, const AdamW *optimizer, const NamedParam *params, int n_params) {
    hid_t group = create_group(w, w->file, "optim", "/optim");
    if (group < 0) return -1;
    int64_t step = optimizer->step;
    hsize_t one = 1;
    int status = write_dataset(w, group, "/optim", "step", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &one, &step);
    if (status == 0) status = write_moments(w, group, optimizer, params, n_params, "m");
    if (status == 0) status = write_moments(w, group, optimizer, params, n_params, "v");
    return close_group(w, group, "/optim", status);
}

static int check_value_name(const char *path, const CheckpointValue *value, Error *err) {
    size_t length = strnlen(value->name, sizeof value->name);
    if (length == 0 || length == sizeof value->name || strchr(value->name, '/') || strcmp(value->name, ".") == 0)
        return error_set(err, "%s: bad schedule value name '%.*s' (expected 1 to %zu characters, no '/')", path,
                         (int)length, value->name, sizeof value->name - 1);
    return 0;
}

static int write_state(Writer *w, const CheckpointState *state) {
    if (state->n_values < 0 || state->n_values > CHECKPOINT_MAX_VALUES)
        return error_set(w->err, "%s: %d schedule values (expected 0 to %d)", w->path, state->n_values,
                         CHECKPOINT_MAX_VALUES);
    for (int i = 0; i < state->n_values; i++)
        if (check_value_name(w->path, &state->values[i], w->err) != 0) return -1;
    hid_t group = create_group(w, w->file, "state", "/state");
    if (group < 0) return -1;
    int64_t step = state->step, cursor = state->data_cursor;
    hsize_t one = 1, four = 4;
    int status = write_dataset(w, group, "/state", "step", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &one, &step);
    if (status == 0)
        status = write_dataset(w, group, "/state", "rng", H5T_STD_U64LE, H5T_NATIVE_UINT64, 1, &four, state->rng.s);
    if (status == 0)
        status = write_dataset(w, group, "/state", "data_cursor", H5T_STD_I64LE, H5T_NATIVE_INT64, 1, &one, &cursor);
    if (status == 0) {
        hid_t schedule = create_group(w, group, "schedule", "/state/schedule");
        if (schedule < 0) status = -1;
        for (int i = 0; i < state->n_values && status == 0; i++)
            status = write_dataset(w, schedule, "/state/schedule", state->values[i].name, H5T_IEEE_F64LE,
                                   H5T_NATIVE_DOUBLE, 1, &one, &state->values[i].value);
        if (schedule >= 0) status = close_group(w, schedule, "/state/schedule", status);
    }
    return close_group(w, group, "/state", status);
}

static int check_array_name(const char *path, const CheckpointArray *array, Error *err) {
    size_t length = strnlen(array->name, sizeof array->name);
    if (length == 0 || length == sizeof array->name || strchr(array->name, '/') || strcmp(array->name, ".") == 0)
        return error_set(err, "%s: bad array name '%.*s' (expected 1 to %zu characters, no '/')", path, (int)length,
                         array->name, sizeof array->name - 1);
    return 0;
}

static int write_arrays(Writer *w, const CheckpointArray *arrays, int n_arrays) {
    for (int i = 0; i < n_arrays; i++)
        if (check_array_name(w->path, &arrays[i], w->err) != 0) return -1;
    hid_t group = create_group(w, w->file, "prune", "/prune");
    if (group < 0) return -1;
    int status = 0;
    for (int i = 0; i < n_arrays && status == 0; i++) {
        hsize_t size = arrays[i].size;
        status = write_dataset(w, group, "/prune", arrays[i].name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, 1, &size,
                               arrays[i].data);
    }
    return close_group(w, group, "/prune", status);
}

// Writes the whole checkpoint into the HDF5 file file_path (the temporary one).
static int write_checkpoint_file(const char *file_path, const char *path, const NamedParam *params, int n_params,
                                 const AdamW *optimizer, const CheckpointMask *masks, int n_masks,
                                 const CheckpointState *state, const char *config_yaml, Error *err) {
    Hdf5Reason reason;
    // The 1.10 file format (readable by HDF5 >= 1.10) checksums the metadata too: the
    // superblock, object headers and chunk indexes. A strong close degree closes whatever
    // an error path left open.
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t file = -1;
    if (fapl >= 0 && H5Pset_libver_bounds(fapl, H5F_LIBVER_V110, H5F_LIBVER_V110) >= 0 &&
        H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0)
        file = H5Fcreate(file_path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    if (file < 0) error_set(err, "%s: cannot create the HDF5 file %s: %s", path, file_path, hdf5_reason(&reason));
    if (fapl >= 0) H5Pclose(fapl);
    if (file < 0) return -1;

    Writer w = {file, path, err};
    int status = write_root_attributes(&w);
    if (status == 0) status = write_config(&w, config_yaml);
    if (status == 0) status = write_params(&w, params, n_params);
    if (status == 0 && n_masks > 0) status = write_masks(&w, params, n_params, masks, n_masks);
    if (status == 0 && optimizer) status = write_optimizer(&w, optimizer, params, n_params);
    if (status == 0 && state) status = write_state(&w, state);
    if (status == 0 && state && state->arrays) status = write_arrays(&w, state->arrays, state->n_arrays);
    if (status == 0 && H5Fflush(file, H5F_SCOPE_GLOBAL) < 0)
        status = error_set(err, "%s: cannot flush %s: %s", path, file_path, hdf5_reason(&reason));
    if (H5Fclose(file) < 0 && status == 0)
        status = error_set(err, "%s: cannot close %s: %s", path, file_path, hdf5_reason(&reason));
    return status;
}

// fsync of the folder makes the rename itself durable.
static int fsync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0) return -1;
    int status = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return status;
}

static char *parent_folder(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return xstrdup(".");
    size_t length = slash == path ? 1 : (size_t)(slash - path);
    char *folder = xmalloc(length + 1);
    memcpy(folder, path, length);
    folder[length] = '\0';
    return folder;
}

int checkpoint_save(const char *path, const NamedParam *params, int n_params, const AdamW *optimizer,
                    const CheckpointMask *masks, int n_masks, const CheckpointState *state,
                    const char *config_yaml, Error *err) {
    size_t temp_size = strlen(path) + 32;
    char *temp_path = xmalloc(temp_size);
    snprintf(temp_path, temp_size, "%s.tmp-%ld", path, (long)getpid());
    // Creating the file ourselves first gives the system's reason (e.g. a missing folder).
    int fd = open(temp_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        int e = errno;
        error_set(err, "%s: cannot create the temporary file %s: %s", path, temp_path, strerror(e));
        free(temp_path);
        return -1;
    }
    close(fd);

    Hdf5Quiet quiet;
    hdf5_quiet_begin(&quiet);
    int status = write_checkpoint_file(temp_path, path, params, n_params, optimizer, masks, n_masks, state,
                                       config_yaml, err);
    hdf5_quiet_end(&quiet);
    if (status == 0 && fsync_path(temp_path, O_RDONLY) != 0)
        status = error_set(err, "%s: fsync of %s failed: %s", path, temp_path, strerror(errno));
    if (status == 0 && rename(temp_path, path) != 0)
        status = error_set(err, "%s: cannot rename %s into place: %s", path, temp_path, strerror(errno));
    if (status != 0) {
        unlink(temp_path);
    } else {
        char *folder = parent_folder(path);
        fsync_path(folder, O_RDONLY | O_DIRECTORY);  // best effort: the data are already safe
        free(folder);
    }
    free(temp_path);
    return status;
}

// ---- reading ----

typedef struct Reader {
    hid_t file;
    const char *path;
    Error *err;
} Reader;

// Whether every link of an absolute path like "/optim/m/name" exists.
static int link_exists(Reader *r, const char *object_path) {
    char prefix[256];
    size_t length = strlen(object_path);
    if (length >= sizeof prefix) return 0;
    for (size_t i = 1; i <= length; i++) {
        if (object_path[i] != '/' && object_path[i] != '\0') continue;
        memcpy(prefix, object_path, i);
        prefix[i] = '\0';
        if (H5Lexists(r->file, prefix, H5P_DEFAULT) <= 0) return 0;
    }
    return 1;
}

static const char *class_name(H5T_class_t type_class, size_t size) {
    if (type_class == H5T_FLOAT) return size == 4 ? "float32" : size == 8 ? "float64" : "a float type";
    if (type_class == H5T_INTEGER) return size == 1 ? "8-bit integers" : size == 8 ? "64-bit integers" : "integers";
    if (type_class == H5T_STRING) return "a string";
    return "a non-numeric type";
}

// Reads the dataset object_path, which must hold ndim-dimensional data of shape dims,
// of the class and size of memory_type, into out.
static int read_dataset(Reader *r, const char *object_path, hid_t memory_type, int ndim, const hsize_t *dims,
                        void *out) {
    Hdf5Reason reason;
    if (!link_exists(r, object_path)) return error_set(r->err, "%s: %s is missing", r->path, object_path);
    hid_t dataset = H5Dopen2(r->file, object_path, H5P_DEFAULT);
    if (dataset < 0)
        return error_set(r->err, "%s: cannot open %s: %s", r->path, object_path, hdf5_reason(&reason));
    int status = 0;
    hid_t type = H5Dget_type(dataset);
    hid_t space = H5Dget_space(dataset);
    if (type < 0 || space < 0) {
        status = error_set(r->err, "%s: cannot read the type of %s: %s", r->path, object_path, hdf5_reason(&reason));
    } else {
        H5T_class_t want_class = H5Tget_class(memory_type), have_class = H5Tget_class(type);
        size_t want_size = H5Tget_size(memory_type), have_size = H5Tget_size(type);
        hsize_t have_dims[H5S_MAX_RANK];
        int have_ndim = H5Sget_simple_extent_dims(space, have_dims, NULL);
        if (have_class != want_class || have_size != want_size) {
            status = error_set(r->err, "%s: %s holds %s, expected %s", r->path, object_path,
                               class_name(have_class, have_size), class_name(want_class, want_size));
        } else if (have_ndim < 0) {
            status = error_set(r->err, "%s: cannot read the shape of %s: %s", r->path, object_path,
                               hdf5_reason(&reason));
        } else {
            int same = have_ndim == ndim;
            for (int i = 0; same && i < ndim; i++) same = have_dims[i] == dims[i];
            if (!same) {
                char have[128], want[128];
                format_shape(have, sizeof have, have_ndim, have_dims);
                format_shape(want, sizeof want, ndim, dims);
                status = error_set(r->err, "%s: %s has shape %s but %s was expected", r->path, object_path, have,
                                   want);
            } else if (H5Dread(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0) {
                status = error_set(r->err, "%s: cannot read %s (damaged file?): %s", r->path, object_path,
                                   hdf5_reason(&reason));
            }
        }
    }
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    H5Dclose(dataset);
    return status;
}

static int read_int64(Reader *r, const char *object_path, long *out) {
    int64_t value;
    hsize_t one = 1;
    if (read_dataset(r, object_path, H5T_NATIVE_INT64, 1, &one, &value) != 0) return -1;
    *out = (long)value;
    return 0;
}

// Appends ", name" (or "name" first) to a list, ending in "..." once it is full.
static void append_name(char *list, size_t size, const char *name) {
    size_t used = strlen(list);
    if (used + 4 >= size) return;
    int wrote = snprintf(list + used, size - used, "%s%s", used ? ", " : "", name);
    if (wrote < 0 || (size_t)wrote >= size - used) snprintf(list + size - 4, 4, "...");
}

// The saved datasets of group_path must be exactly the expected names: lists those that
// are missing and those that are extra.
static int check_names(Reader *r, const char *group_path, const char *const *expected, int n_expected,
                       const char *owner) {
    Hdf5Reason reason;
    int n_saved = 0;
    char **saved = NULL;
    if (link_exists(r, group_path)) {
        hid_t group = H5Gopen2(r->file, group_path, H5P_DEFAULT);
        H5G_info_t info;
        if (group < 0 || H5Gget_info(group, &info) < 0) {
            error_set(r->err, "%s: cannot list %s: %s", r->path, group_path, hdf5_reason(&reason));
            if (group >= 0) H5Gclose(group);
            return -1;
        }
        saved = xcalloc(info.nlinks ? info.nlinks : 1, sizeof *saved);
        for (hsize_t i = 0; i < info.nlinks; i++) {
            ssize_t length = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, NULL, 0, H5P_DEFAULT);
            if (length < 0) break;
            saved[n_saved] = xmalloc((size_t)length + 1);
            H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, saved[n_saved], (size_t)length + 1,
                               H5P_DEFAULT);
            n_saved++;
        }
        H5Gclose(group);
        if (n_saved != (int)info.nlinks) {
            for (int i = 0; i < n_saved; i++) free(saved[i]);
            free(saved);
            return error_set(r->err, "%s: cannot list %s", r->path, group_path);
        }
    }
    char missing[768] = "", extra[768] = "";
    int n_missing = 0, n_extra = 0;
    for (int i = 0; i < n_expected; i++) {
        int found = 0;
        for (int j = 0; j < n_saved && !found; j++) found = strcmp(expected[i], saved[j]) == 0;
        if (!found) {
            append_name(missing, sizeof missing, expected[i]);
            n_missing++;
        }
    }
    for (int j = 0; j < n_saved; j++) {
        int found = 0;
        for (int i = 0; i < n_expected && !found; i++) found = strcmp(expected[i], saved[j]) == 0;
        if (!found) {
            append_name(extra, sizeof extra, saved[j]);
            n_extra++;
        }
    }
    for (int i = 0; i < n_saved; i++) free(saved[i]);
    free(saved);
    if (n_missing && n_extra)
        return error_set(r->err, "%s: %s lacks %d name(s) of %s: %s; and holds %d that %s does not have: %s",
                         r->path, group_path, n_missing, owner, missing, n_extra, owner, extra);
    if (n_missing) return error_set(r->err, "%s: %s lacks %d name(s) of %s: %s", r->path, group_path, n_missing,
                                    owner, missing);
    if (n_extra) return error_set(r->err, "%s: %s holds %d name(s) that %s does not have: %s", r->path, group_path,
                                  n_extra, owner, extra);
    return 0;
}

// Reads a scalar fixed-length string attribute of the root into out.
static int read_root_string_attribute(Reader *r, const char *name, char *out, size_t size) {
    Hdf5Reason reason;
    hid_t attribute = H5Aopen(r->file, name, H5P_DEFAULT);
    if (attribute < 0)
        return error_set(r->err, "%s: cannot read the root attribute '%s': %s", r->path, name, hdf5_reason(&reason));
    int status = 0;
    hid_t type = H5Aget_type(attribute);
    size_t length = type >= 0 ? H5Tget_size(type) : 0;
    if (type < 0 || H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) != 0 || length == 0 ||
        length >= size) {
        status = error_set(r->err, "%s: the root attribute '%s' is not a short fixed-length string", r->path, name);
    } else {
        hid_t memory_type = string_type(length);
        memset(out, 0, size);
        if (memory_type < 0 || H5Aread(attribute, memory_type, out) < 0)
            status = error_set(r->err, "%s: cannot read the root attribute '%s': %s", r->path, name,
                               hdf5_reason(&reason));
        if (memory_type >= 0) H5Tclose(memory_type);
    }
    if (type >= 0) H5Tclose(type);
    H5Aclose(attribute);
    return status;
}

static void close_checkpoint(Reader *r) {
    if (r->file >= 0) H5Fclose(r->file);
    r->file = -1;
}

// Opens path and checks its format and version.
static int open_checkpoint(Reader *r, const char *path, Error *err) {
    Hdf5Reason reason;
    r->file = -1;
    r->path = path;
    r->err = err;
    // A checkpoint is about 3 times its model (weights and two moments), and the model must
    // fit in memory: a larger file, a folder or a device is not one.
    uint64_t memory = memory_physical_bytes();
    if (input_file_check(path, "checkpoint", memory ? 4 * memory : UINT64_MAX, NULL, err) != 0) return -1;
    int fd = open(path, O_RDONLY);  // the system's reason for an unreadable file
    if (fd < 0) return error_set(err, "%s: cannot open: %s", path, strerror(errno));
    close(fd);
    htri_t is_hdf5 = H5Fis_hdf5(path);
    if (is_hdf5 == 0) return error_set(err, "%s: not a checkpoint (not an HDF5 file)", path);
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl >= 0 && H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) >= 0)
        r->file = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    if (r->file < 0) error_set(err, "%s: cannot open as HDF5 (damaged or truncated file?): %s", path,
                               hdf5_reason(&reason));
    if (fapl >= 0) H5Pclose(fapl);
    if (r->file < 0) return -1;

    char format[64];
    htri_t has_format = H5Aexists(r->file, "format");
    if (has_format <= 0) {
        close_checkpoint(r);
        return error_set(err, "%s: not a mambaprune checkpoint (no root attribute 'format')", path);
    }
    if (read_root_string_attribute(r, "format", format, sizeof format) != 0) {
        close_checkpoint(r);
        return -1;
    }
    if (strcmp(format, CHECKPOINT_FORMAT) != 0) {
        close_checkpoint(r);
        return error_set(err, "%s: not a mambaprune checkpoint (format '%s', expected '%s')", path, format,
                         CHECKPOINT_FORMAT);
    }
    int version = 0;
    hid_t attribute = H5Aopen(r->file, "version", H5P_DEFAULT);
    int ok = attribute >= 0 && H5Aread(attribute, H5T_NATIVE_INT, &version) >= 0;
    if (!ok) error_set(err, "%s: cannot read the root attribute 'version': %s", path, hdf5_reason(&reason));
    if (attribute >= 0) H5Aclose(attribute);
    if (ok && version != CHECKPOINT_VERSION) {
        ok = 0;
        error_set(err, "%s: checkpoint version %d, this build reads version %d", path, version, CHECKPOINT_VERSION);
    }
    if (!ok) {
        close_checkpoint(r);
        return -1;
    }
    return 0;
}

static int read_config(Reader *r, char **config_yaml) {
    Hdf5Reason reason;
    *config_yaml = NULL;
    if (!link_exists(r, "/config")) return error_set(r->err, "%s: /config is missing", r->path);
    hid_t dataset = H5Dopen2(r->file, "/config", H5P_DEFAULT);
    if (dataset < 0) return error_set(r->err, "%s: cannot open /config: %s", r->path, hdf5_reason(&reason));
    hid_t type = H5Dget_type(dataset);
    hid_t space = H5Dget_space(dataset);
    int status = 0;
    if (type < 0 || space < 0 || H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) != 0 ||
        H5Sget_simple_extent_npoints(space) != 1) {
        status = error_set(r->err, "%s: /config is not one fixed-length string", r->path);
    } else {
        size_t length = H5Tget_size(type);
        hid_t memory_type = string_type(length);
        char *text = xcalloc(length + 1, 1);
        if (memory_type < 0 || H5Dread(dataset, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, text) < 0) {
            status = error_set(r->err, "%s: cannot read /config (damaged file?): %s", r->path, hdf5_reason(&reason));
            free(text);
        } else {
            *config_yaml = text;
        }
        if (memory_type >= 0) H5Tclose(memory_type);
    }
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    H5Dclose(dataset);
    return status;
}

static int read_params(Reader *r, NamedParam *params, int n_params) {
    const char **names = xmalloc(sizeof *names * (size_t)(n_params > 0 ? n_params : 1));
    for (int i = 0; i < n_params; i++) names[i] = params[i].name;
    int status = check_names(r, "/params", names, n_params, "the model");
    free(names);
    char object_path[160];
    for (int i = 0; i < n_params && status == 0; i++) {
        hsize_t dims[TENSOR_MAX_DIMS];
        int ndim = tensor_dims(params[i].tensor, dims);
        snprintf(object_path, sizeof object_path, "/params/%s", params[i].name);
        status = read_dataset(r, object_path, H5T_NATIVE_FLOAT, ndim, dims, params[i].tensor->data);
    }
    return status;
}

static int read_optimizer(Reader *r, const NamedParam *params, int n_params, AdamW *optimizer) {
    if (!link_exists(r, "/optim")) return error_set(r->err, "%s: /optim is missing (saved without the optimizer)", r->path);
    const char **names = xmalloc(sizeof *names * (size_t)(optimizer->n_slots > 0 ? optimizer->n_slots : 1));
    int status = 0;
    for (int i = 0; i < optimizer->n_slots && status == 0; i++) {
        const NamedParam *param = find_param_by_tensor(params, n_params, optimizer->slots[i].tensor);
        if (!param)
            status = error_set(r->err, "%s: optimizer slot %d holds a tensor that is not in the parameter table",
                               r->path, i);
        else
            names[i] = param->name;
    }
    if (status == 0) status = check_names(r, "/optim/m", names, optimizer->n_slots, "the optimizer");
    if (status == 0) status = check_names(r, "/optim/v", names, optimizer->n_slots, "the optimizer");
    if (status == 0) status = read_int64(r, "/optim/step", &optimizer->step);
    if (status == 0 && optimizer->step < 0)
        status = error_set(r->err, "%s: /optim/step is %ld, expected >= 0", r->path, (long)optimizer->step);
    char object_path[160];
    for (int i = 0; i < optimizer->n_slots && status == 0; i++) {
        AdamWSlot *slot = &optimizer->slots[i];
        hsize_t dims[TENSOR_MAX_DIMS];
        int ndim = tensor_dims(slot->tensor, dims);
        snprintf(object_path, sizeof object_path, "/optim/m/%s", names[i]);
        status = read_dataset(r, object_path, H5T_NATIVE_FLOAT, ndim, dims, slot->m);
        snprintf(object_path, sizeof object_path, "/optim/v/%s", names[i]);
        if (status == 0) status = read_dataset(r, object_path, H5T_NATIVE_FLOAT, ndim, dims, slot->v);
    }
    free(names);
    return status;
}

// The parameter that a caller's mask belongs to, or NULL with the reason in r->err.
static const NamedParam *mask_param(Reader *r, const NamedParam *params, int n_params, const CheckpointMask *mask) {
    const NamedParam *param = find_param_by_name(params, n_params, mask->name);
    if (!param)
        error_set(r->err, "%s: the mask '%s' names no parameter of the model", r->path, mask->name);
    else if (mask->size != param->tensor->size)
        error_set(r->err, "%s: the mask '%s' has %zu elements but the parameter has %zu", r->path, mask->name,
                  mask->size, param->tensor->size);
    else
        return param;
    return NULL;
}

// Reads /masks/<name> into mask, with the shape of its parameter.
static int read_mask(Reader *r, const NamedParam *param, CheckpointMask *mask) {
    char object_path[160];
    hsize_t dims[TENSOR_MAX_DIMS];
    int ndim = tensor_dims(param->tensor, dims);
    snprintf(object_path, sizeof object_path, "/masks/%s", mask->name);
    if (read_dataset(r, object_path, H5T_NATIVE_UINT8, ndim, dims, mask->mask) != 0) return -1;
    for (size_t i = 0; i < mask->size; i++)
        if (mask->mask[i] > 1)
            return error_set(r->err, "%s: %s: element %zu is %u, expected 0 (pruned) or 1 (kept)", r->path,
                             object_path, i, (unsigned)mask->mask[i]);
    return 0;
}

static int read_masks(Reader *r, const NamedParam *params, int n_params, CheckpointMask *masks, int n_masks) {
    const char **names = xmalloc(sizeof *names * (size_t)(n_masks > 0 ? n_masks : 1));
    int status = 0;
    for (int i = 0; i < n_masks && status == 0; i++) {
        if (!mask_param(r, params, n_params, &masks[i])) status = -1;
        names[i] = masks[i].name;
    }
    if (status == 0) status = check_names(r, "/masks", names, n_masks, "the caller's masks");
    free(names);
    for (int i = 0; i < n_masks && status == 0; i++)
        status = read_mask(r, find_param_by_name(params, n_params, masks[i].name), &masks[i]);
    return status;
}

static int read_state(Reader *r, CheckpointState *state) {
    Hdf5Reason reason;
    CheckpointArray *arrays = state->arrays;  // the caller's, kept
    int n_arrays = state->n_arrays;
    memset(state, 0, sizeof *state);
    state->arrays = arrays;
    state->n_arrays = n_arrays;
    hsize_t one = 1, four = 4;
    if (read_int64(r, "/state/step", &state->step) != 0) return -1;
    if (read_int64(r, "/state/data_cursor", &state->data_cursor) != 0) return -1;
    if (read_dataset(r, "/state/rng", H5T_NATIVE_UINT64, 1, &four, state->rng.s) != 0) return -1;
    if (state->step < 0) return error_set(r->err, "%s: /state/step is %ld, expected >= 0", r->path, state->step);
    if (state->data_cursor < 0)
        return error_set(r->err, "%s: /state/data_cursor is %ld, expected >= 0", r->path, state->data_cursor);
    if (!link_exists(r, "/state/schedule")) return error_set(r->err, "%s: /state/schedule is missing", r->path);
    hid_t group = H5Gopen2(r->file, "/state/schedule", H5P_DEFAULT);
    H5G_info_t info;
    if (group < 0 || H5Gget_info(group, &info) < 0) {
        error_set(r->err, "%s: cannot list /state/schedule: %s", r->path, hdf5_reason(&reason));
        if (group >= 0) H5Gclose(group);
        return -1;
    }
    int status = 0;
    if (info.nlinks > CHECKPOINT_MAX_VALUES)
        status = error_set(r->err, "%s: /state/schedule holds %llu values, at most %d are supported", r->path,
                           (unsigned long long)info.nlinks, CHECKPOINT_MAX_VALUES);
    for (hsize_t i = 0; i < info.nlinks && status == 0; i++) {
        CheckpointValue *value = &state->values[i];
        ssize_t length = H5Lget_name_by_idx(group, ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, i, value->name,
                                            sizeof value->name, H5P_DEFAULT);
        if (length < 0 || (size_t)length >= sizeof value->name) {
            status = error_set(r->err, "%s: a name in /state/schedule is unreadable or longer than %zu characters",
                               r->path, sizeof value->name - 1);
            break;
        }
        char object_path[64];
        snprintf(object_path, sizeof object_path, "/state/schedule/%s", value->name);
        status = read_dataset(r, object_path, H5T_NATIVE_DOUBLE, 1, &one, &value->value);
        state->n_values++;
    }
    H5Gclose(group);
    return status;
}

// The arrays of /prune that the caller lists; any other saved array is an error.
static int read_arrays(Reader *r, CheckpointArray *arrays, int n_arrays) {
    Hdf5Reason reason;
    for (int i = 0; i < n_arrays; i++) {
        if (check_array_name(r->path, &arrays[i], r->err) != 0) return -1;
        arrays[i].found = false;
    }
    if (!link_exists(r, "/prune")) return 0;
    hid_t group = H5Gopen2(r->file, "/prune", H5P_DEFAULT);
    H5G_info_t info;
    if (group < 0 || H5Gget_info(group, &info) < 0) {
        error_set(r->err, "%s: cannot list /prune: %s", r->path, hdf5_reason(&reason));
        if (group >= 0) H5Gclose(group);
        return -1;
    }
    int status = 0;
    for (hsize_t i = 0; i < info.nlinks && status == 0; i++) {
        char name[64];
        ssize_t length = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        if (length < 0 || (size_t)length >= sizeof name) {
            status = error_set(r->err, "%s: a name in /prune is unreadable or too long", r->path);
            break;
        }
        CheckpointArray *array = NULL;
        for (int j = 0; j < n_arrays && !array; j++)
            if (strcmp(arrays[j].name, name) == 0) array = &arrays[j];
        if (!array) {
            status = error_set(r->err, "%s: /prune/%s is not an array of this run's state", r->path, name);
            break;
        }
        char object_path[80];
        snprintf(object_path, sizeof object_path, "/prune/%s", name);
        hsize_t size = array->size;
        status = read_dataset(r, object_path, H5T_NATIVE_FLOAT, 1, &size, array->data);
        array->found = status == 0;
    }
    H5Gclose(group);
    return status;
}

int checkpoint_load(const char *path, NamedParam *params, int n_params, AdamW *optimizer,
                    CheckpointMask *masks, int n_masks, CheckpointState *state, Error *err) {
    Hdf5Quiet quiet;
    hdf5_quiet_begin(&quiet);
    Reader r;
    int status = open_checkpoint(&r, path, err);
    if (status == 0) status = read_params(&r, params, n_params);
    if (status == 0 && optimizer) status = read_optimizer(&r, params, n_params, optimizer);
    if (status == 0 && masks) status = read_masks(&r, params, n_params, masks, n_masks);
    if (status == 0 && state) status = read_state(&r, state);
    if (status == 0 && state && state->arrays) status = read_arrays(&r, state->arrays, state->n_arrays);
    close_checkpoint(&r);
    hdf5_quiet_end(&quiet);
    return status;
}

int checkpoint_read_masks_found(const char *path, const NamedParam *params, int n_params, CheckpointMask *masks,
                                int n_masks, bool *found, int *unlisted, Error *err) {
    Hdf5Quiet quiet;
    hdf5_quiet_begin(&quiet);
    Reader r;
    int status = open_checkpoint(&r, path, err);
    bool has_masks = status == 0 && link_exists(&r, "/masks");
    int n_found = 0;
    char object_path[160];
    for (int i = 0; i < n_masks && status == 0; i++) {
        found[i] = false;
        const NamedParam *param = mask_param(&r, params, n_params, &masks[i]);
        if (!param) {
            status = -1;
            break;
        }
        snprintf(object_path, sizeof object_path, "/masks/%s", masks[i].name);
        if (!has_masks || !link_exists(&r, object_path)) continue;
        status = read_mask(&r, param, &masks[i]);
        found[i] = status == 0;
        n_found += found[i];
    }
    *unlisted = 0;
    if (status == 0 && has_masks) {
        Hdf5Reason reason;
        hid_t group = H5Gopen2(r.file, "/masks", H5P_DEFAULT);
        H5G_info_t info;
        if (group < 0 || H5Gget_info(group, &info) < 0)
            status = error_set(err, "%s: cannot list /masks: %s", path, hdf5_reason(&reason));
        else
            *unlisted = (int)info.nlinks - n_found;
        if (group >= 0) H5Gclose(group);
    }
    close_checkpoint(&r);
    hdf5_quiet_end(&quiet);
    return status;
}

int checkpoint_read_config(const char *path, char **config_yaml, Error *err) {
    Hdf5Quiet quiet;
    hdf5_quiet_begin(&quiet);
    Reader r;
    *config_yaml = NULL;
    int status = open_checkpoint(&r, path, err);
    if (status == 0) status = read_config(&r, config_yaml);
    close_checkpoint(&r);
    hdf5_quiet_end(&quiet);
    return status;
}

int checkpoint_probe(const char *path, Error *err) {
    Hdf5Quiet quiet;
    hdf5_quiet_begin(&quiet);
    Reader r;
    int status = open_checkpoint(&r, path, err);
    close_checkpoint(&r);
    hdf5_quiet_end(&quiet);
    return status;
}

// ---- the run state's values ----

int checkpoint_state_add(CheckpointState *state, const char *name, double value, Error *err) {
    if (state->n_values >= CHECKPOINT_MAX_VALUES)
        return error_set(err, "cannot store the schedule value '%s': all %d are in use", name, CHECKPOINT_MAX_VALUES);
    CheckpointValue *v = &state->values[state->n_values];
    if (strlen(name) >= sizeof v->name)
        return error_set(err, "schedule value name '%s' is longer than %zu characters", name, sizeof v->name - 1);
    snprintf(v->name, sizeof v->name, "%s", name);
    v->value = value;
    state->n_values++;
    return 0;
}

static const CheckpointValue *find_value(const CheckpointState *state, const char *name) {
    for (int i = 0; i < state->n_values; i++)
        if (strcmp(state->values[i].name, name) == 0) return &state->values[i];
    return NULL;
}

double checkpoint_state_value(const CheckpointState *state, const char *name, double fallback) {
    const CheckpointValue *v = find_value(state, name);
    return v ? v->value : fallback;
}

int checkpoint_fields_add(CheckpointState *state, const Field *fields, int n, const void *object, Error *err) {
    for (int i = 0; i < n; i++)
        if (checkpoint_state_add(state, fields[i].name, field_get(&fields[i], object), err) != 0) return -1;
    return 0;
}

int checkpoint_fields_read(const CheckpointState *state, const Field *fields, int n, void *object, const char *path,
                           Error *err) {
    for (int i = 0; i < n; i++) {
        const CheckpointValue *found = find_value(state, fields[i].name);
        if (!found) return error_set(err, "%s: /state/schedule/%s is missing", path, fields[i].name);
        field_set(&fields[i], object, found->value);
    }
    return 0;
}

// ---- the checkpoints of a run folder ----

typedef struct StepFile {
    long step;
    char *name;
} StepFile;

// The step of a name "ckpt-<digits>.h5", or -1.
static long step_of_name(const char *name) {
    if (strncmp(name, "ckpt-", 5) != 0) return -1;
    const char *digits = name + 5;
    size_t n = strspn(digits, "0123456789");
    if (n == 0 || n > 18 || strcmp(digits + n, ".h5") != 0) return -1;
    return strtol(digits, NULL, 10);
}

static int newest_first(const void *a, const void *b) {
    long sa = ((const StepFile *)a)->step, sb = ((const StepFile *)b)->step;
    return (sa < sb) - (sa > sb);
}

// The checkpoint files of dir, newest first.
static int list_step_files(const char *dir, StepFile **files_out, int *n_out, Error *err) {
    *files_out = NULL;
    *n_out = 0;
    DIR *folder = opendir(dir);
    if (!folder) return error_set(err, "%s: cannot list the checkpoint folder: %s", dir, strerror(errno));
    StepFile *files = NULL;
    int n = 0, capacity = 0;
    struct dirent *entry;
    while ((entry = readdir(folder)) != NULL) {
        long step = step_of_name(entry->d_name);
        if (step < 0) continue;
        if (n == capacity) {
            capacity = capacity ? 2 * capacity : 16;
            files = xrealloc(files, sizeof *files * (size_t)capacity);
        }
        files[n].step = step;
        files[n].name = xstrdup(entry->d_name);
        n++;
    }
    closedir(folder);
    if (n > 1) qsort(files, (size_t)n, sizeof *files, newest_first);
    *files_out = files;
    *n_out = n;
    return 0;
}

static void free_step_files(StepFile *files, int n) {
    for (int i = 0; i < n; i++) free(files[i].name);
    free(files);
}

static int join_path(char *path, size_t size, const char *dir, const char *name, Error *err) {
    int n = snprintf(path, size, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= size) return error_set(err, "%s/%s: path longer than %zu bytes", dir, name, size - 1);
    return 0;
}

int checkpoint_path_for_step(char *path, size_t size, const char *dir, long step, Error *err) {
    if (step < 0) return error_set(err, "%s: negative checkpoint step %ld", dir, step);
    char name[40];
    snprintf(name, sizeof name, "ckpt-%08ld.h5", step);
    return join_path(path, size, dir, name, err);
}

int checkpoint_prune_old(const char *dir, int keep, Error *err) {
    if (keep < 1) return error_set(err, "%s: keep %d checkpoints, expected at least 1", dir, keep);
    StepFile *files;
    int n;
    if (list_step_files(dir, &files, &n, err) != 0) return -1;
    int status = 0;
    for (int i = keep; i < n && status == 0; i++) {
        char path[4096];
        status = join_path(path, sizeof path, dir, files[i].name, err);
        if (status == 0 && unlink(path) != 0 && errno != ENOENT)
            status = error_set(err, "%s: cannot delete an old checkpoint: %s", path, strerror(errno));
    }
    free_step_files(files, n);
    return status;
}

int checkpoint_find_latest(const char *dir, char *path, size_t size, Error *err) {
    StepFile *files;
    int n;
    if (list_step_files(dir, &files, &n, err) != 0) return -1;
    int status = n == 0 ? error_set(err, "%s: no checkpoint (ckpt-<step>.h5) in this folder", dir)
                        : join_path(path, size, dir, files[0].name, err);
    free_step_files(files, n);
    return status;
}
