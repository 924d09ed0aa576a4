/* Listening sockets of the broker's request server (splisten.h). */
#include "splisten.h"

#include "err.h"
#include "log.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define LISTEN_BACKLOG 1024

static int
fail(const char *url, const char *what, int err, int rv)
{
    LOG(LOG_ERROR, "listen", "url=\"%s\" error=\"%s%s%s\"", url, what, err != 0 ? ": " : "",
        err != 0 ? strerror(err) : "");
    return rv;
}

/* Whether a listener answers at sa (a socket file left by one that is gone does not). */
static bool
answers(const struct sockaddr_un *sa)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return true; /* cannot tell: leave the file alone */
    }
    bool yes = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ||
               (errno != ECONNREFUSED && errno != ENOENT);
    close(fd);
    return yes;
}

static int
open_ipc(struct splisten *l, const char *url, unsigned mode, gid_t gid)
{
    const char *path = url + 6;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    struct stat st;

    if (path[0] == '\0' || strlen(path) >= sizeof(sa.sun_path)) {
        return fail(url, "the socket path is empty or too long", 0, SL_EBADREQ);
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (l->fd < 0) {
        return fail(url, "socket", errno, SL_EIO);
    }
    if (bind(l->fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
        if (errno != EADDRINUSE) {
            return fail(url, "bind", errno, SL_EIO);
        }
        if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) || answers(&sa)) {
            return fail(url, "address in use", 0, SL_EIO);
        }
        (void)unlink(path); /* a listener that is gone left it */
        if (bind(l->fd, (const struct sockaddr *)&sa, sizeof(sa)) != 0) {
            return fail(url, "bind", errno, SL_EIO);
        }
    }
    /* Not connectable before listen(): the mode and group are set first. */
    if (chmod(path, (mode_t)(mode & 0660)) != 0) {
        (void)unlink(path);
        return fail(url, "cannot set permissions", errno, SL_EIO);
    }
    if (gid != (gid_t)-1 && chown(path, (uid_t)-1, gid) != 0) {
        char what[64];
        snprintf(what, sizeof(what), "cannot give the socket group %u", (unsigned)gid);
        (void)unlink(path);
        return fail(url, what, errno, SL_EIO);
    }
    if (stat(path, &st) != 0 || listen(l->fd, LISTEN_BACKLOG) != 0) {
        int e = errno;
        (void)unlink(path);
        return fail(url, "listen", e, SL_EIO);
    }
    memcpy(l->path, path, strlen(path) + 1);
    l->dev = st.st_dev;
    l->ino = st.st_ino;
    l->ipc = true;
    return 0;
}

static int
open_tcp(struct splisten *l, const char *url)
{
    const char *hp = url + 6;
    char host[256], port[8];
    const char *colon = strrchr(hp, ':');
    size_t hn = colon != NULL ? (size_t)(colon - hp) : 0;
    size_t pn = colon != NULL ? strlen(colon + 1) : 0;

    if (colon == NULL || hn >= sizeof(host) || pn == 0 || pn >= sizeof(port) ||
        strspn(colon + 1, "0123456789") != pn) {
        return fail(url, "want tcp://HOST:PORT", 0, SL_EBADREQ);
    }
    memcpy(host, hp, hn);
    host[hn] = '\0';
    if (hn >= 2 && host[0] == '[' && host[hn - 1] == ']') {
        memmove(host, host + 1, hn - 2);
        host[hn - 2] = '\0';
    }
    memcpy(port, colon + 1, pn + 1);
    bool any = host[0] == '\0' || strcmp(host, "*") == 0;
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
                              .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
                              .ai_family = any ? AF_INET : AF_UNSPEC };
    struct addrinfo *res = NULL;
    int g = getaddrinfo(any ? NULL : host, port, &hints, &res);
    if (g != 0) {
        LOG(LOG_ERROR, "listen", "url=\"%s\" error=\"%s\"", url, gai_strerror(g));
        return g == EAI_NONAME || g == EAI_SERVICE ? SL_EBADREQ : SL_EIO;
    }
    int err = 0;
    for (struct addrinfo *a = res; a != NULL && l->fd < 0; a = a->ai_next) {
        int fd = socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        int one = 1;
        if (fd < 0) {
            err = errno;
            continue;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
            err = errno;
            close(fd);
            continue;
        }
        l->fd = fd;
    }
    freeaddrinfo(res);
    if (l->fd < 0) {
        return fail(url, err == EADDRINUSE ? "address in use" : "bind", err == EADDRINUSE ? 0
                                                                                        : err,
                    SL_EIO);
    }
    return 0;
}

int
splisten_open(struct splisten *l, const char *url, unsigned mode, gid_t gid)
{
    memset(l, 0, sizeof(*l));
    l->fd = -1;
    int rv;
    if (strncmp(url, "ipc://", 6) == 0) {
        rv = open_ipc(l, url, mode, gid);
    } else if (strncmp(url, "tcp://", 6) == 0) {
        rv = open_tcp(l, url);
    } else {
        rv = fail(url, "the broker listens on ipc:// and tcp:// addresses", 0, SL_EBADREQ);
    }
    if (rv != 0 && l->fd >= 0) {
        close(l->fd);
        l->fd = -1;
    }
    return rv;
}

void
splisten_close(struct splisten *l)
{
    if (l->fd < 0) {
        return;
    }
    close(l->fd);
    l->fd = -1;
    struct stat st;
    if (l->ipc && lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino) {
        (void)unlink(l->path);
    }
}
