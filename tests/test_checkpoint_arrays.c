// The run state's optional float arrays (/prune/<name>) and the schedule-value helpers of
// io/checkpoint.h: a round trip, bit for bit; an array the file lacks is reported as not
// found; an array of the file that the caller does not list, or of another size, is an error
// that names it; arrays NULL ignores /prune; bad names; 32 values and no more.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "tiny_model.h"

#include "check.h"

static CheckpointArray array(const char *name, float *data, size_t size) {
    CheckpointArray a;
    memset(&a, 0, sizeof a);
    snprintf(a.name, sizeof a.name, "%s", name);
    a.data = data;
    a.size = size;
    return a;
}

int main(void) {
    char path[] = "/tmp/test_checkpoint_arrays_XXXXXX.h5";
    int fd = mkstemps(path, 3);
    close(fd);
    MambaModel model;
    tiny_model_create(&model, 1, 9);
    Error err;

    float accumulator[1000], totals[3] = {1.0f, 2.5f, -0.0f};
    for (int i = 0; i < 1000; i++) accumulator[i] = sinf((float)i) * 1e-3f;
    accumulator[7] = NAN;
    CheckpointArray saved[2] = {array("grad_accum", accumulator, 1000), array("totals", totals, 3)};
    CheckpointState state = {.step = 12, .data_cursor = 12, .arrays = saved, .n_arrays = 2};
    int rc = checkpoint_state_add(&state, "lr", 1e-4, &err);
    if (rc == 0) rc = checkpoint_state_add(&state, "prune_grad_count", 2, &err);
    if (rc == 0) rc = checkpoint_save(path, model.params, model.n_params, NULL, NULL, 0, &state, "", &err);
    check(rc == 0, "save with two arrays: %s", rc ? err.message : "ok");

    float accumulator_back[1000], totals_back[3], other[4];
    CheckpointArray listed[3] = {array("totals", totals_back, 3), array("grad_accum", accumulator_back, 1000),
                                 array("not_saved", other, 4)};
    CheckpointState loaded;
    memset(&loaded, 0, sizeof loaded);
    loaded.arrays = listed;
    loaded.n_arrays = 3;
    rc = checkpoint_load(path, model.params, model.n_params, NULL, NULL, 0, &loaded, &err);
    check(rc == 0 && loaded.arrays == listed && loaded.n_arrays == 3, "load: %s, the caller's arrays kept",
          rc ? err.message : "ok");
    check(listed[0].found && listed[1].found && !listed[2].found, "found: totals %d, grad_accum %d, not_saved %d",
          listed[0].found, listed[1].found, listed[2].found);
    check(memcmp(accumulator, accumulator_back, sizeof accumulator) == 0 && memcmp(totals, totals_back, sizeof totals) == 0,
          "arrays back bit for bit (NaN and -0 included)");
    check(checkpoint_state_value(&loaded, "prune_grad_count", -1) == 2 && checkpoint_state_value(&loaded, "lr", -1) == 1e-4 &&
              checkpoint_state_value(&loaded, "missing", -1) == -1,
          "values by name, fallback for a missing one");

    CheckpointArray only_one[1] = {array("grad_accum", accumulator_back, 1000)};
    loaded.arrays = only_one;
    loaded.n_arrays = 1;
    rc = checkpoint_load(path, model.params, model.n_params, NULL, NULL, 0, &loaded, &err);
    check_error("a saved array the caller does not list", rc, &err, "/prune/totals", NULL);
    CheckpointArray wrong_size[2] = {array("grad_accum", accumulator_back, 999), array("totals", totals_back, 3)};
    loaded.arrays = wrong_size;
    loaded.n_arrays = 2;
    rc = checkpoint_load(path, model.params, model.n_params, NULL, NULL, 0, &loaded, &err);
    check_error("an array of another size", rc, &err, "/prune/grad_accum", "(1000)", "(999)", NULL);
    memset(&loaded, 0, sizeof loaded);
    rc = checkpoint_load(path, model.params, model.n_params, NULL, NULL, 0, &loaded, &err);
    check(rc == 0 && loaded.step == 12, "arrays NULL: /prune is ignored (%s)", rc ? err.message : "ok");

    CheckpointArray bad[1] = {array("a/b", totals, 3)};
    CheckpointState bad_state = {.arrays = bad, .n_arrays = 1};
    rc = checkpoint_save(path, model.params, model.n_params, NULL, NULL, 0, &bad_state, "", &err);
    check_error("an array name with '/'", rc, &err, "a/b", NULL);

    CheckpointState full;
    memset(&full, 0, sizeof full);
    rc = 0;
    for (int i = 0; i < CHECKPOINT_MAX_VALUES && rc == 0; i++) {
        char name[32];
        snprintf(name, sizeof name, "value_%d", i);
        rc = checkpoint_state_add(&full, name, i, &err);
    }
    check(rc == 0 && full.n_values == 32, "32 values fit (%d)", full.n_values);
    rc = checkpoint_state_add(&full, "one_more", 1, &err);
    check_error("a 33rd value", rc, &err, "one_more", "32", NULL);
    memset(&full, 0, sizeof full);
    rc = checkpoint_state_add(&full, "a_name_that_is_far_too_long_for_32", 1, &err);
    check_error("a value name of 34 characters", rc, &err, "longer than 31", NULL);
    rc = checkpoint_save(path, model.params, model.n_params, NULL, NULL, 0, &full, "", &err);
    check(rc == 0, "a state of 0 values saves: %s", rc ? err.message : "ok");

    remove(path);
    mamba_model_free(&model);
    return check_summary("checkpoint arrays and values");
}
