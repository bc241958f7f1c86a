/* Fuzz target for the network policy manifest parser (gm/netpolicy.h, GET /policy): a document
 * that parses must dump and parse back to the same bytes, and sign and verify under the NA key
 * after being issued again from its own settings (else abort). Verification of the input's own
 * signature must never crash. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gm/netpolicy.h"
#include "core_internal.h"
#include "gm/util.h"

static gm_signer na;
static int ready;

static void setup(void)
{
    uint8_t seed[GM_SEED_LEN];
    gm_error err = {0};
    for (int i = 0; i < GM_SEED_LEN; i++)
        seed[i] = (uint8_t)(0x40 + i);
    if (gm_init(&err) != 0 || gm_signer_from_seed(&na, seed, "na-local", &err) != 0)
        abort();
    ready = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gm_error err = {0};
    gm_netpolicy p, q;
    if (!ready)
        setup();
    if (gm_netpolicy_parse((const char *)data, size, &p, &err) != 0) {
        if (!err.msg[0])
            abort();
        return 0;
    }
    gm_netpolicy_verify(&p, na.pk, &err);
    char *a = gm_netpolicy_dump(&p, 0);
    if (!a || gm_netpolicy_parse(a, strlen(a), &q, &err) != 0)
        abort();
    char *b = gm_netpolicy_dump(&q, 0);
    if (!b || strcmp(a, b) != 0)
        abort();
    free(a);
    free(b);
    gm_netpolicy_free(&q);
    /* its settings issue again, and what is issued verifies */
    static const char *const keep[] = {"policy_id", "min_client_version", "allowed_ports", "allowed_services",
                                       "routing"};
    json_t *settings = json_object();
    for (size_t i = 0; i < sizeof keep / sizeof keep[0]; i++)
        json_object_set(settings, keep[i], json_object_get(p.doc, keep[i]));
    if (gm_netpolicy_issue(&q, &na, settings, gm_time_now(), &err) != 0 || gm_netpolicy_verify(&q, na.pk, &err) != 0)
        abort();
    gm_netpolicy_free(&q);
    json_decref(settings);
    gm_netpolicy_free(&p);
    return 0;
}
