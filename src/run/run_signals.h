// SIGINT and SIGTERM during a run: the first asks the run to stop after its current step
// (it then writes a checkpoint, says so and exits with 128 + the signal: 130 or 143); a
// second one ends the process at once, with the default action.
//
// The one piece of process-wide mutable state in the project: a signal handler can only
// talk to the program through a global flag (a volatile sig_atomic_t), and with it whether
// the run has stopped for that signal.
#ifndef MP_RUN_RUN_SIGNALS_H
#define MP_RUN_RUN_SIGNALS_H

#include <stdbool.h>

// Installs the handlers for SIGINT and SIGTERM, on a thread that only waits for them; the
// calling thread blocks both. Call it before any other thread starts (OpenMP's, MPI's):
// they inherit the block.
void run_signals_install(void);
// The signal that asked the run to stop (SIGINT or SIGTERM), or 0.
int run_signals_pending(void);
// Under mpirun: the signal on which the processes agreed to stop, as if it had reached
// this one (a signal after it ends the process at once).
void run_signals_agree(int sig);
// After the stop's checkpoint is written (and every process has reached that point):
// run_signals_stopped() then says that this process ends for the signal, not for an error,
// so it ends MPI normally instead of aborting the others.
void run_signals_mark_stopped(void);
bool run_signals_stopped(void);

#endif
