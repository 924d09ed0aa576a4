/* common/nngfix.c and common/net.c: a write to a peer that has gone reports ECONNRESET, not
 * EPIPE; and an nng listener (without its guard) goes on accepting connections after peers
 * that connect and close at once, in the middle of the connection handshake, which stops an
 * nng 1.5.2 listener for good without the fix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "net.h"

#include <errno.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void
test_write_to_a_closed_peer_is_a_reset_not_epipe(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    close(sv[1]);
    char b = 'x';
    struct iovec iov = { .iov_base = &b, .iov_len = 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    errno = 0;
    assert_int_equal(sendmsg(sv[0], &mh, MSG_NOSIGNAL), -1);
    assert_int_equal(errno, ECONNRESET);
    close(sv[0]);
}

static void
test_a_good_write_is_the_system_calls_own(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char out[3] = "abc", in[3];
    struct iovec iov = { .iov_base = out, .iov_len = 3 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    assert_int_equal(sendmsg(sv[0], &mh, MSG_NOSIGNAL), 3);
    assert_int_equal(read(sv[1], in, 3), 3);
    assert_memory_equal(in, out, 3);
    /* Other errors pass through untouched. */
    errno = 0;
    assert_int_equal(sendmsg(-1, &mh, 0), -1);
    assert_int_equal(errno, EBADF);
    close(sv[0]);
    close(sv[1]);
}

static _Atomic int added;

static void
on_add(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    (void)p;
    (void)ev;
    (void)arg;
    atomic_fetch_add(&added, 1);
}

/* Waits up to ms for the listener to have taken more than n connections. */
static int
added_past(int n, unsigned ms)
{
    for (unsigned waited = 0; waited < ms; waited += 5) {
        if (atomic_load(&added) > n) {
            return 1;
        }
        nng_msleep(5);
    }
    return atomic_load(&added) > n;
}

static void
test_listener_accepts_after_peers_close_mid_handshake(void **state)
{
    (void)state;
    char dir[] = "/tmp/sluice-test-net.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[96], url[128];
    snprintf(path, sizeof(path), "%s/s.ipc", dir);
    snprintf(url, sizeof(url), "ipc://%s", path);

    nng_socket rep, req;
    nng_listener l;
    assert_int_equal(nng_rep0_open(&rep), 0);
    assert_int_equal(nng_pipe_notify(rep, NNG_PIPE_EV_ADD_POST, on_add, NULL), 0);
    assert_int_equal(net_listen(rep, url, 1024, &l), 0);

    /* 20 peers that connect and close before the server's half of the handshake is written. */
    for (int i = 0; i < 20; i++) {
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        assert_true(fd >= 0);
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
        assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
        close(fd);
    }

    /* A real client after them: the listener takes it (a wedged one never would). */
    int before = atomic_load(&added);
    assert_int_equal(nng_req0_open(&req), 0);
    /* Both ends count: the client is closed only once its side has the connection too (a
     * dialer closed in the middle of its handshake is one that nng 1.5.2 can leak). */
    assert_int_equal(nng_pipe_notify(req, NNG_PIPE_EV_ADD_POST, on_add, NULL), 0);
    assert_int_equal(nng_dial(req, url, NULL, NNG_FLAG_NONBLOCK), 0);
    assert_true(added_past(before + 1, 5000));

    nng_close(req);
    nng_close(rep);
    unlink(path);
    rmdir(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_to_a_closed_peer_is_a_reset_not_epipe),
        cmocka_unit_test(test_a_good_write_is_the_system_calls_own),
        cmocka_unit_test(test_listener_accepts_after_peers_close_mid_handshake),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
