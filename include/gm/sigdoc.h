/* Signed documents: a JSON object with a "signatures" array of {key_id, sig} over its
 * canonical JSON without "signatures". Shared by genesis, certificates, CRLs, descriptors. */
#ifndef GM_SIGDOC_H
#define GM_SIGDOC_H

#include <jansson.h>

#include "gm/error.h"
#include "gm/keys.h"

/* 0 if there is at least one signature and every one verifies under pk. */
int gm_sigdoc_verify_all(const json_t *doc, const uint8_t pk[GM_PK_LEN], gm_error *err) GM_MUST_CHECK;

#endif
