/* gm-agent-mcp: offers each tool of an MCP server on the mesh (`agent run --mcp 'CMD ARGS'`).
 * Starts the MCP server program with its stdin/stdout as the stdio transport (JSON-RPC 2.0, one
 * message a line; its stderr goes to this agent's stderr), `initialize`s it, lists its tools and
 * provides each as a capability through the node's local API version 2 ([--capability P.]tool,
 * with the tool's description and input schema); each request is forwarded as `tools/call`
 * and its result answered (structuredContent, else the content). An MCP server that exits is
 * restarted with a growing delay (1 s, 2 s, 4 s ... at most --max-restarts times in a row);
 * meanwhile and for the calls it had in flight, requesters get error answers and the log says
 * why. The node signs; this program holds no key. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_cli.h"
#include "gm/argv.h"
#include "gm/gmtime.h"
#include "gm/mcp.h"
#include "gm/node.h"
#include "gm/util.h"
#include "gm/version.h"

#define RPC_TIMEOUT_MS 30000
#define LOCAL_API_TIMEOUT_MS 15000
#define MAX_TOOLS 16 /* the node's provides_max */
#define MAX_PENDING 256

enum { OPT_MCP = 1, OPT_MAX_RESTARTS };

struct pending {
    json_int_t id; /* 0: free */
    char request_id[40];
    json_t *resp; /* set by the reader (init/list calls only) */
    int wait;     /* the main thread waits for resp */
};

struct mcp_agent {
    struct agent_cli cli;
    const char *mcp;
    char **argv;
    long max_restarts;
    gm_node_conn_t *conn;
    pthread_mutex_t lock; /* pending, child, sends to the node */
    pid_t pid;
    int to_child, from_child;
    atomic_int alive;
    json_int_t next_id;
    struct pending pending[MAX_PENDING];
    struct {
        char cap[GM_AGENT_CAP_MAX + 1], tool[256];
    } tools[MAX_TOOLS];
    size_t n_tools;
    unsigned long answers;
};

static int own_option(void *ctx, int opt, const char *val)
{
    struct mcp_agent *a = ctx;
    if (opt == OPT_MCP) {
        a->mcp = val;
        return 0;
    }
    if (opt == OPT_MAX_RESTARTS)
        return agent_cli_long(&a->cli, "max-restarts", val, 0, 1000, &a->max_restarts);
    return 2;
}

/* ---- answering the node (a->lock held by no one; takes it) ---- */

static void answer(struct mcp_agent *a, const char *rid, json_t *output, const char *code, const char *msg)
{
    char id[64];
    pthread_mutex_lock(&a->lock);
    snprintf(id, sizeof id, "answer-%lu", ++a->answers);
    json_t *req = agent_cli_answer_req(id, rid, output, code, msg,
                                       output ? "answered by an MCP server's tools/call" : "failed");
    gm_error e = {0};
    int rc = a->conn ? gm_node_conn_send(a->conn, req, &e) : GM_EIO;
    pthread_mutex_unlock(&a->lock);
    json_decref(req);
    if (rc != 0)
        gm_log(GM_LOG_WARN, "agent", "request %s: cannot answer: %s", rid, e.msg);
    else if (!output)
        gm_log_event(GM_LOG_WARN, "agent", "answered_error", json_pack("{s:s,s:s}", "request_id", rid, "code", code),
                     "request %s: %s: %s", rid, code, msg);
}

/* ---- the MCP server process ---- */

/* Write one JSON-RPC message to the server (a->lock held). */
static int to_server(struct mcp_agent *a, json_t *msg)
{
    char *line = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!line)
        return -1;
    size_t n = strlen(line), off = 0;
    char *buf = malloc(n + 1);
    int rc = buf ? 0 : -1;
    if (buf) {
        memcpy(buf, line, n);
        buf[n++] = '\n';
    }
    free(line);
    while (buf && off < n) {
        ssize_t k = write(a->to_child, buf + off, n - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = -1;
            break;
        }
        off += (size_t)k;
    }
    free(buf);
    return rc;
}

/* A request to the server; returns its id, 0 on failure. rid: the mesh request it serves. */
static json_int_t server_call(struct mcp_agent *a, const char *method, json_t *params, const char *rid, int wait)
{
    pthread_mutex_lock(&a->lock);
    struct pending *p = NULL;
    for (size_t i = 0; i < MAX_PENDING && !p; i++)
        if (!a->pending[i].id)
            p = &a->pending[i];
    json_int_t id = 0;
    if (p && atomic_load(&a->alive)) {
        id = ++a->next_id;
        *p = (struct pending){.id = id, .wait = wait};
        if (rid)
            snprintf(p->request_id, sizeof p->request_id, "%s", rid);
        if (to_server(a, json_pack("{s:s,s:I,s:s,s:o}", "jsonrpc", "2.0", "id", id, "method", method, "params",
                                   params)) != 0) {
            p->id = 0;
            id = 0;
        }
    } else {
        json_decref(params);
    }
    pthread_mutex_unlock(&a->lock);
    return id;
}

/* Wait for the response to id (a server_call with wait); NULL at the timeout or when it died. */
static json_t *server_wait(struct mcp_agent *a, json_int_t id, int timeout_ms)
{
    int64_t end = gm_mono_ms() + timeout_ms;
    for (;;) {
        int found = 0;
        pthread_mutex_lock(&a->lock);
        for (size_t i = 0; i < MAX_PENDING; i++) {
            struct pending *p = &a->pending[i];
            found |= p->id == id;
            if (p->id == id && (p->resp || !atomic_load(&a->alive) || gm_mono_ms() >= end)) {
                json_t *r = p->resp;
                *p = (struct pending){0};
                pthread_mutex_unlock(&a->lock);
                return r;
            }
        }
        pthread_mutex_unlock(&a->lock);
        if (!found)
            return NULL;
        gm_sleep_ms(10);
    }
}

/* The answer for a tools/call result. */
static void answer_result(struct mcp_agent *a, const char *rid, const json_t *result, const json_t *error)
{
    char msg[GM_AGENT_DETAIL_MAX + 1];
    if (error) {
        snprintf(msg, sizeof msg, "the MCP server refused the call (JSON-RPC %lld): %.400s",
                 (long long)json_integer_value(json_object_get(error, "code")),
                 json_string_value(json_object_get(error, "message")));
        answer(a, rid, NULL, "failed", msg);
        return;
    }
    const json_t *content = json_object_get(result, "content"), *sc = json_object_get(result, "structuredContent");
    char text[GM_AGENT_DETAIL_MAX + 1] = "";
    for (size_t i = 0; i < json_array_size(content); i++) {
        const char *t = json_string_value(json_object_get(json_array_get(content, i), "text"));
        size_t n = strlen(text);
        if (t)
            snprintf(text + n, sizeof text - n, "%s%s", n ? "\n" : "", t);
    }
    if (json_is_true(json_object_get(result, "isError"))) {
        snprintf(msg, sizeof msg, "the tool failed: %.480s", text[0] ? text : "(no text)");
        answer(a, rid, NULL, "failed", msg);
        return;
    }
    json_t *out = json_is_object(sc) ? json_incref((json_t *)sc) : json_pack("{s:O}", "content", content ? content : json_array());
    answer(a, rid, out, NULL, NULL);
    json_decref(out);
}

/* Reads the server's stdout: responses to their callers, tools/call results to the node. */
static void *reader_run(void *arg)
{
    struct mcp_agent *a = arg;
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len == cap) {
            if (cap >= GM_MCP_LINE_MAX + 2)
                break; /* a line over the limit: treat the server as broken */
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t k = read(a->from_child, buf + len, cap - len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        len += (size_t)k;
        char *start = buf, *nl;
        while ((nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
            gm_mcp_msg m;
            const json_t *bad = NULL;
            gm_error e = {0};
            if (nl > start && gm_mcp_parse(start, (size_t)(nl - start), &m, &bad, &e) == 0 &&
                m.kind == GM_MCP_RESPONSE && json_is_integer(m.id)) {
                json_int_t id = json_integer_value(m.id);
                char rid[40] = "";
                int found = 0;
                pthread_mutex_lock(&a->lock);
                for (size_t i = 0; i < MAX_PENDING; i++) {
                    struct pending *p = &a->pending[i];
                    if (p->id != id)
                        continue;
                    found = 1;
                    if (p->wait) {
                        p->resp = json_incref(m.msg);
                    } else {
                        snprintf(rid, sizeof rid, "%s", p->request_id);
                        *p = (struct pending){0};
                    }
                }
                pthread_mutex_unlock(&a->lock);
                if (rid[0])
                    answer_result(a, rid, m.result, m.error);
                else if (!found)
                    gm_log(GM_LOG_DEBUG, "agent", "a response to no call of ours (id %lld)", (long long)id);
            } else if (nl > start && e.msg[0]) {
                gm_log(GM_LOG_WARN, "agent", "the MCP server wrote a line that is not JSON-RPC: %s", e.msg);
            }
            if (nl > start)
                gm_mcp_msg_free(&m);
            start = nl + 1;
        }
        len -= (size_t)(start - buf);
        memmove(buf, start, len);
    }
    free(buf);
    atomic_store(&a->alive, 0);
    return NULL;
}

static int child_start(struct mcp_agent *a, pthread_t *reader, gm_error *err)
{
    int in[2], out[2];
    if (pipe(in) != 0 || pipe(out) != 0)
        return gm_error_set(err, GM_EIO, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0)
        return gm_error_set(err, GM_EIO, "cannot start %s: %s", a->argv[0], strerror(errno));
    if (pid == 0) {
        setpgid(0, 0);
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        signal(SIGPIPE, SIG_DFL);
        execvp(a->argv[0], a->argv);
        dprintf(2, "cannot run %s: %s\n", a->argv[0], strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    fcntl(in[1], F_SETFD, FD_CLOEXEC);
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    a->pid = pid;
    a->to_child = in[1];
    a->from_child = out[0];
    atomic_store(&a->alive, 1);
    if (pthread_create(reader, NULL, reader_run, a) != 0)
        return gm_error_set(err, GM_EIO, "cannot start a thread");
    return 0;
}

/* After the server died: reap it, answer every call it had in flight, say why. */
static void child_gone(struct mcp_agent *a, pthread_t reader)
{
    int status = 0;
    kill(-a->pid, SIGKILL);
    kill(a->pid, SIGKILL);
    close(a->to_child);
    pthread_join(reader, NULL);
    close(a->from_child);
    while (waitpid(a->pid, &status, 0) < 0 && errno == EINTR)
        ;
    char why[200], msg[GM_AGENT_DETAIL_MAX + 1];
    if (WIFSIGNALED(status))
        snprintf(why, sizeof why, "was killed by signal %d", WTERMSIG(status));
    else
        snprintf(why, sizeof why, "exited with status %d", WEXITSTATUS(status));
    gm_log_event(GM_LOG_ERROR, "agent", "mcp_server_exited", json_pack("{s:s,s:s}", "command", a->mcp, "why", why),
                 "the MCP server (%s) %s", a->mcp, why);
    snprintf(msg, sizeof msg, "the MCP server behind this capability %s; restarting it", why);
    for (size_t i = 0; i < MAX_PENDING; i++) {
        pthread_mutex_lock(&a->lock);
        struct pending p = a->pending[i];
        a->pending[i] = (struct pending){0};
        pthread_mutex_unlock(&a->lock);
        json_decref(p.resp);
        if (p.id && p.request_id[0])
            answer(a, p.request_id, NULL, "unavailable", msg);
    }
}

/* initialize, notifications/initialized, tools/list (every page). *tools owned. */
static int server_handshake(struct mcp_agent *a, json_t **tools, gm_error *err)
{
    json_int_t id = server_call(a, "initialize",
                                json_pack("{s:s,s:{},s:{s:s,s:s}}", "protocolVersion", GM_MCP_PROTOCOL_VERSION,
                                          "capabilities", "clientInfo", "name", "genesis-mesh", "version",
                                          gm_version()),
                                NULL, 1);
    json_t *r = id ? server_wait(a, id, RPC_TIMEOUT_MS) : NULL;
    const char *ver = json_string_value(json_object_get(json_object_get(r, "result"), "protocolVersion"));
    int ok = 0;
    for (size_t i = 0; ver && gm_mcp_protocol_versions[i]; i++)
        ok |= !strcmp(ver, gm_mcp_protocol_versions[i]);
    if (!ok) {
        int rc = gm_error_set(err, GM_EPROTO, "the MCP server (%s) did not answer initialize%s%s", a->mcp,
                              ver ? " with a protocol version we speak: " : "", ver ? ver : "");
        json_decref(r);
        return rc;
    }
    json_decref(r);
    pthread_mutex_lock(&a->lock);
    to_server(a, json_pack("{s:s,s:s}", "jsonrpc", "2.0", "method", "notifications/initialized"));
    pthread_mutex_unlock(&a->lock);
    *tools = json_array();
    json_t *cursor = NULL;
    for (int page = 0; page < 16; page++) {
        json_t *params = cursor ? json_pack("{s:O}", "cursor", cursor) : json_object();
        id = server_call(a, "tools/list", params, NULL, 1);
        r = id ? server_wait(a, id, RPC_TIMEOUT_MS) : NULL;
        const json_t *res = json_object_get(r, "result"), *list = json_object_get(res, "tools");
        if (!json_is_array(list)) {
            json_decref(r);
            json_decref(cursor);
            return gm_error_set(err, GM_EPROTO, "the MCP server (%s) did not answer tools/list", a->mcp);
        }
        json_array_extend(*tools, (json_t *)list);
        json_decref(cursor);
        cursor = json_incref(json_object_get(res, "nextCursor"));
        json_decref(r);
        if (!json_is_string(cursor))
            break;
    }
    json_decref(cursor);
    return 0;
}

/* Provide every tool as a capability (the first start only). */
static int provide_tools(struct mcp_agent *a, const json_t *tools, gm_error *err)
{
    int rc = gm_node_conn_open(a->cli.dir, &a->conn, err);
    if (rc == 0)
        rc = gm_node_conn_hello(a->conn, LOCAL_API_TIMEOUT_MS, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < json_array_size(tools); i++) {
        const json_t *t = json_array_get(tools, i);
        const char *name = json_string_value(json_object_get(t, "name"));
        const char *desc = json_string_value(json_object_get(t, "description"));
        const json_t *schema = json_object_get(t, "inputSchema");
        char cap[GM_AGENT_CAP_MAX + 1], agent_id[GM_AGENT_ID_MAX + 1];
        gm_error e = {0};
        if (!name || gm_mcp_cap_for_server_tool(a->cli.capability, name, cap, &e) != 0) {
            gm_log(GM_LOG_WARN, "agent", "tool %s is not offered: %s", name ? name : "(no name)", name ? e.msg : "no name");
            continue;
        }
        if (a->n_tools == MAX_TOOLS) {
            gm_log(GM_LOG_WARN, "agent", "tool %s is not offered: a connection provides at most %d capabilities", name,
                   MAX_TOOLS);
            continue;
        }
        char both[2 * GM_AGENT_ID_MAX + 2];
        snprintf(both, sizeof both, "%s.%s", a->cli.agent_id, cap);
        if (strlen(both) > GM_AGENT_ID_MAX)
            snprintf(both, sizeof both, "%.58s.%zu", a->cli.agent_id, a->n_tools + 1);
        memcpy(agent_id, both, GM_AGENT_ID_MAX);
        agent_id[GM_AGENT_ID_MAX] = '\0';
        char id[32];
        snprintf(id, sizeof id, "provide-%zu", i + 1);
        json_t *req = json_pack("{s:s,s:s,s:s,s:s,s:i}", "op", "provide", "id", id, "capability", cap, "agent_id",
                                agent_id, "ttl_s", a->cli.ttl_s > 0 ? a->cli.ttl_s : 300),
               *resp = NULL;
        if (desc)
            json_object_set_new(req, "description", json_stringn(desc, strnlen(desc, 1024)));
        if (json_is_object(schema))
            json_object_set(req, "input_schema", (json_t *)schema);
        rc = gm_node_conn_request(a->conn, req, &resp, LOCAL_API_TIMEOUT_MS, err);
        json_decref(req);
        if (rc == 0 && !json_is_true(json_object_get(resp, "ok"))) {
            const json_t *er = json_object_get(resp, "error");
            gm_log(GM_LOG_WARN, "agent", "tool %s: the node refused to provide %s: %s: %s", name, cap,
                   json_string_value(json_object_get(er, "code")), json_string_value(json_object_get(er, "message")));
        } else if (rc == 0) {
            snprintf(a->tools[a->n_tools].cap, sizeof a->tools[0].cap, "%s", cap);
            snprintf(a->tools[a->n_tools].tool, sizeof a->tools[0].tool, "%s", name);
            a->n_tools++;
            gm_log_event(GM_LOG_INFO, "agent", "registered", json_pack("{s:s,s:s,s:s}", "agent", agent_id,
                                                                        "capability", cap, "tool", name),
                         "%s offers the MCP tool %s as %s through the node at %s", agent_id, name, cap, a->cli.dir);
        }
        json_decref(resp);
        if (rc != 0)
            return rc;
    }
    if (a->n_tools == 0)
        return gm_error_set(err, GM_ENOTFOUND, "the MCP server (%s) has no tool that could be offered", a->mcp);
    return 0;
}

static void on_request(struct mcp_agent *a, const json_t *ev)
{
    const char *rid = json_string_value(json_object_get(ev, "request_id")),
               *cap = json_string_value(json_object_get(ev, "capability"));
    const json_t *input = json_object_get(ev, "input");
    if (!rid || !cap || strlen(rid) >= 40)
        return;
    const char *tool = NULL;
    for (size_t i = 0; i < a->n_tools; i++)
        if (!strcmp(a->tools[i].cap, cap))
            tool = a->tools[i].tool;
    if (!tool) {
        answer(a, rid, NULL, "unavailable", "this agent does not serve that capability");
        return;
    }
    if (!atomic_load(&a->alive)) {
        answer(a, rid, NULL, "unavailable", "the MCP server behind this capability is restarting; try again");
        return;
    }
    json_t *args = json_is_object(input) ? json_incref((json_t *)input) : json_pack("{s:O}", "input", input);
    if (!server_call(a, "tools/call", json_pack("{s:s,s:o}", "name", tool, "arguments", args), rid, 0))
        answer(a, rid, NULL, "unavailable", "the MCP server cannot take the call (gone, or too many in flight)");
}

static int serve(struct mcp_agent *a, gm_error *err)
{
    volatile sig_atomic_t *stop = agent_cli_signals();
    pthread_t reader;
    json_t *tools = NULL;
    int rc = child_start(a, &reader, err);
    if (rc == 0)
        rc = server_handshake(a, &tools, err);
    if (rc == 0)
        rc = provide_tools(a, tools, err);
    json_decref(tools);
    if (rc != 0) {
        if (a->pid > 0)
            child_gone(a, reader);
        return rc;
    }
    long restarts = 0;
    int64_t restart_at = 0;
    while (!*stop) {
        if (a->pid > 0 && !atomic_load(&a->alive)) {
            child_gone(a, reader);
            a->pid = 0;
            if (restarts >= a->max_restarts) {
                rc = gm_error_set(err, GM_EIO, "the MCP server (%s) stopped %ld times in a row; giving up", a->mcp,
                                  restarts + 1);
                break;
            }
            long delay = 1000L << (restarts < 5 ? restarts : 5);
            restarts++;
            restart_at = gm_mono_ms() + delay;
            gm_log(GM_LOG_WARN, "agent", "restarting the MCP server in %ld ms (restart %ld of at most %ld)", delay,
                   restarts, a->max_restarts);
        }
        if (a->pid == 0 && gm_mono_ms() >= restart_at) {
            gm_error e = {0};
            json_t *t2 = NULL;
            if (child_start(a, &reader, &e) == 0 && server_handshake(a, &t2, &e) == 0) {
                gm_log(GM_LOG_INFO, "agent", "the MCP server (%s) is back", a->mcp);
                restarts = 0;
            } else {
                gm_log(GM_LOG_ERROR, "agent", "restarting the MCP server: %s", e.msg);
                atomic_store(&a->alive, 0);
            }
            json_decref(t2);
        }
        json_t *m = NULL;
        gm_error e = {0};
        int r = gm_node_conn_read(a->conn, &m, 250, &e);
        if (r == GM_ETIMEOUT)
            continue;
        if (r != 0) {
            rc = gm_error_set(err, r, "lost the node: %s", e.msg);
            break;
        }
        const char *ev = json_string_value(json_object_get(m, "event"));
        if (ev && !strcmp(ev, "request"))
            on_request(a, m);
        else if (ev && !strcmp(ev, "withdrawn"))
            gm_log(GM_LOG_ERROR, "agent", "the node withdrew %s: %s", json_string_value(json_object_get(m, "capability")),
                   json_string_value(json_object_get(m, "reason")));
        else if (!ev && !json_is_true(json_object_get(m, "ok")))
            gm_log(GM_LOG_WARN, "agent", "the node refused %s: %s", json_string_value(json_object_get(m, "id")),
                   json_string_value(json_object_get(json_object_get(m, "error"), "message")));
        json_decref(m);
    }
    if (a->pid > 0) {
        atomic_store(&a->alive, 0);
        child_gone(a, reader);
    }
    pthread_mutex_lock(&a->lock);
    gm_node_conn_close(a->conn);
    a->conn = NULL;
    pthread_mutex_unlock(&a->lock);
    if (rc == 0)
        gm_log(GM_LOG_INFO, "agent", "%s stopped; the node withdrew its capabilities", a->cli.agent_id);
    return rc;
}

int main(int argc, char **argv)
{
    static struct mcp_agent a = {
        .cli = {.log_format = -1,
                .log_level = GM_LOG_INFO,
                .program = "gm-agent-mcp",
                .any_capability = 1,
                .usage = "usage: gm-agent-mcp --dir D --agent-id ID --mcp 'CMD ARGS' [--capability PREFIX]\n"
                         "                    [--max-restarts N] [options]\n"
                         "Offers each tool of an MCP server (stdio) on the mesh through the node running at D\n"
                         "(docs/agents.md \"MCP\"): the node signs; this program holds no key.\n"
                         "  --mcp 'CMD ARGS'       the MCP server program, split into words without a shell\n"
                         "  --capability PREFIX    capabilities are PREFIX.<tool> (default: the tool name)\n"
                         "  --max-restarts N       restarts in a row of a server that exits, 0..1000 (default 5)\n" AGENT_CLI_COMMON_USAGE},
        .max_restarts = 5,
    };
    static const struct option opts[] = {{"mcp", required_argument, NULL, OPT_MCP},
                                         {"max-restarts", required_argument, NULL, OPT_MAX_RESTARTS},
                                         AGENT_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    int rc = agent_cli_parse(&a.cli, argc, argv, opts, own_option, &a);
    if (rc >= 0)
        return rc;
    if (!a.mcp)
        return agent_cli_usage(&a.cli, "--mcp 'CMD ARGS' is required");
    if (a.cli.fault)
        return agent_cli_usage(&a.cli, "--fault is a testing aid of the shipped agents only");
    gm_error err = {0};
    size_t n;
    if (gm_argv_split(a.mcp, &a.argv, &n, &err) != 0)
        return agent_cli_usage(&a.cli, "--mcp: %s", err.msg);
    pthread_mutex_init(&a.lock, NULL);
    gm_log_file log = {0};
    if (agent_cli_log_open(&a.cli, &log, &err) != 0) {
        gm_argv_free(a.argv);
        return agent_cli_fail(&a.cli, "log", &err);
    }
    rc = serve(&a, &err) != 0 ? agent_cli_fail(&a.cli, "serving", &err) : 0;
    if (rc)
        gm_log(GM_LOG_ERROR, "agent", "%s", err.msg);
    agent_cli_log_close(&log);
    gm_argv_free(a.argv);
    return rc;
}
