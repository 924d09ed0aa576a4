/* common/spreq: requests on one shared connection to an nng REP socket in this process (the
 * broker's side of the protocol): each thread gets its own reply whatever order they come in,
 * a connection the server closes is seen lost at once and the next request dials a new one,
 * timeouts leave the connection usable, and dialing, stopping, interrupting and moving end
 * when they should. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "clock.h"
#include "err.h"
#include "spreq.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- the server: an nng REP socket with two contexts, driven by the test --------------------- */

struct env {
    char dir[64];
    char url[128], url2[128];
    nng_socket sock;
    nng_ctx ctx[2];
    nng_aio *aio;
    struct spreq *r;
};

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return -1;
    }
    strcpy(e->dir, "/tmp/sl-spreq.XXXXXX");
    if (mkdtemp(e->dir) == NULL) {
        free(e);
        return -1;
    }
    snprintf(e->url, sizeof(e->url), "ipc://%s/a.ipc", e->dir);
    snprintf(e->url2, sizeof(e->url2), "ipc://%s/b.ipc", e->dir);
    if (nng_rep0_open(&e->sock) != 0 || nng_listen(e->sock, e->url, NULL, 0) != 0 ||
        nng_ctx_open(&e->ctx[0], e->sock) != 0 || nng_ctx_open(&e->ctx[1], e->sock) != 0 ||
        nng_aio_alloc(&e->aio, NULL, NULL) != 0 || spreq_open(&e->r, e->url) != 0) {
        return -1;
    }
    *state = e;
    return 0;
}

static int
teardown(void **state)
{
    struct env *e = *state;
    spreq_free(e->r);
    nng_aio_free(e->aio);
    nng_close(e->sock);
    char path[160];
    snprintf(path, sizeof(path), "%s/a.ipc", e->dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/b.ipc", e->dir);
    unlink(path);
    rmdir(e->dir);
    free(e);
    return 0;
}

/* The next request on context i (5 s at most). */
static nng_msg *
srv_recv(struct env *e, int i)
{
    nng_aio_set_timeout(e->aio, 5000);
    nng_ctx_recv(e->ctx[i], e->aio);
    nng_aio_wait(e->aio);
    assert_int_equal(nng_aio_result(e->aio), 0);
    return nng_aio_get_msg(e->aio);
}

/* Answers context i's request with m (its own body echoed, or anything). */
static void
srv_reply(struct env *e, int i, nng_msg *m)
{
    nng_aio_set_msg(e->aio, m);
    nng_ctx_send(e->ctx[i], e->aio);
    nng_aio_wait(e->aio);
    assert_int_equal(nng_aio_result(e->aio), 0);
}

static const struct spreq_how dial_1s = { .dial = true, .connect_ms = 1000, .stop = NULL };

/* A request from another thread. */
struct caller {
    struct spreq *r;
    const char *body;
    uint64_t timeout_ms;
    struct spreq_how how;
    pthread_t thr;
    int rv;
    char got[32];
    uint64_t took_ms;
    uint32_t conn;
};

static void *
call_main(void *arg)
{
    struct caller *c = arg;
    nng_msg *rep = NULL;
    uint32_t conn = 0;
    uint64_t t0 = clock_mono_ms();
    c->rv = spreq_call(c->r, c->body, strlen(c->body), c->timeout_ms, &c->how, &rep, &conn);
    c->conn = conn;
    c->took_ms = clock_mono_ms() - t0;
    if (rep != NULL) {
        size_t n = nng_msg_len(rep) < sizeof(c->got) - 1 ? nng_msg_len(rep) : sizeof(c->got) - 1;
        memcpy(c->got, nng_msg_body(rep), n);
        c->got[n] = '\0';
        nng_msg_free(rep);
    }
    return NULL;
}

static void
call_start_how(struct caller *c, struct spreq *r, const char *body, uint64_t timeout_ms,
               const struct spreq_how *how)
{
    *c = (struct caller){ .r = r, .body = body, .timeout_ms = timeout_ms, .how = *how };
    assert_int_equal(pthread_create(&c->thr, NULL, call_main, c), 0);
}

static void
call_start(struct caller *c, struct spreq *r, const char *body, uint64_t timeout_ms)
{
    call_start_how(c, r, body, timeout_ms, &dial_1s);
}

/* One request (from another thread), answered by echo on context 0. */
static void
echo_call(struct env *e, const char *body)
{
    struct caller c;
    call_start(&c, e->r, body, 5000);
    srv_reply(e, 0, srv_recv(e, 0));
    pthread_join(c.thr, NULL);
    assert_int_equal(c.rv, 0);
    assert_string_equal(c.got, body);
}

static void *
stop_later(void *arg)
{
    usleep(200 * 1000);
    *(volatile sig_atomic_t *)arg = 1;
    return NULL;
}

/* --- tests --------------------------------------------------------------------------------- */

static void
test_open_refuses_what_it_cannot_dial(void **state)
{
    (void)state;
    struct spreq *r = (struct spreq *)1;
    assert_int_equal(spreq_open(&r, "inproc://x"), SL_EBADREQ);
    assert_null(r);
    assert_int_equal(spreq_open(&r, "ws://127.0.0.1:1/"), SL_EBADREQ);
    spreq_free(NULL);
}

static void
test_a_call_is_answered_on_one_connection(void **state)
{
    struct env *e = *state;
    assert_false(spreq_connected(e->r)); /* nothing is dialed before a request */
    echo_call(e, "one");
    assert_true(spreq_connected(e->r));
    echo_call(e, "two");
    assert_false(spreq_lost(e->r, 1)); /* both on the first connection */
    assert_true(spreq_lost(e->r, 2));
}

/* Two threads wait at once; the server answers the later request first: each thread gets its
 * own reply, whichever of them reads it. */
static void
test_replies_reach_their_own_thread_in_any_order(void **state)
{
    struct env *e = *state;
    echo_call(e, "hello"); /* connected: both requests go on this connection */
    for (int round = 0; round < 20; round++) {
        struct caller a, b;
        call_start(&a, e->r, "first", 5000);
        nng_msg *ma = srv_recv(e, 0);
        call_start(&b, e->r, "second", 5000);
        nng_msg *mb = srv_recv(e, 1);
        srv_reply(e, 1, mb);
        pthread_join(b.thr, NULL);
        assert_int_equal(b.rv, 0);
        assert_string_equal(b.got, "second");
        srv_reply(e, 0, ma);
        pthread_join(a.thr, NULL);
        assert_int_equal(a.rv, 0);
        assert_string_equal(a.got, "first");
    }
    assert_false(spreq_lost(e->r, 1));
}

static void
test_a_connection_the_server_closes_is_lost_at_once(void **state)
{
    struct env *e = *state;
    struct caller c;
    call_start(&c, e->r, "x", 5000);
    nng_msg *m = srv_recv(e, 0);
    nng_pipe p = nng_msg_get_pipe(m);
    srv_reply(e, 0, m);
    pthread_join(c.thr, NULL);
    assert_int_equal(c.rv, 0);
    assert_false(spreq_lost(e->r, 1));
    assert_int_equal(nng_pipe_close(p), 0);
    uint64_t t0 = clock_mono_ms();
    while (!spreq_lost(e->r, 1) && clock_mono_ms() - t0 < 5000) {
        usleep(1000);
    }
    assert_true(spreq_lost(e->r, 1));
    assert_false(spreq_connected(e->r));
    echo_call(e, "again"); /* a new connection, number 2 */
    assert_false(spreq_lost(e->r, 2));
}

static void
test_a_request_in_flight_fails_when_its_connection_closes(void **state)
{
    struct env *e = *state;
    struct caller c;
    call_start(&c, e->r, "x", 10000);
    nng_msg *m = srv_recv(e, 0);
    assert_int_equal(nng_pipe_close(nng_msg_get_pipe(m)), 0);
    nng_msg_free(m);
    pthread_join(c.thr, NULL);
    assert_int_equal(c.rv, SL_EIO);
    assert_true(c.took_ms < 2000);
}

static void
test_a_timeout_leaves_the_connection_and_drops_the_late_reply(void **state)
{
    struct env *e = *state;
    struct caller c;
    call_start(&c, e->r, "late", 200);
    nng_msg *late = srv_recv(e, 0);
    pthread_join(c.thr, NULL);
    assert_int_equal(c.rv, SL_ETIMEDOUT);
    assert_true(c.took_ms >= 200 && c.took_ms < 1500);
    assert_true(spreq_connected(e->r));
    /* The next request's reply follows the late one on the same connection. */
    call_start(&c, e->r, "next", 5000);
    nng_msg *next = srv_recv(e, 1);
    srv_reply(e, 0, late);
    srv_reply(e, 1, next);
    pthread_join(c.thr, NULL);
    assert_int_equal(c.rv, 0);
    assert_string_equal(c.got, "next");
    assert_false(spreq_lost(e->r, 1));
}

static void
test_with_nobody_listening_it_redials_for_connect_ms(void **state)
{
    struct env *e = *state;
    struct spreq *r;
    nng_msg *rep;
    uint32_t conn;
    assert_int_equal(spreq_open(&r, e->url2), 0);
    const struct spreq_how no_dial = { .dial = false };
    uint64_t t0 = clock_mono_ms();
    assert_int_equal(spreq_call(r, "x", 1, 5000, &no_dial, &rep, &conn), SL_EUNREACHABLE);
    assert_true(clock_mono_ms() - t0 < 100);
    const struct spreq_how dial = { .dial = true, .connect_ms = 300 };
    t0 = clock_mono_ms();
    assert_int_equal(spreq_call(r, "x", 1, 5000, &dial, &rep, &conn), SL_EUNREACHABLE);
    uint64_t took = clock_mono_ms() - t0;
    assert_true(took >= 300 && took < 1500);
    assert_null(rep);
    /* A stop ends the redialing within a slice (100 ms). */
    static volatile sig_atomic_t stop;
    stop = 0;
    const struct spreq_how stoppable = { .dial = true, .connect_ms = 60000, .stop = &stop };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_later, (void *)&stop), 0);
    t0 = clock_mono_ms();
    assert_int_equal(spreq_call(r, "x", 1, 60000, &stoppable, &rep, &conn), SL_EUNREACHABLE);
    took = clock_mono_ms() - t0;
    assert_true(took >= 200 && took < 800);
    pthread_join(t, NULL);
    spreq_free(r);
}

/* While the server is away, one thread redials with a backoff and another dials once now and
 * then (a worker's requests and its heartbeat): whichever dial succeeds, both use that one
 * connection, and none is left behind (the sanitizers and valgrind would see it). */
static void
test_threads_dialing_at_once_share_one_connection(void **state)
{
    struct env *e = *state;
    struct spreq *r;
    assert_int_equal(spreq_open(&r, e->url2), 0);
    struct caller a, b;
    const struct spreq_how redial = { .dial = true, .connect_ms = 10000 };
    const struct spreq_how once = { .dial = true, .connect_ms = 0 };
    call_start_how(&a, r, "redials", 10000, &redial);
    for (int i = 0; i < 30; i++) { /* dials that fail while a waits to redial */
        nng_msg *rep;
        uint32_t conn;
        assert_int_equal(spreq_call(r, "x", 1, 50, &once, &rep, &conn), SL_EUNREACHABLE);
        usleep(10 * 1000);
    }
    assert_int_equal(nng_listen(e->sock, e->url2, NULL, 0), 0);
    call_start_how(&b, r, "once", 5000, &once);
    nng_msg *m1 = srv_recv(e, 0);
    nng_msg *m2 = srv_recv(e, 1);
    srv_reply(e, 0, m1);
    srv_reply(e, 1, m2);
    pthread_join(a.thr, NULL);
    pthread_join(b.thr, NULL);
    assert_int_equal(a.rv, 0);
    assert_int_equal(b.rv, 0);
    assert_int_equal(a.conn, 1);
    assert_int_equal(b.conn, 1);
    assert_false(spreq_lost(r, 1));
    spreq_free(r);
}

static void
test_interrupt_ends_a_wait_and_every_later_call(void **state)
{
    struct env *e = *state;
    echo_call(e, "hello");
    struct caller c;
    call_start(&c, e->r, "never answered", 60000);
    nng_msg *m = srv_recv(e, 0);
    uint64_t t0 = clock_mono_ms();
    spreq_interrupt(e->r);
    pthread_join(c.thr, NULL);
    assert_int_equal(c.rv, SL_EIO);
    assert_true(clock_mono_ms() - t0 < 1000);
    nng_msg *rep;
    uint32_t conn;
    assert_int_equal(spreq_call(e->r, "x", 1, 1000, &dial_1s, &rep, &conn), SL_EUNREACHABLE);
    nng_msg_free(m);
}

static void
test_move_dials_the_new_url(void **state)
{
    struct env *e = *state;
    echo_call(e, "here");
    assert_int_equal(nng_listen(e->sock, e->url2, NULL, 0), 0);
    char old[160];
    snprintf(old, sizeof(old), "%s/a.ipc", e->dir);
    unlink(old); /* nothing can dial the old URL any more */
    spreq_move(e->r, e->url2);
    assert_true(spreq_lost(e->r, 1));
    echo_call(e, "there");
    assert_false(spreq_lost(e->r, 2));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_refuses_what_it_cannot_dial),
#define S(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
        S(test_a_call_is_answered_on_one_connection),
        S(test_replies_reach_their_own_thread_in_any_order),
        S(test_a_connection_the_server_closes_is_lost_at_once),
        S(test_a_request_in_flight_fails_when_its_connection_closes),
        S(test_a_timeout_leaves_the_connection_and_drops_the_late_reply),
        S(test_with_nobody_listening_it_redials_for_connect_ms),
        S(test_threads_dialing_at_once_share_one_connection),
        S(test_interrupt_ends_a_wait_and_every_later_call),
        S(test_move_dials_the_new_url),
#undef S
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
