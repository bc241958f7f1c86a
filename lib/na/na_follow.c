/* Replicas: several NA processes on one PostgreSQL database (docs/operator-guide.md, "Running
 * the NA on PostgreSQL"). Each replica keeps the CRL it serves in memory (na_crl_cache_set);
 * this thread waits for CRLs the other replicas publish (gm_store_crl_wait: LISTEN/NOTIFY)
 * and installs the newest in this replica's cache, so GET /crl here, and what wakes on a new
 * cached CRL, follow a revocation made through another replica. A missed notification (the
 * database was away) is made up for by re-reading the latest CRL whenever the watch
 * reconnects. Not started on a store without notifications across processes (SQLite, where
 * one process owns the file and caches its own CRLs as it publishes them). */
#include <stdlib.h>
#include <time.h>

#include "na_internal.h"

/* How long one wait lasts: the bound on noticing a stop request. */
#define FOLLOW_WAIT_MS 1000

/* Install the store's latest CRL if it is newer than the cached one. */
static void follow_refresh(gm_na_t *na)
{
    uint64_t seq = 0;
    char *doc = NULL;
    gm_error e = {0};
    if (gm_store_crl_latest(na->store, &seq, &doc, &e) == 0)
        na_crl_cache_set(na, seq, doc); /* takes doc */
    else
        free(doc);
}

static void *follow_main(void *arg)
{
    gm_na_t *na = arg;
    int failing = 0;
    while (!atomic_load(&na->follow_stop)) {
        gm_error e = {0};
        int rc = gm_store_crl_wait(na->store, FOLLOW_WAIT_MS, &e);
        if (rc == GM_ETIMEOUT)
            continue;
        if (rc != 0) {
            if (!failing)
                na_log(na, "watching for other replicas' CRLs failed (retrying every second): %s", e.msg);
            failing = 1;
            struct timespec pause = {1, 0};
            nanosleep(&pause, NULL);
            continue;
        }
        if (failing)
            na_log(na, "watching for other replicas' CRLs again");
        failing = 0;
        follow_refresh(na);
    }
    return NULL;
}

int na_follow_start(gm_na_t *na, gm_error *err)
{
    gm_error probe = {0};
    /* a backend without notifications says so at once (and GM_EINVAL means nothing to follow) */
    if (na->follow_running || gm_store_crl_wait(na->store, 0, &probe) == GM_EINVAL)
        return 0;
    atomic_store(&na->follow_stop, 0);
    if (pthread_create(&na->follow_thread, NULL, follow_main, na) != 0)
        return gm_error_set(err, GM_EINTERNAL, "cannot start the thread that follows other replicas' CRLs");
    na->follow_running = 1;
    return 0;
}

void na_follow_stop(gm_na_t *na)
{
    if (!na->follow_running)
        return;
    atomic_store(&na->follow_stop, 1);
    pthread_join(na->follow_thread, NULL);
    na->follow_running = 0;
}
