/* The Model Context Protocol (MCP) pieces the mesh's MCP bridges share (`genesis-mesh mcp
 * serve`, `agent run --mcp`, docs/agents.md "MCP"): strict parsing of one JSON-RPC 2.0 message
 * (a line of the stdio transport) and the mapping between capability names and MCP tool names. */
#ifndef GM_MCP_H
#define GM_MCP_H

#include <jansson.h>
#include <stddef.h>

#include "gm/agent.h"
#include "gm/error.h"

/* The newest MCP protocol revision spoken, and the others accepted from a peer. */
#define GM_MCP_PROTOCOL_VERSION "2025-11-25"
extern const char *const gm_mcp_protocol_versions[]; /* NULL-terminated, newest first */

#define GM_MCP_LINE_MAX (1u << 20) /* one JSON-RPC message line */
#define GM_MCP_TOOL_MAX 64         /* characters of a tool name we produce */

/* JSON-RPC 2.0 error codes. */
enum {
    GM_MCP_PARSE_ERROR = -32700,
    GM_MCP_INVALID_REQUEST = -32600,
    GM_MCP_METHOD_NOT_FOUND = -32601,
    GM_MCP_INVALID_PARAMS = -32602,
    GM_MCP_INTERNAL_ERROR = -32603,
};

typedef enum { GM_MCP_REQUEST = 1, GM_MCP_NOTIFICATION, GM_MCP_RESPONSE } gm_mcp_kind;

/* One parsed message; the pointers borrow from msg (owned, freed by gm_mcp_msg_free). */
typedef struct {
    gm_mcp_kind kind;
    json_t *msg;
    const json_t *id;     /* request/response: a string or an integer (NULL: a notification) */
    const char *method;   /* request/notification */
    const json_t *params; /* an object, or NULL */
    const json_t *result; /* response: exactly one of result and error */
    const json_t *error;
} gm_mcp_msg;

/* Parse one line strictly: a JSON object (no duplicate members, no trailing data, at most
 * GM_MCP_LINE_MAX bytes) with "jsonrpc":"2.0" and the members of a request, a notification or
 * a response, nothing else at the top level. Batches (arrays) are refused. Returns 0, or
 * GM_EFORMAT (not JSON: answer GM_MCP_PARSE_ERROR) or GM_EINVAL (JSON, but not a valid
 * message: answer GM_MCP_INVALID_REQUEST, with *bad_id the request's id when it had a valid
 * one, else NULL; borrowed from out->msg, which is then kept for the caller to free). */
int gm_mcp_parse(const char *line, size_t len, gm_mcp_msg *out, const json_t **bad_id, gm_error *err);
void gm_mcp_msg_free(gm_mcp_msg *m);

/* A capability as an MCP tool name: each '.' between segments becomes "__" (weather.forecast ->
 * weather__forecast). Capabilities a tool name cannot carry back unambiguously (a segment that
 * starts or ends with '_' or holds "__") are refused: GM_EINVAL. */
int gm_mcp_tool_from_cap(const char *cap, char out[GM_MCP_TOOL_MAX + 1], gm_error *err);
/* The inverse of gm_mcp_tool_from_cap ("__" -> '.'); GM_EINVAL when tool is not such a name. */
int gm_mcp_cap_from_tool(const char *tool, char out[GM_AGENT_CAP_MAX + 1], gm_error *err);
/* An MCP server's tool name as a capability segment: lower case, every character outside
 * [a-z0-9_-] (and '.') becomes '-', at most max_len characters; prefix (may be NULL) and '.'
 * in front. GM_EINVAL when the result is not a valid capability. */
int gm_mcp_cap_for_server_tool(const char *prefix, const char *tool, char out[GM_AGENT_CAP_MAX + 1], gm_error *err);

#endif
