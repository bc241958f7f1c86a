/* Fuzz target: the NA's reading of a POST /join body (strict JSON object, known members,
 * typed fields, proof of possession) and the admin signing bytes of the same body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gm/reqsig.h"
#include "gm/util.h"
#include "na_internal.h"
#include "core_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const allowed[] = {"node_public_key", "invite_token", "validity_hours", "roles",
                                          "timestamp",       "nonce",        "signature",      NULL};
    static int ready;
    if (!ready) {
        if (gm_init(NULL) != 0)
            abort();
        ready = 1;
    }
    char *body = malloc(size + 1);
    if (!body)
        return 0;
    memcpy(body, data, size);
    body[size] = '\0';
    na_req r;
    memset(&r, 0, sizeof r);
    r.method = "POST";
    r.path = "/join";
    r.body = body;
    r.body_len = size;
    memcpy(r.request_id, "00000000-0000-4000-8000-000000000000", 37);
    if (gm_time_parse("2026-06-06T10:00:00Z", &r.now, NULL) != 0)
        abort();
    json_t *b = na_body_object(&r, allowed);
    if (b) {
        uint8_t pk[32];
        const char *pk_b64, *token;
        int64_t hours;
        if (na_get_pk(&r, b, "node_public_key", pk, &pk_b64) == 0 &&
            na_get_string(&r, b, "invite_token", 1, 256, &token) == 0 &&
            na_get_int(&r, b, "validity_hours", 0, 1, 87840, 0, &hours) == 0)
            (void)na_check_pop(&r, b, pk);
        char *bytes = NULL;
        if (gm_reqsig_admin_bytes(b, "operator-local", "00000000-0000-4000-8000-0000000000bb",
                                  "2026-06-06T10:00:00+00:00", &bytes, NULL, NULL) == 0)
            free(bytes);
        json_decref(b);
    }
    /* Bad input is a 4xx with a body, never a 5xx. */
    if (r.status >= 500 || (r.status && !r.reply))
        abort();
    free(r.reply);
    free(body);
    return 0;
}
