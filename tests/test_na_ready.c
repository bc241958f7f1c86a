/* GET /ready against the real service: the NA runs in this process over a real SQLite store
 * in a temp directory made by `genesis-mesh init`. Ready (200) while the database answers and
 * the NA key is inside its window; 503 with reason "database" when the database does not
 * answer its query (its table renamed away by another connection), 503 with reason "na_key"
 * once the key's window has ended (the window in the NA's memory moved to the past, since a
 * real one cannot end within a test); /health answers 200 "ok" all along (alive, not ready).
 *
 * The binary (for init only): $GM_BIN, else $GM_BUILD/genesis-mesh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "gm/http_client.h"
#include "gm/na.h"
#include "gm/util.h"
#include "na_internal.h"

static char g_tmp[256], g_net[300], g_url[64];
static gm_na_t *g_na;

static void init_network(void)
{
    const char *bin = getenv("GM_BIN"), *build = getenv("GM_BUILD");
    char path[4096];
    if (!bin && build) {
        snprintf(path, sizeof path, "%s/genesis-mesh", build);
        bin = path;
    }
    if (!bin || access(bin, X_OK) != 0)
        fail_msg("genesis-mesh binary not found (set GM_BIN)");
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (!freopen("/dev/null", "w", stdout))
            _exit(126);
        execl(bin, bin, "init", "--dir", g_net, "--network", "NAREADY", (char *)NULL);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static int group_setup(void **state)
{
    (void)state;
    gm_error err = {0};
    gm_na_config cfg;
    char p[400];
    assert_int_equal(gm_init(&err), 0);
    snprintf(g_tmp, sizeof g_tmp, "%s/gm-na-ready.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(g_tmp));
    snprintf(g_net, sizeof g_net, "%s/net", g_tmp);
    init_network();
    if (gm_na_config_load(&cfg, g_net, &err) != 0)
        fail_msg("config: %s", err.msg);
    if (gm_na_new(&g_na, &cfg, NULL, NULL, &err) != 0 || gm_na_start(g_na, "127.0.0.1:0", &err) != 0)
        fail_msg("NA: %s", err.msg);
    snprintf(g_url, sizeof g_url, "https://127.0.0.1:%u", (unsigned)gm_na_port(g_na));
    snprintf(p, sizeof p, "%s/tls.crt", g_net);
    assert_int_equal(gm_http_trust_set(g_url, p, NULL, &err), 0);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    gm_na_free(g_na);
    if (!getenv("GM_KEEP_TMP")) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", g_tmp);
    }
    return 0;
}

/* GET path; returns the status, *out the JSON body (caller frees). */
static int get(const char *path, json_t **out)
{
    char url[128];
    gm_error err = {0};
    int status = 0;
    snprintf(url, sizeof url, "%s%s", g_url, path);
    if (gm_http_get_json(url, NULL, 0, 0, &status, out, &err) != 0)
        fail_msg("GET %s: %s", path, err.msg);
    return status;
}

static void sql(const char *stmt)
{
    char p[400];
    sqlite3 *db = NULL;
    snprintf(p, sizeof p, "%s/na.db", g_net);
    assert_int_equal(sqlite3_open(p, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 10000);
    char *msg = NULL;
    if (sqlite3_exec(db, stmt, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", stmt, msg ? msg : "?");
    sqlite3_close(db);
}

static void expect_health_ok(void)
{
    json_t *v = NULL;
    assert_int_equal(get("/health", &v), 200);
    assert_string_equal(json_string_value(json_object_get(v, "status")), "ok");
    json_decref(v);
}

static void test_ready_when_database_and_key_are_fine(void **state)
{
    (void)state;
    json_t *v = NULL;
    assert_int_equal(get("/ready", &v), 200);
    assert_string_equal(json_string_value(json_object_get(v, "status")), "ready");
    assert_non_null(json_string_value(json_object_get(v, "na_key_valid_until")));
    json_decref(v);
    expect_health_ok();
}

static void test_not_ready_when_database_does_not_answer(void **state)
{
    (void)state;
    json_t *v = NULL;
    sql("ALTER TABLE schema_version RENAME TO schema_version_hidden");
    assert_int_equal(get("/ready", &v), 503);
    assert_string_equal(json_string_value(json_object_get(v, "status")), "not_ready");
    assert_string_equal(json_string_value(json_object_get(v, "reason")), "database");
    assert_non_null(strstr(json_string_value(json_object_get(v, "message")), "schema_version"));
    json_decref(v);
    expect_health_ok();
    sql("ALTER TABLE schema_version_hidden RENAME TO schema_version");
    assert_int_equal(get("/ready", &v), 200);
    json_decref(v);
}

static void test_not_ready_when_na_key_expired(void **state)
{
    (void)state;
    json_t *v = NULL;
    /* No request is in flight: the handler reads the window on the next one. */
    gm_time saved = g_na->genesis.na_valid_to;
    g_na->genesis.na_valid_to = gm_time_add(gm_time_now(), -3600);
    int status = get("/ready", &v);
    g_na->genesis.na_valid_to = saved;
    assert_int_equal(status, 503);
    assert_string_equal(json_string_value(json_object_get(v, "reason")), "na_key");
    assert_non_null(strstr(json_string_value(json_object_get(v, "message")), "expired"));
    json_decref(v);
    expect_health_ok();
    assert_int_equal(get("/ready", &v), 200);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ready_when_database_and_key_are_fine),
        cmocka_unit_test(test_not_ready_when_database_does_not_answer),
        cmocka_unit_test(test_not_ready_when_na_key_expired),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
