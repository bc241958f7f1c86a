/* Where a store or NA unit test keeps its state. By default a SQLite file in the test's
 * directory; when GM_TEST_STORE holds a PostgreSQL URL (tests/with_pg.sh starts a server and
 * sets it: the *_pg ctest variants), each store name gets a schema of its own on that server,
 * so the same tests run against lib/na/store_pg.c. Header-only: included by the tests that
 * need it. */
#ifndef GM_STORE_TESTKIT_H
#define GM_STORE_TESTKIT_H

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

/* 1 when the tests run against PostgreSQL. */
static inline int tk_store_pg(void)
{
    const char *u = getenv("GM_TEST_STORE");
    return u && *u;
}

static inline void tk_store_quiet(void *arg, const char *message)
{
    (void)arg, (void)message;
}

/* Run sql on the database at location (a URL from tk_store_location); 0 on success, else
 * the message in msg. */
static inline int tk_store_exec(const char *location, const char *sql, char *msg, size_t cap)
{
    PGconn *c = PQconnectdb(location);
    PQsetNoticeProcessor(c, tk_store_quiet, NULL);
    int ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
    }
    if (!ok && msg)
        snprintf(msg, cap, "%s", PQerrorMessage(c));
    PQfinish(c);
    return ok ? 0 : -1;
}

/* The store location for name: dir/name, or (PostgreSQL) the server's URL with a search_path
 * of a schema made for dir, name and this process, created here. Reopening the same name
 * in the same directory reaches the same schema. Returns 0, or -1 when the schema could not be created. */
static inline int tk_store_location(const char *dir, const char *name, char *out, size_t cap)
{
    if (!tk_store_pg()) {
        snprintf(out, cap, "%s/%s", dir, name);
        return 0;
    }
    const char *url = getenv("GM_TEST_STORE");
    char schema[64], sql[128], msg[512];
    /* the directory tells apart fixtures of one process that use the same name */
    uint32_t h = 2166136261u;
    for (const char *p = dir; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    size_t n = (size_t)snprintf(schema, sizeof schema, "t%ld_%08x_", (long)getpid(), (unsigned)h);
    for (const char *p = name; *p && n + 1 < sizeof schema; p++)
        schema[n++] = isalnum((unsigned char)*p) ? (char)tolower((unsigned char)*p) : '_';
    schema[n] = '\0';
    snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS %s", schema);
    if (tk_store_exec(url, sql, msg, sizeof msg) != 0) {
        fprintf(stderr, "store_testkit: %s: %s\n", sql, msg);
        return -1;
    }
    snprintf(out, cap, "%s%soptions=-csearch_path%%3D%s", url, strchr(url, '?') ? "&" : "?", schema);
    return 0;
}

#endif
