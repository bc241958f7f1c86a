/* Fuzz target for key file text, strict base64 and timestamps. The input is tried as the
 * text of a .pub file, as base64 and (when short) as a timestamp. What is accepted must
 * re-encode to exactly the input (base64), re-parse to the same key (key file), and
 * format stably (timestamps); a UTC rendering must parse back to the same instant
 * whenever its year is 0000..9999. Violations abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/gmtime.h"
#include "gm/keys.h"
#include "gm/util.h"
#include "core_internal.h"

/* 0000-01-01T00:00:00Z and 10000-01-01T00:00:00Z: the instants a 4-digit year can render. */
#define YEAR0_UNIX INT64_C(-62167219200)
#define YEAR10000_UNIX INT64_C(253402300800)

/* abort() naming the broken invariant, so a crash report says what went wrong */
#define FAIL(why)                                                                  \
    do {                                                                           \
        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, why); \
        abort();                                                                   \
    } while (0)

static void try_key_text(const char *text)
{
    uint8_t pk[GM_PK_LEN], back[GM_PK_LEN];
    char b64[GM_PK_B64_LEN + 1], canon[256];
    gm_error err = {0};
    if (gm_pk_parse_text(text, pk, &err) != 0)
        return;
    gm_pk_encode(pk, b64);
    /* the decoder is strict: the key line can only have been the canonical encoding */
    if (!strstr(text, b64))
        FAIL("accepted key line is not the canonical base64 of the key");
    snprintf(canon, sizeof canon, "# Ed25519 Public Key\n# Key ID: fuzz\n%s\n", b64);
    if (gm_pk_parse_text(canon, back, &err) != 0 || memcmp(pk, back, GM_PK_LEN) != 0)
        FAIL("key file written from a parsed key does not parse back to it");
}

static void try_b64(const char *s, size_t len)
{
    gm_error err = {0};
    size_t cap = len / 4 * 3 + 3, n = 0;
    uint8_t *out = malloc(cap);
    char *enc = malloc(len + 8);
    if (!out || !enc)
        FAIL("out of memory");
    if (gm_b64_decode(s, out, cap, &n, &err) == 0) {
        if (gm_b64_len(n) != len || gm_b64_encode(out, n, enc, len + 8) != len || strcmp(enc, s) != 0)
            FAIL("base64 decoder accepted a non-canonical encoding");
        /* a buffer one byte short must be refused, not overrun */
        size_t m;
        if (n > 0 && gm_b64_decode(s, out, n - 1, &m, &err) == 0)
            FAIL("base64 decoder accepted an output buffer that is too small");
        uint8_t exact[512];
        if (n <= sizeof exact && (gm_b64_decode_exact(s, exact, n, &err) != 0 || memcmp(exact, out, n) != 0))
            FAIL("gm_b64_decode_exact disagrees with gm_b64_decode");
    } else if (len > 0 && len % 4 == 0 && len / 4 * 3 <= 512) {
        uint8_t exact[512];
        if (gm_b64_decode_exact(s, exact, len / 4 * 3, &err) == 0)
            FAIL("gm_b64_decode_exact accepted what gm_b64_decode refused");
    }
    free(out);
    free(enc);
}

static void try_time(const char *s)
{
    gm_time t, u, v;
    gm_error err = {0};
    char a[GM_TIME_STRLEN], b[GM_TIME_STRLEN], c[GM_TIME_STRLEN];
    if (gm_time_parse(s, &t, &err) != 0) {
        if (gm_time_canonical(s, a, &err) == 0)
            FAIL("gm_time_canonical accepted what gm_time_parse refused");
        return;
    }
    if (t.usec < 0 || t.usec > 999999)
        FAIL("usec out of range");
    gm_time_format(&t, a);
    if (gm_time_canonical(s, b, &err) != 0 || strcmp(a, b) != 0)
        FAIL("gm_time_canonical differs from format(parse(x))");
    /* format(parse(format(parse(x)))) == format(parse(x)), same instant and offset */
    if (gm_time_parse(a, &u, &err) != 0)
        FAIL("format(parse(x)) does not parse");
    gm_time_format(&u, b);
    if (strcmp(a, b) != 0 || gm_time_cmp(&t, &u) != 0 || t.has_offset != u.has_offset ||
        t.offset_min != u.offset_min)
        FAIL("format(parse(format(parse(x)))) != format(parse(x))");
    /* The same instant rendered in UTC, as code that adds to a time and re-renders does. */
    v = gm_time_from_unix(t.unix_s);
    v.usec = t.usec;
    gm_time_format(&v, c);
    int renderable = t.unix_s >= YEAR0_UNIX && t.unix_s < YEAR10000_UNIX;
    if (gm_time_parse(c, &u, &err) == 0) {
        if (gm_time_cmp(&u, &v) != 0)
            FAIL("UTC rendering parses to another instant");
    } else if (renderable) {
        FAIL("UTC rendering of a year 0000..9999 instant does not parse");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text); /* the string APIs see up to the first NUL */
    try_key_text(text);
    try_b64(text, len);
    if (len <= 64)
        try_time(text);
    free(text);
    return 0;
}
