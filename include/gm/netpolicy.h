/* The network policy manifest: the Python reference's PolicyManifest (served at GET /policy),
 * signed by the NA with the same canonical recipe as certificates and CRLs. It says which
 * ports, services and transports a network expects and the oldest client it serves; nothing
 * in our runtime enforces it (that is the access policy, gm/policy.h). No expiry. */
#ifndef GM_NETPOLICY_H
#define GM_NETPOLICY_H

#include <jansson.h>

#include "gm/error.h"
#include "gm/gmtime.h"
#include "gm/keys.h"

#define GM_NETPOLICY_MAX_BYTES (256 * 1024)
#define GM_NETPOLICY_MAX_ITEMS 1024 /* ports, services or transports in one list */
#define GM_NETPOLICY_STR_MAX 256    /* characters of one string member */
#define GM_NETPOLICY_MAX_HOPS 255

typedef struct gm_netpolicy {
    json_t *doc;           /* normalized document (owned) */
    const char *policy_id; /* points into doc */
    const char *issued_by; /* NA key id */
    gm_time issued_at;
} gm_netpolicy;

/* Parse and normalize: every member of the reference's model, defaults filled for the
 * optional ones (min_client_version "0.1.0", allowed_ports [443, 8443], allowed_services [],
 * routing {preferred_transports ["quic","wireguard"], max_hops 6}), unknown members dropped
 * (formats.md), timestamps canonical, types and bounds strict. Does not verify. */
int gm_netpolicy_parse(const char *text, size_t len, gm_netpolicy *p, gm_error *err);
int gm_netpolicy_load(const char *path, gm_netpolicy *p, gm_error *err);
/* The reference's default settings for a network: policy_id "policy-<name>-<version>" (no
 * version: "v0"),
 * min_client_version "0.1.0", ports [443, 8443], services ["service-1", "service-2"]. */
json_t *gm_netpolicy_default_settings(const char *network_name, const char *network_version);
/* Build and sign a manifest issued now by na from settings (members as in the document, all
 * optional except policy_id; borrowed). Errors name the bad setting. */
int gm_netpolicy_issue(gm_netpolicy *p, const gm_signer *na, const json_t *settings, gm_time issued_at,
                       gm_error *err);
/* Signature under the genesis NA key. */
int gm_netpolicy_verify(const gm_netpolicy *p, const uint8_t na_pk[GM_PK_LEN], gm_error *err);
/* Compact (or pretty) JSON with sorted keys, malloc'd. */
char *gm_netpolicy_dump(const gm_netpolicy *p, int pretty);
void gm_netpolicy_free(gm_netpolicy *p);

#endif
