/* gm_error: the message a user can act on, filled by the function that failed. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gm/error.h"
#include "core_internal.h"

int gm_error_set(gm_error *e, int code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

int gm_error_prefix(gm_error *e, const char *fmt, ...)
{
    if (!e)
        return GM_EINTERNAL;
    char prefix[256], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t n = strlen(prefix);
    /* prefix + ": " + old message, truncated to fit */
    if (n > sizeof e->msg - 3)
        n = sizeof e->msg - 3;
    memcpy(e->msg, prefix, n);
    memcpy(e->msg + n, ": ", 2);
    size_t room = sizeof e->msg - n - 3, olen = strlen(old);
    if (olen > room)
        olen = room;
    memcpy(e->msg + n + 2, old, olen);
    e->msg[n + 2 + olen] = '\0';
    return e->code;
}

void gm_error_clear(gm_error *e)
{
    if (e) {
        e->code = 0;
        e->msg[0] = '\0';
    }
}

const char *gm_err_name(int code)
{
    switch (code) {
    case GM_OK: return "ok";
    case GM_EINVAL: return "invalid_input";
    case GM_ENOMEM: return "out_of_memory";
    case GM_EIO: return "io_error";
    case GM_ECRYPTO: return "crypto_error";
    case GM_ESIG: return "bad_signature";
    case GM_EFORMAT: return "bad_format";
    case GM_ENOTFOUND: return "not_found";
    case GM_EEXPIRED: return "expired";
    case GM_EREVOKED: return "revoked";
    case GM_ECONFLICT: return "conflict";
    case GM_EDENIED: return "forbidden";
    case GM_ETOOBIG: return "too_large";
    case GM_ENET: return "network_error";
    case GM_ETIMEOUT: return "timeout";
    case GM_EDB: return "storage_error";
    case GM_EEXIST: return "already_exists";
    case GM_EPROTO: return "protocol_error";
    case GM_EAUTH: return "unauthorized";
    default: return "internal_error";
    }
}
