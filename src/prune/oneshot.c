// The one-shot methods' driver (see oneshot.h).
#include "prune/oneshot.h"

int oneshot_prune(const RunConfig *c, const Dataset *data, MambaModel *model, PruneMasks *masks, cJSON *report,
                  Error *err) {
    (void)c, (void)data, (void)model, (void)masks, (void)report;
    return error_set(err, "prune.method: the one-shot methods are not implemented yet");
}
