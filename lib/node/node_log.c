/* Structured logs of the node runtime: component "node" of the one log (gm/log.h), with the
 * event name and its fields. A node given a log file of its own writes the same JSON lines there. */
#include <stdio.h>
#include <stdlib.h>

#include "gm/log.h"
#include "node_internal.h"
#include "core_internal.h"

void node_log(gm_node *n, gm_node_log_level lvl, const char *event, json_t *fields)
{
    if (lvl < n->log_level) {
        json_decref(fields);
        return;
    }
    if (!n->logf) {
        gm_log_event(lvl, "node", event, fields, NULL);
        return;
    }
    char ts[GM_TIME_STRLEN];
    gm_time now = gm_time_now();
    gm_time_format(&now, ts);
    gm_log_record rec = {.ts = ts, .level = lvl, .component = "node", .event = event, .msg = event,
                         .fields = json_is_object(fields) ? fields : NULL};
    gm_log_file lf = {.f = n->logf, .format = GM_LOG_FORMAT_JSON};
    gm_log_file_write(&lf, &rec);
    json_decref(fields);
}
