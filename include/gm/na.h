/* The Network Authority service: enrolls nodes (invite -> join certificate), renews and
 * revokes certificates, publishes the signed CRL and the genesis block, over HTTP/JSON
 * (libmicrohttpd) with durable state in SQLite (lib/na/store.h). Endpoints: docs/na-api.md. */
#ifndef GM_NA_H
#define GM_NA_H

#include <stddef.h>
#include <stdint.h>

#include "gm/error.h"
#include "gm/keys.h"

#define GM_NA_MAX_OPERATORS 16
#define GM_NA_DEFAULT_PORT 8700
#define GM_NA_DEFAULT_MAX_BODY 65536
#define GM_NA_DEFAULT_CRL_NEXT_UPDATE_HOURS 168
/* Event-driven server: a held connection costs a socket and a little memory, not a thread. */
#define GM_NA_DEFAULT_MAX_CONNECTIONS 4096
/* The CRL is re-signed this often even without revocations (0 = only on revocation), with
 * next_update this many intervals ahead. */
#define GM_NA_DEFAULT_CRL_RESIGN_INTERVAL_S 3600
/* Renewal: how long the certificate a node renewed stays accepted before the CRL lists it as
 * superseded (the overlap in which peers learn the new one). */
#define GM_NA_DEFAULT_SUPERSEDE_GRACE_S 600
#define GM_NA_DEFAULT_CRL_NEXT_UPDATE_MULTIPLE 3
#define GM_NA_DEFAULT_MAX_CONNECTIONS_PER_IP 64
#define GM_NA_DEFAULT_CONNECTION_TIMEOUT_S 10
#define GM_NA_DEFAULT_REQUEST_TIMEOUT_S 30
#define GM_NA_DEFAULT_THREADS 8
#define GM_NA_DEFAULT_RATE_PER_IP_PER_S 200
#define GM_NA_DEFAULT_RATE_BURST 2000
#define GM_NA_DEFAULT_AUTH_FAILURES_PER_IP_PER_S 1
#define GM_NA_DEFAULT_AUTH_FAILURES_BURST 20
/* Discovery reads are cheap but take the store lock: well above what one client needs
 * (bench/bench_agents.sh: ~2800 GET /agents per second from one address). */
#define GM_NA_DEFAULT_READS_PER_IP_PER_S 5000
#define GM_NA_DEFAULT_READS_BURST 10000
#define GM_NA_DEFAULT_RATE_TRACKED_IPS 16384

typedef struct gm_na_operator {
    char key_id[GM_KEY_ID_MAX];
    uint8_t pk[GM_PK_LEN];
} gm_na_operator;

/* config.json "rate_limit": per-source-address token buckets (IPv6 counted per /64). */
typedef struct gm_na_rate_limit {
    unsigned per_ip_per_s;               /* POST /join, /renew, /agents, DELETE /agents/...; 0 = off */
    unsigned burst;
    unsigned auth_failures_per_ip_per_s; /* failed admin authentications; 0 = off */
    unsigned auth_failures_burst;
    unsigned reads_per_ip_per_s;         /* GET /agents (discovery); 0 = off */
    unsigned reads_burst;
    unsigned tracked_ips;                /* addresses remembered; the least recently seen is forgotten */
} gm_na_rate_limit;

/* What config.json holds (written by `genesis-mesh init`). Paths are absolute or relative
 * to dir. */
typedef struct gm_na_config {
    char dir[4096];
    char network_name[256];
    char na_url[512];
    char listen[300];        /* "HOST:PORT" ("[v6]:PORT"); port 0 = any free port */
    char db_path[4096];      /* "na.db" */
    char genesis_path[4096]; /* "genesis.json" */
    char na_key_base[4096];  /* "na" -> na.key */
    size_t max_body_bytes;
    int64_t crl_next_update_hours;   /* next_update distance when crl_resign_interval_s is 0 */
    int64_t crl_resign_interval_s;   /* re-sign the CRL this often (0 = never on schedule) */
    int64_t crl_next_update_multiple;/* with re-signing: next_update = interval x this */
    int64_t supersede_grace_s;       /* renewal: the previous certificate is listed as superseded after this */
    unsigned max_connections;
    unsigned max_connections_per_ip; /* 0 = no per-address limit */
    unsigned connection_timeout_s;   /* idle connections are closed after this */
    unsigned request_timeout_s;      /* whole request (headers and body) must arrive within this */
    unsigned threads;                /* server threads, each polling its share of the connections */
    gm_na_rate_limit rate_limit;
    char tls_cert[4096];     /* PEM certificate (chain) served over HTTPS; "" = none */
    char tls_key[4096];      /* its PEM private key */
    int plain_http;          /* "plain_http": true: serving without TLS is intended */
    /* Largest CRL the NA publishes: GM_CRL_MAX_BYTES, what every node accepts. config.json
     * "crl_max_bytes" may only lower it, and exists for tests (a full CRL without 8 MiB). */
    size_t crl_max_bytes;
    size_t n_operators;
    gm_na_operator operators[GM_NA_MAX_OPERATORS];
} gm_na_config;

/* Read dir/config.json strictly (unknown members refused). */
int gm_na_config_load(gm_na_config *c, const char *dir, gm_error *err) GM_MUST_CHECK;
/* dir + name unless name is absolute. */
int gm_na_config_path(const gm_na_config *c, const char *name, char *out, size_t cap, gm_error *err) GM_MUST_CHECK;

typedef struct gm_na gm_na_t;

/* One line of the access/event log (no newline). The library never prints: with log NULL
 * the lines go to the process log (gm/log.h, component "na"); a function takes them instead. */
typedef void (*gm_na_log_fn)(void *ctx, const char *line);

/* Load keys and genesis, and refuse to run when the genesis does not verify, the NA key is
 * not the one the genesis names, or the NA key is outside its validity window. Opens the
 * store and issues CRL sequence 0 on first start. Does not listen yet. */
int gm_na_new(gm_na_t **na, const gm_na_config *cfg, gm_na_log_fn log, void *log_ctx, gm_error *err) GM_MUST_CHECK;
/* Listen on cfg->listen (or listen_override when not NULL) and serve in background threads:
 * HTTPS with cfg->tls_cert and cfg->tls_key when both are set, plain HTTP otherwise (the
 * program decides whether plain HTTP is allowed: see cfg->plain_http). */
int gm_na_start(gm_na_t *na, const char *listen_override, gm_error *err) GM_MUST_CHECK;
/* 1 when serving HTTPS. */
int gm_na_tls(const gm_na_t *na);
/* The port actually bound (useful with port 0). */
uint16_t gm_na_port(const gm_na_t *na);
/* Stop serving (waits for requests in flight) and release everything. NULL is fine. */
void gm_na_free(gm_na_t *na);
/* The console's bearer token (docs/na-api.md "Console"): dir/console.token, 64 lowercase hex
 * characters (32 random bytes), mode 0600. With create, a missing file is made first (O_EXCL,
 * so two creators never disagree); gm_na_new does that. A file others may read, or of another
 * shape, is refused with the fix in the message. */
#define GM_NA_CONSOLE_TOKEN_LEN 64
int gm_na_console_token(const char *dir, int create, char token[GM_NA_CONSOLE_TOKEN_LEN + 1], gm_error *err);
/* `na check-config`: everything gm_na_new and gm_na_start would refuse, found without opening
 * the database or a socket: the genesis block verifies and names this network, the NA key is
 * the genesis NA key and inside its window, secret files (keys) are 0600 and the directory
 * 0700, the TLS certificate parses, is valid now and matches its key (unless plain_http),
 * listen parses. On success *summary (malloc'd) says what was checked. */
int gm_na_config_check(const gm_na_config *cfg, char **summary, gm_error *err);
/* Re-read config.json (SIGHUP) and apply what is safe to change while serving: the rate
 * limits (rates and bursts; not tracked_ips). Other members that changed are named in the
 * log as waiting for a restart. A config.json that does not load changes nothing (err). */
int gm_na_reload(gm_na_t *na, gm_error *err);

#endif
