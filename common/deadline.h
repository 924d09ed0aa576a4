/* A last resort for a clean stop. nng 1.5.2's nng_close() can deadlock when a socket is closed
 * while its connections carry traffic (nng issues #1543 and #1813, fixed in later nng). A
 * program arms the deadline once everything that matters is done (the broker's journal is
 * closed, workers' jobs are settled) and before it closes its sockets: if it has not exited
 * within ms, the deadline logs event=stop.forced, removes the listed files (socket files
 * nng would have removed) and ends the process with _exit(code).
 *
 * The daemons (broker, worker-pool, worker, router) pass DEADLINE_EXIT_FORCED: a stop that
 * had to be forced is not a clean one, and whoever started the program (a service manager,
 * a script, the test suite) must be able to tell. ctl passes its command's status: it arms
 * the deadline only once the command is done and its result printed, so a hang in the close
 * after it changes nothing of what the status says (the stop.forced line on stderr shows
 * it). */
#ifndef SLUICE_DEADLINE_H
#define SLUICE_DEADLINE_H

/* The exit status of a daemon stopped by its deadline: EX_SOFTWARE of sysexits.h (an
 * internal error), which no program of sluice exits with otherwise. */
#define DEADLINE_EXIT_FORCED 70

/* paths: up to 4 file names (NULL-terminated list, or NULL); copied. Arming again moves the
 * deadline to ms from now (and takes the new code and paths): a program can allow a long time
 * for what matters, then a short one for the close. Returns 0, or -1 if no thread could be
 * started (the stop goes on without the deadline). */
int exit_deadline(unsigned ms, int code, const char *const *paths);

#endif
