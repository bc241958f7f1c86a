/* Tests for the console token file (gm_na_console_token, lib/na/na_console.c): made once with
 * mode 0600 and 64 hex characters, read back unchanged, and refused with the fix named when
 * others may read it, when it is not a regular file or when it holds something else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "gm/na.h"
#include "gm/util.h"

static char dir[256];

static void path_of(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

static void write_file(const char *text, mode_t mode)
{
    char p[512];
    path_of(p, sizeof p, "console.token");
    unlink(p);
    assert_int_equal(gm_file_write_atomic(p, text, strlen(text), mode, NULL), 0);
    assert_int_equal(chmod(p, mode), 0);
}

static void test_token_is_made_once_0600_and_read_back(void **state)
{
    char t1[GM_NA_CONSOLE_TOKEN_LEN + 1], t2[GM_NA_CONSOLE_TOKEN_LEN + 1], p[512];
    gm_error err = {0};
    path_of(p, sizeof p, "console.token");
    unlink(p);
    assert_int_equal(gm_na_console_token(dir, 0, t1, &err), GM_ENOTFOUND);
    assert_non_null(strstr(err.msg, "first start"));
    assert_int_equal(gm_na_console_token(dir, 1, t1, &err), 0);
    assert_int_equal(strlen(t1), GM_NA_CONSOLE_TOKEN_LEN);
    assert_int_equal(strspn(t1, "0123456789abcdef"), GM_NA_CONSOLE_TOKEN_LEN);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* a second creator reads the first one's token instead of replacing it */
    assert_int_equal(gm_na_console_token(dir, 1, t2, &err), 0);
    assert_string_equal(t1, t2);
    assert_int_equal(gm_na_console_token(dir, 0, t2, &err), 0);
    assert_string_equal(t1, t2);
}

static void test_token_readable_by_others_is_refused(void **state)
{
    char t[GM_NA_CONSOLE_TOKEN_LEN + 1];
    gm_error err = {0};
    write_file("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", 0644);
    assert_int_equal(gm_na_console_token(dir, 1, t, &err), GM_EINVAL);
    assert_non_null(strstr(err.msg, "chmod 600"));
    assert_int_equal(t[0], '\0');
    write_file("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n", 0600);
    assert_int_equal(gm_na_console_token(dir, 0, t, &err), 0);
    assert_string_equal(t, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
}

static void test_token_of_another_shape_is_refused(void **state)
{
    static const char *const bad[] = {
        "", "abc\n", "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef\n",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0\n",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg\n",
        "0123456789abcdef0123456789abcdef 0123456789abcdef0123456789abcde\n",
    };
    char t[GM_NA_CONSOLE_TOKEN_LEN + 1];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gm_error err = {0};
        write_file(bad[i], 0600);
        assert_int_equal(gm_na_console_token(dir, 1, t, &err), GM_EFORMAT);
        assert_non_null(strstr(err.msg, "64 lowercase hex"));
        assert_int_equal(t[0], '\0');
    }
}

static void test_token_symlink_is_refused(void **state)
{
    char p[512], target[512], t[GM_NA_CONSOLE_TOKEN_LEN + 1];
    gm_error err = {0};
    path_of(p, sizeof p, "console.token");
    path_of(target, sizeof target, "elsewhere");
    unlink(p);
    assert_int_equal(gm_file_write_atomic(target, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
                                          65, 0600, NULL), 0);
    assert_int_equal(symlink(target, p), 0);
    assert_int_equal(gm_na_console_token(dir, 1, t, &err), GM_EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));
    unlink(p);
    unlink(target);
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, sizeof dir, "%s/gm-test-console.XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_is_made_once_0600_and_read_back),
        cmocka_unit_test(test_token_readable_by_others_is_refused),
        cmocka_unit_test(test_token_of_another_shape_is_refused),
        cmocka_unit_test(test_token_symlink_is_refused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char p[512];
    path_of(p, sizeof p, "console.token");
    unlink(p);
    rmdir(dir);
    return rc;
}
