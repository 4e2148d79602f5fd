// TEMPORARY stand-in for the stability check, so that the iterative branch links before the
// real stability.c lands on main. The lead drops this file when merging.
#include "prune/stability.h"

#include <stdlib.h>

void stability_report_free(StabilityReport *report) {
    free(report->violations);
    free(report->corrected);
    report->violations = report->corrected = NULL;
}

cJSON *stability_report_json(const StabilityReport *report) {
    (void)report;
    return cJSON_CreateObject();
}

int stability_measure(MambaModel *model, Tape *tape, const StabilityOptions *options, float *max_eigenvalue,
                      Error *err) {
    (void)model, (void)tape, (void)options, (void)max_eigenvalue;
    return error_set(err, "stability.enabled: the stability check is not implemented yet");
}

int stability_correct(MambaModel *model, Tape *tape, const PruneMasks *masks, uint8_t *const *new_keep,
                      const float *const *scores, const int *group, const StabilityOptions *options,
                      StabilityReport *report, Error *err) {
    (void)model, (void)tape, (void)masks, (void)new_keep, (void)scores, (void)group, (void)options, (void)report;
    return error_set(err, "stability.enabled: the stability check is not implemented yet");
}
