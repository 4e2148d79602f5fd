// Stop requests by signal (see run_signals.h).
#include "run/run_signals.h"

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

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

// The one thread that takes SIGINT and SIGTERM: it sleeps, and the handler runs on it.
// Every other thread blocks them (see run_signals_install).
static void *signal_thread(void *unused) {
    (void)unused;
    for (;;) pause();
    return NULL;
}

void run_signals_install(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;  // reads and writes in progress go on; the loop checks the flag
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    // A signal whose handler runs on a thread inside oneDNN's sgemm can corrupt the heap
    // (docs/DESIGN.md#signals): the handler runs on a thread of its own, and the calling
    // thread, with every thread it starts later (OpenMP's, MPI's), blocks both signals.
    // If that thread cannot be made, the handler runs wherever the signal lands.
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&thread, &attr, signal_thread, NULL) == 0) {
        sigset_t stop;
        sigemptyset(&stop);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &stop, NULL);
    }
    pthread_attr_destroy(&attr);
}

int run_signals_pending(void) { return (int)stop_signal; }

void run_signals_agree(int sig) { stop_signal = sig; }
void run_signals_mark_stopped(void) { stopped = stop_signal != 0; }
bool run_signals_stopped(void) { return stopped; }
