/* genesis-mesh mcp serve: an MCP server over stdio (JSON-RPC 2.0, one message per line) whose
 * tools are the capabilities the node at D can discover through the NA. A tool call is an
 * `ask` on the node's local API (docs/local-api.md): the node discovers, checks, invokes and
 * verifies the provenance, so this program holds no key. The tool list is re-read from the NA
 * every --refresh-ms and the client is sent notifications/tools/list_changed when it changed.
 * Tool names: docs/agents.md "MCP" (gm_mcp_tool_from_cap). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "gm/agent.h"
#include "gm/gmtime.h"
#include "gm/mcp.h"
#include "gm/node.h"
#include "gm/util.h"
#include "gm/version.h"

#define NA_TIMEOUT_MS 5000

struct mcp_server {
    char dir[1024], sock[1100], na_url[512];
    long refresh_ms, call_timeout_ms;
    pthread_mutex_t out_lock, tools_lock;
    json_t *tools; /* the tools/list array */
    atomic_int calls;
    int initialized;
};

static void out_line(struct mcp_server *s, json_t *msg)
{
    char *line = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!line)
        return;
    pthread_mutex_lock(&s->out_lock);
    fputs(line, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&s->out_lock);
    free(line);
}

static void reply(struct mcp_server *s, const json_t *id, json_t *result)
{
    out_line(s, json_pack("{s:s,s:O,s:o}", "jsonrpc", "2.0", "id", id, "result", result));
}

static void reply_error(struct mcp_server *s, const json_t *id, int code, const char *msg)
{
    out_line(s, json_pack("{s:s,s:O,s:{s:i,s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(), "error", "code",
                          code, "message", msg));
}

/* ---- the tool list ---- */

static json_t *tool_for(const char *cap, const json_t *metadata)
{
    char name[GM_MCP_TOOL_MAX + 1], desc[1200];
    gm_error e = {0};
    if (gm_mcp_tool_from_cap(cap, name, &e) != 0) {
        fprintf(stderr, "genesis-mesh mcp serve: capability %s is not offered as a tool: %s\n", cap, e.msg);
        return NULL;
    }
    const char *d = json_string_value(json_object_get(metadata, "description"));
    snprintf(desc, sizeof desc, "%s (genesis-mesh capability %s; the answer carries its verified provenance)",
             d && *d ? d : "A capability of agents on the mesh", cap);
    const json_t *schema = json_object_get(metadata, "input_schema");
    const char *type = json_string_value(json_object_get(schema, "type"));
    json_t *in = json_is_object(schema) && type && !strcmp(type, "object") ? json_deep_copy(schema)
                                                                         : json_pack("{s:s}", "type", "object");
    return json_pack("{s:s,s:s,s:s,s:o}", "name", name, "title", cap, "description", desc, "inputSchema", in);
}

/* The NA's registry as tools, one per capability (the first listed agent's metadata). */
static int list_tools(struct mcp_server *s, json_t **out, gm_error *err)
{
    json_t *listing = NULL;
    if (gm_agent_list(s->na_url, NULL, NA_TIMEOUT_MS, &listing, err) != 0)
        return err->code;
    json_t *by_name = json_object(), *tools = json_array();
    for (size_t i = 0; i < json_array_size(listing); i++) {
        const json_t *d = json_object_get(json_array_get(listing, i), "descriptor"),
                     *caps = json_object_get(d, "capabilities");
        for (size_t j = 0; j < json_array_size(caps); j++) {
            const char *cap = json_string_value(json_array_get(caps, j));
            json_t *t = cap ? tool_for(cap, json_object_get(d, "metadata")) : NULL;
            if (t && !json_object_get(by_name, json_string_value(json_object_get(t, "name")))) {
                json_object_set(by_name, json_string_value(json_object_get(t, "name")), t);
                json_array_append(tools, t);
            }
            json_decref(t);
        }
    }
    json_decref(by_name);
    json_decref(listing);
    *out = tools;
    return 0;
}

/* Re-read the registry; tell an initialized client when the tools changed. */
static void tools_refresh(struct mcp_server *s)
{
    json_t *tools = NULL;
    gm_error e = {0};
    if (list_tools(s, &tools, &e) != 0) {
        fprintf(stderr, "genesis-mesh mcp serve: cannot list the capabilities at %s: %s\n", s->na_url, e.msg);
        return;
    }
    pthread_mutex_lock(&s->tools_lock);
    int changed = !s->tools || !json_equal(s->tools, tools);
    json_decref(s->tools);
    s->tools = tools;
    pthread_mutex_unlock(&s->tools_lock);
    if (changed && s->initialized)
        out_line(s, json_pack("{s:s,s:s}", "jsonrpc", "2.0", "method", "notifications/tools/list_changed"));
}

/* ---- tools/call ---- */

struct call {
    struct mcp_server *s;
    json_t *id, *input;
    char cap[GM_AGENT_CAP_MAX + 1];
};

/* A formatted string of any length (NULL: out of memory); free() it. */
static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (p) {
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    return p;
}

static json_t *text_content(const char *text)
{
    return json_pack("[{s:s,s:s}]", "type", "text", "text", text);
}

/* The answer of ask as a tools/call result: the output, the provider and the provenance the
 * node verified, as structuredContent and as text. */
static json_t *call_result(const char *cap, const json_t *resp)
{
    const json_t *prov = json_object_get(resp, "provenance"), *provider = json_object_get(resp, "provider");
    const char *agent = json_string_value(json_object_get(provider, "agent_id"));
    const char *pk = json_string_value(json_object_get(provider, "node_public_key"));
    if (!json_is_true(json_object_get(resp, "ok"))) {
        const json_t *e = json_object_get(resp, "error");
        const char *code = json_string_value(json_object_get(e, "code")),
                   *pcode = json_string_value(json_object_get(e, "provider_code")),
                   *msg = json_string_value(json_object_get(e, "message"));
        char *text = strf("%s failed: %s%s%s: %s%s%s", cap, code ? code : "internal", pcode ? "/" : "",
                          pcode ? pcode : "", msg ? msg : "", agent ? "\nprovider: " : "", agent ? agent : "");
        if (!text)
            return NULL;
        json_t *r = json_pack("{s:o,s:b,s:{s:O,s:O*,s:O*}}", "content", text_content(text), "isError", 1,
                              "structuredContent", "error", e, "provider", provider, "provenance", prov);
        free(text);
        return r;
    }
    char *out = json_dumps(json_object_get(resp, "output"), JSON_COMPACT | JSON_ENCODE_ANY);
    size_t cap_len = 256 + 160 * json_array_size(prov);
    char *steps = calloc(1, cap_len);
    for (size_t i = 0; steps && i < json_array_size(prov); i++) {
        const json_t *st = json_array_get(prov, i);
        size_t n = strlen(steps);
        snprintf(steps + n, cap_len - n, "\n  %zu. %s %s %s, signed by %.12s...", i + 1,
                 json_string_value(json_object_get(st, "agent")), json_string_value(json_object_get(st, "action")),
                 json_string_value(json_object_get(st, "capability")),
                 json_string_value(json_object_get(st, "signer")));
    }
    char *text = strf("%s\n\nprovider: %s (node %s)\nprovenance (every signature and signer's certificate "
                      "verified by the node):%s",
                      out ? out : "null", agent ? agent : "?", pk ? pk : "?", steps ? steps : "");
    json_t *r = json_pack("{s:o,s:b,s:{s:O,s:O,s:O,s:O,s:b}}", "content", text_content(text ? text : "?"), "isError", 0,
                          "structuredContent", "output", json_object_get(resp, "output"), "provider", provider,
                          "provenance", prov, "certificates", json_object_get(resp, "certificates"), "verified", 1);
    free(out);
    free(text);
    free(steps);
    return r;
}

static void *call_run(void *arg)
{
    struct call *c = arg;
    struct mcp_server *s = c->s;
    gm_node_conn_t *conn = NULL;
    gm_error e = {0};
    json_t *resp = NULL, *req = json_pack("{s:s,s:s,s:s,s:O,s:I}", "op", "ask", "id", "ask", "capability", c->cap,
                                          "input", c->input, "deadline_ms", (json_int_t)s->call_timeout_ms);
    int rc = gm_node_conn_open_path(s->sock, &conn, &e);
    if (rc == 0)
        rc = gm_node_conn_hello(conn, NA_TIMEOUT_MS, &e);
    if (rc == 0)
        rc = gm_node_conn_request(conn, req, &resp, (int)s->call_timeout_ms + NA_TIMEOUT_MS, &e);
    json_t *result = rc == 0 ? call_result(c->cap, resp) : NULL;
    if (result) {
        reply(s, c->id, result);
    } else {
        char text[2000];
        snprintf(text, sizeof text, "%s failed: unavailable: the node at %s: %s", c->cap, s->dir,
                 rc ? e.msg : "out of memory");
        reply(s, c->id, json_pack("{s:o,s:b}", "content", text_content(text), "isError", 1));
    }
    gm_node_conn_close(conn);
    json_decref(req);
    json_decref(resp);
    json_decref(c->id);
    json_decref(c->input);
    free(c);
    atomic_fetch_sub(&s->calls, 1);
    return NULL;
}

static void tools_call(struct mcp_server *s, const json_t *id, const json_t *params)
{
    const char *name = json_string_value(json_object_get(params, "name"));
    const json_t *args = json_object_get(params, "arguments");
    gm_error e = {0};
    if (!name) {
        reply_error(s, id, GM_MCP_INVALID_PARAMS, "tools/call: \"name\" must be a string");
        return;
    }
    if (args && !json_is_object(args)) {
        reply_error(s, id, GM_MCP_INVALID_PARAMS, "tools/call: \"arguments\" must be an object");
        return;
    }
    struct call *c = calloc(1, sizeof *c);
    if (!c) {
        reply_error(s, id, GM_MCP_INTERNAL_ERROR, "out of memory");
        return;
    }
    if (gm_mcp_cap_from_tool(name, c->cap, &e) != 0) {
        free(c);
        reply_error(s, id, GM_MCP_INVALID_PARAMS, e.msg);
        return;
    }
    c->s = s;
    c->id = json_incref((json_t *)id);
    c->input = args ? json_incref((json_t *)args) : json_object();
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    atomic_fetch_add(&s->calls, 1);
    if (pthread_create(&th, &at, call_run, c) != 0) {
        atomic_fetch_sub(&s->calls, 1);
        json_decref(c->id);
        json_decref(c->input);
        free(c);
        reply_error(s, id, GM_MCP_INTERNAL_ERROR, "cannot start a thread for the call");
    }
    pthread_attr_destroy(&at);
}

/* ---- messages ---- */

static void on_request(struct mcp_server *s, const gm_mcp_msg *m)
{
    if (!strcmp(m->method, "initialize")) {
        const char *want = json_string_value(json_object_get(m->params, "protocolVersion"));
        const char *ver = GM_MCP_PROTOCOL_VERSION;
        for (size_t i = 0; want && gm_mcp_protocol_versions[i]; i++)
            if (!strcmp(want, gm_mcp_protocol_versions[i]))
                ver = gm_mcp_protocol_versions[i];
        s->initialized = 1;
        reply(s, m->id,
              json_pack("{s:s,s:{s:{s:b}},s:{s:s,s:s},s:s}", "protocolVersion", ver, "capabilities", "tools",
                        "listChanged", 1, "serverInfo", "name", "genesis-mesh", "version", gm_version(),
                        "instructions",
                        "Each tool is a capability served by agents on a genesis-mesh network. A call is routed "
                        "to a provider found by capability alone; the result names the provider and carries the "
                        "signed provenance, verified by the local node."));
    } else if (!strcmp(m->method, "ping")) {
        reply(s, m->id, json_object());
    } else if (!strcmp(m->method, "tools/list")) {
        pthread_mutex_lock(&s->tools_lock);
        json_t *tools = s->tools ? json_deep_copy(s->tools) : json_array();
        pthread_mutex_unlock(&s->tools_lock);
        reply(s, m->id, json_pack("{s:o}", "tools", tools));
    } else if (!strcmp(m->method, "tools/call")) {
        tools_call(s, m->id, m->params);
    } else {
        char msg[400];
        snprintf(msg, sizeof msg, "method not found: %.256s (this server has initialize, ping, tools/list, tools/call)",
                 m->method);
        reply_error(s, m->id, GM_MCP_METHOD_NOT_FOUND, msg);
    }
}

static void on_line(struct mcp_server *s, const char *line, size_t len)
{
    gm_mcp_msg m;
    const json_t *bad_id = NULL;
    gm_error e = {0};
    int rc = gm_mcp_parse(line, len, &m, &bad_id, &e);
    if (rc != 0) {
        fprintf(stderr, "genesis-mesh mcp serve: refused a message: %s\n", e.msg);
        reply_error(s, bad_id, rc == GM_EFORMAT ? GM_MCP_PARSE_ERROR : GM_MCP_INVALID_REQUEST, e.msg);
    } else if (m.kind == GM_MCP_REQUEST) {
        on_request(s, &m);
    } /* notifications (initialized, cancelled) and responses need no answer */
    gm_mcp_msg_free(&m);
}

static int mcp_serve(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", NULL);
    long long refresh, timeout;
    if (cli_int(a, "refresh-ms", 100, 3600000, 2000, &refresh) || cli_int(a, "timeout-ms", 1, 600000, 30000, &timeout))
        return 2;
    if (!dir)
        dir = getenv("GM_DIR") && *getenv("GM_DIR") ? getenv("GM_DIR") : ".";
    struct mcp_server s = {.refresh_ms = (long)refresh, .call_timeout_ms = (long)timeout};
    snprintf(s.dir, sizeof s.dir, "%s", dir);
    snprintf(s.sock, sizeof s.sock, "%s/node.sock", dir);
    char path[1200];
    snprintf(path, sizeof path, "%s/node.json", dir);
    gm_error err = {0};
    json_error_t je;
    json_t *cfg = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    const char *na = json_string_value(json_object_get(cfg, "na_url"));
    if (!na) {
        json_decref(cfg);
        gm_error_set(&err, GM_ENOTFOUND, "%s has no na_url (is %s a joined node directory?)", path, dir);
        return cli_fail("mcp serve", &err);
    }
    snprintf(s.na_url, sizeof s.na_url, "%s", na);
    json_decref(cfg);
    if (cli_na_trust(s.na_url, NULL, NULL, dir, &err) != 0)
        return cli_fail("mcp serve", &err);
    pthread_mutex_init(&s.out_lock, NULL);
    pthread_mutex_init(&s.tools_lock, NULL);
    signal(SIGPIPE, SIG_IGN);
    tools_refresh(&s);
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    int rc = 0, skipping = 0;
    int64_t next = gm_mono_ms() + s.refresh_ms;
    while (buf) {
        int64_t left = next - gm_mono_ms();
        struct pollfd p = {.fd = 0, .events = POLLIN};
        int pr = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (pr < 0 && errno != EINTR)
            break;
        if (gm_mono_ms() >= next) {
            tools_refresh(&s);
            next = gm_mono_ms() + s.refresh_ms;
        }
        if (pr <= 0)
            continue;
        if (len == cap) {
            size_t ncap = cap * 2 > GM_MCP_LINE_MAX + 2 ? GM_MCP_LINE_MAX + 2 : cap * 2;
            char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
            if (!nb) { /* a line over the limit: refuse it and skip to its end */
                reply_error(&s, NULL, GM_MCP_INVALID_REQUEST, "the message is over the limit of 1 MiB");
                len = 0;
                skipping = 1;
                continue;
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t k = read(0, buf + len, cap - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break; /* the client closed stdin: the session is over */
        len += (size_t)k;
        char *start = buf, *nl;
        while ((nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
            size_t n = (size_t)(nl - start);
            if (n && start[n - 1] == '\r')
                n--;
            if (!skipping && n)
                on_line(&s, start, n);
            skipping = 0;
            start = nl + 1;
        }
        len -= (size_t)(start - buf);
        memmove(buf, start, len);
    }
    if (!buf)
        rc = 1;
    /* let calls in flight answer before leaving */
    for (int i = 0; i < 200 && atomic_load(&s.calls) > 0; i++)
        gm_sleep_ms(50);
    free(buf);
    json_decref(s.tools);
    return rc;
}

static const cli_opt serve_opts[] = {
    {"dir", "D", "the node directory; its node must be running (default $GM_DIR or .)"},
    {"refresh-ms", "N", "re-read the NA's registry every N ms, 100..3600000 (default 2000)"},
    {"timeout-ms", "N", "deadline of each tool call in ms, 1..600000 (default 30000)"},
    {NULL},
};
static const cli_cmd mcp_serve_cmd = {
    "serve", "an MCP server (stdio) whose tools are the mesh's capabilities", "[--dir D] [--refresh-ms N] [--timeout-ms N]",
    "Speaks the Model Context Protocol on stdin/stdout. Its tools are the capabilities the node at D\n"
    "can discover through the NA (weather.forecast is the tool weather__forecast); a tool call asks\n"
    "the mesh through the node and returns the answer with the provider and the verified provenance.\n"
    "Clients are sent notifications/tools/list_changed when the registry changes. Logs go to stderr.\n",
    mcp_serve, serve_opts, 0, NULL};
static const cli_cmd *const mcp_subs[] = {&mcp_serve_cmd, NULL};
const cli_cmd cli_mcp = {"mcp", "the Model Context Protocol bridge (mcp serve)", NULL, NULL, NULL, NULL, 0, mcp_subs};
