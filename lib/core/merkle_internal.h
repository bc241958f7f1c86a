/* Building the issuance log's proofs and checkpoints (the NA's side; verification is public in
 * gm/merkle.h). */
#ifndef GM_MERKLE_INTERNAL_H
#define GM_MERKLE_INTERNAL_H

#include "gm/merkle.h"

/* Audit path of leaf m in the tree of leaves[0..n); *count hashes in path. */
int gm_merkle_inclusion_proof(const gm_merkle_hash *leaves, uint64_t n, uint64_t m,
                              gm_merkle_hash path[GM_MERKLE_PROOF_MAX], size_t *count, gm_error *err);
/* Proof that the tree of size m is a prefix of the tree of size n (0 < m <= n). */
int gm_merkle_consistency_proof(const gm_merkle_hash *leaves, uint64_t m, uint64_t n,
                                gm_merkle_hash path[GM_MERKLE_PROOF_MAX], size_t *count, gm_error *err);
/* Sign a checkpoint of the tree of tree_size leaves with root. */
int gm_checkpoint_issue(gm_checkpoint *c, const gm_signer *na, const char *network_name, uint64_t tree_size,
                        const gm_merkle_hash root, gm_time now, gm_error *err);

#endif
