/* The NA's routing table: one line per endpoint. NA_ROUTE_LIMITED marks the endpoints that
 * anyone may call and that cost a signature check and a database transaction;
 * NA_ROUTE_READ_LIMITED the reads that take the store lock; NA_ROUTE_MEMBER the reads only a
 * member of the network may make (node-signed). Everything without ADMIN or MEMBER is public
 * on purpose (docs/na-api.md). */
#include <string.h>

#include "na_internal.h"

const na_route na_routes[] = {
    {"GET", "/health", 0, na_handle_health},
    {"GET", "/ready", 0, na_handle_ready},
    {"GET", "/genesis", 0, na_handle_genesis},
    {"GET", "/crl", 0, na_handle_crl},
    {"GET", "/access-policy", 0, na_handle_access_policy},
    {"GET", "/policy", 0, na_handle_netpolicy},
    {"GET", "/metrics", 0, na_handle_metrics},
    {"GET", "/log/checkpoint", NA_ROUTE_READ_LIMITED | NA_ROUTE_MEMBER, na_handle_log_checkpoint},
    {"GET", "/log/entries", NA_ROUTE_READ_LIMITED | NA_ROUTE_MEMBER, na_handle_log_entries},
    {"GET", "/log/proof", NA_ROUTE_READ_LIMITED | NA_ROUTE_MEMBER, na_handle_log_proof},
    {"GET", "/log/consistency", NA_ROUTE_READ_LIMITED | NA_ROUTE_MEMBER, na_handle_log_consistency},
    {"POST", "/join", NA_ROUTE_LIMITED, na_handle_join},
    {"POST", "/renew", NA_ROUTE_LIMITED, na_handle_renew},
    {"POST", "/heartbeat", NA_ROUTE_LIMITED, na_handle_heartbeat},
    {"POST", "/admin/invite", NA_ROUTE_ADMIN, na_handle_invite},
    {"POST", "/admin/revoke", NA_ROUTE_ADMIN, na_handle_revoke},
    {"POST", "/admin/policy", NA_ROUTE_ADMIN, na_handle_policy_set},
    {"GET", "/admin/nodes", NA_ROUTE_ADMIN, na_handle_nodes},
    {"POST", "/admin/clear-key", NA_ROUTE_ADMIN, na_handle_clear_key},
    {"POST", "/admin/genesis", NA_ROUTE_ADMIN, na_handle_genesis_publish},
    {"POST", "/agents", NA_ROUTE_LIMITED, na_handle_agents_register},
    {"GET", "/agents", NA_ROUTE_READ_LIMITED | NA_ROUTE_MEMBER, na_handle_agents_list},
    {"DELETE", "/agents/", NA_ROUTE_PREFIX | NA_ROUTE_LIMITED, na_handle_agents_delete},
    {"GET", "/console/api/state", 0, na_handle_console_state},
    {"GET", "/console", 0, na_handle_console_page},
    {"GET", "/console/", NA_ROUTE_PREFIX, na_handle_console_asset},
};
const size_t na_n_routes = sizeof na_routes / sizeof na_routes[0];

int na_route_find(const char *method, const char *path, int *path_known, const char **rest)
{
    *path_known = 0;
    *rest = "";
    for (size_t i = 0; i < na_n_routes; i++) {
        const na_route *rt = &na_routes[i];
        size_t n = strlen(rt->path);
        int match = (rt->flags & NA_ROUTE_PREFIX) ? strncmp(path, rt->path, n) == 0 : strcmp(path, rt->path) == 0;
        if (!match)
            continue;
        *path_known = 1;
        /* HEAD is a GET whose body MHD leaves out. */
        if (strcmp(method, rt->method) == 0 || (!strcmp(method, "HEAD") && !strcmp(rt->method, "GET"))) {
            if (rt->flags & NA_ROUTE_PREFIX)
                *rest = path + n;
            return (int)i;
        }
    }
    return -1;
}
