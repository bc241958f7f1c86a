/* Fuzz target for the signed-document parsers: the input is tried as a genesis block, a join
 * certificate and a CRL. Whatever parses must dump canonically, verify without crashing, and
 * survive a dump -> parse round trip with the same signed bytes (else abort). Timestamps and
 * base64 found in the input are exercised too. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/canon.h"
#include "gm/cert.h"
#include "gm/crl.h"
#include "gm/genesis.h"
#include "gm/gmtime.h"
#include "gm/util.h"
#include "core_internal.h"

static gm_genesis genesis; /* TESTNET, NA = spec seed 0x40..0x5f */
static gm_crl spec_crl;
static int ready;

static const char spec_crl_json[] =
    "{\"crl_id\":\"00000000-0000-4000-8000-0000000000dd\",\"issued_at\":\"2026-06-06T10:05:00.500000Z\","
    "\"issuer\":\"na-local\",\"next_update\":\"2026-06-07T10:05:00.500000Z\",\"revoked_certificates\":"
    "[{\"certificate_id\":\"00000000-0000-4000-8000-0000000000cc\",\"issuer\":\"na-local\",\"reason\":"
    "\"key_compromise\",\"revoked_at\":\"2026-06-06T10:05:00.250000Z\"}],\"sequence\":1,\"signatures\":"
    "[{\"key_id\":\"na-local\",\"sig\":\"6YYcQL3hSOH7sgp8let2vfCPNmJvCfDuaBEhi2VNqWGBB1jo3z1gglj3jcgj29lz0vsZKCjWbQnCP5X/"
    "D1kGAw==\"}]}";

static void setup(void)
{
    uint8_t seed[GM_SEED_LEN];
    gm_signer root, na;
    gm_error err = {0};
    for (int i = 0; i < GM_SEED_LEN; i++)
        seed[i] = (uint8_t)i;
    if (gm_signer_from_seed(&root, seed, "rs-local", &err) != 0)
        abort();
    for (int i = 0; i < GM_SEED_LEN; i++)
        seed[i] = (uint8_t)(0x40 + i);
    if (gm_signer_from_seed(&na, seed, "na-local", &err) != 0)
        abort();
    gm_time from = gm_time_from_unix(1780000000);
    if (gm_genesis_create(&genesis, "TESTNET", root.pk, na.pk, from, gm_time_add(from, 365 * 86400), NULL, &err) != 0 ||
        gm_genesis_sign(&genesis, &root, &err) != 0 ||
        gm_crl_parse(spec_crl_json, strlen(spec_crl_json), &spec_crl, &err) != 0)
        abort();
    gm_signer_wipe(&root);
    gm_signer_wipe(&na);
    ready = 1;
}

/* The signed bytes of a normalized document; NULL if it has none (must not happen). */
static char *signed_bytes(const json_t *doc)
{
    char *out = NULL;
    size_t len;
    gm_error err = {0};
    if (gm_canon_dump_unsigned(doc, &out, &len, &err) != 0)
        return NULL;
    return out;
}

static void same_or_abort(const json_t *a, const json_t *b)
{
    char *x = signed_bytes(a), *y = signed_bytes(b);
    if (!x || !y || strcmp(x, y) != 0)
        abort(); /* the normalized form is not stable: a signature would break on re-parse */
    free(x);
    free(y);
}

static void try_genesis(const char *text, size_t len)
{
    gm_genesis g, back;
    gm_error err = {0};
    uint8_t hash[32];
    if (gm_genesis_parse(text, len, &g, &err) != 0)
        return;
    char *bytes = signed_bytes(g.doc);
    if (!bytes)
        abort();
    free(bytes);
    /* Any verdict is fine on fuzzed input (warn_unused_result: a (void) cast would not do). */
    if (gm_genesis_verify(&g, &err) != 0 || gm_genesis_check_na_window(&g, gm_time_now(), &err) != 0) {
    }
    if (gm_genesis_hash(&g, hash, &err) != 0)
        abort();
    char *dump = gm_genesis_dump(&g);
    if (!dump || gm_genesis_parse(dump, strlen(dump), &back, &err) != 0)
        abort();
    same_or_abort(g.doc, back.doc);
    free(dump);
    gm_genesis_free(&back);
    gm_genesis_free(&g);
}

static void try_cert(const char *text, size_t len)
{
    gm_cert c, back;
    gm_error err = {0};
    if (gm_cert_parse(text, len, &c, &err) != 0)
        return;
    char *bytes = signed_bytes(c.doc);
    if (!bytes)
        abort();
    free(bytes);
    /* Any verdict is fine on fuzzed input; both checks run. */
    if (gm_cert_verify(&c, &genesis, NULL, gm_time_now(), &err) != 0) {
    }
    if (gm_cert_verify(&c, &genesis, &spec_crl, c.issued_at, &err) != 0) {
    }
    for (size_t i = 0; i < c.n_roles; i++)
        if (!gm_cert_role(&c, i) || !gm_cert_has_role(&c, gm_cert_role(&c, i)))
            abort();
    char *dump = gm_cert_dump(&c, 0);
    if (!dump || gm_cert_parse(dump, strlen(dump), &back, &err) != 0)
        abort();
    same_or_abort(c.doc, back.doc);
    free(dump);
    gm_cert_free(&back);
    gm_cert_free(&c);
}

static void try_crl(const char *text, size_t len)
{
    gm_crl c, back;
    gm_error err = {0};
    if (gm_crl_parse(text, len, &c, &err) != 0)
        return;
    char *bytes = signed_bytes(c.doc);
    if (!bytes)
        abort();
    free(bytes);
    if (gm_crl_verify(&c, genesis.na_pk, &err) != 0) {
        /* any verdict is fine on fuzzed input */
    }
    (void)gm_crl_contains(&c, "00000000-0000-4000-8000-0000000000cc", NULL);
    char *dump = gm_crl_dump(&c, 1);
    if (!dump || gm_crl_parse(dump, strlen(dump), &back, &err) != 0)
        abort();
    same_or_abort(c.doc, back.doc);
    free(dump);
    gm_crl_free(&back);
    gm_crl_free(&c);
}

/* Short inputs double as a timestamp and a base64 string. */
static void try_scalars(const char *s)
{
    gm_time t, u;
    gm_error err = {0};
    char a[GM_TIME_STRLEN], b[GM_TIME_STRLEN];
    if (gm_time_parse(s, &t, &err) == 0) {
        gm_time_format(&t, a);
        if (gm_time_parse(a, &u, &err) != 0)
            abort();
        gm_time_format(&u, b);
        if (strcmp(a, b) != 0 || gm_time_cmp(&t, &u) != 0)
            abort();
    }
    uint8_t out[256];
    size_t n;
    if (gm_b64_decode(s, out, sizeof out, &n, &err) == 0) {
        char back[512];
        gm_b64_encode(out, n, back, sizeof back);
        if (strcmp(back, s) != 0)
            abort(); /* the decoder accepted a non-canonical form */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    /* the parsers take a length; a NUL-terminated copy serves the string helpers */
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    try_genesis(text, size);
    try_cert(text, size);
    try_crl(text, size);
    if (size < 300)
        try_scalars(text);
    free(text);
    return 0;
}
