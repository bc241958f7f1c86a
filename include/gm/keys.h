/* Ed25519 keys: generation, key files (P.key 0600 + P.pub), signing and verifying in base64. */
#ifndef GM_KEYS_H
#define GM_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "gm/error.h"

#define GM_PK_LEN 32
#define GM_SEED_LEN 32
#define GM_SIG_LEN 64
#define GM_PK_B64_LEN 44
#define GM_SIG_B64_LEN 88
#define GM_KEY_ID_MAX 128

/* A signing key. Holds the secret: wipe with gm_signer_wipe() when done. */
typedef struct gm_signer {
    uint8_t pk[GM_PK_LEN];
    uint8_t sk[64]; /* libsodium secret key: seed || pk */
    char key_id[GM_KEY_ID_MAX];
    char pk_b64[GM_PK_B64_LEN + 1];
} gm_signer;

int gm_signer_generate(gm_signer *k, const char *key_id, gm_error *err);
int gm_signer_from_seed(gm_signer *k, const uint8_t seed[GM_SEED_LEN], const char *key_id, gm_error *err);
void gm_signer_wipe(gm_signer *k);
/* Write base.key (0600, refuses to overwrite unless force) and base.pub. */
int gm_signer_save(const gm_signer *k, const char *base, int force, gm_error *err);
/* Load base.key (the key id comes from its "# Key ID:" comment, else default_key_id). */
int gm_signer_load(gm_signer *k, const char *base, const char *default_key_id, gm_error *err);

/* Public keys in base64 (44 chars). */
int gm_pk_decode(const char *b64, uint8_t pk[GM_PK_LEN], gm_error *err);
void gm_pk_encode(const uint8_t pk[GM_PK_LEN], char out[GM_PK_B64_LEN + 1]);
/* Load a .pub file (comments skipped). */
int gm_pk_load(const char *path, uint8_t pk[GM_PK_LEN], gm_error *err);
/* Parse the text of a .pub file (as gm_pk_load does after reading it). */
int gm_pk_parse_text(const char *text, uint8_t pk[GM_PK_LEN], gm_error *err);

/* Detached signature, base64 (88 chars). */
void gm_sign_b64(const gm_signer *k, const uint8_t *msg, size_t len, char out[GM_SIG_B64_LEN + 1]);
/* 0 if sig_b64 is a valid signature of msg by pk, else GM_ESIG (or GM_EFORMAT for bad base64). */
int gm_verify_b64(const uint8_t pk[GM_PK_LEN], const uint8_t *msg, size_t len, const char *sig_b64,
                  gm_error *err);

#endif
