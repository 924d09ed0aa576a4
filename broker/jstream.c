/* The NATS JetStream link (jstream.h) over the NATS C client. */
#include "jstream.h"

#include "clock.h"
#include "err.h"
#include "jfile.h"
#include "jzip.h"
#include "log.h"

#include <nats/nats.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEASE_BUCKET "sluice_lease"

struct jstream {
    natsConnection *nc;
    jsCtx *js;
    kvStore *kv;
    char stream[48], subject[64], shard[40];
    _Atomic uint64_t timeout_ms;

    /* One append at a time (the writer's); acks arrive on the client's threads. */
    pthread_mutex_t mtx;
    pthread_cond_t cond;
    uint64_t gen;          /* the append in progress: acks of an earlier one are ignored */
    size_t n, done, sent;
    int start_rv;          /* why publishing stopped after sent messages (0: all sent) */
    uint64_t *seqs;        /* per message: its sequence (0: no ack yet) */
    int *errs;             /* per message: SL_E* of a refused one */
    size_t cap;

    natsSubscription *tail;
    natsMsg *tail_msg;

    struct jzip zapp;      /* the appender's */
    struct jzip ztail;     /* the tail's current message, decompressed */
};

static int
status_err(natsStatus s)
{
    switch (s) {
    case NATS_OK:
        return 0;
    case NATS_TIMEOUT:
        return SL_ETIMEDOUT;
    case NATS_NO_SERVER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_RESPONDERS:
    case NATS_STALE_CONNECTION:
        return SL_EUNREACHABLE;
    case NATS_NO_MEMORY:
        return SL_ENOMEM;
    case NATS_NOT_FOUND:
        return SL_ENOTFOUND;
    default:
        return SL_EIO;
    }
}

static bool
name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 32) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-')) {
            return false;
        }
    }
    return true;
}

static void
on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    struct jstream *s = closure;
    const char *gen = NULL, *idx = NULL;
    (void)js;
    if (natsMsgHeader_Get(msg, "Sl-Gen", &gen) != NATS_OK ||
        natsMsgHeader_Get(msg, "Sl-Idx", &idx) != NATS_OK) {
        natsMsg_Destroy(msg); /* the handler's to destroy (nats.h, jsPubAckHandler) */
        return;
    }
    uint64_t g = strtoull(gen, NULL, 10);
    size_t i = (size_t)strtoull(idx, NULL, 10);
    pthread_mutex_lock(&s->mtx);
    if (g == s->gen && i < s->n && s->seqs[i] == 0 && s->errs[i] == 0) {
        if (pa != NULL) {
            s->seqs[i] = pa->Sequence;
        } else {
            s->errs[i] = pae == NULL                 ? SL_EIO
                         : pae->ErrCode == 10071     ? SL_ECONFLICT
                         : pae->Err == NATS_TIMEOUT  ? SL_ETIMEDOUT
                         : pae->Err != NATS_ERR      ? status_err(pae->Err)
                                                     : SL_EIO;
        }
        s->done++;
        pthread_cond_broadcast(&s->cond);
    }
    pthread_mutex_unlock(&s->mtx);
    natsMsg_Destroy(msg);
}

/* What the client said of the last failure, else what st means (the client's text is empty
 * for some failures, e.g. no responders while JetStream is not enabled or not ready). */
static const char *
err_text(natsStatus st)
{
    const char *e = nats_GetLastError(NULL);
    return e != NULL && e[0] != '\0' ? e : natsStatus_GetText(st);
}

/* The stream exists (else is created) with the subject and storage sluice writes. */
static int
ensure_stream(struct jstream *s, unsigned replicas, char *why, size_t cap)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus st = js_GetStreamInfo(&si, s->js, s->stream, NULL, &jerr);
    if (st == NATS_NOT_FOUND) {
        jsStreamConfig cfg;
        const char *subjects[1] = { s->subject };
        jsStreamConfig_Init(&cfg);
        cfg.Name = s->stream;
        cfg.Subjects = subjects;
        cfg.SubjectsLen = 1;
        cfg.Storage = js_FileStorage;
        cfg.Replicas = (int64_t)replicas;
        cfg.Duplicates = 120LL * 1000000000LL;
        st = js_AddStream(&si, s->js, &cfg, NULL, &jerr);
        if (st != NATS_OK) {
            snprintf(why, cap, "cannot create stream %s: %s (%d)", s->stream, err_text(st),
                     (int)jerr);
            return status_err(st) == SL_EIO ? SL_EIO : status_err(st);
        }
    } else if (st != NATS_OK) {
        snprintf(why, cap, "cannot read stream %s: %s", s->stream, err_text(st));
        return status_err(st);
    }
    bool good = si->Config != NULL && si->Config->Storage == js_FileStorage &&
                si->Config->SubjectsLen == 1 &&
                strcmp(si->Config->Subjects[0], s->subject) == 0;
    jsStreamInfo_Destroy(si);
    if (!good) {
        snprintf(why, cap, "stream %s exists with another subject or storage than %s on file",
                 s->stream, s->subject);
        return SL_EBADREQ;
    }
    return 0;
}

static int
ensure_bucket(struct jstream *s, unsigned replicas, char *why, size_t cap)
{
    natsStatus st = js_KeyValue(&s->kv, s->js, LEASE_BUCKET);
    if (st == NATS_NOT_FOUND) {
        kvConfig kc;
        kvConfig_Init(&kc);
        kc.Bucket = LEASE_BUCKET;
        kc.History = 1;
        kc.StorageType = js_FileStorage;
        kc.Replicas = (int)(replicas < 3 ? replicas : 3);
        st = js_CreateKeyValue(&s->kv, s->js, &kc);
    }
    if (st != NATS_OK) {
        snprintf(why, cap, "cannot open the lease bucket %s: %s", LEASE_BUCKET, err_text(st));
        return status_err(st);
    }
    return 0;
}

/* Splits urls at commas into servers (pointing into buf). */
static int
split_urls(const char *urls, char *buf, size_t cap, const char **servers, int *n)
{
    if (snprintf(buf, cap, "%s", urls) >= (int)cap) {
        return SL_EBADREQ;
    }
    *n = 0;
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t != NULL;
         t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ') {
            t++;
        }
        if (*t == '\0' || *n == 16 || strncmp(t, "nats://", 7) != 0) {
            return SL_EBADREQ;
        }
        servers[(*n)++] = t;
    }
    return *n > 0 ? 0 : SL_EBADREQ;
}

static int
connect_nats(struct jstream *s, const struct jstream_cfg *cfg, char *why, size_t cap)
{
    char buf[1024];
    const char *servers[16];
    int n;
    if (split_urls(cfg->urls, buf, sizeof(buf), servers, &n) != 0) {
        snprintf(why, cap, "--cluster wants nats://HOST:PORT,... (at most 16), not '%s'",
                 cfg->urls);
        return SL_EBADREQ;
    }
    natsOptions *o = NULL;
    natsStatus st = natsOptions_Create(&o);
    if (st == NATS_OK) {
        st = natsOptions_SetServers(o, servers, n);
    }
    if (st == NATS_OK) {
        st = natsOptions_SetTimeout(o, (int64_t)cfg->timeout_ms);
    }
    if (st == NATS_OK) {
        st = natsOptions_SetMaxReconnect(o, -1);
    }
    if (st == NATS_OK) {
        st = natsOptions_SetReconnectWait(o, 100);
    }
    if (st == NATS_OK) {
        st = natsOptions_SetNoRandomize(o, false);
    }
    /* Appends are few and large: each goes out at once (a flush would cost a round trip to
     * the server on top of the ack's). */
    if (st == NATS_OK) {
        st = natsOptions_SetSendAsap(o, true);
    }
    if (st == NATS_OK) {
        st = natsConnection_Connect(&s->nc, o);
    }
    natsOptions_Destroy(o);
    if (st != NATS_OK) {
        snprintf(why, cap, "cannot reach NATS at %s: %s", cfg->urls, natsStatus_GetText(st));
        return status_err(st) == SL_EIO ? SL_EUNREACHABLE : status_err(st);
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    /* KV and stream calls: bounded tighter than appends, so that a lease check or a stop is
     * not held up for long by a NATS node that went away. */
    jo.Wait = cfg->timeout_ms < 2000 ? (int64_t)cfg->timeout_ms : 2000;
    jo.PublishAsync.AckHandler = on_ack;
    jo.PublishAsync.AckHandlerClosure = s;
    jo.PublishAsync.MaxPending = 4096;
    if ((st = natsConnection_JetStream(&s->js, s->nc, &jo)) != NATS_OK) {
        snprintf(why, cap, "no JetStream at %s: %s", cfg->urls, natsStatus_GetText(st));
        return status_err(st);
    }
    return 0;
}

int
jstream_open(struct jstream **sp, const struct jstream_cfg *cfg, char *why, size_t cap)
{
    *sp = NULL;
    why[0] = '\0';
    if (cfg->urls == NULL || !name_ok(cfg->shard) || cfg->replicas < 1 || cfg->replicas > 5) {
        snprintf(why, cap, "a shard is 1-32 of A-Z a-z 0-9 _ -, replicas 1-5");
        return SL_EBADREQ;
    }
    struct jstream *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(why, cap, "out of memory");
        return SL_ENOMEM;
    }
    pthread_mutex_init(&s->mtx, NULL);
    pthread_cond_init(&s->cond, NULL);
    s->timeout_ms = cfg->timeout_ms;
    snprintf(s->shard, sizeof(s->shard), "%s", cfg->shard);
    snprintf(s->stream, sizeof(s->stream), "SLJ_%s", cfg->shard);
    snprintf(s->subject, sizeof(s->subject), "sluice.j.%s", cfg->shard);
    int rv = connect_nats(s, cfg, why, cap);
    if (rv == 0) {
        rv = ensure_stream(s, cfg->replicas, why, cap);
    }
    if (rv == 0) {
        rv = ensure_bucket(s, cfg->replicas, why, cap);
    }
    if (rv != 0 && s->nc != NULL && rv != SL_EBADREQ && rv != SL_ENOMEM) {
        rv = SL_ETIMEDOUT; /* a server answered, JetStream did not (yet) */
    }
    if (rv != 0) {
        jstream_close(s);
        return rv;
    }
    *sp = s;
    return 0;
}

void
jstream_set_timeout(struct jstream *s, uint64_t timeout_ms)
{
    s->timeout_ms = timeout_ms;
}

bool
jstream_connected(struct jstream *s)
{
    return natsConnection_Status(s->nc) == NATS_CONN_STATUS_CONNECTED;
}

void
jstream_abort(struct jstream *s)
{
    if (s != NULL && s->nc != NULL) {
        natsConnection_Close(s->nc);
    }
}

void
jstream_close(struct jstream *s)
{
    if (s == NULL) {
        return;
    }
    jstream_tail_stop(s);
    if (s->kv != NULL) {
        kvStore_Destroy(s->kv);
    }
    if (s->js != NULL) {
        jsCtx_Destroy(s->js);
    }
    if (s->nc != NULL) {
        natsConnection_Destroy(s->nc);
    }
    free(s->seqs);
    free(s->errs);
    jzip_free(&s->zapp);
    jzip_free(&s->ztail);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->mtx);
    free(s);
}

size_t
jstream_max_msg(const struct jstream *s)
{
    int64_t max = natsConnection_GetMaxPayload(s->nc);
    return max > 4096 ? (size_t)(max - 1024) : 1u << 19;
}

static int
room(struct jstream *s, size_t n)
{
    if (n <= s->cap) {
        return 0;
    }
    uint64_t *q = realloc(s->seqs, n * sizeof(*q));
    if (q != NULL) {
        s->seqs = q;
    }
    int *e = realloc(s->errs, n * sizeof(*e));
    if (e != NULL) {
        s->errs = e;
    }
    if (q == NULL || e == NULL) {
        return SL_ENOMEM;
    }
    s->cap = n;
    return 0;
}

/* A message's journal bytes, decompressed if they came compressed (jzip.h). */
static int
msg_bytes(natsMsg *msg, struct jzip *z, const uint8_t **p, size_t *n)
{
    const char *enc = NULL;
    if (natsMsgHeader_Get(msg, "Sl-Enc", &enc) != NATS_OK) {
        enc = NULL;
    }
    return jzip_unpack(z, enc, (const uint8_t *)natsMsg_GetData(msg),
                       (size_t)natsMsg_GetDataLength(msg), p, n);
}

/* One message of an append: the bytes, compressed when that pays, and the headers that fence
 * and name it. */
static natsStatus
make_msg(natsMsg **out, struct jstream *s, const struct jstream_msg *m, uint64_t expect,
         size_t idx)
{
    char v[5][48];
    natsMsg *msg = NULL;
    size_t z = jzip_pack(&s->zapp, m->p, m->n);
    natsStatus st = z > 0
        ? natsMsg_Create(&msg, s->subject, NULL, (const char *)s->zapp.out, (int)z)
        : natsMsg_Create(&msg, s->subject, NULL, (const char *)m->p, (int)m->n);
    if (st == NATS_OK && z > 0) {
        st = natsMsgHeader_Set(msg, "Sl-Enc", JZIP_ENC);
    }
    snprintf(v[0], sizeof(v[0]), "%" PRIu64, expect);
    snprintf(v[1], sizeof(v[1]), "%" PRIu64 ".%" PRIu64 ".%zu", m->epoch, m->lsn, m->n);
    snprintf(v[2], sizeof(v[2]), "%" PRIu64, m->seg);
    snprintf(v[3], sizeof(v[3]), "%" PRIu64, m->lsn);
    snprintf(v[4], sizeof(v[4]), "%" PRIu64, m->epoch);
    static const char *const names[5] = { "Nats-Expected-Last-Sequence", "Nats-Msg-Id",
                                          "Sl-Seg", "Sl-Lsn", "Sl-Epoch" };
    for (int i = 0; i < 5 && st == NATS_OK; i++) {
        st = natsMsgHeader_Set(msg, names[i], v[i]);
    }
    char g[24], x[24];
    snprintf(g, sizeof(g), "%" PRIu64, s->gen);
    snprintf(x, sizeof(x), "%zu", idx);
    if (st == NATS_OK) {
        st = natsMsgHeader_Set(msg, "Sl-Gen", g);
    }
    if (st == NATS_OK) {
        st = natsMsgHeader_Set(msg, "Sl-Idx", x);
    }
    if (st != NATS_OK) {
        natsMsg_Destroy(msg);
        msg = NULL;
    }
    *out = msg;
    return st;
}

int
jstream_append_start(struct jstream *s, struct jstream_msg *m, size_t n, uint64_t expect)
{
    pthread_mutex_lock(&s->mtx);
    int rv = room(s, n);
    s->gen++;
    s->n = rv == 0 ? n : 0;
    s->sent = 0;
    s->done = 0;
    for (size_t i = 0; rv == 0 && i < n; i++) {
        s->seqs[i] = 0;
        s->errs[i] = 0;
    }
    pthread_mutex_unlock(&s->mtx);
    if (rv != 0) {
        return rv;
    }
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = (int64_t)s->timeout_ms;
    size_t sent = 0;
    for (; sent < n && rv == 0; sent++) {
        natsMsg *msg;
        natsStatus st = make_msg(&msg, s, &m[sent], expect + sent, sent);
        if (st == NATS_OK) {
            st = js_PublishMsgAsync(s->js, &msg, &po);
            natsMsg_Destroy(msg); /* NULL when the client took it */
        }
        rv = status_err(st);
        if (rv != 0) {
            break;
        }
    }
    s->sent = sent;
    s->start_rv = rv;
    return rv;
}

int
jstream_append_wait(struct jstream *s, struct jstream_msg *m, size_t n, uint64_t expect,
                    uint64_t *last)
{
    *last = expect;
    if (n == 0) {
        return 0;
    }
    int64_t deadline = clock_mono_ns() + (int64_t)s->timeout_ms * 1000000LL + 500000000LL;
    pthread_mutex_lock(&s->mtx);
    while (s->done < s->sent && clock_mono_ns() < deadline) {
        struct timespec ts = clock_real_after(20000000LL);
        pthread_cond_timedwait(&s->cond, &s->mtx, &ts);
    }
    size_t k = 0;
    while (k < s->n && k < n && s->seqs[k] != 0 && s->seqs[k] == expect + k + 1) {
        k++;
    }
    int first_err = 0;
    for (size_t i = k; i < s->n && first_err == 0; i++) {
        first_err = s->errs[i];
    }
    if (k < n && first_err == 0) {
        first_err = k < s->n && s->seqs[k] != 0 ? SL_ECONFLICT : SL_ETIMEDOUT;
    }
    s->n = 0; /* later acks of this append are ignored */
    pthread_mutex_unlock(&s->mtx);
    if (k > 0) {
        *last = expect + k;
        for (size_t i = 0; i < k; i++) {
            m[i].seq = expect + i + 1;
        }
    }
    if (k == n) {
        return 0;
    }
    return s->start_rv != 0 && k == s->sent ? s->start_rv : first_err;
}

int
jstream_append(struct jstream *s, struct jstream_msg *m, size_t n, uint64_t expect,
               uint64_t *last)
{
    *last = expect;
    if (n == 0) {
        return 0;
    }
    int rv = jstream_append_start(s, m, n, expect);
    if (rv != 0 && s->sent == 0) {
        return rv;
    }
    return jstream_append_wait(s, m, n, expect, last);
}

int
jstream_info(struct jstream *s, struct jstream_info *out)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    memset(out, 0, sizeof(*out));
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = (int64_t)s->timeout_ms;
    natsStatus st = js_GetStreamInfo(&si, s->js, s->stream, &jo, &jerr);
    if (st != NATS_OK) {
        return status_err(st);
    }
    out->first_seq = si->State.FirstSeq;
    out->last_seq = si->State.LastSeq;
    out->msgs = si->State.Msgs;
    out->bytes = si->State.Bytes;
    out->replicas = si->Config != NULL ? (unsigned)si->Config->Replicas : 0;
    if (si->Cluster != NULL) {
        snprintf(out->leader, sizeof(out->leader), "%s",
                 si->Cluster->Leader != NULL ? si->Cluster->Leader : "");
        out->current = si->Cluster->Leader != NULL ? 1 : 0;
        for (int i = 0; i < si->Cluster->ReplicasLen; i++) {
            out->current += si->Cluster->Replicas[i]->Current ? 1 : 0;
        }
    } else {
        out->current = 1;
    }
    jsStreamInfo_Destroy(si);
    return 0;
}

int
jstream_tail_start(struct jstream *s, uint64_t from)
{
    jstream_tail_stop(s);
    jsSubOptions so;
    jsErrCode jerr = 0;
    jsSubOptions_Init(&so);
    so.Stream = s->stream;
    so.Ordered = true;
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = from > 0 ? from : 1;
    return status_err(js_SubscribeSync(&s->tail, s->js, s->subject, NULL, &so, &jerr));
}

static bool
header_u64(natsMsg *msg, const char *name, uint64_t *out)
{
    const char *v = NULL;
    if (natsMsgHeader_Get(msg, name, &v) != NATS_OK || v == NULL || *v < '0' || *v > '9') {
        return false;
    }
    char *end;
    *out = strtoull(v, &end, 10);
    return *end == '\0';
}

int
jstream_tail_next(struct jstream *s, struct jstream_msg *m, uint64_t timeout_ms)
{
    if (s->tail == NULL) {
        return SL_EIO;
    }
    natsMsg_Destroy(s->tail_msg);
    s->tail_msg = NULL;
    natsMsg *msg = NULL;
    natsStatus st = natsSubscription_NextMsg(&msg, s->tail, (int64_t)timeout_ms);
    if (st != NATS_OK) {
        return st == NATS_TIMEOUT ? SL_ETIMEDOUT : status_err(st);
    }
    s->tail_msg = msg;
    memset(m, 0, sizeof(*m));
    jsMsgMetaData *meta = NULL;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
        m->seq = meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
    }
    int rv = msg_bytes(msg, &s->ztail, &m->p, &m->n);
    if (rv != 0) {
        return rv;
    }
    if (m->seq == 0 || m->n == 0 || !header_u64(msg, "Sl-Seg", &m->seg) ||
        !header_u64(msg, "Sl-Lsn", &m->lsn) || !header_u64(msg, "Sl-Epoch", &m->epoch) ||
        m->seg == 0) {
        return SL_EBADREQ;
    }
    return 0;
}

void
jstream_tail_stop(struct jstream *s)
{
    natsMsg_Destroy(s->tail_msg);
    s->tail_msg = NULL;
    if (s->tail != NULL) {
        natsSubscription_Unsubscribe(s->tail);
        natsSubscription_Destroy(s->tail);
        s->tail = NULL;
    }
}

int
jstream_lease_get(struct jstream *s, struct jstream_lease *l)
{
    kvEntry *e = NULL;
    memset(l, 0, sizeof(*l));
    natsStatus st = kvStore_Get(&e, s->kv, s->shard);
    if (st != NATS_OK) {
        return status_err(st);
    }
    /* "holder\nurl": both printable, within their fields' sizes. */
    const char *v = kvEntry_ValueString(e);
    int n = kvEntry_ValueLen(e);
    const char *nl = v != NULL ? memchr(v, '\n', (size_t)n) : NULL;
    int rv = SL_EBADREQ;
    if (nl != NULL && nl - v < (ptrdiff_t)sizeof(l->holder) &&
        n - (nl - v) - 1 < (int)sizeof(l->url)) {
        memcpy(l->holder, v, (size_t)(nl - v));
        memcpy(l->url, nl + 1, (size_t)(n - (nl - v) - 1));
        l->rev = kvEntry_Revision(e);
        rv = 0;
        for (const char *p = v; p < v + n; p++) {
            if ((unsigned char)*p < 0x20 && *p != '\n') {
                rv = SL_EBADREQ;
            }
        }
    }
    kvEntry_Destroy(e);
    return rv;
}

int
jstream_lease_put(struct jstream *s, uint64_t expect_rev, const char *holder, const char *url,
                  uint64_t *rev)
{
    char v[64 + 256 + 2];
    int n = snprintf(v, sizeof(v), "%.63s\n%.255s", holder, url);
    natsStatus st = expect_rev == 0 ? kvStore_Create(rev, s->kv, s->shard, v, n)
                                    : kvStore_Update(rev, s->kv, s->shard, v, n, expect_rev);
    if (st == NATS_OK) {
        return 0;
    }
    const char *e = nats_GetLastError(NULL);
    if (st == NATS_ERR && e != NULL &&
        (strstr(e, "wrong last sequence") != NULL || strstr(e, "key exists") != NULL)) {
        return SL_ECONFLICT;
    }
    return status_err(st);
}

int
jstream_get(struct jstream *s, uint64_t seq, struct jstream_msg *m, uint8_t *first_type)
{
    natsMsg *msg = NULL;
    jsErrCode jerr = 0;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = (int64_t)s->timeout_ms;
    memset(m, 0, sizeof(*m));
    *first_type = 0;
    natsStatus st = js_GetMsg(&msg, s->js, s->stream, seq, &jo, &jerr);
    if (st != NATS_OK) {
        return st == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr ? SL_ENOTFOUND
                                                                    : status_err(st);
    }
    struct jzip z = { 0 }; /* this may run beside the tail: a codec of its own */
    const uint8_t *p = NULL;
    size_t n = 0;
    int rv = msg_bytes(msg, &z, &p, &n);
    m->seq = seq;
    m->n = n;
    if (rv == 0 && (n <= JF_FRAME_SIZE || !header_u64(msg, "Sl-Seg", &m->seg) ||
                    !header_u64(msg, "Sl-Lsn", &m->lsn) ||
                    !header_u64(msg, "Sl-Epoch", &m->epoch))) {
        rv = SL_EBADREQ;
    } else if (rv == 0) {
        *first_type = p[JF_FRAME_SIZE];
    }
    jzip_free(&z);
    natsMsg_Destroy(msg);
    return rv;
}

int
jstream_delete(struct jstream *s, uint64_t seq)
{
    jsErrCode jerr = 0;
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = s->timeout_ms < 500 ? (int64_t)s->timeout_ms : 500; /* tried again if need be */
    natsStatus st = js_DeleteMsg(s->js, s->stream, seq, &jo, &jerr);
    if (st == NATS_OK) {
        return 0;
    }
    return st == NATS_NOT_FOUND || jerr == JSSequenceNotFoundErr || jerr == JSNoMessageFoundErr
               ? SL_ENOTFOUND
               : status_err(st);
}

/* The start key's entry: its sequence and revision (both 0: none). */
static int
start_read(struct jstream *s, uint64_t *seq, uint64_t *rev)
{
    char key[64];
    kvEntry *e = NULL;
    *seq = *rev = 0;
    snprintf(key, sizeof(key), "%s.start", s->shard);
    natsStatus st = kvStore_Get(&e, s->kv, key);
    if (st == NATS_NOT_FOUND) {
        return 0;
    }
    if (st != NATS_OK) {
        return status_err(st);
    }
    char v[24] = "";
    int n = kvEntry_ValueLen(e);
    if (n > 0 && n < (int)sizeof(v)) {
        memcpy(v, kvEntry_ValueString(e), (size_t)n);
    }
    char *end = NULL;
    unsigned long long x = strtoull(v, &end, 10);
    int rv = v[0] >= '0' && v[0] <= '9' && end != NULL && *end == '\0' ? 0 : SL_EBADREQ;
    *seq = rv == 0 ? (uint64_t)x : 0;
    *rev = kvEntry_Revision(e); /* a bad value is replaced */
    kvEntry_Destroy(e);
    return rv;
}

int
jstream_start_get(struct jstream *s, uint64_t *seq)
{
    uint64_t rev;
    return start_read(s, seq, &rev);
}

int
jstream_start_raise(struct jstream *s, uint64_t seq)
{
    char key[64], v[24];
    snprintf(key, sizeof(key), "%s.start", s->shard);
    int n = snprintf(v, sizeof(v), "%llu", (unsigned long long)seq);
    for (int tries = 0; tries < 5; tries++) {
        uint64_t cur, rev, nrev;
        int rv = start_read(s, &cur, &rev);
        if (rv != 0 && rv != SL_EBADREQ) {
            return rv;
        }
        if (rv == 0 && cur >= seq) {
            return 0;
        }
        natsStatus st = rev == 0 ? kvStore_Create(&nrev, s->kv, key, v, n)
                                 : kvStore_Update(&nrev, s->kv, key, v, n, rev);
        if (st == NATS_OK) {
            return 0;
        }
        const char *e = nats_GetLastError(NULL);
        if (st != NATS_ERR || e == NULL ||
            (strstr(e, "wrong last sequence") == NULL && strstr(e, "key exists") == NULL)) {
            return status_err(st);
        }
        /* Changed meanwhile (another leader raised it, or a read was stale): again. */
    }
    return SL_ECONFLICT;
}
