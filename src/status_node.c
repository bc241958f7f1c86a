/* The running-node part of `genesis-mesh status`: asks D/node.sock for its status. */
#include <string.h>

#include "gm/node.h"
#include "status_node.h"

#define STATUS_TIMEOUT_MS 5000

int status_node_append(const char *dir, json_t *status, gm_error *err)
{
    json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL;
    int rc = gm_node_api_call(dir, req, &resp, STATUS_TIMEOUT_MS, err);
    json_decref(req);
    if (rc == GM_ENOTFOUND) {
        json_object_set_new(status, "running", json_false());
        gm_error_clear(err);
        return 0;
    }
    if (rc != 0)
        return rc;
    if (!json_is_true(json_object_get(resp, "ok"))) {
        json_decref(resp);
        return gm_error_set(err, GM_EPROTO, "the node refused the status request");
    }
    static const char *const keys[] = {"running", "crl_sequence", "peers", "routes", "metrics", "listen", "revoked", NULL};
    for (size_t i = 0; keys[i]; i++) {
        json_t *v = json_object_get(resp, keys[i]);
        if (v)
            json_object_set(status, keys[i], v);
    }
    json_decref(resp);
    return 0;
}
