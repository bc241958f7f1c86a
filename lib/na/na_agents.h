/* The NA's agent registry (lib/na_agents.c): POST /agents, GET /agents?capability=C,
 * DELETE /agents/<agent_id | node key>. Its table is store migration 3. */
#ifndef GM_NA_AGENTS_H
#define GM_NA_AGENTS_H

#include "gm/error.h"
#include "store.h"

/* Drop every agent registered by node_pk_b64. Runs on the store's connection; call it with
 * the store lock held (inside a transaction). gm_na_new registers it as a revoke hook, so a
 * revocation removes the node's agents in the same transaction as the CRL update. */
int gm_na_agents_on_revoke(gm_store_t *store, const char *node_pk_b64, gm_error *err);

#endif
