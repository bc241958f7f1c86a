/* Fuzz target for the issuance log: the input is tried as a signed checkpoint (parse, verify,
 * dump -> parse round trip with the same fields) and as a proof (sizes, an index and a path of
 * hashes from the bytes), which the verifiers must refuse without crashing unless it is a real
 * proof of the tree of leaves they are checked against. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gm/merkle.h"
#include "merkle_internal.h"

static gm_merkle_hash leaves[64];
static int ready;

static void setup(void)
{
    for (int i = 0; i < 64; i++) {
        uint8_t b = (uint8_t)i;
        gm_merkle_leaf_hash(&b, 1, leaves[i]);
    }
    ready = 1;
}

static uint64_t u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void try_checkpoint(const uint8_t *data, size_t size)
{
    gm_checkpoint c, back;
    uint8_t pk[GM_PK_LEN] = {0};
    if (gm_checkpoint_parse((const char *)data, size, &c, NULL) != 0)
        return;
    if (gm_checkpoint_verify(&c, pk, "TESTNET", NULL) == 0) /* nothing verifies under an all-zero key */
        abort();
    char *t = gm_checkpoint_dump(&c, 0);
    if (!t || gm_checkpoint_parse(t, strlen(t), &back, NULL) != 0)
        abort();
    if (back.tree_size != c.tree_size || memcmp(back.root, c.root, GM_MERKLE_HASH_LEN) != 0 ||
        strcmp(back.network_name, c.network_name) != 0)
        abort();
    gm_checkpoint_free(&back);
    free(t);
    gm_checkpoint_free(&c);
}

static void try_proofs(const uint8_t *data, size_t size)
{
    if (size < 17)
        return;
    uint64_t m = u64(data) % 70, n = u64(data + 8) % 70;
    size_t count = (size - 17) / GM_MERKLE_HASH_LEN;
    if (count > GM_MERKLE_PROOF_MAX)
        count = GM_MERKLE_PROOF_MAX;
    gm_merkle_hash path[GM_MERKLE_PROOF_MAX], root_m, root_n;
    memcpy(path, data + 17, count * GM_MERKLE_HASH_LEN);
    gm_merkle_root(leaves, m < 64 ? m : 64, root_m);
    gm_merkle_root(leaves, n < 64 ? n : 64, root_n);
    /* a fuzzed path verifies only if it is the real one (proofs are unique) */
    if (n <= 64 && m < n && gm_merkle_verify_inclusion(leaves[m], m, n, path, count, root_n, NULL) == 0) {
        gm_merkle_hash real[GM_MERKLE_PROOF_MAX];
        size_t rc = 0;
        if (gm_merkle_inclusion_proof(leaves, n, m, real, &rc, NULL) != 0 || rc != count ||
            memcmp(real, path, count * GM_MERKLE_HASH_LEN) != 0)
            abort();
    }
    if (gm_merkle_verify_consistency(m, n, root_m, root_n, path, count, NULL) == 0 && m > 0 && m < n && n <= 64) {
        gm_merkle_hash real[GM_MERKLE_PROOF_MAX];
        size_t rc = 0;
        if (gm_merkle_consistency_proof(leaves, m, n, real, &rc, NULL) != 0 || rc != count ||
            memcmp(real, path, count * GM_MERKLE_HASH_LEN) != 0)
            abort();
    }
    char hex[2 * GM_MERKLE_HASH_LEN + 1];
    memcpy(hex, data + 1, size - 1 < sizeof hex - 1 ? size - 1 : sizeof hex - 1);
    hex[size - 1 < sizeof hex - 1 ? size - 1 : sizeof hex - 1] = '\0';
    gm_merkle_hash h;
    if (gm_merkle_unhex(hex, h, NULL) == 0) { /* only the canonical spelling is accepted */
        char again[2 * GM_MERKLE_HASH_LEN + 1];
        gm_merkle_hex(h, again);
        if (strcmp(again, hex) != 0)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    if (size > 0 && data[0] == '{')
        try_checkpoint(data, size);
    else
        try_proofs(data, size);
    return 0;
}
