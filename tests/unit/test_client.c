/* common/client: connecting (unreachable, bad URL), a call against an nng REP server in this
 * process over IPC and TCP (reply, timeout, undecodable reply, a server that drops the
 * connection and comes back: the request is sent again), and reading a reply's error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "client.h"
#include "err.h"
#include "log.h"
#include "urllist.h"
#include "wire.h"

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/transport/tcp/tcp.h>
#include <nng/supplemental/util/platform.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* --- an in-process server ------------------------------------------------------------------ */

enum mode { M_OK, M_SILENT, M_GARBAGE, M_NO_OK, M_STANDBY, M_LEASE, M_RESTART };

struct server {
    nng_socket sock;
    nng_thread *thr;
    char url[64];
    volatile enum mode mode;
    char leader[64];  /* M_STANDBY: the leader_url it answers */
    volatile int restarts; /* M_RESTART: requests dropped with their connection */
};

static void
serve(void *arg)
{
    struct server *s = arg;
    for (;;) {
        nng_msg *req, *rep;
        if (nng_recvmsg(s->sock, &req, 0) != 0) {
            return; /* closed */
        }
        size_t n = nng_msg_len(req);
        nng_pipe p = nng_msg_get_pipe(req);
        nng_msg_free(req);
        if (s->mode == M_RESTART) {
            /* A broker that goes away with the request: its connection closes unanswered;
             * the next request (the client's resend, on a new connection) is answered. */
            s->restarts++;
            s->mode = M_OK;
            nng_pipe_close(p);
            continue;
        }
        if (s->mode == M_SILENT || nng_msg_alloc(&rep, 0) != 0) {
            continue;
        }
        msgpack_packer pk;
        msgpack_packer_init(&pk, rep, wire_pack_into_msg);
        switch (s->mode) {
        case M_OK:
            wire_pack_ok(&pk, 1);
            wire_pack_key(&pk, WK_N);
            msgpack_pack_uint64(&pk, n); /* the request's size, to show it arrived whole */
            break;
        case M_GARBAGE:
            nng_msg_append(rep, "\xc1", 1);
            break;
        case M_NO_OK:
            msgpack_pack_map(&pk, 1);
            wire_pack_key(&pk, WK_N);
            msgpack_pack_uint64(&pk, 1);
            break;
        case M_STANDBY: /* a cluster standby */
        case M_LEASE:   /* the router's lease: not_leader without leader_url */
            msgpack_pack_map(&pk, s->mode == M_STANDBY ? 4 : 3);
            wire_pack_key(&pk, WK_OK);
            msgpack_pack_false(&pk);
            wire_pack_key(&pk, WK_ERR);
            wire_pack_cstr(&pk, "not_leader");
            wire_pack_key(&pk, WK_MSG);
            wire_pack_cstr(&pk, "no");
            if (s->mode == M_STANDBY) {
                wire_pack_key(&pk, WK_LEADER_URL);
                wire_pack_cstr(&pk, s->leader);
            }
            break;
        case M_SILENT:
        case M_RESTART:
            break;
        }
        if (nng_sendmsg(s->sock, rep, 0) != 0) {
            nng_msg_free(rep);
        }
    }
}

static int
server_setup(void **state)
{
    static int seq;
    static struct server s;
    memset(&s, 0, sizeof(s));
    snprintf(s.url, sizeof(s.url), "ipc:///tmp/sl-test_client.%d.%d.ipc", (int)getpid(), seq++);
    if (nng_rep0_open(&s.sock) != 0 || nng_listen(s.sock, s.url, NULL, 0) != 0 ||
        nng_thread_create(&s.thr, serve, &s) != 0) {
        return -1;
    }
    *state = &s;
    return 0;
}

static int
server_teardown(void **state)
{
    struct server *s = *state;
    nng_close(s->sock);
    nng_thread_destroy(s->thr); /* joins */
    return 0;
}

static uint64_t
ms_since(nng_time t0)
{
    return (uint64_t)(nng_clock() - t0);
}

/* --- connecting ---------------------------------------------------------------------------- */

/* A socket file left by a server that is gone: something is there, nobody listens. */
static void
stale_socket(char *dir, char *url, size_t cap)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    strcpy(dir, "/tmp/sl-client.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/stale.ipc", dir);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(fd);
    snprintf(url, cap, "ipc://%s", sa.sun_path);
}

static void
test_open_with_nobody_listening_is_unreachable_after_connect_ms(void **state)
{
    (void)state;
    struct client *c = NULL;
    char dir[64], url[128];
    stale_socket(dir, url, sizeof(url));
    nng_time t0 = nng_clock();
    assert_int_equal(client_open(&c, url, 200), SL_EUNREACHABLE);
    uint64_t took = ms_since(t0);
    assert_null(c);
    assert_true(took >= 150);
    assert_true(took < 2000);
    assert_int_equal(unlink(url + 6), 0);
    assert_int_equal(rmdir(dir), 0);
}

/* No socket file at all: no server has started there, and waiting would not bring one. */
static void
test_open_with_no_socket_file_fails_at_once(void **state)
{
    (void)state;
    struct client *c = NULL;
    assert_true(client_no_server("ipc:///nonexistent-dir/sluice-test.ipc"));
    assert_false(client_no_server("tcp://127.0.0.1:1"));
    nng_time t0 = nng_clock();
    assert_int_equal(client_open(&c, "ipc:///nonexistent-dir/sluice-test.ipc", 30000),
                     SL_EUNREACHABLE);
    assert_null(c);
    assert_true(ms_since(t0) < 10000); /* far below the 30 s it would have waited */
}

static void
test_open_with_a_bad_url_is_bad_request(void **state)
{
    (void)state;
    struct client *c = NULL;
    char big[600];
    assert_int_equal(client_open(&c, "nope://x", 1000), SL_EBADREQ);
    memset(big, 'a', sizeof(big));
    memcpy(big, "ipc:///", 7);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(client_open(&c, big, 100), SL_EBADREQ);
    assert_null(c);
}

static void
test_free_null_does_nothing(void **state)
{
    (void)state;
    client_free(NULL);
}

/* --- calls --------------------------------------------------------------------------------- */

static void
ping_req(struct wire_msg *req)
{
    wire_msg_init(req);
    wire_set_cstr(req, WK_OP, "ping");
}

static void
test_call_returns_the_decoded_reply(void **state)
{
    struct server *s = *state;
    struct client *c = NULL;
    struct wire_msg req, rep;
    s->mode = M_OK;
    assert_int_equal(client_open(&c, s->url, 1000), 0);
    assert_string_equal(client_url(c), s->url);
    ping_req(&req);
    wire_msg_init(&rep);
    for (int i = 0; i < 3; i++) { /* and again: the previous reply is released each time */
        assert_int_equal(client_call(c, &req, &rep, 2000), 0);
        assert_true(WIRE_HAS(&rep, WK_OK));
        assert_true(rep.v[WK_OK].b);
        assert_int_equal(rep.v[WK_N].u, 9); /* {"op": "ping"} is 9 bytes */
    }
    wire_msg_fini(&rep);
    client_free(c);
}

static void
test_call_without_reply_times_out(void **state)
{
    struct server *s = *state;
    struct client *c = NULL;
    struct wire_msg req, rep;
    s->mode = M_SILENT;
    assert_int_equal(client_open(&c, s->url, 1000), 0);
    ping_req(&req);
    wire_msg_init(&rep);
    nng_time t0 = nng_clock();
    assert_int_equal(client_call(c, &req, &rep, 100), SL_ETIMEDOUT);
    assert_true(ms_since(t0) >= 80);
    assert_true(ms_since(t0) < 2000);
    wire_msg_fini(&rep);
    client_free(c);
}

static void
test_call_is_sent_again_after_the_connection_drops(void **state)
{
    struct server *s = *state;
    struct client *c = NULL;
    struct wire_msg req, rep;
    s->mode = M_RESTART;
    assert_int_equal(client_open(&c, s->url, 1000), 0);
    ping_req(&req);
    wire_msg_init(&rep);
    assert_int_equal(client_call(c, &req, &rep, 5000), 0);
    assert_int_equal(s->restarts, 1);
    assert_true(rep.v[WK_OK].b);
    assert_int_equal(rep.v[WK_N].u, 9);
    /* And the new connection serves the next one. */
    assert_int_equal(client_call(c, &req, &rep, 1000), 0);
    assert_int_equal(rep.v[WK_N].u, 9);
    wire_msg_fini(&rep);
    client_free(c);
}

/* The same round trip over TCP (host names and IPv6 brackets are read by the URL's parser). */
static void
test_call_over_tcp(void **state)
{
    (void)state;
    struct server t;
    memset(&t, 0, sizeof(t));
    nng_listener l;
    assert_int_equal(nng_rep0_open(&t.sock), 0);
    assert_int_equal(nng_listen(t.sock, "tcp://127.0.0.1:0", &l, 0), 0);
    int port = 0;
    assert_int_equal(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
    assert_int_equal(nng_thread_create(&t.thr, serve, &t), 0);
    t.mode = M_OK;
    const char *hosts[] = { "127.0.0.1", "localhost" };
    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        char url[64];
        snprintf(url, sizeof(url), "tcp://%s:%d", hosts[i], port);
        struct client *c = NULL;
        struct wire_msg req, rep;
        assert_int_equal(client_open(&c, url, 1000), 0);
        ping_req(&req);
        wire_msg_init(&rep);
        assert_int_equal(client_call(c, &req, &rep, 1000), 0);
        assert_int_equal(rep.v[WK_N].u, 9);
        wire_msg_fini(&rep);
        client_free(c);
    }
    struct client *c = NULL;
    assert_int_equal(client_open(&c, "tcp://127.0.0.1", 100), SL_EBADREQ);
    assert_int_equal(client_open(&c, "tcp://[::1:7450", 100), SL_EBADREQ);
    assert_int_equal(client_open(&c, "tcp://127.0.0.1:port", 100), SL_EBADREQ);
    assert_int_equal(client_open(&c, "ws://127.0.0.1:80", 100), SL_EBADREQ);
    nng_close(t.sock);
    nng_thread_destroy(t.thr);
}

static void
test_call_with_undecodable_reply_is_bad_request(void **state)
{
    struct server *s = *state;
    struct client *c = NULL;
    struct wire_msg req, rep;
    int saved = log_level;
    log_level = LOG_OFF; /* the client logs the bad reply */
    assert_int_equal(client_open(&c, s->url, 1000), 0);
    ping_req(&req);
    wire_msg_init(&rep);
    s->mode = M_GARBAGE;
    assert_int_equal(client_call(c, &req, &rep, 2000), SL_EBADREQ);
    s->mode = M_NO_OK;
    assert_int_equal(client_call(c, &req, &rep, 2000), SL_EBADREQ);
    /* The client is still usable afterwards. */
    s->mode = M_OK;
    assert_int_equal(client_call(c, &req, &rep, 2000), 0);
    assert_true(rep.v[WK_OK].b);
    log_level = saved;
    wire_msg_fini(&rep);
    client_free(c);
}

/* --- client_reply_err ---------------------------------------------------------------------- */

static void
test_reply_err_of_a_success_is_zero(void **state)
{
    (void)state;
    struct wire_msg rep;
    struct sl_str msg = { "untouched", 9 };
    wire_msg_init(&rep);
    wire_set_bool(&rep, WK_OK, true);
    assert_int_equal(client_reply_err(&rep, &msg), 0);
}

static void
test_reply_err_gives_the_code_and_message(void **state)
{
    (void)state;
    for (int e = 1; e < SL_ERR_COUNT; e++) {
        struct wire_msg rep;
        struct sl_str msg = { NULL, 0 };
        wire_msg_init(&rep);
        wire_set_bool(&rep, WK_OK, false);
        wire_set_cstr(&rep, WK_ERR, sl_err_code(e));
        wire_set_cstr(&rep, WK_MSG, "queue 'q' not found");
        assert_int_equal(client_reply_err(&rep, &msg), e);
        assert_true(sl_str_eq(msg, "queue 'q' not found"));
    }
}

static void
test_reply_err_without_err_or_with_unknown_err_is_internal(void **state)
{
    (void)state;
    struct wire_msg rep;
    struct sl_str msg = { NULL, 0 };
    wire_msg_init(&rep);
    wire_set_bool(&rep, WK_OK, false);
    assert_int_equal(client_reply_err(&rep, &msg), SL_EINTERNAL);
    assert_int_equal(msg.n, 0); /* no msg: an empty view */
    assert_non_null(msg.p);
    wire_set_cstr(&rep, WK_ERR, "brand_new_code");
    assert_int_equal(client_reply_err(&rep, &msg), SL_EINTERNAL);
}

static void
test_reply_err_of_a_failed_reply_is_never_zero(void **state)
{
    (void)state;
    /* {"ok": false, "err": "ok"}: "ok" is SL_OK's wire name, but a reply that says it failed
     * must not read as success (as it would from a broker that packs wire_pack_err(pk, 0)). */
    struct wire_msg rep;
    struct sl_str msg = { NULL, 0 };
    wire_msg_init(&rep);
    wire_set_bool(&rep, WK_OK, false);
    wire_set_cstr(&rep, WK_ERR, "ok");
    assert_int_not_equal(client_reply_err(&rep, &msg), 0);
}

/* --- a cluster: lists of URLs, and a standby's not_leader --------------------------------- */

static void
test_urllist_parse(void **state)
{
    (void)state;
    struct urllist l;
    assert_int_equal(urllist_parse(&l, "tcp://a:1"), 0);
    assert_int_equal(l.n, 1);
    assert_int_equal(urllist_parse(&l, " tcp://a:1 , tcp://b:2"), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.url[0], "tcp://a:1");
    assert_string_equal(l.url[1], "tcp://b:2");
    assert_int_equal(urllist_parse(&l, ""), SL_EBADREQ);
    assert_int_equal(urllist_parse(&l, "tcp://a:1,,tcp://b:2"), SL_EBADREQ);
    assert_int_equal(urllist_parse(&l, "tcp://a:1,"), SL_EBADREQ);
    assert_int_equal(urllist_parse(&l, "a,b,c,d,e,f,g,h,i"), SL_EBADREQ);
    assert_int_equal(l.n, 0);
    char big[URLLIST_URL_MAX + 8];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(urllist_parse(&l, big), SL_EBADREQ);
    struct client *c = NULL;
    assert_int_equal(client_open(&c, "tcp://127.0.0.1:1,,", 0), SL_EBADREQ);
    assert_null(c);
    assert_string_equal(urllist_next(&(struct urllist){ 2, { "a", "b" } }, "a", ""), "b");
    assert_string_equal(urllist_next(&(struct urllist){ 2, { "a", "b" } }, "b", ""), "a");
    assert_string_equal(urllist_next(&(struct urllist){ 2, { "a", "b" } }, "a", "z"), "z");
}

static void
test_redirect_only_with_leader_url(void **state)
{
    (void)state;
    char url[64];
    /* {"ok": false, "err": "not_leader", "leader_url": "tcp://h:1"} */
    static const uint8_t standby[] = "\x83\xa2ok\xc2\xa3" "err\xaanot_leader\xaaleader_url"
                                     "\xa9tcp://h:1";
    assert_true(urllist_redirect(standby, sizeof(standby) - 1, url, sizeof(url)));
    assert_string_equal(url, "tcp://h:1");
    static const uint8_t lease[] = "\x82\xa2ok\xc2\xa3" "err\xaanot_leader";
    assert_false(urllist_redirect(lease, sizeof(lease) - 1, url, sizeof(url)));
    static const uint8_t okrep[] = "\x82\xa2ok\xc3\xaaleader_url\xa0";
    assert_false(urllist_redirect(okrep, sizeof(okrep) - 1, url, sizeof(url)));
    assert_false(urllist_redirect("\xc1", 1, url, sizeof(url)));
}

/* A bad list is refused whole, before anything is dialed and whatever connect_ms. */
static void
test_open_with_a_bad_list_opens_nothing(void **state)
{
    (void)state;
    char many[URLLIST_MAX * 24 + 1] = "", big[URLLIST_URL_MAX + 32];
    for (unsigned i = 0; i <= URLLIST_MAX; i++) {
        strcat(many, i == 0 ? "tcp://127.0.0.1:1" : ",tcp://127.0.0.1:1");
    }
    memset(big, 'a', sizeof(big));
    memcpy(big, "tcp://127.0.0.1:1,ipc:///", 25);
    big[sizeof(big) - 1] = '\0';
    const char *bad[] = { "", ",", " , ", "tcp://127.0.0.1:1,", ",tcp://127.0.0.1:1",
                          "tcp://127.0.0.1:1,  ,tcp://127.0.0.1:2", many, big,
                          "tcp://127.0.0.1:1,nope://x" /* a bad one after a good one */ };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct client *c = NULL;
        nng_time t0 = nng_clock();
        assert_int_equal(client_open(&c, bad[i], 2000), SL_EBADREQ);
        assert_null(c);
        assert_true(ms_since(t0) < 500);
    }
}

/* The first broker of a list has no socket file: the next one is used; with none at all the
 * open fails at once, as for one URL. */
static void
test_open_skips_a_url_with_no_server(void **state)
{
    struct server *s = *state;
    char list[160];
    struct client *c = NULL;
    snprintf(list, sizeof(list), "ipc:///nonexistent/sluice-test/b.ipc , %s", s->url);
    assert_int_equal(client_open(&c, list, 2000), 0);
    assert_string_equal(client_url(c), s->url);
    client_free(c);
    c = NULL;
    nng_time t0 = nng_clock();
    assert_int_equal(client_open(&c, "ipc:///nonexistent/a.ipc,ipc:///nonexistent/b.ipc", 5000),
                     SL_EUNREACHABLE);
    assert_null(c);
    assert_true(ms_since(t0) < 1000);
}

/* A standby (s) names the leader (t): the request is answered by t, and the client stays
 * there; a router-lease not_leader is the caller's at once. */
static void
test_call_follows_a_standby_to_the_leader(void **state)
{
    struct server *s = *state, t;
    memset(&t, 0, sizeof(t));
    snprintf(t.url, sizeof(t.url), "ipc:///tmp/sl-test_client.%d.leader.ipc", (int)getpid());
    assert_int_equal(nng_rep0_open(&t.sock), 0);
    assert_int_equal(nng_listen(t.sock, t.url, NULL, 0), 0);
    assert_int_equal(nng_thread_create(&t.thr, serve, &t), 0);
    t.mode = M_OK;
    s->mode = M_STANDBY;
    snprintf(s->leader, sizeof(s->leader), "%s", t.url);
    struct client *c = NULL;
    struct wire_msg req, rep;
    assert_int_equal(client_open(&c, s->url, 1000), 0);
    ping_req(&req);
    wire_msg_init(&rep);
    assert_int_equal(client_call(c, &req, &rep, 2000), 0);
    assert_true(rep.v[WK_OK].b);
    assert_string_equal(client_url(c), t.url);
    /* The leader's lease error is final: no resend, no move. */
    t.mode = M_LEASE;
    nng_time t0 = nng_clock();
    assert_int_equal(client_call(c, &req, &rep, 2000), 0);
    assert_false(rep.v[WK_OK].b);
    assert_true(ms_since(t0) < 1000);
    assert_string_equal(client_url(c), t.url);
    wire_msg_fini(&rep);
    client_free(c);
    nng_close(t.sock);
    nng_thread_destroy(t.thr);
}

/* Every broker a standby that knows no leader: the call gives up at its timeout, with the
 * not_leader reply. */
static void
test_call_with_no_leader_known_ends_at_its_timeout(void **state)
{
    struct server *s = *state;
    s->mode = M_STANDBY;
    s->leader[0] = '\0';
    struct client *c = NULL;
    struct wire_msg req, rep;
    assert_int_equal(client_open(&c, s->url, 1000), 0);
    ping_req(&req);
    wire_msg_init(&rep);
    nng_time t0 = nng_clock();
    assert_int_equal(client_call(c, &req, &rep, 400), 0);
    uint64_t took = ms_since(t0);
    assert_false(rep.v[WK_OK].b);
    assert_true(took >= 250); /* the timeout is spent, but the room left for a round trip */
    assert_true(took < 3000);
    wire_msg_fini(&rep);
    client_free(c);
}

#define S(f) cmocka_unit_test_setup_teardown(f, server_setup, server_teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_with_nobody_listening_is_unreachable_after_connect_ms),
        cmocka_unit_test(test_open_with_no_socket_file_fails_at_once),
        cmocka_unit_test(test_open_with_a_bad_url_is_bad_request),
        cmocka_unit_test(test_free_null_does_nothing),
        S(test_call_returns_the_decoded_reply),
        cmocka_unit_test(test_urllist_parse),
        cmocka_unit_test(test_redirect_only_with_leader_url),
        cmocka_unit_test(test_open_with_a_bad_list_opens_nothing),
        S(test_open_skips_a_url_with_no_server),
        S(test_call_follows_a_standby_to_the_leader),
        S(test_call_with_no_leader_known_ends_at_its_timeout),
        S(test_call_without_reply_times_out),
        S(test_call_with_undecodable_reply_is_bad_request),
        S(test_call_is_sent_again_after_the_connection_drops),
        cmocka_unit_test(test_call_over_tcp),
        cmocka_unit_test(test_reply_err_of_a_success_is_zero),
        cmocka_unit_test(test_reply_err_gives_the_code_and_message),
        cmocka_unit_test(test_reply_err_without_err_or_with_unknown_err_is_internal),
        cmocka_unit_test(test_reply_err_of_a_failed_reply_is_never_zero),
    };
    int rv = cmocka_run_group_tests(tests, NULL, NULL);
    /* No nng_fini(): nng 1.5.2 aborts in it while a closed socket is still being torn down
     * on its threads (see ctl/main.c). */
    return rv;
}
