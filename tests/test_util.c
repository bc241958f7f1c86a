/* Tests for gm/util.h and gm/error.h: strict base64, bounded file reads, atomic writes,
 * directories, UUIDs, error messages. */
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

#include "gm/error.h"
#include "gm/util.h"
#include "core_internal.h"

static char tmpdir[256];

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gm-test-util-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_bytes(const char *path, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fputc('a' + (int)(i % 26), f);
    fclose(f);
}

static void test_b64_round_trip_all_lengths(void **state)
{
    (void)state;
    uint8_t in[70], out[70];
    char enc[128];
    gm_error err = {0};
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 37 + 11);
    for (size_t n = 1; n <= sizeof in; n++) {
        size_t w = gm_b64_encode(in, n, enc, sizeof enc), got = 0;
        assert_int_equal(w, gm_b64_len(n));
        assert_int_equal(gm_b64_decode(enc, out, sizeof out, &got, &err), 0);
        assert_int_equal(got, n);
        assert_memory_equal(in, out, n);
        assert_int_equal(gm_b64_decode_exact(enc, out, n, &err), 0);
        if (n > 1)
            assert_int_equal(gm_b64_decode_exact(enc, out, n - 1, &err), GM_EFORMAT);
    }
}

static void test_b64_encode_refuses_short_buffer(void **state)
{
    (void)state;
    uint8_t in[3] = {1, 2, 3};
    char out[4];
    assert_int_equal(gm_b64_encode(in, 3, out, sizeof out), 0); /* needs 5 with the NUL */
}

static void test_b64_decode_refuses_non_standard_forms(void **state)
{
    (void)state;
    uint8_t out[64];
    size_t n;
    gm_error err = {0};
    static const char *const bad[] = {"", "QQ", "QQ=", "QR==", "QQ==QQ==", "Q===", "QQ==\n", " QQ==",
                                      "-_8=", "QUJD\n", "QU JD", "QUJD=", "QQ=A"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (gm_b64_decode(bad[i], out, sizeof out, &n, &err) != GM_EFORMAT)
            fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(gm_b64_decode("QQ==", out, sizeof out, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(out[0], 'A');
    /* decoded data larger than the buffer */
    assert_int_equal(gm_b64_decode("QUJDRA==", out, 3, &n, &err), GM_EFORMAT);
}

static void test_b64_large_non_canonical_input_refused(void **state)
{
    (void)state;
    /* past the size where the decoder re-encodes to compare: stray bits must still be refused */
    size_t bytes = 4000;
    uint8_t *in = calloc(1, bytes), *out = malloc(bytes);
    char *enc = malloc(gm_b64_len(bytes) + 1);
    size_t n;
    gm_error err = {0};
    gm_b64_encode(in, bytes, enc, gm_b64_len(bytes) + 1);
    assert_int_equal(gm_b64_decode(enc, out, bytes, &n, &err), 0);
    assert_int_equal(n, bytes);
    size_t len = strlen(enc);
    assert_int_equal(enc[len - 1], '=');
    enc[len - 3] = 'B'; /* "AA==" -> "AB==": stray low bits */
    assert_int_equal(gm_b64_decode(enc, out, bytes, &n, &err), GM_EFORMAT);
    free(in);
    free(out);
    free(enc);
}

static void test_b64_large_input_with_byte_outside_alphabet_refused(void **state)
{
    (void)state;
    /* libsodium 1.0.18 decodes bytes 0x80..0xff as if they were base64 characters */
    size_t bytes = 4000;
    uint8_t *in = calloc(1, bytes), *out = malloc(bytes);
    char *enc = malloc(gm_b64_len(bytes) + 1);
    size_t n;
    gm_error err = {0};
    gm_b64_encode(in, bytes, enc, gm_b64_len(bytes) + 1);
    enc[3500] = (char)0xaf;
    assert_int_equal(gm_b64_decode(enc, out, bytes, &n, &err), GM_EFORMAT);
    enc[3500] = 'A';
    enc[10] = (char)0xc3;
    assert_int_equal(gm_b64_decode(enc, out, bytes, &n, &err), GM_EFORMAT);
    free(in);
    free(out);
    free(enc);
}

static void test_hex_encode_lowercase(void **state)
{
    (void)state;
    uint8_t in[] = {0x00, 0xab, 0xff, 0x10};
    char out[9];
    gm_hex_encode(in, sizeof in, out);
    assert_string_equal(out, "00abff10");
}

static void test_file_read_returns_content_and_length(void **state)
{
    (void)state;
    char path[512], *text;
    size_t len;
    gm_error err = {0};
    snprintf(path, sizeof path, "%s/ten-k", tmpdir);
    write_bytes(path, 10000);
    assert_int_equal(gm_file_read(path, 1 << 20, &text, &len, &err), 0);
    assert_int_equal(len, 10000);
    assert_int_equal(text[len], '\0');
    assert_int_equal(text[9999], 'a' + 9999 % 26);
    free(text);
    snprintf(path, sizeof path, "%s/empty", tmpdir);
    write_bytes(path, 0);
    assert_int_equal(gm_file_read(path, 100, &text, &len, &err), 0);
    assert_int_equal(len, 0);
    assert_string_equal(text, "");
    free(text);
}

static void test_file_read_enforces_small_limits(void **state)
{
    (void)state;
    char path[512], *text = NULL;
    size_t len;
    gm_error err = {0};
    snprintf(path, sizeof path, "%s/two-hundred", tmpdir);
    write_bytes(path, 200);
    /* a limit below the initial buffer size must still hold */
    assert_int_equal(gm_file_read(path, 100, &text, &len, &err), GM_ETOOBIG);
    assert_non_null(strstr(err.msg, "larger than 100 bytes"));
    assert_int_equal(gm_file_read(path, 199, &text, &len, &err), GM_ETOOBIG);
}

static void test_file_read_accepts_exactly_max_bytes(void **state)
{
    (void)state;
    char path[512], *text;
    size_t len;
    gm_error err = {0};
    size_t sizes[] = {200, 4096, 8192, 10000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        snprintf(path, sizeof path, "%s/exact-%zu", tmpdir, sizes[i]);
        write_bytes(path, sizes[i]);
        if (gm_file_read(path, sizes[i], &text, &len, &err) != 0)
            fail_msg("file of exactly %zu bytes refused with max %zu: %s", sizes[i], sizes[i], err.msg);
        assert_int_equal(len, sizes[i]);
        free(text);
        assert_int_equal(gm_file_read(path, sizes[i] - 1, &text, &len, &err), GM_ETOOBIG);
    }
}

static void test_file_read_missing_file_is_not_found(void **state)
{
    (void)state;
    char path[512], *text;
    gm_error err = {0};
    snprintf(path, sizeof path, "%s/nope", tmpdir);
    assert_int_equal(gm_file_read(path, 10, &text, NULL, &err), GM_ENOTFOUND);
    assert_non_null(strstr(err.msg, path));
}

static void test_atomic_write_sets_mode_and_replaces(void **state)
{
    (void)state;
    char path[512], *text;
    size_t len;
    struct stat st;
    gm_error err = {0};
    snprintf(path, sizeof path, "%s/atomic", tmpdir);
    mode_t old = umask(0);
    assert_int_equal(gm_file_write_atomic(path, "first", 5, 0600, &err), 0);
    umask(old);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    old = umask(077);
    assert_int_equal(gm_file_write_atomic(path, "second", 6, 0644, &err), 0);
    umask(old);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(gm_file_read(path, 100, &text, &len, &err), 0);
    assert_string_equal(text, "second");
    free(text);
}

static void test_atomic_write_does_not_follow_a_planted_temp_symlink(void **state)
{
    (void)state;
    /* someone who can write the directory plants the temp name as a symlink to a victim file */
    char path[512], tmp[600], victim[512], *text;
    size_t len;
    gm_error err = {0};
    snprintf(path, sizeof path, "%s/secret.key", tmpdir);
    snprintf(victim, sizeof victim, "%s/victim", tmpdir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(victim, "w");
    fputs("victim", f);
    fclose(f);
    assert_int_equal(symlink(victim, tmp), 0);
    int rc = gm_file_write_atomic(path, "SECRET", 6, 0600, &err);
    assert_int_equal(gm_file_read(victim, 100, &text, &len, &err), 0);
    assert_string_equal(text, "victim");
    free(text);
    if (rc == 0) {
        assert_int_equal(gm_file_read(path, 100, &text, &len, &err), 0);
        assert_string_equal(text, "SECRET");
        free(text);
    }
    unlink(tmp);
}

static void test_mkdir_p_creates_nested_and_tolerates_existing(void **state)
{
    (void)state;
    char path[512];
    struct stat st;
    gm_error err = {0};
    snprintf(path, sizeof path, "%s/a/b/c", tmpdir);
    assert_int_equal(gm_mkdir_p(path, 0700, &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(gm_mkdir_p(path, 0700, &err), 0);
    assert_true(gm_file_exists(path));
    char file[600];
    snprintf(file, sizeof file, "%s/plain", tmpdir);
    write_bytes(file, 1);
    snprintf(path, sizeof path, "%s/plain/sub", tmpdir);
    assert_int_equal(gm_mkdir_p(path, 0700, &err), GM_EIO);
}

static void test_path_join_refuses_overflow(void **state)
{
    (void)state;
    char out[16];
    gm_error err = {0};
    assert_int_equal(gm_path_join(out, sizeof out, "dir", "name", &err), 0);
    assert_string_equal(out, "dir/name");
    assert_int_equal(gm_path_join(out, sizeof out, "directory", "longname", &err), GM_EINVAL);
}

static void test_uuid4_is_version_4_variant_1_lowercase(void **state)
{
    (void)state;
    char a[37], b[37];
    gm_uuid4(a);
    gm_uuid4(b);
    assert_int_equal(strlen(a), 36);
    assert_string_not_equal(a, b);
    assert_true(gm_uuid_valid(a));
    assert_int_equal(a[14], '4');
    assert_non_null(strchr("89ab", a[19]));
    for (int i = 0; i < 36; i++)
        assert_true(a[i] == '-' || (a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f'));
}

/* Version 7: the ids one process makes sort in the order it made them (the NA's certificate
 * ids, so its indexes by cert_id grow at their end), even many within one millisecond. */
static void test_uuid7_is_version_7_and_sorts_in_order_made(void **state)
{
    (void)state;
    char prev[37], cur[37];
    gm_uuid7(prev);
    for (int n = 0; n < 5000; n++) {
        gm_uuid7(cur);
        assert_int_equal(strlen(cur), 36);
        assert_true(gm_uuid_valid(cur));
        assert_int_equal(cur[14], '7');
        assert_non_null(strchr("89ab", cur[19]));
        for (int i = 0; i < 36; i++)
            assert_true(cur[i] == '-' || (cur[i] >= '0' && cur[i] <= '9') || (cur[i] >= 'a' && cur[i] <= 'f'));
        assert_true(strcmp(prev, cur) < 0);
        memcpy(prev, cur, sizeof prev);
    }
}

static void test_uuid_valid_rejects_malformed(void **state)
{
    (void)state;
    assert_true(gm_uuid_valid("00000000-0000-4000-8000-0000000000cc"));
    assert_true(gm_uuid_valid("00000000-0000-4000-8000-0000000000CC"));
    assert_false(gm_uuid_valid(NULL));
    assert_false(gm_uuid_valid(""));
    assert_false(gm_uuid_valid("00000000-0000-4000-8000-0000000000c"));
    assert_false(gm_uuid_valid("00000000-0000-4000-8000-0000000000ccc"));
    assert_false(gm_uuid_valid("000000000-000-4000-8000-0000000000cc"));
    assert_false(gm_uuid_valid("00000000-0000-4000-8000-0000000000cg"));
    assert_false(gm_uuid_valid("{0000000-0000-4000-8000-0000000000cc"));
}

static void test_error_prefix_keeps_message_and_truncates_safely(void **state)
{
    (void)state;
    gm_error err = {0};
    assert_int_equal(gm_error_set(&err, GM_ESIG, "signature does not verify"), GM_ESIG);
    assert_int_equal(gm_error_prefix(&err, "genesis %s", "block"), GM_ESIG);
    assert_string_equal(err.msg, "genesis block: signature does not verify");
    char big[1000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    gm_error_set(&err, GM_EIO, "%s", big);
    assert_int_equal(strlen(err.msg), sizeof err.msg - 1);
    gm_error_prefix(&err, "%s", big);
    assert_true(strlen(err.msg) < sizeof err.msg);
    gm_error_clear(&err);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.msg, "");
    assert_int_equal(gm_error_set(NULL, GM_EIO, "ignored"), GM_EIO);
    assert_string_equal(gm_err_name(GM_ESIG), "bad_signature");
    assert_string_equal(gm_err_name(GM_EEXPIRED), "expired");
    assert_string_equal(gm_err_name(12345), "internal_error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64_round_trip_all_lengths),
        cmocka_unit_test(test_b64_encode_refuses_short_buffer),
        cmocka_unit_test(test_b64_decode_refuses_non_standard_forms),
        cmocka_unit_test(test_b64_large_non_canonical_input_refused),
        cmocka_unit_test(test_b64_large_input_with_byte_outside_alphabet_refused),
        cmocka_unit_test(test_hex_encode_lowercase),
        cmocka_unit_test(test_file_read_returns_content_and_length),
        cmocka_unit_test(test_file_read_enforces_small_limits),
        cmocka_unit_test(test_file_read_accepts_exactly_max_bytes),
        cmocka_unit_test(test_file_read_missing_file_is_not_found),
        cmocka_unit_test(test_atomic_write_sets_mode_and_replaces),
        cmocka_unit_test(test_atomic_write_does_not_follow_a_planted_temp_symlink),
        cmocka_unit_test(test_mkdir_p_creates_nested_and_tolerates_existing),
        cmocka_unit_test(test_path_join_refuses_overflow),
        cmocka_unit_test(test_uuid4_is_version_4_variant_1_lowercase),
        cmocka_unit_test(test_uuid7_is_version_7_and_sorts_in_order_made),
        cmocka_unit_test(test_uuid_valid_rejects_malformed),
        cmocka_unit_test(test_error_prefix_keeps_message_and_truncates_safely),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
