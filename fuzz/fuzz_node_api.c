/* Fuzz target for what a node and its local clients receive. The first input byte picks:
 *   0  the one client reader of node API lines (gm_node_conn_read) fed by a fake node;
 *   1  the same reader opened by socket path (gm_node_conn_open_path), as agents do;
 *   2  the node's local API server (lib/node/node_api.c) of an in-process node, driven through
 *      its Unix socket with this process running the node's libuv loop;
 *   3  end-to-end DATA payloads (node_e2e_on_payload) from a peer with a certificate: raw
 *      bytes, plus messages the harness seals with a real session (see E2E ops below);
 *   4  the replay window (gm_replay_check/mark) against a plain reference model;
 *   5  a peer certificate (gm_node_trust_check) and a gossiped CRL (gm_node_crl_accept),
 *      judged at a fixed clock so the seeds stay valid.
 * The rest of the input is the payload. Invariants (abort() on violation): the readers
 * return exactly the complete lines, each as JSON.loads would; the API answers every
 * non-empty request line exactly once; an e2e message is delivered iff it authenticates,
 * is fresh under the reference window and carries a well-formed port; forged or replayed
 * handshakes never change the session. libsodium's RNG is deterministic here so the
 * harness can mirror the node's half of each handshake; session state carries across
 * inputs (a handshake op resets it). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "gm/agent.h"
#include "gm/node.h"
#include "noise.h"
#include "node_internal.h"
#include "client_internal.h"
#include "core_internal.h"
#include "node_checks.h"

#define FAIL(why)                                                                  \
    do {                                                                           \
        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, why); \
        abort();                                                                   \
    } while (0)

#define PAYLOAD_MAX 60000
#define FUZZ_T0 INT64_C(1780000000) /* fixed clock of mode 5 (seeds: certificate, CRL) */
#define E2E_PROLOGUE_LABEL "genesis-mesh/v1/e2e-ik" /* as lib/node_e2e.c */

/* ---- deterministic RNG (splitmix64) so the harness can replay the node's randomness ---- */

static uint64_t rng_state = UINT64_C(0x243f6a8885a308d3);

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}
static const char *rng_name(void) { return "fuzz-splitmix64"; }
static uint32_t rng_random(void) { return (uint32_t)rng_next(); }
static void rng_stir(void) {}
static void rng_buf(void *const buf, const size_t size)
{
    uint8_t *p = buf;
    for (size_t i = 0; i < size; i += 8) {
        uint64_t v = rng_next();
        memcpy(p + i, &v, size - i < 8 ? size - i : 8);
    }
}
static randombytes_implementation fuzz_rng = {rng_name, rng_random, rng_stir, NULL, rng_buf, NULL};

/* ---- the in-process node and its peer ---- */

static gm_node *node;
static gm_signer peer;
static uint8_t peer_xsk[32], peer_xpk[32];
static uint8_t e2e_prologue[sizeof E2E_PROLOGUE_LABEL - 1 + 32];
static char tmpdir[64], fake_dir[96], fake_sock[128], node_dir[96];
static int fake_listen_fd = -1;
static gm_crl crl_seq1; /* the CRL a node holds when a gossiped one arrives */
static int ready;

static void signer_seeded(gm_signer *k, uint8_t base, const char *id)
{
    uint8_t seed[GM_SEED_LEN];
    gm_error err = {0};
    for (int i = 0; i < GM_SEED_LEN; i++)
        seed[i] = (uint8_t)(base + i);
    if (gm_signer_from_seed(k, seed, id, &err) != 0)
        FAIL("cannot derive a key");
}

static void set_sun_path(struct sockaddr_un *sa, const char *path)
{
    size_t n = strlen(path);
    if (n >= sizeof sa->sun_path)
        FAIL("socket path too long");
    memcpy(sa->sun_path, path, n + 1);
}

static void cleanup(void)
{
    if (node) {
        node_api_shutdown(node);
        uv_run(node->loop, UV_RUN_NOWAIT);
    }
    if (fake_listen_fd >= 0)
        close(fake_listen_fd);
    unlink(fake_sock);
    rmdir(fake_dir);
    rmdir(node_dir);
    rmdir(tmpdir);
}

static void setup(void)
{
    gm_signer root, na;
    gm_error err = {0};
    gm_cert peer_cert;
    randombytes_set_implementation(&fuzz_rng); /* before sodium_init (in gm_signer_from_seed) */
    signal(SIGPIPE, SIG_IGN);
    signer_seeded(&root, 0x00, "rs-local");
    signer_seeded(&na, 0x40, "na-local");
    signer_seeded(&peer, 0xc0, "peer");
    node = calloc(1, sizeof *node);
    node->loop = malloc(sizeof *node->loop);
    if (!node->loop || uv_loop_init(node->loop) != 0)
        FAIL("cannot start a libuv loop");
    node->log_level = GM_LOG_ERROR + 1; /* quiet */
    signer_seeded(&node->key, 0x80, "node");
    gm_time now = gm_time_now(), from = gm_time_add(now, -60), to = gm_time_add(now, 30 * 86400);
    gm_time t0 = gm_time_from_unix(FUZZ_T0);
    json_t *roles = json_pack("[s]", "role:test"), *none = json_array();
    /* the NA window spans both the fixed clock of mode 5 and the real one of the e2e part */
    if (gm_genesis_create(&node->genesis, "TESTNET", root.pk, na.pk, gm_time_add(t0, -86400),
                          gm_time_add(now, 20 * 365 * 86400), NULL, &err) ||
        gm_crl_issue(&crl_seq1, &na, 1, none, t0, 86400, &err) ||
        gm_genesis_sign(&node->genesis, &root, &err) ||
        gm_cert_issue(&node->cert, &na, "TESTNET", node->key.pk, roles, from, to, &err) ||
        gm_cert_issue(&peer_cert, &na, "TESTNET", peer.pk, roles, from, to, &err) ||
        gm_noise_static_from_ed25519_seed(node->key.sk, node->x_sk, node->x_pk, &err) ||
        gm_noise_static_from_ed25519_seed(peer.sk, peer_xsk, peer_xpk, &err))
        FAIL(err.msg);
    json_decref(roles);
    json_decref(none);
    node->cert_json = gm_cert_dump(&node->cert, 0);
    node->cert_json_len = strlen(node->cert_json);
    memcpy(node->prologue, GM_NODE_PROLOGUE_LABEL, sizeof GM_NODE_PROLOGUE_LABEL - 1);
    memcpy(e2e_prologue, E2E_PROLOGUE_LABEL, sizeof E2E_PROLOGUE_LABEL - 1);
    gm_genesis_network_id(&node->genesis, node->prologue + sizeof GM_NODE_PROLOGUE_LABEL - 1);
    gm_genesis_network_id(&node->genesis, e2e_prologue + sizeof E2E_PROLOGUE_LABEL - 1);
    snprintf(node->conn.listen_addr, sizeof node->conn.listen_addr, "127.0.0.1:0");

    snprintf(tmpdir, sizeof tmpdir, "/tmp/gm-fuzz-node-XXXXXX");
    if (!mkdtemp(tmpdir))
        FAIL("cannot create a temporary directory");
    snprintf(node_dir, sizeof node_dir, "%s/node", tmpdir);
    snprintf(fake_dir, sizeof fake_dir, "%s/fake", tmpdir);
    snprintf(fake_sock, sizeof fake_sock, "%s/node.sock", fake_dir);
    if (mkdir(node_dir, 0700) != 0 || mkdir(fake_dir, 0700) != 0)
        FAIL("cannot create directories");
    snprintf(node->dir, sizeof node->dir, "%s", node_dir);
    atexit(cleanup);
    if (node_routing_init(node, &err) || node_e2e_init(node, &err) || node_api_start(node, &err))
        FAIL(err.msg);
    node_cert_store_copy(node, &peer_cert);
    if (!node_cert_lookup(node, peer.pk))
        FAIL("peer certificate not stored");
    gm_cert_free(&peer_cert);

    /* A fake node for the CLI's reader: a plain listening socket. */
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    set_sun_path(&sa, fake_sock);
    fake_listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fake_listen_fd < 0 || bind(fake_listen_fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(fake_listen_fd, 4) != 0)
        FAIL("cannot listen for the fake node");
    gm_signer_wipe(&root);
    gm_signer_wipe(&na);
    ready = 1;
}

/* ---- modes 0 and 1: line readers ---- */

/* Whatever part of p the socket took at once (the reference uses that part). */
static size_t send_some(int fd, const uint8_t *p, size_t len)
{
    size_t off = 0;
    while (off < len) {
        ssize_t w = send(fd, p + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    return off;
}

typedef int (*reader_fn)(void *ctx, json_t **out, gm_error *err);

/* The reader must return each complete line as json_loadb(line, 0) would, then GM_EIO. */
static void expect_lines(const uint8_t *p, size_t len, reader_fn rd, void *ctx)
{
    size_t off = 0;
    for (;;) {
        const uint8_t *nl = off < len ? memchr(p + off, '\n', len - off) : NULL;
        json_t *got = NULL;
        gm_error err = {0};
        int rc = rd(ctx, &got, &err);
        if (!nl) {
            if (rc != GM_EIO || got)
                FAIL("reader returned something past the last complete line");
            return;
        }
        size_t ll = (size_t)(nl - (p + off));
        json_t *want = json_loadb((const char *)p + off, ll, 0, NULL);
        if (want ? (rc != 0 || !got || !json_equal(got, want)) : (rc != GM_EPROTO || got))
            FAIL("reader disagrees with json_loadb on a line");
        json_decref(want);
        json_decref(got);
        off += ll + 1;
    }
}

static int conn_reader(void *ctx, json_t **out, gm_error *err)
{
    return gm_node_conn_read(ctx, out, 2000, err);
}

static void fuzz_conn_read(const uint8_t *p, size_t len)
{
    gm_node_conn_t *c;
    gm_error err = {0};
    if (gm_node_conn_open(fake_dir, &c, &err) != 0)
        FAIL(err.msg);
    int fd = accept(fake_listen_fd, NULL, NULL);
    if (fd < 0)
        FAIL("accept");
    len = send_some(fd, p, len);
    close(fd);
    expect_lines(p, len, conn_reader, c);
    gm_node_conn_close(c);
}

/* The same reader opened by socket path, as agents open it. */
static void fuzz_agent_read(const uint8_t *p, size_t len)
{
    gm_node_conn_t *c;
    gm_error err = {0};
    if (gm_node_conn_open_path(fake_sock, &c, &err) != 0)
        FAIL(err.msg);
    int fd = accept(fake_listen_fd, NULL, NULL);
    if (fd < 0)
        FAIL("accept");
    len = send_some(fd, p, len);
    close(fd);
    expect_lines(p, len, conn_reader, c);
    gm_node_conn_close(c);
}

/* ---- mode 2: the node's local API server ---- */

static void fuzz_api(const uint8_t *p, size_t len)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    set_sun_path(&sa, node->api.sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        FAIL("cannot connect to the node API");
    fcntl(fd, F_SETFL, O_NONBLOCK);
    len = send_some(fd, p, len);
    size_t want = 0, got = 0;
    for (size_t i = 0, start = 0; i < len; i++)
        if (p[i] == '\n') {
            want += i > start; /* every non-empty line gets exactly one answer */
            start = i + 1;
        }
    /* Run the node's loop and read answers until every request is answered. */
    char *in = NULL;
    size_t in_len = 0, in_cap = 0;
    for (int idle = 0; got < want && idle < 200;) {
        uv_run(node->loop, UV_RUN_NOWAIT);
        int progress = 0;
        for (;;) {
            if (in_cap - in_len < 65536) {
                in_cap = in_cap ? in_cap * 2 : 131072;
                if (!(in = realloc(in, in_cap)))
                    FAIL("out of memory");
            }
            ssize_t r = read(fd, in + in_len, in_cap - in_len);
            if (r <= 0)
                break;
            in_len += (size_t)r;
            progress = 1;
        }
        /* count complete answer lines: each must be a JSON object; answers carry "ok" */
        got = 0;
        for (size_t i = 0, start = 0; i < in_len; i++)
            if (in[i] == '\n') {
                json_t *o = json_loadb(in + start, i - start, JSON_REJECT_DUPLICATES, NULL);
                if (!json_is_object(o))
                    FAIL("the node API answered a line that is not a JSON object");
                if (json_object_get(o, "ok")) {
                    if (!json_is_boolean(json_object_get(o, "ok")) ||
                        (json_is_false(json_object_get(o, "ok")) &&
                         !json_is_string(json_object_get(json_object_get(o, "error"), "code"))))
                        FAIL("an API answer without a boolean ok or an error code");
                    got++;
                } else if (!json_is_string(json_object_get(o, "event"))) {
                    FAIL("an API line that is neither an answer nor an event");
                }
                json_decref(o);
                start = i + 1;
            }
        idle = progress ? 0 : idle + 1;
    }
    if (got != want)
        FAIL("the node API did not answer every request line exactly once");
    free(in);
    close(fd);
    for (int i = 0; i < 1000 && node->api.n_clients > 0; i++)
        uv_run(node->loop, UV_RUN_NOWAIT);
    if (node->api.n_clients != 0)
        FAIL("the node API kept a closed connection");
    node_inbox_free(node);
}

/* ---- mode 4 (and the e2e model): the replay window ---- */

/* Reference: accept c iff c != UINT64_MAX, c was never accepted, and c >= top - WINDOW. */
typedef struct rmodel {
    uint64_t top;       /* highest accepted + 1, 0 = none */
    uint64_t acc[GM_REPLAY_WINDOW_BITS + 1]; /* accepted counters still inside the window */
    size_t n;
} rmodel;

static int model_fresh(const rmodel *m, uint64_t c)
{
    if (c == UINT64_MAX || (c < m->top && m->top - c > GM_REPLAY_WINDOW_BITS))
        return 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->acc[i] == c)
            return 0;
    return 1;
}

static void model_mark(rmodel *m, uint64_t c)
{
    if (c >= m->top)
        m->top = c + 1;
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++)
        if (m->top - m->acc[i] <= GM_REPLAY_WINDOW_BITS)
            m->acc[k++] = m->acc[i];
    m->n = k;
    m->acc[m->n++] = c;
}

/* A counter from 9 input bytes: mostly near the top (so the window is exercised), else raw. */
static uint64_t pick_counter(const rmodel *m, const uint8_t *b)
{
    uint64_t raw = 0;
    for (int i = 0; i < 8; i++)
        raw = raw << 8 | b[1 + i];
    if (b[0] & 1)
        return raw;
    int64_t d = (int16_t)(raw & 0xffff);
    if (d < 0 && (uint64_t)-d > m->top)
        return raw & 0xfff;
    return m->top + (uint64_t)d;
}

static void fuzz_replay(const uint8_t *p, size_t len)
{
    static rmodel m;
    gm_replay_window w;
    gm_replay_init(&w);
    memset(&m, 0, sizeof m);
    for (size_t off = 0; off + 9 <= len; off += 9) {
        uint64_t c = pick_counter(&m, p + off);
        int fresh = gm_replay_check(&w, c) == 0;
        if (fresh != model_fresh(&m, c))
            FAIL("replay window disagrees with the reference model");
        if (fresh) {
            gm_replay_mark(&w, c);
            model_mark(&m, c);
            if (gm_replay_check(&w, c) == 0)
                FAIL("a counter just marked is still fresh");
        }
    }
}

/* ---- mode 5: what peers send about trust ---- */

static void fuzz_trust(const uint8_t *p, size_t len)
{
    gm_time now = gm_time_from_unix(FUZZ_T0 + 1000);
    gm_error err = {0};
    for (int with_key = 0; with_key < 2; with_key++) {
        gm_cert c;
        gm_trust_reason why = GM_TRUST_N;
        int rc = gm_node_trust_check(&node->genesis, &crl_seq1, p, len, with_key ? peer_xpk : NULL, now, &c, &why, &err);
        if (rc != 0) {
            if (why <= GM_TRUST_OK || why >= GM_TRUST_N || !gm_trust_reason_name(why))
                FAIL("a refused certificate without a refusal reason");
            continue;
        }
        uint8_t x[32];
        if (why != GM_TRUST_OK || gm_cert_verify(&c, &node->genesis, &crl_seq1, now, &err) != 0)
            FAIL("trust check accepted a certificate that does not verify");
        if (with_key && (gm_noise_static_pub_from_ed25519(c.node_pk, x, &err) != 0 || memcmp(x, peer_xpk, 32) != 0))
            FAIL("trust check accepted a certificate for another key than the Noise static");
        gm_cert_free(&c);
    }
    for (int held = 0; held < 2; held++) {
        gm_crl out;
        const gm_crl *cur_crl = held ? &crl_seq1 : NULL;
        if (gm_node_crl_accept(cur_crl, node->genesis.na_pk, (const char *)p, len, &out, &err) != 0)
            continue;
        if ((cur_crl && out.sequence <= cur_crl->sequence) || gm_crl_verify(&out, node->genesis.na_pk, &err) != 0)
            FAIL("accepted a CRL that is not newer or not signed by the NA");
        gm_crl_free(&out);
    }
}

/* ---- mode 3: end-to-end payloads ---- */

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}
static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* What the harness (the peer) knows of a session the node installed. */
typedef struct hsession {
    int valid;
    uint32_t node_idx; /* the node's local index: TRANSPORT receiver_idx */
    uint8_t tx[32];    /* peer -> node key */
    rmodel rm;
} hsession;

static hsession cur, prev;
static uint64_t hs_ts = UINT64_C(1) << 62; /* HS_INIT timestamps, strictly increasing */
static uint8_t last_init[256];
static size_t last_init_len;
static uint8_t last_msg[GM_WIRE_MSG_MAX];
static size_t last_msg_len;
static uint32_t last_msg_idx;

static void seal(const hsession *s, uint64_t ctr, const uint8_t *pt, size_t ptlen, uint8_t *out, size_t *outlen)
{
    uint8_t ad[2 * GM_PK_LEN + 13], nonce[12] = {0};
    unsigned long long clen;
    out[0] = 3;
    put32(out + 1, s->node_idx);
    put64(out + 5, ctr);
    memcpy(ad, peer.pk, GM_PK_LEN);
    memcpy(ad + GM_PK_LEN, node->key.pk, GM_PK_LEN);
    memcpy(ad + 2 * GM_PK_LEN, out, 13);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(ctr >> (8 * i));
    crypto_aead_chacha20poly1305_ietf_encrypt(out + 13, &clen, pt, ptlen, ad, sizeof ad, NULL, nonce, s->tx);
    *outlen = 13 + (size_t)clen;
}

static void send_sealed(hsession *s, uint64_t ctr, const uint8_t *pt, size_t ptlen);

/* A fresh IK session, the peer as initiator. The node's answer goes nowhere (no route), so
 * the harness replays the node's half with the same RNG state to learn the keys. */
static void e2e_handshake(void)
{
    gm_noise_handshake_t *hi = NULL, *hr = NULL;
    gm_noise_cipher tx = {0}, rx = {0};
    gm_error err = {0};
    uint8_t ts[8], m2[128], pl[16];
    size_t l1, l2, pll;
    uint32_t my_idx = rng_random() | 1;
    if (gm_noise_handshake_new(&hi, GM_NOISE_IK, 1, e2e_prologue, sizeof e2e_prologue, peer_xsk, node->x_pk, &err))
        FAIL(err.msg);
    put64(ts, ++hs_ts);
    last_init[0] = 1;
    put32(last_init + 1, my_idx);
    if (gm_noise_write_message(hi, ts, sizeof ts, last_init + 5, sizeof last_init - 5, &l1, &err))
        FAIL(err.msg);
    last_init_len = l1 + 5;
    uint64_t ok_before = node->m.e2e_handshakes_ok, saved = rng_state;
    node_e2e_on_payload(node, peer.pk, last_init, last_init_len);
    if (node->m.e2e_handshakes_ok != ok_before + 1)
        FAIL("the node refused a valid HS_INIT");
    rng_state = saved;
    if (gm_noise_handshake_new(&hr, GM_NOISE_IK, 0, e2e_prologue, sizeof e2e_prologue, node->x_sk, NULL, &err) ||
        gm_noise_read_message(hr, last_init + 5, l1, pl, sizeof pl, &pll, &err))
        FAIL(err.msg);
    uint32_t idx;
    do /* as new_index() in lib/node_e2e.c */
        idx = rng_random();
    while (idx == 0 || (cur.valid && idx == cur.node_idx) || (prev.valid && idx == prev.node_idx));
    m2[0] = 2;
    put32(m2 + 1, idx);
    put32(m2 + 5, my_idx);
    if (gm_noise_write_message(hr, NULL, 0, m2 + 9, sizeof m2 - 9, &l2, &err) ||
        gm_noise_read_message(hi, m2 + 9, l2, pl, sizeof pl, &pll, &err) || gm_noise_split(hi, &tx, &rx, &err))
        FAIL(err.msg);
    gm_noise_handshake_free(hi);
    gm_noise_handshake_free(hr);
    prev = cur;
    memset(&cur, 0, sizeof cur);
    cur.valid = 1;
    cur.node_idx = idx;
    memcpy(cur.tx, tx.k, 32);
    gm_noise_cipher_wipe(&tx);
    gm_noise_cipher_wipe(&rx);
    /* prove the harness mirrors the node: a first message must be delivered */
    static const uint8_t probe[] = {4, 'p', 'i', 'n', 'g', 'h', 'i'};
    uint64_t before = node->m.e2e_received;
    send_sealed(&cur, 0, probe, sizeof probe);
    if (node->m.e2e_received != before + 1)
        FAIL("harness lost sync with the node's e2e session");
}

/* Seal pt for session s with counter ctr, feed it and check the node's verdict. */
static void send_sealed(hsession *s, uint64_t ctr, const uint8_t *pt, size_t ptlen)
{
    node_metrics m0 = node->m;
    node_inbox_msg *tail0 = node->api.inbox_tail;
    seal(s, ctr, pt, ptlen, last_msg, &last_msg_len);
    last_msg_idx = s->node_idx;
    node_e2e_on_payload(node, peer.pk, last_msg, last_msg_len);
    if (!model_fresh(&s->rm, ctr)) {
        if (node->m.e2e_drop_replay != m0.e2e_drop_replay + 1 || node->m.e2e_received != m0.e2e_received)
            FAIL("a replayed or too old counter was not dropped as a replay");
        return;
    }
    model_mark(&s->rm, ctr);
    size_t plen = ptlen ? pt[0] : 0;
    if (ptlen < 1 || plen > NODE_MAX_PORT_LEN || 1 + plen > ptlen) {
        if (node->m.e2e_drop_auth != m0.e2e_drop_auth + 1 || node->m.e2e_received != m0.e2e_received)
            FAIL("a malformed port was not dropped");
        return;
    }
    node_inbox_msg *t = node->api.inbox_tail;
    char port[NODE_MAX_PORT_LEN + 1];
    memcpy(port, pt + 1, plen);
    port[plen] = '\0';
    if (strlen(port) != plen || !node_port_valid(port, 0)) {
        if (node->m.e2e_drop_auth != m0.e2e_drop_auth + 1 || node->m.e2e_received != m0.e2e_received)
            FAIL("a message with a bad port name was delivered");
        return;
    }
    if (node->m.e2e_received != m0.e2e_received + 1 || !t || t == tail0 || memcmp(t->from, peer.pk, GM_PK_LEN) ||
        strcmp(t->port, port) || t->len != ptlen - 1 - plen || (t->len && memcmp(t->data, pt + 1 + plen, t->len)))
        FAIL("an authentic fresh message was not delivered as sent");
}

/* E2E ops, one byte each then arguments:
 *   0 raw:    len u16, bytes                 fed as is (must never deliver or handshake)
 *   1 sealed: sel, ctr[9], len u16, bytes    sealed on cur (sel even) or prev session
 *   2 handshake                               fresh session (at most 2 per input)
 *   3 replay the last HS_INIT                 must be dropped as a replay
 *   4 replay the last sealed message          must be dropped */
static void fuzz_e2e(const uint8_t *p, size_t len)
{
    int handshakes = 0;
    if (!cur.valid || cur.rm.top > (UINT64_C(1) << 62))
        e2e_handshake();
    for (size_t off = 0; off < len;) {
        uint8_t op = p[off++] % 5;
        node_metrics m0 = node->m;
        if (op == 0 || op == 1) {
            size_t hdr = op == 1 ? 10 : 0;
            if (off + hdr + 2 > len)
                break;
            const uint8_t *args = p + off;
            size_t n = (size_t)args[hdr] << 8 | args[hdr + 1];
            off += hdr + 2;
            if (n > len - off)
                n = len - off;
            if (op == 0) {
                static uint8_t raw[65536]; /* the node decrypts in place */
                memcpy(raw, p + off, n);
                node_e2e_on_payload(node, peer.pk, raw, n);
                if (node->m.e2e_received != m0.e2e_received || node->m.e2e_handshakes_ok != m0.e2e_handshakes_ok)
                    FAIL("raw bytes were delivered or opened a session");
            } else {
                hsession *s = (args[0] & 1) && prev.valid ? &prev : &cur;
                if (n > node_e2e_max_data() + 1 + NODE_MAX_PORT_LEN)
                    n = node_e2e_max_data() + 1 + NODE_MAX_PORT_LEN;
                send_sealed(s, pick_counter(&s->rm, args + 1), p + off, n);
            }
            off += n;
        } else if (op == 2) {
            if (handshakes++ < 2)
                e2e_handshake();
        } else if (op == 3 && last_init_len) {
            node_e2e_on_payload(node, peer.pk, last_init, last_init_len);
            if (node->m.e2e_drop_replay != m0.e2e_drop_replay + 1 || node->m.e2e_handshakes_ok != m0.e2e_handshakes_ok)
                FAIL("a replayed HS_INIT was not dropped");
        } else if (op == 4 && last_msg_len && ((cur.valid && last_msg_idx == cur.node_idx) ||
                                               (prev.valid && last_msg_idx == prev.node_idx))) {
            node_e2e_on_payload(node, peer.pk, last_msg, last_msg_len);
            if (node->m.e2e_drop_replay != m0.e2e_drop_replay + 1 || node->m.e2e_received != m0.e2e_received)
                FAIL("a replayed message was not dropped as a replay");
        }
    }
    node_inbox_free(node);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    if (size < 1)
        return 0;
    const uint8_t *p = data + 1;
    size_t len = size - 1 > PAYLOAD_MAX ? PAYLOAD_MAX : size - 1;
    switch (data[0] % 6) {
    case 0: fuzz_conn_read(p, len); break;
    case 1: fuzz_agent_read(p, len); break;
    case 2: fuzz_api(p, len); break;
    case 3: fuzz_e2e(p, len); break;
    case 4: fuzz_replay(p, len); break;
    default: fuzz_trust(p, len); break;
    }
    return 0;
}
