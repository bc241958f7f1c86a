/* Fuzz target: the client-side checks of the NA's answers (invite, revoke, nodes, clear-key),
 * as the CLI runs them on whatever an NA (or something posing as one) sends back. Each check
 * must either accept the answer, with every borrowed string non-NULL, or fail with a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gm/na_client.h"
#include "gm/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (gm_init(NULL) != 0)
            abort();
        ready = 1;
    }
    json_t *v = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    gm_error e = {0};
    gm_na_invite_answer inv;
    gm_na_revoke_answer rev;
    if (gm_na_invite_answer_check(v, &inv, &e) == 0) {
        if (!inv.token || !inv.expires_at || inv.max_validity_hours < 0)
            abort();
    } else if (!e.msg[0]) {
        abort();
    }
    e.msg[0] = '\0';
    if (gm_na_revoke_answer_check(v, &rev, &e) == 0) {
        if (rev.sequence < 0 || rev.count < 0 || (rev.revoked && (size_t)rev.count != json_array_size(rev.revoked)))
            abort();
    } else if (!e.msg[0]) {
        abort();
    }
    e.msg[0] = '\0';
    if (gm_na_nodes_answer_check(v, &e) != 0 && !e.msg[0])
        abort();
    e.msg[0] = '\0';
    if (gm_na_clear_key_answer_check(v, &e) != 0 && !e.msg[0])
        abort();
    json_decref(v);
    return 0;
}
