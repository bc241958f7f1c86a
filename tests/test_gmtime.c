/* Tests for gm/gmtime.h: strict ISO-8601 parsing and the canonical rendering signatures cover. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "gm/gmtime.h"
#include "core_internal.h"

static void assert_renders(const char *in, const char *expected)
{
    char out[GM_TIME_STRLEN];
    gm_error err = {0};
    if (gm_time_canonical(in, out, &err) != 0)
        fail_msg("'%s' refused: %s", in, err.msg);
    assert_string_equal(out, expected);
}

static void assert_refused(const char *in)
{
    gm_time t;
    gm_error err = {0};
    if (gm_time_parse(in, &t, &err) != GM_EFORMAT)
        fail_msg("'%s' was accepted", in);
    assert_true(strlen(err.msg) > 0);
}

static void test_utc_forms_render_as_z_without_zero_fraction(void **state)
{
    (void)state;
    assert_renders("2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00Z");
    assert_renders("2026-01-01T00:00:00.000000Z", "2026-01-01T00:00:00Z");
    assert_renders("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z");
    assert_renders("2026-01-01T00:00:00.000000+00:00", "2026-01-01T00:00:00Z");
    assert_renders("2026-01-01T00:00:00-00:00", "2026-01-01T00:00:00Z");
}

static void test_fraction_padded_to_six_digits(void **state)
{
    (void)state;
    assert_renders("2026-01-01T00:00:00.5Z", "2026-01-01T00:00:00.500000Z");
    assert_renders("2026-01-01T00:00:00.05Z", "2026-01-01T00:00:00.050000Z");
    assert_renders("2026-01-01T00:00:00.123Z", "2026-01-01T00:00:00.123000Z");
    assert_renders("2026-01-01T00:00:00.000001Z", "2026-01-01T00:00:00.000001Z");
    assert_renders("2026-06-06T10:22:05.230676Z", "2026-06-06T10:22:05.230676Z");
}

static void test_naive_timestamp_stays_without_offset(void **state)
{
    (void)state;
    gm_time t;
    gm_error err = {0};
    assert_int_equal(gm_time_parse("2026-01-21T16:44:37.925424", &t, &err), 0);
    assert_int_equal(t.has_offset, 0);
    assert_renders("2026-01-21T16:44:37.925424", "2026-01-21T16:44:37.925424");
    assert_renders("2026-01-21T16:44:37", "2026-01-21T16:44:37");
    /* read as UTC for comparisons */
    gm_time z;
    assert_int_equal(gm_time_parse("2026-01-21T16:44:37.925424Z", &z, &err), 0);
    assert_int_equal(gm_time_cmp(&t, &z), 0);
}

static void test_positive_and_negative_offsets_kept_and_instant_correct(void **state)
{
    (void)state;
    gm_time t, u;
    gm_error err = {0};
    assert_renders("2026-01-01T02:00:00+02:00", "2026-01-01T02:00:00+02:00");
    assert_int_equal(gm_time_parse("2026-01-01T02:00:00+02:00", &t, &err), 0);
    assert_int_equal(gm_time_parse("2026-01-01T00:00:00Z", &u, &err), 0);
    assert_int_equal(t.unix_s, 1767225600);
    assert_int_equal(gm_time_cmp(&t, &u), 0);
    assert_int_equal(t.offset_min, 120);
    /* negative offset crossing a day (and year) boundary */
    assert_renders("2025-12-31T19:30:00.250000-04:30", "2025-12-31T19:30:00.250000-04:30");
    assert_int_equal(gm_time_parse("2025-12-31T19:30:00-04:30", &t, &err), 0);
    assert_int_equal(t.unix_s, 1767225600);
    assert_int_equal(t.offset_min, -270);
}

static void test_space_separator_and_lowercase_z_accepted(void **state)
{
    (void)state;
    assert_renders("2026-01-01 00:00:00+00:00", "2026-01-01T00:00:00Z");
    assert_renders("2026-01-01T00:00:00z", "2026-01-01T00:00:00Z");
}

static void test_out_of_range_dates_and_times_refused(void **state)
{
    (void)state;
    assert_refused("2026-02-30T00:00:00Z");
    assert_refused("2026-02-29T00:00:00Z"); /* 2026 is not a leap year */
    assert_refused("2026-04-31T00:00:00Z");
    assert_refused("2026-13-01T00:00:00Z");
    assert_refused("2026-00-01T00:00:00Z");
    assert_refused("2026-01-00T00:00:00Z");
    assert_refused("2026-01-01T24:00:00Z");
    assert_refused("2026-01-01T23:60:00Z");
    assert_refused("2026-01-01T23:59:60Z"); /* no leap seconds */
    assert_refused("2026-01-01T00:00:00+24:00");
    assert_refused("2026-01-01T00:00:00+05:60");
}

static void test_leap_years_follow_gregorian_rules(void **state)
{
    (void)state;
    assert_renders("2024-02-29T12:00:00Z", "2024-02-29T12:00:00Z");
    assert_renders("2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z"); /* divisible by 400 */
    assert_refused("1900-02-29T00:00:00Z");                        /* by 100, not 400 */
    assert_refused("2100-02-29T00:00:00Z");
    gm_time a, b;
    gm_error err = {0};
    assert_int_equal(gm_time_parse("2024-02-28T00:00:00Z", &a, &err), 0);
    assert_int_equal(gm_time_parse("2024-03-01T00:00:00Z", &b, &err), 0);
    assert_int_equal(b.unix_s - a.unix_s, 2 * 86400);
    assert_int_equal(gm_time_parse("2023-02-28T00:00:00Z", &a, &err), 0);
    assert_int_equal(gm_time_parse("2023-03-01T00:00:00Z", &b, &err), 0);
    assert_int_equal(b.unix_s - a.unix_s, 86400);
}

static void test_bad_fraction_lengths_refused(void **state)
{
    (void)state;
    assert_refused("2026-01-01T00:00:00.Z");
    assert_refused("2026-01-01T00:00:00.1234567Z");
    assert_refused("2026-01-01T00:00:00.");
    assert_refused("2026-01-01T00:00:00.12a4Z");
}

static void test_trailing_garbage_and_malformed_shapes_refused(void **state)
{
    (void)state;
    assert_refused("2026-01-01T00:00:00Zx");
    assert_refused("2026-01-01T00:00:00Z ");
    assert_refused("2026-01-01T00:00:00+00:00:00");
    assert_refused("2026-01-01T00:00:00+0000");
    assert_refused("2026-01-01T00:00:00+00");
    assert_refused("2026-01-01T00:00:00+");
    assert_refused("2026-01-01T00:00");
    assert_refused("2026-1-01T00:00:00Z");
    assert_refused("2026/01/01T00:00:00Z");
    assert_refused("2026-01-01X00:00:00Z");
    assert_refused(" 2026-01-01T00:00:00Z");
    assert_refused("+2026-01-01T00:00:00Z");
    assert_refused("");
    assert_refused("2026-01-01T00:00:00ZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZZ");
    gm_time t;
    gm_error err = {0};
    assert_int_equal(gm_time_parse(NULL, &t, &err), GM_EFORMAT);
}

static void test_round_trip_of_now(void **state)
{
    (void)state;
    gm_time now = gm_time_now(), back;
    char s[GM_TIME_STRLEN];
    gm_error err = {0};
    gm_time_format(&now, s);
    assert_int_equal(gm_time_parse(s, &back, &err), 0);
    assert_int_equal(gm_time_cmp(&now, &back), 0);
    assert_int_equal(back.usec, now.usec);
    assert_true(back.has_offset);
    assert_true(llabs((long long)(now.unix_s - (int64_t)time(NULL))) < 5);
    assert_int_equal(s[strlen(s) - 1], 'Z');
}

static void test_epoch_and_far_dates_round_trip(void **state)
{
    (void)state;
    assert_renders("1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z");
    assert_renders("1969-12-31T23:59:59.999999Z", "1969-12-31T23:59:59.999999Z");
    assert_renders("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z");
    assert_renders("9999-12-31T23:59:59.999999+14:00", "9999-12-31T23:59:59.999999+14:00");
    gm_time t = gm_time_from_unix(0);
    char s[GM_TIME_STRLEN];
    gm_time_format(&t, s);
    assert_string_equal(s, "1970-01-01T00:00:00Z");
    t = gm_time_add(gm_time_from_unix(1767225600), 7 * 86400 + 1);
    gm_time_format(&t, s);
    assert_string_equal(s, "2026-01-08T00:00:01Z");
}

static void test_compare_uses_instant_and_microseconds(void **state)
{
    (void)state;
    gm_time a, b;
    gm_error err = {0};
    assert_int_equal(gm_time_parse("2026-01-01T00:00:00.000001Z", &a, &err), 0);
    assert_int_equal(gm_time_parse("2026-01-01T00:00:00Z", &b, &err), 0);
    assert_int_equal(gm_time_cmp(&a, &b), 1);
    assert_int_equal(gm_time_cmp(&b, &a), -1);
    assert_int_equal(gm_time_parse("2026-01-01T01:00:00+02:00", &a, &err), 0);
    assert_int_equal(gm_time_cmp(&a, &b), -1); /* 23:00Z the day before */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utc_forms_render_as_z_without_zero_fraction),
        cmocka_unit_test(test_fraction_padded_to_six_digits),
        cmocka_unit_test(test_naive_timestamp_stays_without_offset),
        cmocka_unit_test(test_positive_and_negative_offsets_kept_and_instant_correct),
        cmocka_unit_test(test_space_separator_and_lowercase_z_accepted),
        cmocka_unit_test(test_out_of_range_dates_and_times_refused),
        cmocka_unit_test(test_leap_years_follow_gregorian_rules),
        cmocka_unit_test(test_bad_fraction_lengths_refused),
        cmocka_unit_test(test_trailing_garbage_and_malformed_shapes_refused),
        cmocka_unit_test(test_round_trip_of_now),
        cmocka_unit_test(test_epoch_and_far_dates_round_trip),
        cmocka_unit_test(test_compare_uses_instant_and_microseconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
