/* Tests for gm/argv.h: a user's command line split into words like a shell would, with no
 * expansion, and bad command lines refused with a message naming the problem. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gm/argv.h"

static void expect_words(const char *line, const char *const *want, size_t n)
{
    char **argv = NULL;
    size_t argc = 0;
    gm_error err = {0};
    assert_int_equal(gm_argv_split(line, &argv, &argc, &err), 0);
    assert_int_equal(argc, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(argv[i], want[i]);
    assert_null(argv[n]);
    gm_argv_free(argv);
}

static void expect_refused(const char *line, const char *why)
{
    char **argv = (char **)1;
    size_t argc = 9;
    gm_error err = {0};
    assert_int_equal(gm_argv_split(line, &argv, &argc, &err), GM_EINVAL);
    assert_null(argv);
    assert_int_equal(argc, 0);
    assert_non_null(strstr(err.msg, why));
}

static void test_split_quotes_without_expansion(void **state)
{
    (void)state;
    expect_words("python3 tool.py", (const char *[]){"python3", "tool.py"}, 2);
    expect_words("  a\t b  ", (const char *[]){"a", "b"}, 2);
    expect_words("a 'two words' \"x\\\"y\" \\$HOME '*' ';'", (const char *[]){"a", "two words", "x\"y", "$HOME", "*", ";"}, 6);
    expect_words("sh -c 'echo $1 | wc -c'", (const char *[]){"sh", "-c", "echo $1 | wc -c"}, 3);
    expect_words("a'b'\"c\" ''", (const char *[]){"abc", ""}, 2);
    expect_words("\"a\\nb\" 'it'\\''s'", (const char *[]){"a\\nb", "it's"}, 2);
}

static void test_split_refuses_bad_lines(void **state)
{
    (void)state;
    expect_refused("", "empty");
    expect_refused("   ", "empty");
    expect_refused("a 'b", "quote ' at byte 3 of the command is not closed");
    expect_refused("a \"b", "is not closed");
    expect_refused("a\\", "ends with a backslash");
    expect_refused("a\nb", "control character 0x0a at byte 2");
    char many[3 * (GM_ARGV_MAX + 1) + 1] = "";
    for (int i = 0; i <= GM_ARGV_MAX; i++)
        strcat(many, "x ");
    expect_refused(many, "more than 64 words");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_quotes_without_expansion),
        cmocka_unit_test(test_split_refuses_bad_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
