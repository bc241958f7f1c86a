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

int gm_crl_parse(const char *text, size_t len, gm_crl *c, gm_error *err) GM_MUST_CHECK;
int gm_crl_load(const char *path, gm_crl *c, gm_error *err) GM_MUST_CHECK;
/* Signature under the genesis NA key. */
int gm_crl_verify(const gm_crl *c, const uint8_t na_pk[GM_PK_LEN], gm_error *err) GM_MUST_CHECK;
/* 1 if cert_id is revoked; *reason (optional) points into the CRL. */
int gm_crl_contains(const gm_crl *c, const char *cert_id, const char **reason);
void gm_crl_free(gm_crl *c);

#endif
