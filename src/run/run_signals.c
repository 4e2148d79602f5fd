// Stop requests by signal (see run_signals.h).
#include "run/run_signals.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t stop_signal = 0;
static bool stopped = false;

static void on_signal(int sig) {
    if (stop_signal) {
        // The second signal: stop now, as if no handler had been installed.
        signal(sig, SIG_DFL);
        raise(sig);
        return;
    }
    stop_signal = sig;
}

void run_signals_install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;  // reads and writes in progress go on; the loop checks the flag
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

int run_signals_pending(void) { return (int)stop_signal; }

void run_signals_agree(int sig) { stop_signal = sig; }
void run_signals_mark_stopped(void) { stopped = stop_signal != 0; }
bool run_signals_stopped(void) { return stopped; }
