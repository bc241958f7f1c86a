/* Public NA endpoints that need no authentication: GET /health (GET /genesis is in
 * na_genesis.c). */
#include <stdlib.h>

#include "gm/version.h"
#include "na_internal.h"

int na_handle_health(na_req *r)
{
    char etag[80];
    uint64_t seq = 0;
    free(na_crl_cache_get(r->na, &seq, etag));
    return na_reply_json(r, 200,
                         json_pack("{s:s,s:s,s:s,s:I,s:s}", "status", "ok", "network_name", r->na->cfg.network_name,
                                   "na_public_key", r->na->key.pk_b64, "crl_sequence", (json_int_t)seq,
                                   "version", gm_version()));
}
