/* Signed documents: a JSON object with a "signatures" array of {key_id, sig} over its
 * canonical JSON without "signatures". Shared by genesis, certificates, CRLs, descriptors. */
#ifndef GM_SIGDOC_H
#define GM_SIGDOC_H

#include <jansson.h>

#include "gm/error.h"
#include "gm/keys.h"

/* Append a signature by k (key_id = k->key_id) to doc["signatures"]. */
int gm_sigdoc_sign(json_t *doc, const gm_signer *k, gm_error *err);
/* 0 if at least one signature verifies under pk. */
int gm_sigdoc_verify_any(const json_t *doc, const uint8_t pk[GM_PK_LEN], gm_error *err);
/* 0 if there is at least one signature and every one verifies under pk. */
int gm_sigdoc_verify_all(const json_t *doc, const uint8_t pk[GM_PK_LEN], gm_error *err);
/* Check doc["signatures"] is a well-formed array of {key_id: string, sig: 88-char base64}. */
int gm_sigdoc_check_shape(const json_t *doc, gm_error *err);

/* The one loader of signed documents: what a kind of document needs to be read. */
typedef struct gm_sigdoc_kind {
    const char *what;  /* "certificate", "CRL", ... (in messages) */
    size_t max_bytes;  /* larger text is refused with GM_ETOOBIG before parsing */
    size_t out_size;   /* sizeof the struct from_json fills (zeroed on every failure) */
    /* Normalize src into out (copies what it keeps); on failure out holds nothing to free. */
    int (*from_json)(const json_t *src, void *out, gm_error *err);
} gm_sigdoc_kind;

/* Strict JSON (duplicate members refused, at most k->max_bytes) handed to k->from_json. */
int gm_sigdoc_parse(const gm_sigdoc_kind *k, const char *text, size_t len, void *out, gm_error *err);
/* gm_sigdoc_parse of a file's contents; messages are prefixed with the path. */
int gm_sigdoc_load(const gm_sigdoc_kind *k, const char *path, void *out, gm_error *err);

/* Schema helpers used by the document parsers (strict types, clear messages). */
int gm_json_get_string(const json_t *obj, const char *key, const char **out, gm_error *err);
int gm_json_get_pk(const json_t *obj, const char *key, uint8_t pk[GM_PK_LEN], gm_error *err);
/* Replace obj[key] (a timestamp string) with its canonical rendering; *t receives the value. */
struct gm_time;
int gm_json_norm_time(json_t *obj, const char *key, struct gm_time *t, gm_error *err);
int gm_json_check_string_array(const json_t *arr, const char *what, gm_error *err);

#endif
