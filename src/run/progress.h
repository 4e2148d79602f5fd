// The one line a person watches during a long run: step/total, loss, lr, sparsity,
// tokens/s and ETA, rewritten in place on a terminal, printed as plain lines otherwise.
#ifndef MP_RUN_PROGRESS_H
#define MP_RUN_PROGRESS_H

#include <stdbool.h>
#include <stdio.h>

#include "core/timer.h"

typedef struct Progress {
    FILE *out;
    bool is_terminal;
    bool enabled;
    long total_steps;
    double start_time;     // seconds, monotonic
    long start_step;       // the step this process started from (resume)
    int line_length;       // of the last in-place line, to blank it fully
} Progress;

void progress_init(Progress *p, FILE *out, bool enabled, long start_step, long total_steps);
// Rewrites the line; `extra` (may be NULL) is appended, e.g. "val 1.234".
void progress_update(Progress *p, long step, float loss, float lr, float sparsity, double tokens_per_s,
                     const char *extra);
// The line of an evaluation: batch/total, the mean loss so far, tokens/s and ETA.
void progress_update_eval(Progress *p, long batch, double mean_nll, double tokens_per_s);
// Prints a message on its own line without breaking the progress line.
void progress_message(Progress *p, const char *format, ...) __attribute__((format(printf, 2, 3)));
void progress_finish(Progress *p);
// "1h02m", "3m05s", "12s"
void format_duration(double seconds, char *buf, size_t size);

#endif
