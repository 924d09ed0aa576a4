/* worker/pool_server: the control socket's dispatcher (ping, pool.status, pool.scale, and the
 * errors: unknown op, missing or out-of-range n, garbage, scaling while stopping), over a pool
 * with fake processes; and one round trip over a real ipc socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "client.h"
#include "err.h"
#include "log.h"
#include "pool.h"
#include "pool_server.h"
#include "wire.h"

#include <nng/nng.h>
#include <nng/supplemental/util/platform.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct fake {
    int next_pid;
    struct worker_status pages[16];
};

static int
fake_spawn(void *arg, struct pool_slot *s, const char *name)
{
    struct fake *f = arg;
    (void)name;
    s->pid = f->next_pid++;
    s->page = &f->pages[s->idx];
    memset(s->page, 0, sizeof(*s->page));
    return 0;
}

static void
fake_signal(void *arg, int pid, int sig)
{
    (void)arg;
    (void)pid;
    (void)sig;
}

static uint64_t
fake_rss(void *arg, int pid)
{
    (void)arg;
    return (uint64_t)pid * 1000;
}

static void
fake_release(void *arg, struct pool_slot *s)
{
    (void)arg;
    s->page = NULL;
}

struct env {
    struct fake f;
    struct pool p;
    struct wire_msg rep;
    nng_msg *m;
};

static int
setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    assert_non_null(e);
    e->f.next_pid = 500;
    struct pool_ops ops = { fake_spawn, fake_signal, fake_rss, fake_release, &e->f };
    struct pool_params par = { 2, 30000, 0, 0, 0, "h:1" };
    assert_int_equal(pool_init(&e->p, &par, &ops), 0);
    pool_reconcile(&e->p, 10000);
    wire_msg_init(&e->rep);
    *state = e;
    return 0;
}

static int
teardown(void **state)
{
    struct env *e = *state;
    wire_msg_fini(&e->rep);
    nng_msg_free(e->m);
    pool_fini(&e->p);
    free(e);
    return 0;
}

/* Sends the request encoded from req (op set here) and decodes the reply into e->rep. Returns
 * pool_server_handle's result. */
static int
call(struct env *e, const char *op, struct wire_msg *req, uint64_t now)
{
    nng_msg *q;
    msgpack_packer pk;

    if (op != NULL) {
        wire_set_cstr(req, WK_OP, op);
    }
    assert_int_equal(nng_msg_alloc(&q, 0), 0);
    msgpack_packer_init(&pk, q, wire_pack_into_msg);
    assert_int_equal(wire_encode(req, &pk), 0);
    nng_msg_free(e->m);
    assert_int_equal(nng_msg_alloc(&e->m, 0), 0);
    int rv = pool_server_handle(&e->p, 1000, nng_msg_body(q), nng_msg_len(q), e->m, now);
    nng_msg_free(q);
    wire_msg_fini(&e->rep);
    wire_msg_init(&e->rep);
    assert_int_equal(wire_decode(&e->rep, nng_msg_body(e->m), nng_msg_len(e->m), NULL, 0), 0);
    return rv;
}

/* The reply's error code and that it says "ok": false. */
static void
expect_err(struct env *e, int rv, int code)
{
    struct sl_str msg;
    assert_int_equal(rv, code);
    assert_int_equal(client_reply_err(&e->rep, &msg), code);
    assert_true(msg.n > 0);
}

static const msgpack_object *
get(const msgpack_object *map, const char *key)
{
    assert_int_equal(map->type, MSGPACK_OBJECT_MAP);
    const msgpack_object *v = wire_obj_get(map, key);
    if (v == NULL) {
        fail_msg("no '%s'", key);
    }
    return v;
}

static void
test_ping_answers_pid_version_uptime(void **state)
{
    struct env *e = *state;
    struct wire_msg req;
    wire_msg_init(&req);
    assert_int_equal(call(e, "ping", &req, 4500), 0);
    assert_true(WIRE_HAS(&e->rep, WK_OK) && e->rep.v[WK_OK].b);
    assert_int_equal(e->rep.v[WK_PID].u, (uint64_t)getpid());
    assert_true(sl_str_eq(e->rep.v[WK_VERSION].s, SLUICE_VERSION));
    assert_int_equal(e->rep.v[WK_UPTIME_MS].u, 3500);
}

static void
test_status_lists_every_slot_with_the_documented_fields(void **state)
{
    struct env *e = *state;
    struct wire_msg req;
    wire_msg_init(&req);
    struct worker_status *pg = e->p.slots[1].page;
    atomic_store(&pg->pid, 501);
    atomic_store(&pg->state, WORKER_BUSY);
    atomic_store(&pg->jobs_done, 7);
    atomic_store(&pg->jobs_failed, 2);
    atomic_store(&pg->current_id, 99);
    atomic_store(&pg->current_start_ms, 11000);
    pool_tick(&e->p, 11500);
    assert_int_equal(call(e, "pool.status", &req, 12500), 0);
    assert_int_equal(e->rep.v[WK_N].u, 2);
    const msgpack_object *w = e->rep.v[WK_WORKERS].any;
    assert_int_equal(w->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(w->via.array.size, 2);
    const msgpack_object *s0 = &w->via.array.ptr[0], *s1 = &w->via.array.ptr[1];
    static const char *const fields[] = { "slot", "id", "pid", "state", "jobs", "failed",
                                          "rss_bytes", "current", "current_ms", "uptime_s",
                                          "restarts" };
    assert_int_equal(s0->via.map.size, sizeof(fields) / sizeof(fields[0]));
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        get(s0, fields[i]);
    }
    assert_int_equal(get(s0, "slot")->via.u64, 0);
    assert_int_equal(get(s0, "state")->via.str.size, strlen("starting"));
    assert_int_equal(get(s0, "current")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(get(s1, "slot")->via.u64, 1);
    assert_true(memcmp(get(s1, "id")->via.str.ptr, "h:1:1", 5) == 0);
    assert_int_equal(get(s1, "pid")->via.u64, 501);
    assert_true(memcmp(get(s1, "state")->via.str.ptr, "busy", 4) == 0);
    assert_int_equal(get(s1, "jobs")->via.u64, 7);
    assert_int_equal(get(s1, "failed")->via.u64, 2);
    assert_int_equal(get(s1, "rss_bytes")->via.u64, 501000);
    assert_int_equal(get(s1, "current")->via.u64, 99);
    assert_int_equal(get(s1, "current_ms")->via.u64, 1500);
    assert_int_equal(get(s1, "uptime_s")->via.u64, 2);
    assert_int_equal(get(s1, "restarts")->via.u64, 0);
}

static void
test_scale_changes_the_target_and_answers_n(void **state)
{
    struct env *e = *state;
    struct wire_msg req;
    wire_msg_init(&req);
    wire_set_u64(&req, WK_N, 5);
    assert_int_equal(call(e, "pool.scale", &req, 20000), 0);
    assert_int_equal(e->rep.v[WK_N].u, 5);
    assert_int_equal(e->p.n, 5);
    assert_int_equal(pool_live(&e->p), 5);
    wire_set_u64(&req, WK_N, 0);
    assert_int_equal(call(e, "pool.scale", &req, 20000), 0);
    assert_int_equal(e->p.n, 0);
}

static void
test_scale_errors_change_nothing(void **state)
{
    struct env *e = *state;
    struct wire_msg req;
    wire_msg_init(&req);
    expect_err(e, call(e, "pool.scale", &req, 20000), SL_EBADREQ); /* no n */
    wire_set_u64(&req, WK_N, POOL_N_MAX + 1);
    expect_err(e, call(e, "pool.scale", &req, 20000), SL_EBADREQ);
    assert_int_equal(e->p.n, 2);
    pool_stop(&e->p, 20000);
    wire_set_u64(&req, WK_N, 3);
    expect_err(e, call(e, "pool.scale", &req, 20000), SL_EFORBIDDEN);
    assert_int_equal(e->p.n, 2);
}

static void
test_other_ops_and_garbage_are_refused(void **state)
{
    struct env *e = *state;
    struct wire_msg req;
    wire_msg_init(&req);
    expect_err(e, call(e, "push", &req, 20000), SL_EUNKNOWNOP);
    expect_err(e, call(e, "no.such.op", &req, 20000), SL_EUNKNOWNOP);
    wire_msg_init(&req);
    expect_err(e, call(e, NULL, &req, 20000), SL_EBADREQ); /* no op */

    static const unsigned char garbage[] = { 0xdf, 0x07, 0xff, 0x07, 0xff };
    nng_msg_free(e->m);
    assert_int_equal(nng_msg_alloc(&e->m, 0), 0);
    assert_int_equal(pool_server_handle(&e->p, 0, garbage, sizeof(garbage), e->m, 1),
                     SL_EBADREQ);
    wire_msg_fini(&e->rep);
    wire_msg_init(&e->rep);
    assert_int_equal(wire_decode(&e->rep, nng_msg_body(e->m), nng_msg_len(e->m), NULL, 0), 0);
    assert_false(e->rep.v[WK_OK].b);
}

/* A client on another thread, for the round trip over a real socket. */
struct caller {
    const char *url;
    _Atomic int rv;
    _Atomic uint64_t n;
};

static void
call_thread(void *arg)
{
    struct caller *c = arg;
    struct client *cl = NULL;
    struct wire_msg req, rep;

    wire_msg_init(&req);
    wire_msg_init(&rep);
    wire_set_cstr(&req, WK_OP, "pool.status");
    int rv = client_open(&cl, c->url, 2000);
    if (rv == 0 && (rv = client_call(cl, &req, &rep, 2000)) == 0) {
        c->n = WIRE_HAS(&rep, WK_N) ? rep.v[WK_N].u : 999;
    }
    c->rv = rv;
    wire_msg_fini(&rep);
    client_free(cl);
}

static void
test_socket_round_trip_on_the_loop_thread(void **state)
{
    struct env *e = *state;
    char dir[] = "/tmp/slps.XXXXXX", url[128];
    struct pool_server *srv = NULL;
    nng_thread *t;

    assert_non_null(mkdtemp(dir));
    snprintf(url, sizeof(url), "ipc://%s/pool.ipc", dir);
    assert_int_equal(pool_server_start(&srv, url, 0), 0);
    struct caller c = { .url = url, .rv = -1, .n = 0 };
    assert_int_equal(nng_thread_create(&t, call_thread, &c), 0);
    /* Serve on this thread, as the main loop does, until the client has its answer. */
    struct pollfd pfd = { .fd = pool_server_fd(srv), .events = POLLIN };
    for (int i = 0; i < 300 && c.rv != 0; i++) {
        if (poll(&pfd, 1, 10) > 0) {
            pool_server_serve(srv, &e->p, 5000);
        }
    }
    nng_thread_destroy(t);
    assert_int_equal(c.rv, 0);
    assert_int_equal(c.n, 2);
    /* A second server on the same address is refused. */
    struct pool_server *again = NULL;
    assert_int_equal(pool_server_start(&again, url, 0), SL_EIO);
    pool_server_stop(srv);
    char path[160];
    snprintf(path, sizeof(path), "%s/pool.ipc", dir);
    assert_int_not_equal(access(path, F_OK), 0); /* the socket file is gone */
    rmdir(dir);
}

int
main(void)
{
    log_level = LOG_OFF;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ping_answers_pid_version_uptime, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_lists_every_slot_with_the_documented_fields,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_scale_changes_the_target_and_answers_n, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_scale_errors_change_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_ops_and_garbage_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_socket_round_trip_on_the_loop_thread, setup,
                                        teardown),
    };
    int rv = cmocka_run_group_tests(tests, NULL, NULL);
    /* No nng_fini(): nng 1.5.2 aborts in it while a closed socket is still being torn down
     * on its threads (see ctl/main.c). */
    return rv;
}
