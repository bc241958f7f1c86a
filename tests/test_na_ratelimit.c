/* Tests for the NA's per-address token buckets (lib/na/na_ratelimit.c) and the config.json
 * members that set them: burst then refusal with a Retry-After, refill over time, the three
 * kinds (requests, discovery reads, admin failures) independent, addresses independent, IPv6 counted per /64 and IPv4-mapped as IPv4, a bounded table that forgets the
 * least recently seen address, exact accounting under concurrent threads, and strict config. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gm/na.h"
#include "gm/util.h"
#include "na_internal.h"
#include "core_internal.h"

static struct sockaddr_storage v4(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    in->sin_family = AF_INET;
    assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
    return ss;
}

static struct sockaddr_storage v6(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in6 *in = (struct sockaddr_in6 *)&ss;
    in->sin6_family = AF_INET6;
    assert_int_equal(inet_pton(AF_INET6, ip, &in->sin6_addr), 1);
    return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void init(na_ratelimit *rl, unsigned rate, unsigned burst, unsigned frate, unsigned fburst, unsigned tracked)
{
    gm_na_rate_limit c = {.per_ip_per_s = rate,
                          .burst = burst,
                          .auth_failures_per_ip_per_s = frate,
                          .auth_failures_burst = fburst,
                          .tracked_ips = tracked};
    assert_int_equal(na_ratelimit_init(rl, &c), 0);
}

static void test_burst_then_429_then_refill(void **state)
{
    (void)state;
    na_ratelimit rl;
    init(&rl, 2, 3, 1, 1, 64);
    struct sockaddr_storage a = v4("192.0.2.1");
    int64_t t = 1000000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t), 1); /* Retry-After: 1 */
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t + 100), 1);
    /* 2 per second: one token back after 500 ms, and only one. */
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t + 500), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t + 500), 1);
    /* Long idle: back to the burst, not more. */
    t += 3600 * 1000;
    for (int i = 0; i < 3; i++)
        assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t), 0);
    assert_int_not_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t), 0);
    /* A clock reading from the past never adds tokens. */
    assert_int_not_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t - 10000), 0);
    na_ratelimit_free(&rl);
}

static void test_peek_takes_nothing_and_kinds_are_separate(void **state)
{
    (void)state;
    na_ratelimit rl;
    init(&rl, 1, 1, 1, 2, 64);
    struct sockaddr_storage a = v4("192.0.2.1");
    for (int i = 0; i < 10; i++)
        assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_AUTH_FAILURES, 0, 0), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_AUTH_FAILURES, 1, 0), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_AUTH_FAILURES, 1, 0), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_AUTH_FAILURES, 0, 0), 1);
    /* Failed admin authentications do not use up the request bucket. */
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, 0), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, 0), 1);
    na_ratelimit_free(&rl);
}

static void test_reads_bucket_is_independent_of_the_others(void **state)
{
    (void)state;
    na_ratelimit rl;
    gm_na_rate_limit c = {.per_ip_per_s = 1,
                          .burst = 2,
                          .auth_failures_per_ip_per_s = 1,
                          .auth_failures_burst = 1,
                          .reads_per_ip_per_s = 4,
                          .reads_burst = 5,
                          .tracked_ips = 64};
    assert_int_equal(na_ratelimit_init(&rl, &c), 0);
    struct sockaddr_storage a = v4("192.0.2.1"), b = v4("192.0.2.2");
    int64_t t = 1000000;
    /* Emptying the request and admin-failure buckets leaves the reads bucket full. */
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t), 1);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_AUTH_FAILURES, 1, t), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_AUTH_FAILURES, 0, t), 1);
    for (int i = 0; i < 5; i++)
        assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_READS, 1, t), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_READS, 1, t), 1); /* Retry-After: 1 */
    /* ... and emptying the reads bucket takes nothing from the others (fresh address b). */
    for (int i = 0; i < 5; i++)
        assert_int_equal(na_ratelimit_check(&rl, SA(b), NA_RL_READS, 1, t), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(b), NA_RL_READS, 1, t), 1);
    assert_int_equal(na_ratelimit_check(&rl, SA(b), NA_RL_REQUESTS, 1, t), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(b), NA_RL_REQUESTS, 1, t), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(b), NA_RL_AUTH_FAILURES, 0, t), 0);
    /* Reads refill at their own rate: 4 per second, one token per 250 ms. */
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_READS, 1, t + 250), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_READS, 1, t + 250), 1);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t + 250), 1); /* 1/s: not yet */
    na_ratelimit_free(&rl);

    /* A reads rate of 0 turns only the reads bucket off. */
    c.reads_per_ip_per_s = 0;
    assert_int_equal(na_ratelimit_init(&rl, &c), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_READS, 1, t), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, t), 1);
    na_ratelimit_free(&rl);
}

static void test_addresses_are_independent_ipv6_per_64(void **state)
{
    (void)state;
    na_ratelimit rl;
    init(&rl, 1, 1, 1, 1, 64);
    struct sockaddr_storage a = v4("192.0.2.1"), b = v4("192.0.2.2"), mapped = v6("::ffff:192.0.2.1");
    struct sockaddr_storage h1 = v6("2001:db8:1:2::1"), h2 = v6("2001:db8:1:2:ffff::9"), other = v6("2001:db8:1:3::1");
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, 0), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, 0), 1);
    assert_int_equal(na_ratelimit_check(&rl, SA(mapped), NA_RL_REQUESTS, 1, 0), 1); /* same host */
    assert_int_equal(na_ratelimit_check(&rl, SA(b), NA_RL_REQUESTS, 1, 0), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(h1), NA_RL_REQUESTS, 1, 0), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(h2), NA_RL_REQUESTS, 1, 0), 1); /* same /64 */
    assert_int_equal(na_ratelimit_check(&rl, SA(other), NA_RL_REQUESTS, 1, 0), 0);
    /* No address at all still gets a (shared) bucket rather than a free pass. */
    assert_int_equal(na_ratelimit_check(&rl, NULL, NA_RL_REQUESTS, 1, 0), 0);
    assert_int_equal(na_ratelimit_check(&rl, NULL, NA_RL_REQUESTS, 1, 0), 1);
    na_ratelimit_free(&rl);
}

static void test_table_is_bounded_and_forgets_least_recent(void **state)
{
    (void)state;
    na_ratelimit rl;
    init(&rl, 1, 1, 1, 1, 16);
    struct sockaddr_storage busy = v4("198.51.100.1"), idle = v4("198.51.100.2");
    assert_int_equal(na_ratelimit_check(&rl, SA(idle), NA_RL_REQUESTS, 1, 0), 0);
    assert_int_equal(na_ratelimit_check(&rl, SA(busy), NA_RL_REQUESTS, 1, 0), 0);
    char ip[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(ip, sizeof ip, "203.0.%d.%d", i / 250, i % 250 + 1);
        struct sockaddr_storage x = v4(ip);
        assert_int_equal(na_ratelimit_check(&rl, SA(x), NA_RL_REQUESTS, 1, 0), 0);
        /* busy keeps being seen, so it stays in the table with its empty bucket */
        assert_int_equal(na_ratelimit_check(&rl, SA(busy), NA_RL_REQUESTS, 1, 0), 1);
        assert_true(na_ratelimit_tracked(&rl) <= 16);
    }
    assert_int_equal(na_ratelimit_tracked(&rl), 16);
    /* idle was forgotten: it starts again with a full bucket */
    assert_int_equal(na_ratelimit_check(&rl, SA(idle), NA_RL_REQUESTS, 1, 0), 0);
    na_ratelimit_free(&rl);
}

static void test_zero_rate_is_off(void **state)
{
    (void)state;
    na_ratelimit rl;
    init(&rl, 0, 1, 0, 1, 16);
    struct sockaddr_storage a = v4("192.0.2.1");
    for (int i = 0; i < 100; i++) {
        assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_REQUESTS, 1, 0), 0);
        assert_int_equal(na_ratelimit_check(&rl, SA(a), NA_RL_AUTH_FAILURES, 1, 0), 0);
    }
    assert_int_equal(na_ratelimit_tracked(&rl), 0);
    na_ratelimit_free(&rl);
}

typedef struct race {
    na_ratelimit *rl;
    int granted;
} race;

static void *race_thread(void *arg)
{
    race *r = arg;
    char ip[32];
    for (int i = 0; i < 2000; i++) {
        struct sockaddr_storage hot = v4("192.0.2.7");
        if (na_ratelimit_check(r->rl, SA(hot), NA_RL_REQUESTS, 1, 5000) == 0)
            r->granted++;
        /* churn through other addresses so the LRU list and hash chains change meanwhile */
        snprintf(ip, sizeof ip, "10.%d.%d.1", (int)((uintptr_t)arg & 0xff), i % 200);
        struct sockaddr_storage x = v4(ip);
        na_ratelimit_check(r->rl, SA(x), NA_RL_REQUESTS, 1, 5000);
    }
    return NULL;
}

static void test_threads_never_get_more_than_the_burst(void **state)
{
    (void)state;
    na_ratelimit rl;
    init(&rl, 1, 100, 1, 1, 4096);
    pthread_t t[4];
    race r[4];
    for (int i = 0; i < 4; i++) {
        r[i] = (race){&rl, 0};
        pthread_create(&t[i], NULL, race_thread, &r[i]);
    }
    int total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        total += r[i].granted;
    }
    assert_int_equal(total, 100);
    na_ratelimit_free(&rl);
}

/* ---- config.json ---- */

static char tmpdir[256];

static int load_config(const char *extra, gm_na_config *c, gm_error *err)
{
    char path[512], text[2048];
    snprintf(text, sizeof text,
             "{\"network_name\":\"T\",\"operator_keys\":[{\"key_id\":\"op\",\"public_key\":"
             "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}]%s%s}",
             extra[0] ? "," : "", extra);
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    assert_int_equal(gm_file_write_atomic(path, text, strlen(text), 0600, NULL), 0);
    return gm_na_config_load(c, tmpdir, err);
}

static void test_config_limits_default_and_parse_strictly(void **state)
{
    (void)state;
    gm_na_config c;
    gm_error err = {0};
    assert_int_equal(load_config("", &c, &err), 0);
    assert_int_equal(c.max_connections, GM_NA_DEFAULT_MAX_CONNECTIONS);
    assert_int_equal(c.max_connections_per_ip, GM_NA_DEFAULT_MAX_CONNECTIONS_PER_IP);
    assert_int_equal(c.connection_timeout_s, GM_NA_DEFAULT_CONNECTION_TIMEOUT_S);
    assert_int_equal(c.rate_limit.per_ip_per_s, GM_NA_DEFAULT_RATE_PER_IP_PER_S);
    assert_int_equal(c.rate_limit.burst, GM_NA_DEFAULT_RATE_BURST);
    assert_int_equal(c.rate_limit.auth_failures_per_ip_per_s, GM_NA_DEFAULT_AUTH_FAILURES_PER_IP_PER_S);
    assert_int_equal(c.rate_limit.auth_failures_burst, GM_NA_DEFAULT_AUTH_FAILURES_BURST);
    assert_int_equal(c.rate_limit.reads_per_ip_per_s, GM_NA_DEFAULT_READS_PER_IP_PER_S);
    assert_int_equal(c.rate_limit.reads_burst, GM_NA_DEFAULT_READS_BURST);
    assert_int_equal(c.rate_limit.tracked_ips, GM_NA_DEFAULT_RATE_TRACKED_IPS);
    /* bench/bench_agents.sh measures ~2800 discovery reads/s from one address: not a flood. */
    assert_true(GM_NA_DEFAULT_READS_PER_IP_PER_S >= 2800);

    assert_int_equal(load_config("\"max_connections_per_ip\":8,\"connection_timeout_s\":3,"
                                 "\"rate_limit\":{\"per_ip_per_s\":0,\"burst\":5,\"auth_failures_burst\":2}",
                                 &c, &err),
                     0);
    assert_int_equal(c.max_connections_per_ip, 8);
    assert_int_equal(c.connection_timeout_s, 3);
    assert_int_equal(c.rate_limit.per_ip_per_s, 0);
    assert_int_equal(c.rate_limit.burst, 5);
    assert_int_equal(c.rate_limit.auth_failures_per_ip_per_s, GM_NA_DEFAULT_AUTH_FAILURES_PER_IP_PER_S);
    assert_int_equal(c.rate_limit.auth_failures_burst, 2);
    assert_int_equal(c.rate_limit.reads_per_ip_per_s, GM_NA_DEFAULT_READS_PER_IP_PER_S);

    assert_int_equal(load_config("\"rate_limit\":{\"reads_per_ip_per_s\":7,\"reads_burst\":9}", &c, &err), 0);
    assert_int_equal(c.rate_limit.reads_per_ip_per_s, 7);
    assert_int_equal(c.rate_limit.reads_burst, 9);
    assert_int_equal(c.rate_limit.per_ip_per_s, GM_NA_DEFAULT_RATE_PER_IP_PER_S);
    assert_int_equal(load_config("\"rate_limit\":{\"reads_per_ip_per_s\":0}", &c, &err), 0);
    assert_int_equal(c.rate_limit.reads_per_ip_per_s, 0);
    assert_int_equal(c.rate_limit.reads_burst, GM_NA_DEFAULT_READS_BURST);

    static const char *const bad[] = {
        "\"rate_limit\":{\"per_ip_per_sec\":1}", /* typo */
        "\"rate_limit\":{\"burst\":0}",
        "\"rate_limit\":{\"per_ip_per_s\":-1}",
        "\"rate_limit\":{\"per_ip_per_s\":1.5}",
        "\"rate_limit\":{\"tracked_ips\":1}",
        "\"rate_limit\":{\"reads_burst\":0}",
        "\"rate_limit\":{\"reads_per_ip_per_s\":-1}",
        "\"rate_limit\":{\"reads_per_ip_per_s\":\"5000\"}",
        "\"rate_limit\":{\"reads_per_s\":1}", /* typo */
        "\"rate_limit\":[]",
        "\"connection_timeout_s\":0",
        "\"max_connections_per_ip\":-1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gm_error_clear(&err);
        if (load_config(bad[i], &c, &err) != GM_EFORMAT)
            fail_msg("config member %s was accepted", bad[i]);
        assert_non_null(strstr(err.msg, "config.json"));
    }
}

static int setup(void **state)
{
    (void)state;
    if (gm_init(NULL) != 0)
        return -1;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gm-test-rl.XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/config.json", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_burst_then_429_then_refill),
        cmocka_unit_test(test_peek_takes_nothing_and_kinds_are_separate),
        cmocka_unit_test(test_reads_bucket_is_independent_of_the_others),
        cmocka_unit_test(test_addresses_are_independent_ipv6_per_64),
        cmocka_unit_test(test_table_is_bounded_and_forgets_least_recent),
        cmocka_unit_test(test_zero_rate_is_off),
        cmocka_unit_test(test_threads_never_get_more_than_the_burst),
        cmocka_unit_test(test_config_limits_default_and_parse_strictly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
