/* Who besides its user may reach a server's ipc:// socket: the options --socket-mode and
 * --socket-group, checked. */
#ifndef SLUICE_SOCKPERM_H
#define SLUICE_SOCKPERM_H

#include <stddef.h>
#include <sys/types.h>

/* Parses a socket mode: octal 0600, 0620 or 0660 (the leading 0 optional). A socket is
 * reached by writing to it: the owner must have rw, others nothing, the group write or
 * nothing (read comes with 0660, the usual spelling). Returns 0, or -1 with why. */
int sockperm_mode_parse(const char *s, unsigned *mode, char *why, size_t cap);

/* Looks GROUP (a name, or a decimal gid) up: it must exist, and the effective user must be
 * root or one of its members (only they may give a file that group). Returns 0 with *gid,
 * or -1 with why. */
int sockperm_group_parse(const char *s, gid_t *gid, char *why, size_t cap);

#endif
