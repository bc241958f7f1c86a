/* Certificate revocation lists signed by the NA; sequence only goes up. */
#ifndef GM_CRL_H
#define GM_CRL_H

#include <jansson.h>
#include <stdint.h>

#include "gm/error.h"
#include "gm/gmtime.h"
#include "gm/keys.h"

/* The largest CRL anyone accepts (nodes, agents, the CLI), and so the largest the NA
 * publishes: a revocation that would make the CRL larger is refused at the NA. */
#define GM_CRL_MAX_BYTES (8 * 1024 * 1024)

typedef struct gm_crl {
    json_t *doc; /* normalized document (owned) */
    char crl_id[37];
    uint64_t sequence;
    gm_time issued_at, next_update;
    const char *issuer;
    size_t n_revoked;
} gm_crl;

/* 1 if reason is one of key_compromise, cessation_of_operation, superseded, unspecified. */
int gm_crl_reason_valid(const char *reason);

int gm_crl_parse(const char *text, size_t len, gm_crl *c, gm_error *err);
int gm_crl_from_json(const json_t *doc, gm_crl *c, gm_error *err); /* copies doc */
int gm_crl_load(const char *path, gm_crl *c, gm_error *err);
/* The one freshness rule: a CRL replaces the one held only with a strictly higher sequence
 * (have_current = 0: none is held, any CRL is newer). */
int gm_crl_is_newer(uint64_t sequence, int have_current, uint64_t current);
/* Build and sign a CRL. revoked is an array of {certificate_id, revoked_at, reason, issuer}
 * (borrowed, copied). next_update = issued_at + next_update_s. */
int gm_crl_issue(gm_crl *c, const gm_signer *na, uint64_t sequence, const json_t *revoked,
                 gm_time issued_at, int64_t next_update_s, gm_error *err);
/* Signature under the genesis NA key. */
int gm_crl_verify(const gm_crl *c, const uint8_t na_pk[GM_PK_LEN], gm_error *err);
/* 1 if cert_id is revoked; *reason (optional) points into the CRL. */
int gm_crl_contains(const gm_crl *c, const char *cert_id, const char **reason);
/* Compact JSON (exact bytes to serve / store), malloc'd. */
char *gm_crl_dump(const gm_crl *c, int pretty);
void gm_crl_free(gm_crl *c);

#endif
