/* Fuzz target for the MCP bridges' parsers (gm/mcp.h): one JSON-RPC 2.0 line (gm_mcp_parse)
 * and the capability <-> tool name mappings. The first input byte picks:
 *   0  a message line: a parsed message is exactly one kind with the members of that kind
 *      (request: id and method; notification: method, no id; response: id and exactly one of
 *      result and error); params is an object or absent; a refused one never has a method;
 *   1  a tool name: gm_mcp_cap_from_tool, and when it maps, the capability maps back to it;
 *   2  a server's tool name: gm_mcp_cap_for_server_tool gives a valid capability.
 * abort() on a broken invariant. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/mcp.h"

#define FAIL(why)                                                                  \
    do {                                                                           \
        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, why); \
        abort();                                                                   \
    } while (0)

static void message(const uint8_t *data, size_t size)
{
    gm_mcp_msg m;
    const json_t *bad_id = NULL;
    gm_error e = {0};
    int rc = gm_mcp_parse((const char *)data, size, &m, &bad_id, &e);
    if (rc == 0) {
        if (m.kind == GM_MCP_REQUEST && (!m.id || !m.method))
            FAIL("a request without id or method");
        if (m.kind == GM_MCP_NOTIFICATION && (m.id || !m.method))
            FAIL("a notification with an id or without a method");
        if (m.kind == GM_MCP_RESPONSE && (!m.id || m.method || !m.result == !m.error))
            FAIL("a response that is not exactly one of result and error");
        if (m.params && !json_is_object(m.params))
            FAIL("params that are not an object");
        if (bad_id)
            FAIL("bad_id set on an accepted message");
    } else {
        if (rc != GM_EFORMAT && rc != GM_EINVAL)
            FAIL("an unexpected error code");
        if (!e.msg[0])
            FAIL("a refusal without a message");
        if (bad_id && !json_is_integer(bad_id) && !json_is_string(bad_id))
            FAIL("bad_id that is not a valid id");
    }
    gm_mcp_msg_free(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t kind = data[0] % 3;
    data++;
    size--;
    if (kind == 0) {
        message(data, size);
        return 0;
    }
    char text[256];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    char cap[GM_AGENT_CAP_MAX + 1], tool[GM_MCP_TOOL_MAX + 1], norm[GM_AGENT_CAP_MAX + 1];
    gm_error e = {0};
    if (kind == 1) {
        if (gm_mcp_cap_from_tool(text, cap, &e) == 0) {
            if (gm_mcp_tool_from_cap(cap, tool, &e) != 0 || strcmp(tool, text) != 0)
                FAIL("a tool name that does not map back to itself");
        }
    } else if (gm_mcp_cap_for_server_tool(n % 2 ? "srv" : NULL, text, cap, &e) == 0) {
        if (gm_agent_cap_normalize(cap, norm, &e) != 0 || strcmp(norm, cap) != 0)
            FAIL("a server tool mapped to an invalid capability");
    }
    return 0;
}
