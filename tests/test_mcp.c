/* Tests for gm/mcp.h: JSON-RPC 2.0 lines parsed strictly (kinds, ids, refusals with the code
 * to answer and the id when it had one), and capability <-> MCP tool names that round-trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gm/mcp.h"

static int parse(const char *line, gm_mcp_msg *m, const json_t **bad_id, gm_error *e)
{
    return gm_mcp_parse(line, strlen(line), m, bad_id, e);
}

static void test_mcp_parse_kinds(void **state)
{
    (void)state;
    gm_mcp_msg m;
    const json_t *bad;
    gm_error e = {0};
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\",\"params\":{}}", &m, &bad, &e), 0);
    assert_int_equal(m.kind, GM_MCP_REQUEST);
    assert_string_equal(m.method, "tools/list");
    assert_int_equal(json_integer_value(m.id), 1);
    gm_mcp_msg_free(&m);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &m, &bad, &e), 0);
    assert_int_equal(m.kind, GM_MCP_NOTIFICATION);
    assert_null(m.id);
    gm_mcp_msg_free(&m);
    assert_int_equal(parse("{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":{}}", &m, &bad, &e), 0);
    assert_int_equal(m.kind, GM_MCP_RESPONSE);
    assert_non_null(m.result);
    gm_mcp_msg_free(&m);
}

static void expect_refused(const char *line, int rc, const char *why, int has_id)
{
    gm_mcp_msg m;
    const json_t *bad = NULL;
    gm_error e = {0};
    assert_int_equal(parse(line, &m, &bad, &e), rc);
    assert_non_null(strstr(e.msg, why));
    assert_int_equal(bad != NULL, has_id);
    gm_mcp_msg_free(&m);
}

static void test_mcp_parse_refuses(void **state)
{
    (void)state;
    expect_refused("not json", GM_EFORMAT, "not JSON", 0);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"ping\"}", GM_EFORMAT, "not JSON", 0);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"} x", GM_EFORMAT, "not JSON", 0);
    expect_refused("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]", GM_EINVAL, "batches", 0);
    expect_refused("{\"jsonrpc\":\"1.0\",\"id\":7,\"method\":\"ping\"}", GM_EINVAL, "\"jsonrpc\"", 1);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\",\"x\":1}", GM_EINVAL, "unknown member", 1);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"ping\"}", GM_EINVAL, "\"id\"", 0);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\",\"params\":[1]}", GM_EINVAL, "\"params\"", 1);
    expect_refused("{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{},\"error\":{\"code\":1,\"message\":\"m\"}}", GM_EINVAL,
                   "exactly one", 1);
    expect_refused("{\"jsonrpc\":\"2.0\"}", GM_EINVAL, "neither", 0);
}

static void test_mcp_tool_names_round_trip(void **state)
{
    (void)state;
    char tool[GM_MCP_TOOL_MAX + 1], cap[GM_AGENT_CAP_MAX + 1];
    gm_error e = {0};
    assert_int_equal(gm_mcp_tool_from_cap("weather.forecast", tool, &e), 0);
    assert_string_equal(tool, "weather__forecast");
    assert_int_equal(gm_mcp_cap_from_tool(tool, cap, &e), 0);
    assert_string_equal(cap, "weather.forecast");
    assert_int_equal(gm_mcp_tool_from_cap("weather:daily_max", tool, &e), 0);
    assert_string_equal(tool, "weather__daily_max");
    /* names that could not come back are refused both ways */
    assert_int_equal(gm_mcp_tool_from_cap("a__b.c", tool, &e), GM_EINVAL);
    assert_int_equal(gm_mcp_tool_from_cap("a_.b", tool, &e), GM_EINVAL);
    assert_int_equal(gm_mcp_cap_from_tool("a___b", cap, &e), GM_EINVAL);
    assert_int_equal(gm_mcp_cap_from_tool("Weather", cap, &e), GM_EINVAL);
    assert_int_equal(gm_mcp_cap_for_server_tool("fs", "Read File!", cap, &e), 0);
    assert_string_equal(cap, "fs.read-file-");
    assert_int_equal(gm_mcp_cap_for_server_tool(NULL, "shout", cap, &e), 0);
    assert_string_equal(cap, "shout");
    assert_int_equal(gm_mcp_cap_for_server_tool(NULL, "..", cap, &e), GM_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mcp_parse_kinds),
        cmocka_unit_test(test_mcp_parse_refuses),
        cmocka_unit_test(test_mcp_tool_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
