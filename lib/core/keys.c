/* Ed25519 keys and key files (formats.md "Keys"). */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "gm/keys.h"
#include "gm/util.h"
#include "core_internal.h"

#define KEY_FILE_MAX 4096

static void set_id(gm_signer *k, const char *key_id)
{
    snprintf(k->key_id, sizeof k->key_id, "%s", key_id ? key_id : "");
    gm_pk_encode(k->pk, k->pk_b64);
}

int gm_signer_generate(gm_signer *k, const char *key_id, gm_error *err)
{
    uint8_t seed[GM_SEED_LEN];
    randombytes_buf(seed, sizeof seed);
    int rc = gm_signer_from_seed(k, seed, key_id, err);
    sodium_memzero(seed, sizeof seed);
    return rc;
}

int gm_signer_from_seed(gm_signer *k, const uint8_t seed[GM_SEED_LEN], const char *key_id, gm_error *err)
{
    if (gm_init(err) != 0)
        return GM_ECRYPTO;
    if (crypto_sign_seed_keypair(k->pk, k->sk, seed) != 0)
        return gm_error_set(err, GM_ECRYPTO, "cannot derive an Ed25519 key pair from the seed");
    set_id(k, key_id);
    return 0;
}

void gm_signer_wipe(gm_signer *k)
{
    if (k)
        sodium_memzero(k, sizeof *k);
}

int gm_signer_save(const gm_signer *k, const char *base, int force, gm_error *err)
{
    char path_key[4096], path_pub[4096], body[512];
    if (snprintf(path_key, sizeof path_key, "%s.key", base) >= (int)sizeof path_key ||
        snprintf(path_pub, sizeof path_pub, "%s.pub", base) >= (int)sizeof path_pub)
        return gm_error_set(err, GM_EINVAL, "key path too long: %s", base);
    if (!force && (gm_file_exists(path_key) || gm_file_exists(path_pub)))
        return gm_error_set(err, GM_EEXIST, "%s already exists; refusing to overwrite a key (use --force)",
                            path_key);
    char seed_b64[GM_PK_B64_LEN + 1];
    gm_b64_encode(k->sk, GM_SEED_LEN, seed_b64, sizeof seed_b64);
    int n = snprintf(body, sizeof body, "# Ed25519 Private Key\n# Key ID: %s\n%s\n", k->key_id, seed_b64);
    int rc = gm_file_write_atomic(path_key, body, (size_t)n, 0600, err);
    sodium_memzero(body, sizeof body);
    sodium_memzero(seed_b64, sizeof seed_b64);
    if (rc != 0)
        return rc;
    n = snprintf(body, sizeof body, "# Ed25519 Public Key\n# Key ID: %s\n%s\n", k->key_id, k->pk_b64);
    return gm_file_write_atomic(path_pub, body, (size_t)n, 0644, err);
}

/* The one base64 line of a key file (comments and blanks skipped); key id from "# Key ID:". */
static int parse_key_file(char *text, const char *path, char *b64, size_t b64cap, char *key_id, size_t idcap,
                          gm_error *err)
{
    int found = 0;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        while (*line == ' ' || *line == '\t' || *line == '\r')
            line++;
        size_t n = strlen(line);
        while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
            line[--n] = '\0';
        if (n == 0)
            continue;
        if (line[0] == '#') {
            const char *tag = "# Key ID:";
            if (key_id && !strncmp(line, tag, strlen(tag))) {
                const char *v = line + strlen(tag);
                while (*v == ' ')
                    v++;
                snprintf(key_id, idcap, "%s", v);
            }
            continue;
        }
        if (found)
            return gm_error_set(err, GM_EFORMAT, "%s: more than one key line", path);
        if (n >= b64cap)
            return gm_error_set(err, GM_EFORMAT, "%s: key line too long", path);
        memcpy(b64, line, n + 1);
        found = 1;
    }
    if (!found)
        return gm_error_set(err, GM_EFORMAT, "%s: no key found (only comments or empty)", path);
    return 0;
}

int gm_signer_load(gm_signer *k, const char *base, const char *default_key_id, gm_error *err)
{
    char path[4096], *text = NULL, b64[128], key_id[GM_KEY_ID_MAX] = "";
    uint8_t seed[GM_SEED_LEN];
    size_t len;
    snprintf(path, sizeof path, "%s.key", base);
    int rc = gm_file_read(path, KEY_FILE_MAX, &text, &len, err);
    if (rc != 0)
        return rc;
    rc = parse_key_file(text, path, b64, sizeof b64, key_id, sizeof key_id, err);
    sodium_memzero(text, len);
    free(text);
    if (rc == 0 && (rc = gm_b64_decode_exact(b64, seed, GM_SEED_LEN, err)) != 0)
        gm_error_prefix(err, "%s", path);
    if (rc == 0)
        rc = gm_signer_from_seed(k, seed, key_id[0] ? key_id : default_key_id, err);
    sodium_memzero(seed, sizeof seed);
    sodium_memzero(b64, sizeof b64);
    return rc;
}

int gm_pk_decode(const char *b64, uint8_t pk[GM_PK_LEN], gm_error *err)
{
    if (!b64)
        return gm_error_set(err, GM_EFORMAT, "missing public key");
    return gm_b64_decode_exact(b64, pk, GM_PK_LEN, err);
}

void gm_pk_encode(const uint8_t pk[GM_PK_LEN], char out[GM_PK_B64_LEN + 1])
{
    gm_b64_encode(pk, GM_PK_LEN, out, GM_PK_B64_LEN + 1);
}

static int parse_pk_text(char *text, const char *path, uint8_t pk[GM_PK_LEN], gm_error *err)
{
    char b64[128];
    int rc = parse_key_file(text, path, b64, sizeof b64, NULL, 0, err);
    if (rc == 0 && (rc = gm_pk_decode(b64, pk, err)) != 0)
        gm_error_prefix(err, "%s", path);
    return rc;
}

int gm_pk_load(const char *path, uint8_t pk[GM_PK_LEN], gm_error *err)
{
    char *text = NULL;
    size_t len;
    int rc = gm_file_read(path, KEY_FILE_MAX, &text, &len, err);
    if (rc != 0)
        return rc;
    rc = parse_pk_text(text, path, pk, err);
    free(text);
    return rc;
}

int gm_pk_parse_text(const char *text, uint8_t pk[GM_PK_LEN], gm_error *err)
{
    size_t len = text ? strlen(text) : 0;
    if (!text)
        return gm_error_set(err, GM_EINVAL, "no public key text");
    if (len > KEY_FILE_MAX)
        return gm_error_set(err, GM_ETOOBIG, "public key text is larger than %d bytes", KEY_FILE_MAX);
    char *copy = strdup(text); /* parse_key_file cuts lines in place */
    if (!copy)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    int rc = parse_pk_text(copy, "public key", pk, err);
    free(copy);
    return rc;
}

void gm_sign_b64(const gm_signer *k, const uint8_t *msg, size_t len, char out[GM_SIG_B64_LEN + 1])
{
    uint8_t sig[GM_SIG_LEN];
    crypto_sign_detached(sig, NULL, msg, len, k->sk);
    gm_b64_encode(sig, sizeof sig, out, GM_SIG_B64_LEN + 1);
}

/* Signatures that verified lately, by a BLAKE2b-256 of (key, signature, message): verifying is
 * a pure function of those bytes, so a repeat (the same certificate in every answer of a
 * provider, the certificates a planner passes on) costs a hash instead of an Ed25519 check.
 * Only successes are kept; a fixed table, the slot chosen by the hash. */
#define VERIFIED_SLOTS 256
static pthread_mutex_t g_verified_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t g_verified[VERIFIED_SLOTS][crypto_generichash_BYTES];
/* The hash is keyed with a secret of this process, so nobody can search offline for a
 * (key, signature, message) that collides with one seen here. */
static uint8_t g_verified_secret[crypto_generichash_KEYBYTES];
static pthread_once_t g_verified_once = PTHREAD_ONCE_INIT;

static void verified_init(void)
{
    randombytes_buf(g_verified_secret, sizeof g_verified_secret);
}

static void verified_key(const uint8_t pk[GM_PK_LEN], const uint8_t sig[GM_SIG_LEN], const uint8_t *msg, size_t len,
                         uint8_t out[crypto_generichash_BYTES])
{
    crypto_generichash_state st;
    pthread_once(&g_verified_once, verified_init);
    crypto_generichash_init(&st, g_verified_secret, sizeof g_verified_secret, crypto_generichash_BYTES);
    crypto_generichash_update(&st, pk, GM_PK_LEN);
    crypto_generichash_update(&st, sig, GM_SIG_LEN);
    crypto_generichash_update(&st, msg, len);
    crypto_generichash_final(&st, out, crypto_generichash_BYTES);
}

int gm_verify_b64(const uint8_t pk[GM_PK_LEN], const uint8_t *msg, size_t len, const char *sig_b64, gm_error *err)
{
    uint8_t sig[GM_SIG_LEN], key[crypto_generichash_BYTES];
    if (!sig_b64 || gm_b64_decode_exact(sig_b64, sig, sizeof sig, err) != 0)
        return gm_error_set(err, GM_EFORMAT, "signature is not 64 bytes of standard base64");
    verified_key(pk, sig, msg, len, key);
    size_t slot = ((size_t)key[0] | (size_t)key[1] << 8) % VERIFIED_SLOTS;
    pthread_mutex_lock(&g_verified_lock);
    int seen = sodium_memcmp(g_verified[slot], key, sizeof key) == 0;
    pthread_mutex_unlock(&g_verified_lock);
    if (seen)
        return 0;
    if (crypto_sign_verify_detached(sig, msg, len, pk) != 0)
        return gm_error_set(err, GM_ESIG, "signature does not verify");
    pthread_mutex_lock(&g_verified_lock);
    memcpy(g_verified[slot], key, sizeof key);
    pthread_mutex_unlock(&g_verified_lock);
    return 0;
}

/* ---- independent checks on both cores ----
 * A batch is split between its caller and one helper thread of this process (started the first
 * time a batch is worth splitting): each takes the next unchecked item until none is left, so
 * a helper that wakes late takes fewer. One batch at a time uses the helper; a caller that
 * finds it busy, a small batch, a one-core machine or a child after fork() checks alone. */
#define VERIFY_SPLIT_MIN 4 /* below this, waking the helper costs about what it saves */

typedef struct verify_batch {
    gm_verify_item *v;
    size_t n;
    atomic_size_t next;
} verify_batch;

static pthread_mutex_t g_vh_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_vh_go = PTHREAD_COND_INITIALIZER, g_vh_done = PTHREAD_COND_INITIALIZER;
static verify_batch *g_vh_posted;   /* offered to the helper, not taken yet */
static verify_batch *g_vh_attached; /* the batch the helper works on */
static atomic_int g_vh_pid;         /* the process the helper runs in; 0: none */
static int g_vh_cores = -1;

static void batch_run(verify_batch *b)
{
    for (size_t i; (i = atomic_fetch_add(&b->next, 1)) < b->n;) {
        gm_verify_item *it = &b->v[i];
        it->rc = gm_verify_b64(it->pk, it->msg, it->len, it->sig_b64, NULL);
    }
}

static void *verify_helper(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&g_vh_mu);
    for (;;) {
        while (!g_vh_posted)
            pthread_cond_wait(&g_vh_go, &g_vh_mu);
        verify_batch *b = g_vh_attached = g_vh_posted;
        g_vh_posted = NULL;
        pthread_mutex_unlock(&g_vh_mu);
        batch_run(b);
        pthread_mutex_lock(&g_vh_mu);
        g_vh_attached = NULL;
        pthread_cond_broadcast(&g_vh_done);
    }
    return NULL;
}

/* With g_vh_mu held: 1 when the helper runs in this process (started now if need be). */
static int helper_ready(void)
{
    if (g_vh_cores < 0) { /* the cores this process may run on (taskset), not those the machine has */
        cpu_set_t set;
        long c = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : sysconf(_SC_NPROCESSORS_ONLN);
        g_vh_cores = c > 0 ? (int)c : 1;
    }
    if (g_vh_cores < 2)
        return 0;
    if (atomic_load(&g_vh_pid) == (int)getpid())
        return 1;
    if (atomic_load(&g_vh_pid) != 0) /* a child after fork(): the helper stayed in the parent */
        return 0;
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int ok = pthread_create(&th, &at, verify_helper, NULL) == 0;
    pthread_attr_destroy(&at);
    if (ok)
        atomic_store(&g_vh_pid, (int)getpid());
    return ok;
}

void gm_verify_b64_many(gm_verify_item *v, size_t n)
{
    verify_batch b = {.v = v, .n = n};
    atomic_init(&b.next, 0);
    int shared = 0, pid = atomic_load(&g_vh_pid);
    /* (a child after fork() must not even take the lock: the parent's helper may have held it) */
    if (n >= VERIFY_SPLIT_MIN && (pid == 0 || pid == (int)getpid())) {
        pthread_mutex_lock(&g_vh_mu);
        if (!g_vh_posted && !g_vh_attached && helper_ready()) {
            g_vh_posted = &b;
            pthread_cond_signal(&g_vh_go);
            shared = 1;
        }
        pthread_mutex_unlock(&g_vh_mu);
    }
    batch_run(&b);
    if (!shared)
        return;
    /* b lives on our stack: the helper must be done with it (or never take it). */
    pthread_mutex_lock(&g_vh_mu);
    if (g_vh_posted == &b)
        g_vh_posted = NULL;
    while (g_vh_attached == &b)
        pthread_cond_wait(&g_vh_done, &g_vh_mu);
    pthread_mutex_unlock(&g_vh_mu);
}
