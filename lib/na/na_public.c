/* Public NA endpoints that need no authentication: GET /health (the process is alive) and
 * GET /ready (it can serve: the database answers and the NA key is inside its window). GET /genesis
 * is in na_genesis.c. */
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

int na_handle_ready(na_req *r)
{
    gm_error e = {0};
    int version = 0;
    if (gm_store_schema_version(r->na->store, &version, &e) != 0)
        return na_reply_json(r, 503, json_pack("{s:s,s:s,s:s}", "status", "not_ready", "reason", "database",
                                               "message", e.msg));
    if (gm_genesis_check_na_window(&r->na->genesis, r->now, &e) != 0)
        return na_reply_json(r, 503, json_pack("{s:s,s:s,s:s}", "status", "not_ready", "reason", "na_key",
                                               "message", e.msg));
    char until[GM_TIME_STRLEN];
    gm_time_format(&r->na->genesis.na_valid_to, until);
    return na_reply_json(r, 200, json_pack("{s:s,s:s}", "status", "ready", "na_key_valid_until", until));
}

