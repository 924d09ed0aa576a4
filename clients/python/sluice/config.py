"""Where the broker is and what token it wants: the same rules as the sluice programs.

The default address is ipc://DIR/broker.ipc in the runtime directory DIR ($SLUICE_DIR, else
$XDG_RUNTIME_DIR/sluice, else /tmp/sluice-$UID). Before using it the client checks that DIR
is not a symbolic link, is its user's and open to nobody else, and that a socket there is not
a symbolic link, another user's or writable by others: whoever could replace them could
answer in the broker's place. An address given explicitly (url=, $SLUICE_URL) is the user's
choice and used as given.
"""

import os
import stat

from .errors import Error

SOCKET_PATH_MAX = 107  # sun_path holds 108 bytes with its terminating NUL
TOKEN_MAX = 1024


def runtime_dir(env=None):
    env = os.environ if env is None else env
    d = env.get("SLUICE_DIR") or ""
    if d == "":
        xdg = env.get("XDG_RUNTIME_DIR") or ""
        d = xdg + "/sluice" if xdg != "" else "/tmp/sluice-%d" % os.getuid()
    while len(d) > 1 and d.endswith("/"):
        d = d[:-1]  # a trailing slash would double in the socket paths
    return d


def _describe(st):
    return "owned by uid %d, mode %04o" % (st.st_uid, stat.S_IMODE(st.st_mode))


def check_dir(d):
    """Raises Error("forbidden") when d may not be trusted; returns False when it is missing."""
    try:
        st = os.lstat(d)
    except FileNotFoundError:
        return False
    except OSError as e:
        raise Error("io", "runtime directory %s: %s" % (d, e.strerror)) from None
    what, me = _describe(st), os.geteuid()
    if stat.S_ISLNK(st.st_mode):
        why = ("runtime directory %s is a symbolic link (%s): refused, whoever made it could "
               "point it elsewhere; remove it, or set SLUICE_DIR to a directory of your own"
               % (d, what))
    elif not stat.S_ISDIR(st.st_mode):
        why = ("runtime directory %s is not a directory (%s): remove it, or set SLUICE_DIR to "
               "a directory of your own" % (d, what))
    elif st.st_uid != me:
        why = ("runtime directory %s is %s, not yours (uid %d): refused, its owner could serve "
               "its sockets; remove it, or set SLUICE_DIR to a directory of your own"
               % (d, what, me))
    elif st.st_mode & 0o067:  # a group given --socket-group may search it (0710), no more
        why = ("runtime directory %s is %s: refused, others may reach or replace its sockets; "
               "chmod 700 %s (or 710, for a group given --socket-group)" % (d, what, d))
    else:
        return True
    raise Error("forbidden", why)


def check_socket(path):
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise Error("io", "socket %s: %s" % (path, e.strerror)) from None
    what, me = _describe(st), os.geteuid()
    if stat.S_ISLNK(st.st_mode):
        why = "socket %s is a symbolic link (%s): refused; remove it" % (path, what)
    elif st.st_uid != me:
        why = ("socket %s is %s, not yours (uid %d): refused, its owner could be listening; "
               "remove it" % (path, what, me))
    elif st.st_mode & 0o002:
        why = ("socket %s is %s: refused, others may replace it; remove it and restart its "
               "server" % (path, what))
    else:
        return
    raise Error("forbidden", why)


def default_url(name="broker.ipc", env=None):
    d = runtime_dir(env)
    if len(d) + 1 + len(name) > SOCKET_PATH_MAX:
        raise Error("bad_request", "the socket path %s/%s is too long for a Unix socket: set a "
                    "shorter SLUICE_DIR" % (d, name))
    if not check_dir(d):
        # Made ours now, it cannot be taken later. One that cannot be made leaves nothing to
        # reach: the connection fails as without a broker.
        try:
            os.mkdir(d, 0o700)
        except OSError:
            pass
        if not check_dir(d):
            return "ipc://%s/%s" % (d, name)
    check_socket("%s/%s" % (d, name))
    return "ipc://%s/%s" % (d, name)


def resolve_url(url=None, env=None):
    env = os.environ if env is None else env
    if url is None or url == "":
        url = env.get("SLUICE_URL") or ""
    if url == "":
        return default_url(env=env)
    split_urls(url)  # a bad address is refused now, not at the first request
    return url


URLS_MAX = 8


def split_urls(url):
    """The addresses of "URL" or "URL,URL,..." (a cluster's brokers, README "Cluster"), each
    checked by parse_url; Error("bad_request") for an empty item or more than 8."""
    if not isinstance(url, str):
        parse_url(url)
    urls = [u.strip() for u in url.split(",")]
    if len(urls) > URLS_MAX or any(u == "" for u in urls):
        raise Error("bad_request", "%r: give URL or URL,URL,... (at most %d)" % (url, URLS_MAX))
    for u in urls:
        parse_url(u)
    return urls


def parse_url(url):
    """("ipc", path) or ("tcp", (host, port)); Error("bad_request") for anything else."""
    if not isinstance(url, str):
        raise Error("bad_request", "the broker address must be a string, not %s"
                    % type(url).__name__)
    if url.startswith("ipc://"):
        path = url[6:]
        if path == "" or len(path.encode()) > SOCKET_PATH_MAX:
            raise Error("bad_request", "%r: the socket path must be 1 to %d bytes"
                        % (url, SOCKET_PATH_MAX))
        return "ipc", path
    for scheme in ("tcp://", "tcp4://", "tcp6://"):
        if url.startswith(scheme):
            rest = url[len(scheme):]
            host, sep, port = rest.rpartition(":")
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
            if sep == "" or host == "" or not port.isdigit() or not 0 < int(port) < 65536:
                raise Error("bad_request", "%r is not tcp://HOST:PORT" % url)
            return "tcp", (host, int(port))
    raise Error("bad_request", "%r is not a broker address: ipc://PATH or tcp://HOST:PORT"
                % url)


def load_token(path):
    """The token the file holds, checked as the programs check it (PROTOCOL.md,
    Authentication): a regular file of this user (or root), mode 0600 or stricter, one line of
    1 to 1,024 bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        raise Error("bad_request", "cannot open token file %s: %s" % (path, e.strerror)) \
            from None
    try:
        st = os.fstat(fd)  # the file checked is the one read, even if the path changes
        if not stat.S_ISREG(st.st_mode):
            raise Error("bad_request", "token file %s is not a regular file" % path)
        if st.st_uid not in (os.geteuid(), 0):
            raise Error("forbidden", "token file %s is owned by uid %d, not by this user (%d) "
                        "or root" % (path, st.st_uid, os.geteuid()))
        if st.st_mode & 0o077:
            raise Error("forbidden", "token file %s has mode %03o: group and others must have "
                        "no access (chmod 600 %s)" % (path, stat.S_IMODE(st.st_mode) & 0o777,
                                                      path))
        buf = b""
        while len(buf) < TOKEN_MAX + 3:
            try:
                b = os.read(fd, TOKEN_MAX + 3 - len(buf))
            except InterruptedError:
                continue
            if not b:
                break
            buf += b
    except OSError as e:
        raise Error("io", "cannot read token file %s: %s" % (path, e.strerror)) from None
    finally:
        os.close(fd)
    if buf.endswith(b"\n"):
        buf = buf[:-1]
        if buf.endswith(b"\r"):
            buf = buf[:-1]
    if not buf:
        raise Error("bad_request", "token file %s is empty" % path)
    if len(buf) > TOKEN_MAX:
        raise Error("bad_request", "token file %s holds more than %d bytes" % (path, TOKEN_MAX))
    if b"\0" in buf or b"\n" in buf or b"\r" in buf:
        raise Error("bad_request", "token file %s must hold one line without NUL bytes" % path)
    return buf


def resolve_token_file(token_file=None, env=None):
    env = os.environ if env is None else env
    if token_file is None or token_file == "":
        token_file = env.get("SLUICE_TOKEN_FILE") or ""
    return token_file or None
