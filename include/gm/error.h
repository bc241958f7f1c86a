/* Error codes and the error-message holder every fallible gm_ function fills. */
#ifndef GM_ERROR_H
#define GM_ERROR_H

#include <stddef.h>

/* On a function whose result must not be ignored (a gm_err code, or an owned pointer that is
 * NULL on failure): GCC and Clang then warn at every call that drops the result. A (void) cast
 * does not silence GCC; where ignoring a failure is right, test the result and say why. */
#if defined(__GNUC__) || defined(__clang__)
#define GM_MUST_CHECK __attribute__((warn_unused_result))
#else
#define GM_MUST_CHECK
#endif

typedef enum gm_err {
    GM_OK = 0,
    GM_EINVAL = -1,     /* bad argument or malformed input */
    GM_ENOMEM = -2,
    GM_EIO = -3,        /* file or socket I/O failed */
    GM_ECRYPTO = -4,    /* libsodium refused (bad key, failed init) */
    GM_ESIG = -5,       /* a signature did not verify */
    GM_EFORMAT = -6,    /* document does not follow the spec */
    GM_ENOTFOUND = -7,
    GM_EEXPIRED = -8,   /* outside its validity window */
    GM_EREVOKED = -9,
    GM_ECONFLICT = -10, /* already exists / already used */
    GM_EDENIED = -11,   /* authenticated but not allowed */
    GM_ETOOBIG = -12,
    GM_ENET = -13,      /* network / HTTP failure */
    GM_ETIMEOUT = -14,
    GM_EDB = -15,       /* storage failure */
    GM_EEXIST = -16,    /* refusing to overwrite */
    GM_EPROTO = -17,    /* peer broke the protocol */
    GM_EINTERNAL = -18,
    GM_EAUTH = -19      /* missing or bad authentication */
} gm_err;

typedef struct gm_error {
    int code;
    char msg[512];
} gm_error;

/* Fill e (if not NULL) with code and a printf-style message; returns code. */
int gm_error_set(gm_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefix the message already in e with more context ("loading key: <old>"); returns e->code. */
int gm_error_prefix(gm_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Short stable name of a code: "invalid_input", "bad_signature", ... */
const char *gm_err_name(int code);

#endif
