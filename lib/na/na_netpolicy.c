/* The network policy manifest at the NA: GET /policy (the Python reference's PolicyManifest,
 * include/gm/netpolicy.h). The signed document lives in the NA directory as
 * network-policy.json ('init' and 'policy create' write it); it is read once at start, issued
 * with the reference's defaults when there is none, and signed again with the same settings
 * when a previous NA key signed it. Served from memory: it does not change while the NA runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/netpolicy.h"
#include "gm/util.h"
#include "na_internal.h"

#define NETPOLICY_FILE "network-policy.json"

/* Issue from settings (consumed), write to path and keep it as the one served. */
static int issue_and_write(gm_na_t *na, json_t *settings, const char *path, gm_error *err)
{
    gm_netpolicy p;
    int rc = settings ? gm_netpolicy_issue(&p, &na->key, settings, gm_time_now(), err)
                      : gm_error_set(err, GM_ENOMEM, "out of memory");
    json_decref(settings);
    if (rc != 0)
        return rc;
    na->netpolicy_text = gm_netpolicy_dump(&p, 0);
    gm_netpolicy_free(&p);
    if (!na->netpolicy_text)
        return gm_error_set(err, GM_ENOMEM, "out of memory");
    return gm_file_write_atomic(path, na->netpolicy_text, strlen(na->netpolicy_text), 0644, err);
}

int na_netpolicy_bootstrap(gm_na_t *na, gm_error *err)
{
    char path[4200];
    gm_netpolicy p;
    int rc = gm_na_config_path(&na->cfg, NETPOLICY_FILE, path, sizeof path, err);
    if (rc != 0)
        return rc;
    if (!gm_file_exists(path)) {
        const char *version = json_string_value(json_object_get(na->genesis.doc, "network_version"));
        na_log(na, "%s: none yet; issuing the default network policy", path);
        return issue_and_write(na, gm_netpolicy_default_settings(na->genesis.network_name, version ? version : "v0"),
                               path, err);
    }
    if ((rc = gm_netpolicy_load(path, &p, err)) != 0)
        return gm_error_prefix(err, "fix or remove it; refusing to start");
    gm_error e2 = {0};
    if (gm_netpolicy_verify(&p, na->key.pk, &e2) != 0) {
        /* Signed by a previous NA key: every node would refuse it, so sign the same settings again. */
        static const char *const keep[] = {"policy_id", "min_client_version", "allowed_ports", "allowed_services",
                                           "routing"};
        json_t *settings = json_object();
        for (size_t i = 0; settings && i < sizeof keep / sizeof keep[0]; i++)
            json_object_set(settings, keep[i], json_object_get(p.doc, keep[i]));
        na_log(na, "%s: %s; issuing it again with this NA key", path, e2.msg);
        gm_netpolicy_free(&p);
        return issue_and_write(na, settings, path, err);
    }
    na->netpolicy_text = gm_netpolicy_dump(&p, 0);
    gm_netpolicy_free(&p);
    return na->netpolicy_text ? 0 : gm_error_set(err, GM_ENOMEM, "out of memory");
}

int na_handle_netpolicy(na_req *r)
{
    const char *text = r->na->netpolicy_text;
    if (!text)
        return na_reply_error(r, 503, "policy_unavailable", "no network policy has been issued");
    return na_reply_text(r, 200, "application/json", text, strlen(text));
}
