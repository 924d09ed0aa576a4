#include "sockperm.h"

#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int
sockperm_mode_parse(const char *s, unsigned *mode, char *why, size_t cap)
{
    static const unsigned allowed[] = { 0600, 0620, 0660 };
    char *end = NULL;
    size_t n = strlen(s);

    if (n >= 3 && n <= 4 && strspn(s, "01234567") == n) {
        unsigned long m = strtoul(s, &end, 8);
        for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
            if (m == allowed[i]) {
                *mode = (unsigned)m;
                return 0;
            }
        }
    }
    snprintf(why, cap, "'%s' is not a socket mode sluice uses: 0600 (only you), 0660 (you "
             "and --socket-group's members; 0620 the same), never anything for others", s);
    return -1;
}

/* Whether the effective user may give a file group gid: root, or a member. */
static bool
may_use_group(gid_t gid)
{
    gid_t groups[256];
    int n;

    if (geteuid() == 0 || getegid() == gid) {
        return true;
    }
    if ((n = getgroups((int)(sizeof(groups) / sizeof(groups[0])), groups)) < 0) {
        return false;
    }
    for (int i = 0; i < n; i++) {
        if (groups[i] == gid) {
            return true;
        }
    }
    return false;
}

int
sockperm_group_parse(const char *s, gid_t *gid, char *why, size_t cap)
{
    struct group *g = NULL;
    size_t n = strlen(s);

    errno = 0;
    if (n > 0 && n < 11 && strspn(s, "0123456789") == n) {
        g = getgrgid((gid_t)strtoul(s, NULL, 10));
    } else if (n > 0) {
        g = getgrnam(s);
    }
    if (g == NULL) {
        snprintf(why, cap, "no group '%s' on this system (getent group %s)", s, s);
        return -1;
    }
    if (!may_use_group(g->gr_gid)) {
        snprintf(why, cap, "you (uid %u) are not a member of group %s (gid %u): only its "
                 "members may give it a socket; usermod -aG %s USER, then log in again",
                 (unsigned)geteuid(), g->gr_name, (unsigned)g->gr_gid, g->gr_name);
        return -1;
    }
    *gid = g->gr_gid;
    return 0;
}
