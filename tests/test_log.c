/* Tests for gm/log.h: records below the level never reach the handler, the JSON line has the
 * one shape and parses back, control characters are escaped in both formats. The e2e tests
 * check the node, NA and agent logs written through it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gm/log.h"
#include "core_internal.h"

#define MAX_LINES 8

static struct capture {
    size_t n;
    char *json[MAX_LINES];
    char *text[MAX_LINES];
} cap;

static void capture(void *ctx, const gm_log_record *rec)
{
    (void)ctx;
    if (cap.n == MAX_LINES)
        return;
    cap.json[cap.n] = gm_log_format_line(rec, GM_LOG_FORMAT_JSON);
    cap.text[cap.n] = gm_log_format_line(rec, GM_LOG_FORMAT_TEXT);
    cap.n++;
}

static int setup(void **state)
{
    (void)state;
    memset(&cap, 0, sizeof cap);
    gm_log_set_handler(capture, NULL);
    gm_log_set_level(GM_LOG_INFO);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < cap.n; i++) {
        free(cap.json[i]);
        free(cap.text[i]);
    }
    gm_log_set_handler(NULL, NULL);
    return 0;
}

static void test_log_drops_records_below_the_level(void **state)
{
    (void)state;
    gm_log(GM_LOG_DEBUG, "node", "not shown");
    assert_int_equal(cap.n, 0);
    gm_log(GM_LOG_INFO, "node", "shown %d", 1);
    gm_log_set_level(GM_LOG_ERROR);
    gm_log(GM_LOG_WARN, "na", "not shown either");
    gm_log_event(GM_LOG_WARN, "agent", "busy", json_pack("{s:i}", "n", 3), NULL); /* fields freed when dropped */
    gm_log(GM_LOG_ERROR, "na", "shown");
    assert_int_equal(cap.n, 2);
    assert_false(gm_log_enabled(GM_LOG_WARN));
    gm_log_set_handler(NULL, NULL);
    assert_false(gm_log_enabled(GM_LOG_ERROR));
}

static void test_log_json_line_has_the_one_shape(void **state)
{
    (void)state;
    gm_log_event(GM_LOG_WARN, "node", "peer_down", json_pack("{s:s,s:i,s:s}", "peer", "abc", "n", 7, "level", "x"),
                 "link to %s lost", "abc");
    assert_int_equal(cap.n, 1);
    json_error_t je;
    json_t *o = json_loads(cap.json[0], 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "level")), "warn"); /* fields cannot override it */
    assert_string_equal(json_string_value(json_object_get(o, "component")), "node");
    assert_string_equal(json_string_value(json_object_get(o, "event")), "peer_down");
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "link to abc lost");
    assert_string_equal(json_string_value(json_object_get(o, "peer")), "abc");
    assert_int_equal(json_integer_value(json_object_get(o, "n")), 7);
    const char *ts = json_string_value(json_object_get(o, "ts"));
    assert_non_null(ts);
    assert_int_equal(ts[strlen(ts) - 1], 'Z');
    json_decref(o);
    /* members in a fixed order, so a reader can grep the start of a line */
    assert_non_null(strstr(cap.json[0], "\"level\":\"warn\",\"component\":\"node\",\"event\":\"peer_down\",\"msg\""));
    assert_null(strchr(cap.json[0], '\n'));
    assert_non_null(strstr(cap.text[0], " warn  node: link to abc lost [peer_down] peer=abc n=7"));
}

static void test_log_escapes_control_characters(void **state)
{
    (void)state;
    gm_log_event(GM_LOG_INFO, "agent", "evil", json_pack("{s:s}", "from", "x\x1b]0;owned\x07"),
                 "line1\nline2\x1b[31m\r \xc2\x9b\x7f");
    gm_log(GM_LOG_INFO, "na", "bad utf-8 \xff\xfe end");
    assert_int_equal(cap.n, 2);
    for (size_t i = 0; i < cap.n; i++)
        for (const unsigned char *p = (const unsigned char *)cap.json[i]; *p; p++)
            assert_true(*p >= 0x20 && *p < 0x7f); /* C1 controls too: JSON lines are ASCII */
    for (size_t i = 0; i < cap.n; i++)
        for (const unsigned char *p = (const unsigned char *)cap.text[i]; *p; p++)
            assert_true(*p >= 0x20 && *p != 0x7f && !(p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f));
    json_t *o = json_loads(cap.json[0], 0, NULL);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "line1\nline2\x1b[31m\r \xc2\x9b\x7f");
    json_decref(o);
    assert_non_null(strstr(cap.text[0], "line1\\x0aline2\\x1b[31m\\x0d \\x9b\\x7f"));
    assert_non_null(strstr(cap.text[0], "from=x\\x1b]0;owned\\x07"));
    o = json_loads(cap.json[1], 0, NULL); /* invalid UTF-8 still gives valid JSON */
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "msg")), "bad utf-8 \\xff\\xfe end");
    json_decref(o);
}

static void test_log_safe_text_never_cuts_an_escape(void **state)
{
    (void)state;
    char out[8];
    assert_string_equal(gm_log_safe_text("ab\x01", out, sizeof out), "ab\\x01");
    assert_string_equal(gm_log_safe_text("abcd\x01", out, sizeof out), "abcd");
    assert_string_equal(gm_log_safe_text(NULL, out, sizeof out), "");
    gm_log_level l;
    assert_int_equal(gm_log_level_parse("warn", &l), 0);
    assert_int_equal(l, GM_LOG_WARN);
    assert_int_equal(gm_log_level_parse("loud", &l), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_log_drops_records_below_the_level, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_json_line_has_the_one_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_escapes_control_characters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_log_safe_text_never_cuts_an_escape, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
