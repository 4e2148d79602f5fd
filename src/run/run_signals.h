// SIGINT and SIGTERM during a run: the first asks the run to stop after its current step
// (it then writes a checkpoint, says so and exits with 128 + the signal: 130 or 143); a
// second one ends the process at once, with the default action.
//
// The one piece of process-wide mutable state in the project: a signal handler can only
// talk to the program through a global flag (a volatile sig_atomic_t).
#ifndef MP_RUN_RUN_SIGNALS_H
#define MP_RUN_RUN_SIGNALS_H

// Installs the handlers for SIGINT and SIGTERM.
void run_signals_install(void);
// The signal that asked the run to stop (SIGINT or SIGTERM), or 0.
int run_signals_pending(void);

#endif
