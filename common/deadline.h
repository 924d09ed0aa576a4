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

/* Names the step of the stop the program is in (a string that lives as long as the program):
 * a forced stop logs it (at="..."), so a hang says where it was. */
void exit_deadline_step(const char *what);

/* For a program that closes everything to execute itself anew (the broker's restart as a
 * standby): the deadline, when it ends, executes /proc/self/exe with argv (logging
 * event=restart.forced) rather than exiting, so a close that hangs does not also cost the
 * restart. The environment is the process's at that moment. */
void exit_deadline_exec(char *const *argv);

#endif
