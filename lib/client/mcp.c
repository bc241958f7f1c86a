/* JSON-RPC 2.0 messages of the MCP stdio transport, parsed strictly, and the names that carry
 * a capability as an MCP tool and back (gm/mcp.h). */
#include <ctype.h>
#include <string.h>

#include "gm/mcp.h"

const char *const gm_mcp_protocol_versions[] = {GM_MCP_PROTOCOL_VERSION, "2025-06-18", "2025-03-26", "2024-11-05", NULL};

void gm_mcp_msg_free(gm_mcp_msg *m)
{
    if (!m)
        return;
    json_decref(m->msg);
    memset(m, 0, sizeof *m);
}

static int valid_id(const json_t *id)
{
    if (json_is_integer(id))
        return 1;
    if (!json_is_string(id))
        return 0;
    size_t n = json_string_length(id);
    return n >= 1 && n <= 256;
}

int gm_mcp_parse(const char *line, size_t len, gm_mcp_msg *out, const json_t **bad_id, gm_error *err)
{
    memset(out, 0, sizeof *out);
    *bad_id = NULL;
    if (len > GM_MCP_LINE_MAX)
        return gm_error_set(err, GM_EFORMAT, "the message is %zu bytes, over the limit of %u", len, GM_MCP_LINE_MAX);
    json_error_t je;
    json_t *m = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!m)
        return gm_error_set(err, GM_EFORMAT, "not JSON: %s at byte %d", je.text, je.position);
    out->msg = m;
    if (json_is_array(m))
        return gm_error_set(err, GM_EINVAL, "JSON-RPC batches are not supported (MCP 2025-06-18 removed them)");
    if (!json_is_object(m))
        return gm_error_set(err, GM_EINVAL, "a JSON-RPC message must be an object");
    const json_t *id = json_object_get(m, "id");
    if (id && valid_id(id))
        *bad_id = id;
    const char *ver = json_string_value(json_object_get(m, "jsonrpc"));
    if (!ver || strcmp(ver, "2.0") != 0)
        return gm_error_set(err, GM_EINVAL, "\"jsonrpc\" must be \"2.0\"");
    const json_t *method = json_object_get(m, "method"), *params = json_object_get(m, "params"),
                 *result = json_object_get(m, "result"), *error = json_object_get(m, "error");
    const char *key;
    json_t *v;
    json_object_foreach(m, key, v)
    {
        if (strcmp(key, "jsonrpc") && strcmp(key, "id") && strcmp(key, "method") && strcmp(key, "params") &&
            strcmp(key, "result") && strcmp(key, "error"))
            return gm_error_set(err, GM_EINVAL, "unknown member \"%.40s\"", key);
    }
    if (id && !valid_id(id))
        return gm_error_set(err, GM_EINVAL, "\"id\" must be a string of 1 to 256 characters or an integer");
    if (method) {
        size_t n = json_string_length(method);
        if (!json_is_string(method) || n == 0 || n > 256 || strlen(json_string_value(method)) != n)
            return gm_error_set(err, GM_EINVAL, "\"method\" must be a string of 1 to 256 characters");
        if (result || error)
            return gm_error_set(err, GM_EINVAL, "a request has no \"result\" or \"error\"");
        if (params && !json_is_object(params))
            return gm_error_set(err, GM_EINVAL, "\"params\" must be an object");
        out->kind = id ? GM_MCP_REQUEST : GM_MCP_NOTIFICATION;
        out->method = json_string_value(method);
        out->params = params;
        out->id = id;
        *bad_id = NULL;
        return 0;
    }
    if (!id)
        return gm_error_set(err, GM_EINVAL, "neither \"method\" nor \"id\"");
    if (params || !result == !error)
        return gm_error_set(err, GM_EINVAL, "a response has exactly one of \"result\" and \"error\"");
    if (error && (!json_is_object(error) || !json_is_integer(json_object_get(error, "code")) ||
                  !json_is_string(json_object_get(error, "message"))))
        return gm_error_set(err, GM_EINVAL, "\"error\" must be an object with an integer code and a message");
    out->kind = GM_MCP_RESPONSE;
    out->id = id;
    out->result = result;
    out->error = error;
    *bad_id = NULL;
    return 0;
}

int gm_mcp_tool_from_cap(const char *cap, char out[GM_MCP_TOOL_MAX + 1], gm_error *err)
{
    char ncap[GM_AGENT_CAP_MAX + 1];
    if (gm_agent_cap_normalize(cap, ncap, err) != 0)
        return GM_EINVAL;
    size_t o = 0;
    for (const char *seg = ncap; *seg;) {
        size_t n = strcspn(seg, ".");
        int dunder = 0;
        for (size_t i = 0; i + 1 < n; i++)
            dunder |= seg[i] == '_' && seg[i + 1] == '_';
        if (seg[0] == '_' || seg[n - 1] == '_' || dunder)
            return gm_error_set(err, GM_EINVAL,
                                "capability %s has a segment that starts or ends with '_' or holds \"__\": no "
                                "MCP tool name carries it back unambiguously",
                                ncap);
        if (o + n + (seg[n] ? 2 : 0) > GM_MCP_TOOL_MAX)
            return gm_error_set(err, GM_EINVAL, "capability %s is too long for an MCP tool name", ncap);
        memcpy(out + o, seg, n);
        o += n;
        if (!seg[n])
            break;
        memcpy(out + o, "__", 2);
        o += 2;
        seg += n + 1;
    }
    out[o] = '\0';
    return 0;
}

int gm_mcp_cap_from_tool(const char *tool, char out[GM_AGENT_CAP_MAX + 1], gm_error *err)
{
    size_t o = 0, n = strlen(tool);
    if (n == 0 || n > GM_MCP_TOOL_MAX)
        return gm_error_set(err, GM_EINVAL, "unknown tool: not a genesis-mesh tool name");
    for (size_t i = 0; i < n; i++) {
        if (tool[i] == '_' && tool[i + 1] == '_') {
            out[o++] = '.';
            i++;
        } else {
            out[o++] = tool[i];
        }
    }
    out[o] = '\0';
    char back[GM_MCP_TOOL_MAX + 1];
    gm_error e = {0};
    if (gm_mcp_tool_from_cap(out, back, &e) != 0 || strcmp(back, tool) != 0)
        return gm_error_set(err, GM_EINVAL, "unknown tool %.64s: not a genesis-mesh tool name", tool);
    return 0;
}

int gm_mcp_cap_for_server_tool(const char *prefix, const char *tool, char out[GM_AGENT_CAP_MAX + 1], gm_error *err)
{
    char buf[2 * GM_AGENT_CAP_MAX + 2];
    size_t o = 0;
    if (prefix && *prefix)
        o = (size_t)snprintf(buf, sizeof buf, "%.64s.", prefix);
    for (const char *p = tool; *p && o < sizeof buf - 1; p++) {
        unsigned char c = (unsigned char)tolower((unsigned char)*p);
        buf[o++] = (isalnum(c) || c == '_' || c == '-' || c == '.') && c < 0x80 ? (char)c : '-';
    }
    buf[o] = '\0';
    if (o > GM_AGENT_CAP_MAX)
        return gm_error_set(err, GM_EINVAL, "tool %.64s: the capability %.80s... is over %d characters", tool, buf,
                            GM_AGENT_CAP_MAX);
    gm_error e = {0};
    if (gm_agent_cap_normalize(buf, out, &e) != 0)
        return gm_error_set(err, GM_EINVAL, "tool %.64s cannot be a capability: %s", tool, e.msg);
    return 0;
}
