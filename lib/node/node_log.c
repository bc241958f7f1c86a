/* Structured logs of the node runtime: one JSON object per line ({"ts","level","event",...}). */
#include <stdio.h>
#include <stdlib.h>

#include "node_internal.h"

static const char *level_name(gm_node_log_level l)
{
    switch (l) {
    case GM_LOG_DEBUG: return "debug";
    case GM_LOG_INFO: return "info";
    case GM_LOG_WARN: return "warn";
    default: return "error";
    }
}

void node_log(gm_node *n, gm_node_log_level lvl, const char *event, json_t *fields)
{
    if (lvl < n->log_level) {
        json_decref(fields);
        return;
    }
    json_t *o = json_object();
    char ts[GM_TIME_STRLEN];
    gm_time now = gm_time_now();
    gm_time_format(&now, ts);
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_name(lvl)));
    json_object_set_new(o, "event", json_string(event));
    if (json_is_object(fields))
        json_object_update(o, fields);
    json_decref(fields);
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (line) {
        FILE *f = n->logf ? n->logf : stderr;
        fprintf(f, "%s\n", line);
        fflush(f);
        free(line);
    }
}
