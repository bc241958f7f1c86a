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

int gm_signer_generate(gm_signer *k, const char *key_id, gm_error *err) GM_MUST_CHECK;
void gm_signer_wipe(gm_signer *k);
/* Write base.key (0600, refuses to overwrite unless force) and base.pub. */
int gm_signer_save(const gm_signer *k, const char *base, int force, gm_error *err) GM_MUST_CHECK;
/* Load base.key (the key id comes from its "# Key ID:" comment, else default_key_id). */
int gm_signer_load(gm_signer *k, const char *base, const char *default_key_id, gm_error *err) GM_MUST_CHECK;

/* Public keys in base64 (44 chars). */
int gm_pk_decode(const char *b64, uint8_t pk[GM_PK_LEN], gm_error *err) GM_MUST_CHECK;
void gm_pk_encode(const uint8_t pk[GM_PK_LEN], char out[GM_PK_B64_LEN + 1]);
/* Load a .pub file (comments skipped). */
int gm_pk_load(const char *path, uint8_t pk[GM_PK_LEN], gm_error *err) GM_MUST_CHECK;

/* Detached signature, base64 (88 chars). */
void gm_sign_b64(const gm_signer *k, const uint8_t *msg, size_t len, char out[GM_SIG_B64_LEN + 1]);

#endif
