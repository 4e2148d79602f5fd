// Progress line (see progress.h).
#include "run/progress.h"

#include <stdarg.h>
#include <unistd.h>

void format_duration(double seconds, char *buf, size_t size) {
    if (seconds < 0 || seconds != seconds) seconds = 0;
    long s = (long)(seconds + 0.5);
    if (s >= 3600) snprintf(buf, size, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
    else if (s >= 60) snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
    else snprintf(buf, size, "%lds", s);
}

void progress_init(Progress *p, FILE *out, bool enabled, long start_step, long total_steps) {
    p->out = out;
    p->is_terminal = isatty(fileno(out));
    p->enabled = enabled;
    p->total_steps = total_steps;
    p->start_time = now_seconds();
    p->start_step = start_step;
    p->line_length = 0;
}

static void clear_line(Progress *p) {
    if (p->is_terminal && p->line_length > 0) {
        fprintf(p->out, "\r%*s\r", p->line_length, "");
        p->line_length = 0;
    }
}

// Elapsed time and ETA for `step` of the total, as text.
static void timing_text(const Progress *p, long step, char *elapsed_text, char *eta_text, size_t size) {
    double elapsed = now_seconds() - p->start_time;
    long done = step - p->start_step;
    double eta = done > 0 ? elapsed / (double)done * (double)(p->total_steps - step) : 0.0;
    format_duration(eta, eta_text, size);
    format_duration(elapsed, elapsed_text, size);
}

static void write_line(Progress *p, const char *line, int length) {
    if (p->is_terminal) {
        clear_line(p);
        fprintf(p->out, "\r%s", line);
        p->line_length = length;
    } else {
        fprintf(p->out, "%s\n", line);
    }
    fflush(p->out);
}

void progress_update(Progress *p, long step, float loss, float lr, float sparsity, double tokens_per_s,
                     const char *extra) {
    if (!p->enabled) return;
    char eta_text[32], elapsed_text[32];
    timing_text(p, step, elapsed_text, eta_text, sizeof eta_text);
    char line[512];
    int n = snprintf(line, sizeof line, "step %ld/%ld | loss %.4f | lr %.2e | sparsity %5.1f%% | %.0f tok/s | %s elapsed, ETA %s%s%s",
                     step, p->total_steps, loss, lr, 100.0f * sparsity, tokens_per_s, elapsed_text, eta_text,
                     extra ? " | " : "", extra ? extra : "");
    write_line(p, line, n);
}

void progress_update_eval(Progress *p, long batch, double mean_nll, double tokens_per_s) {
    if (!p->enabled) return;
    char eta_text[32], elapsed_text[32];
    timing_text(p, batch, elapsed_text, eta_text, sizeof eta_text);
    char line[256];
    int n = snprintf(line, sizeof line, "evaluating: batch %ld/%ld | loss %.4f | %.0f tok/s | %s elapsed, ETA %s", batch,
                     p->total_steps, mean_nll, tokens_per_s, elapsed_text, eta_text);
    write_line(p, line, n);
}

void progress_message(Progress *p, const char *format, ...) {
    clear_line(p);
    va_list args;
    va_start(args, format);
    vfprintf(p->out, format, args);
    va_end(args);
    fputc('\n', p->out);
    fflush(p->out);
}

void progress_finish(Progress *p) {
    if (p->is_terminal && p->line_length > 0) fputc('\n', p->out);
    p->line_length = 0;
    fflush(p->out);
}
