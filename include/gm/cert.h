/* Join certificates: the NA's signed statement that a node key holds roles in a network. */
#ifndef GM_CERT_H
#define GM_CERT_H

#include <jansson.h>
#include <stdint.h>

#include "gm/crl.h"
#include "gm/error.h"
#include "gm/genesis.h"
#include "gm/gmtime.h"
#include "gm/keys.h"

typedef struct gm_cert {
    json_t *doc; /* normalized document (owned) */
    char cert_id[37];
    uint8_t node_pk[GM_PK_LEN];
    char node_pk_b64[GM_PK_B64_LEN + 1];
    const char *network_name;
    const char *issued_by;
    gm_time issued_at, expires_at;
    size_t n_roles;
} gm_cert;

int gm_cert_from_json(const json_t *doc, gm_cert *c, gm_error *err) GM_MUST_CHECK; /* copies doc */
int gm_cert_load(const char *path, gm_cert *c, gm_error *err) GM_MUST_CHECK;
/* Full check: NA signature under the genesis NA key, network name, validity window at now
 * (GM_CLOCK_SKEW_S each side), and not on crl (crl may be NULL). Returns GM_ESIG, GM_EFORMAT,
 * GM_EEXPIRED or GM_EREVOKED with a message saying which. */
int gm_cert_verify(const gm_cert *c, const gm_genesis *g, const gm_crl *crl, gm_time now,
                   gm_error *err) GM_MUST_CHECK;
const char *gm_cert_role(const gm_cert *c, size_t i);
char *gm_cert_dump(const gm_cert *c, int pretty) GM_MUST_CHECK;
void gm_cert_free(gm_cert *c);

#endif
