/* genesis-mesh agents | agent run | ask: list the registry, serve a capability, invoke one. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "gm/agent.h"
#include "gm/node.h"
#include "gm/util.h"

static const char *default_dir(const char *dir)
{
    if (dir)
        return dir;
    const char *e = getenv("GM_DIR");
    return e && *e ? e : ".";
}

/* ---- agents ---- */

static void short_key(const char *b64, char out[16])
{
    snprintf(out, 16, "%.12s...", b64);
}

/* Can the node at D reach the agent's node: "self", "reachable", "unreachable", or "unknown"
 * (no --dir, or no node running there). */
static const char *agent_liveness(const char *self_pk, const json_t *routes, const char *pk)
{
    if (!self_pk || !routes || !pk)
        return "unknown";
    if (!strcmp(self_pk, pk))
        return "self";
    const json_t *rs = json_object_get(routes, "routes");
    for (size_t i = 0; i < json_array_size(rs); i++) {
        const json_t *r = json_array_get(rs, i);
        const char *dst = json_string_value(json_object_get(r, "destination"));
        if (dst && !strcmp(dst, pk) && json_integer_value(json_object_get(r, "metric")) < 65535)
            return "reachable";
    }
    return "unreachable";
}

static int run_agents(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", NULL), *na = cli_str(a, "na", NULL), *cap = cli_str(a, "capability", NULL),
               *tls_ca = cli_str(a, "na-ca", NULL), *tls_pin = cli_str(a, "na-pin", NULL);
    int as_json = cli_has(a, "json");
    gm_error err = {0};
    gm_agent_ctx ctx;
    int have_ctx = 0;
    char na_url[512];
    if (!na || dir) {
        if (gm_agent_ctx_open(&ctx, default_dir(dir), na, &err) != 0)
            return cli_fail("agents", &err);
        have_ctx = 1;
        snprintf(na_url, sizeof na_url, "%s", ctx.na_url);
    } else {
        snprintf(na_url, sizeof na_url, "%s", na);
        /* No node directory: the NA's TLS trust from --na-ca/--na-pin or the environment. */
        if (cli_na_trust(na_url, tls_ca, tls_pin, NULL, &err) != 0)
            return cli_fail("agents", &err);
    }
    json_t *listing = NULL;
    if (gm_agent_list(na_url, cap, 5000, &listing, &err) != 0) {
        if (have_ctx)
            gm_agent_ctx_close(&ctx);
        return cli_fail("agents", &err);
    }
    gm_crl crl;
    int have_crl = have_ctx && gm_agent_fetch_crl(&ctx, &crl, &err) == 0;
    /* Liveness as D's node sees it: its routes (NULL when no node runs there). */
    json_t *routes = NULL, *rreq = json_pack("{s:s}", "op", "routes");
    gm_error re = {0};
    if (have_ctx && gm_node_api_call(ctx.dir, rreq, &routes, 5000, &re) != 0)
        routes = NULL;
    json_decref(rreq);
    json_t *rows = json_array();
    for (size_t i = 0; i < json_array_size(listing); i++) {
        json_t *item = json_array_get(listing, i), *one = json_pack("[O]", item);
        const json_t *d = json_object_get(item, "descriptor");
        const char *c0 = cap ? cap : json_string_value(json_array_get(json_object_get(d, "capabilities"), 0));
        const char *check = "not checked (no --dir)";
        char reason[700];
        gm_agent_candidates cs = {0};
        gm_error e2 = {0};
        if (have_ctx && !have_crl) {
            check = "not checked (no verified CRL)";
        } else if (have_ctx && c0) {
            if (gm_agent_select(one, c0, &ctx.genesis, &crl, gm_time_now(), NULL, 0, &cs, &e2) == 0 && cs.n == 1) {
                snprintf(reason, sizeof reason, "%s", cs.v[0].usable ? "verified" : cs.v[0].reason);
                char why[600];
                if (cs.v[0].usable && !gm_agent_policy_allows(&ctx, c0, why, sizeof why))
                    snprintf(reason, sizeof reason, "not callable: %s", why);
                check = reason;
            } else {
                snprintf(reason, sizeof reason, "%s", e2.msg);
                check = reason;
            }
            gm_agent_candidates_free(&cs);
        }
        json_array_append_new(rows, json_pack("{s:O,s:O?,s:s,s:s}", "descriptor", d, "certificate",
                                              json_object_get(item, "certificate"), "check", check, "live",
                                              agent_liveness(have_ctx ? ctx.node.pk_b64 : NULL, routes,
                                                             json_string_value(json_object_get(d, "node_public_key")))));
        json_decref(one);
    }
    if (as_json) {
        char *s = json_dumps(rows, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
    } else if (json_array_size(rows) == 0) {
        printf("no agents registered%s%s at %s\n", cap ? " for " : "", cap ? cap : "", na_url);
    } else {
        printf("%-16s %-18s %-16s %-28s %-12s %s\n", "AGENT", "CAPABILITIES", "NODE", "EXPIRES", "LIVE", "CHECK");
        for (size_t i = 0; i < json_array_size(rows); i++) {
            const json_t *r = json_array_get(rows, i), *d = json_object_get(r, "descriptor");
            char caps[256] = "", k[16];
            const json_t *cl = json_object_get(d, "capabilities");
            for (size_t j = 0; j < json_array_size(cl); j++) {
                size_t n = strlen(caps);
                snprintf(caps + n, sizeof caps - n, "%s%s", j ? "," : "", json_string_value(json_array_get(cl, j)));
            }
            const char *pk = json_string_value(json_object_get(d, "node_public_key"));
            short_key(pk ? pk : "?", k);
            const char *id = json_string_value(json_object_get(d, "agent_id"));
            const char *exp = json_string_value(json_object_get(d, "expires_at"));
            printf("%-16s %-18s %-16s %-28s %-12s %s\n", id ? id : "?", caps, k, exp ? exp : "?",
                   json_string_value(json_object_get(r, "live")), json_string_value(json_object_get(r, "check")));
        }
    }
    json_decref(rows);
    json_decref(routes);
    json_decref(listing);
    if (have_crl)
        gm_crl_free(&crl);
    if (have_ctx)
        gm_agent_ctx_close(&ctx);
    return 0;
}

/* ---- agent run ---- */

/* The shipped agents are programs of their own (agents/gm-agent-*.c, on the public API); `agent
 * run` checks its options against its table, finds the program serving the capability beside this
 * binary and execs it with the same options, so its process id, signals and exit status are the
 * agent's. */
static const struct {
    const char *capability, *program;
} shipped_agents[] = {
    {"repo.summary", "gm-agent-repo"},
    {"llm.chat", "gm-agent-llm"},
    {"planner.answer", "gm-agent-planner"},
};

static int agent_run(const cli_args *a)
{
    const char *cap = cli_str(a, "capability", NULL), *id = cli_str(a, "agent-id", NULL),
               *fault = cli_str(a, "fault", NULL);
    long long ttl, sub_timeout;
    if (cli_int(a, "ttl", 1, GM_AGENT_TTL_MAX_S, 600, &ttl) || cli_int(a, "sub-timeout-ms", 1, 3600000, 0, &sub_timeout))
        return 2;
    int mcp = cli_str(a, "mcp", NULL) != NULL;
    if ((!cap && !mcp) || !id)
        return cli_usage("agent run: --agent-id and --capability (or --mcp) are required");
    if (!gm_agent_id_valid(id))
        return cli_usage("agent run: --agent-id must be 1..%d characters of [A-Za-z0-9._-]", GM_AGENT_ID_MAX);
    static const char *const faults[] = {"silent", "garbage", "forge", "uncertified", NULL};
    int kind;
    if (fault && cli_parse_choice(a->path, "fault", fault, faults, &kind))
        return 2;
    gm_error err = {0};
    char ncap[GM_AGENT_CAP_MAX + 1] = "";
    if (cap && gm_agent_cap_normalize(cap, ncap, &err) != 0)
        return cli_fail("agent run", &err);
    const char *program = NULL;
    for (size_t i = 0; i < sizeof shipped_agents / sizeof shipped_agents[0]; i++)
        if (!strcmp(ncap, shipped_agents[i].capability))
            program = shipped_agents[i].program;
    /* Any other capability with --fixture is served from that document by the repo agent (a
     * stand-in provider, e.g. finance.report in the access-policy demo). */
    if (!program && cli_str(a, "fixture", NULL))
        program = "gm-agent-repo";
    /* Any capability served by a program or a local HTTP service (agents/gm-agent-exec.c). */
    if (cli_str(a, "exec", NULL) || cli_str(a, "http", NULL))
        program = "gm-agent-exec";
    /* Each tool of an MCP server (agents/gm-agent-mcp.c); --capability is then a prefix. */
    if (mcp)
        program = cli_str(a, "exec", NULL) || cli_str(a, "http", NULL) ? NULL : "gm-agent-mcp";
    if (!program && mcp)
        return cli_usage("agent run: --mcp serves the tools of an MCP server; it cannot go with --exec or --http");
    if (!program)
        return cli_usage("agent run: no shipped agent serves '%s' (shipped: repo.summary, llm.chat, planner.answer); "
                         "serve it with --exec 'CMD ARGS' or --http URL, or write your own agent (docs/agents.md)", ncap);
    char self[4096], path[4200];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) {
        gm_error_set(&err, GM_EIO, "cannot find this program's own path to locate %s", program);
        return cli_fail("agent run", &err);
    }
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    *slash = '\0';
    snprintf(path, sizeof path, "%s/%s", self, program);
    /* the options as parsed (already checked against the table), in their order */
    char *args[2 * CLI_MAX_VALUES + 2];
    size_t k = 0;
    args[k++] = path;
    for (size_t i = 0; i < a->n; i++) {
        static char names[CLI_MAX_VALUES][48];
        snprintf(names[i], sizeof names[i], "--%s", a->v[i].opt->name);
        args[k++] = names[i];
        if (a->v[i].val)
            args[k++] = (char *)a->v[i].val;
    }
    args[k] = NULL;
    execv(path, args);
    gm_error_set(&err, GM_ENOTFOUND, "cannot run %s: %s (the shipped agents are installed beside genesis-mesh)", path,
                 strerror(errno));
    return cli_fail("agent run", &err);
}

/* ---- ask ---- */

/* The input object for a plain-text question, by capability. */
static json_t *text_input(const char *cap, const char *text)
{
    if (!strcmp(cap, "llm.chat"))
        return json_pack("{s:s}", "prompt", text);
    if (!strcmp(cap, "planner.answer") || !strcmp(cap, "repo.summary"))
        return json_pack("{s:s}", "question", text);
    return json_pack("{s:s}", "text", text);
}

/* The certificates that vouched for the answer's signers (gm_agent_invoke keeps one per signer). */
static void print_signers(const gm_agent_response *resp, const char *network)
{
    size_t n = json_array_size(resp->certificates);
    printf("signers (%zu, each holding a valid, unrevoked certificate of %s, checked by this requester):\n", n,
           network);
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(resp->certificates, i);
        const char *pk = json_string_value(json_object_get(c, "node_public_key")), *agent = "?";
        for (size_t j = 0; pk && j < json_array_size(resp->provenance); j++) {
            const json_t *st = json_array_get(resp->provenance, j);
            if (!strcmp(json_string_value(json_object_get(st, "signer")), pk)) {
                agent = json_string_value(json_object_get(st, "agent"));
                break;
            }
        }
        char k[16];
        short_key(pk ? pk : "?", k);
        printf("      %-14s %s  certificate %s, expires %s\n", agent, k,
               json_string_value(json_object_get(c, "cert_id")), json_string_value(json_object_get(c, "expires_at")));
    }
}

static void print_step(size_t i, const json_t *s)
{
    char k[16], detail[4 * GM_AGENT_DETAIL_MAX + 8];
    short_key(json_string_value(json_object_get(s, "signer")), k);
    printf("  %2zu. %-14s %-10s %-15s %s  [signed by %s, %s]\n", i + 1,
           json_string_value(json_object_get(s, "agent")), json_string_value(json_object_get(s, "action")),
           json_string_value(json_object_get(s, "capability")),
           cli_safe(json_string_value(json_object_get(s, "detail")), detail, sizeof detail), k,
           json_string_value(json_object_get(s, "at")));
}

/* Text from a provider (a model's answer, an error message): line by line through cli_safe, so
 * escape sequences in it cannot drive the terminal; the first line after label. */
static void print_remote_text(const char *label, const char *text)
{
    size_t n = strlen(text);
    char *buf = malloc(4 * n + 8);
    if (!buf)
        return;
    printf("%s", label);
    for (const char *p = text;;) {
        size_t l = strcspn(p, "\n");
        char *line = strndup(p, l);
        printf("%s\n", line ? cli_safe(line, buf, 4 * n + 8) : "");
        free(line);
        if (!p[l])
            break;
        p += l + 1;
    }
    free(buf);
}

/* What an answer says about itself: llm.chat and planner.answer mark empty and cut answers. */
static void print_answer_marks(const json_t *output)
{
    const char *t = json_string_value(json_object_get(output, "truncated"));
    if (json_is_true(json_object_get(output, "empty")))
        printf("note: the model returned an EMPTY answer\n");
    if (t && !strcmp(t, "max_tokens"))
        printf("note: the answer is TRUNCATED: the model stopped at its token limit (finish_reason length; raise "
               "LLM_MAX_TOKENS)\n");
    else if (t)
        printf("note: the answer is TRUNCATED (%s) to fit the answer envelope\n", t);
}

/* A failure message may quote a provider: show it without control characters. */
static int ask_fail(gm_error *err)
{
    gm_error shown = {.code = err->code};
    cli_safe(err->msg, shown.msg, sizeof shown.msg);
    return cli_fail("ask", &shown);
}

static int run_ask(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", NULL), *na = cli_str(a, "na", NULL), *cap = a->pos[0], *text = a->pos[1],
               *input_json = cli_str(a, "input-json", NULL);
    int as_json = cli_has(a, "json");
    long long t;
    if (a->n_pos > 2)
        return cli_usage("ask: too many arguments (quote the question)");
    if (cli_int(a, "timeout-ms", 1, 3600000, 0, &t))
        return 2;
    if (!cap)
        return cli_usage("ask: which capability? e.g. genesis-mesh ask planner.answer \"question\"");
    gm_error err = {0};
    char ncap[GM_AGENT_CAP_MAX + 1];
    if (gm_agent_cap_normalize(cap, ncap, &err) != 0)
        return cli_fail("ask", &err);
    json_t *input = NULL;
    if (input_json) {
        json_error_t je;
        if (!(input = json_loads(input_json, JSON_REJECT_DUPLICATES, &je)))
            return cli_usage("ask: --input-json is not JSON: %s", je.text);
    } else {
        if (!text)
            return cli_usage("ask: give the question text or --input-json");
        if (!(input = text_input(ncap, text)))
            return cli_usage("ask: the text is not valid UTF-8");
    }
    gm_agent_ctx ctx;
    if (gm_agent_ctx_open(&ctx, default_dir(dir), na, &err) != 0) {
        json_decref(input);
        return cli_fail("ask", &err);
    }
    snprintf(ctx.agent_id, sizeof ctx.agent_id, "requester");
    signal(SIGPIPE, SIG_IGN);
    if (!cli_has(a, "timeout-ms"))
        t = !strcmp(ncap, "planner.answer") ? 20000 : GM_AGENT_DEFAULT_TIMEOUT_MS;
    json_t *mine = json_array();
    gm_agent_response resp;
    char chosen[GM_AGENT_ID_MAX + 1] = "";
    int rc = gm_agent_call(&ctx, ncap, input, t, mine, "", &resp, chosen, &err);
    json_decref(input);
    int code = 0;
    if (rc != 0) {
        if (as_json) {
            json_t *o = json_pack("{s:s,s:{s:s,s:s},s:O}", "capability", ncap, "error", "code", gm_err_name(rc),
                                  "message", err.msg, "local_steps", mine);
            char *s = json_dumps(o, JSON_INDENT(2));
            printf("%s\n", s);
            free(s);
            json_decref(o);
        }
        code = ask_fail(&err);
    } else {
        char ppk[GM_PK_B64_LEN + 1];
        gm_pk_encode(resp.provider, ppk);
        if (as_json) {
            json_t *o = json_pack("{s:s,s:s,s:s,s:O,s:O,s:O,s:O}", "capability", ncap, "provider", chosen,
                                  "provider_key", ppk, "output", resp.output ? resp.output : json_null(), "error",
                                  json_object_get(resp.doc, "error"), "provenance", resp.provenance,
                                  "certificates", resp.certificates);
            char *s = json_dumps(o, JSON_INDENT(2));
            printf("%s\n", s);
            free(s);
            json_decref(o);
        } else {
            const char *ans = json_string_value(json_object_get(resp.output, "answer"));
            if (!ans)
                ans = json_string_value(json_object_get(resp.output, "text"));
            if (!ans)
                ans = json_string_value(json_object_get(resp.output, "summary"));
            if (resp.error_code) {
                char code_safe[256], label[300];
                snprintf(label, sizeof label, "error: %s: ", cli_safe(resp.error_code, code_safe, sizeof code_safe));
                print_remote_text(label, resp.error_message);
            } else if (ans) {
                print_remote_text("answer: ", ans);
                print_answer_marks(resp.output);
            } else {
                char *s = json_dumps(resp.output, JSON_COMPACT);
                printf("output: %s\n", s);
                free(s);
            }
            printf("provider: %s (node %s; certificate and CRL checked by this requester)\n", chosen, ppk);
            printf("provenance (%zu steps, every signature verified):\n", json_array_size(resp.provenance));
            for (size_t i = 0; i < json_array_size(resp.provenance); i++)
                print_step(i, json_array_get(resp.provenance, i));
            print_signers(&resp, ctx.genesis.network_name);
            /* Failovers done by this requester itself (its own steps, not the provider's). */
            size_t n_fail = 0;
            for (size_t i = 0; i < json_array_size(mine); i++) {
                const json_t *st = json_array_get(mine, i);
                if (!strcmp(json_string_value(json_object_get(st, "signer")), ctx.node.pk_b64) &&
                    !strcmp(json_string_value(json_object_get(st, "action")), "failed"))
                    n_fail++;
            }
            if (n_fail > 0) {
                printf("requester side (failover):\n");
                for (size_t i = 0; i < json_array_size(mine); i++) {
                    const json_t *st = json_array_get(mine, i);
                    if (!strcmp(json_string_value(json_object_get(st, "signer")), ctx.node.pk_b64))
                        print_step(i, st);
                }
            }
        }
        if (resp.error_code)
            code = 1;
        gm_agent_response_free(&resp);
    }
    json_decref(mine);
    gm_agent_ctx_close(&ctx);
    return code;
}

/* ---- the tables ---- */

static const cli_opt agents_opts[] = {
    {"capability", "C", "only the agents offering C"},
    {"dir", "D", "check each agent like a requester would (descriptor, certificate, CRL) with D's genesis"},
    {"na", "URL", "the NA (default: na_url of D/node.json)"},
    {"na-ca", "FILE", "with --na and no --dir: verify the NA's TLS certificate with this CA file (default $GM_NA_CA)"},
    {"na-pin", "sha256//...", "with --na and no --dir: verify the NA by its TLS key pin (default $GM_NA_PIN)"},
    {"json", NULL, "print JSON"},
    {NULL},
};
const cli_cmd cli_agents = {
    "agents", "list registered agents (optionally by capability)", "[--capability C] [--dir D | --na URL] [--json]",
    "Lists the agents registered with the NA. With --dir, each is also checked like a requester\n"
    "would (descriptor signature, certificate under the genesis, the NA's signed CRL).\n",
    run_agents, agents_opts, 0, NULL};

static const cli_opt run_opts[] = {
    {"dir", "D", "the node directory; its node must be running (default $GM_DIR or .)"},
    {"agent-id", "ID", "the agent's name, 1..64 of [A-Za-z0-9._-] (required)"},
    {"capability", "CAP", "repo.summary, llm.chat or planner.answer, or any other with --fixture (required)"},
    {"fixture", "F", "repo.summary: the repository JSON to answer from"},
    {"env-file", "F", "llm.chat: read LLM_* settings from F instead of the environment"},
    {"na", "URL", "the NA (default: na_url of D/node.json)"},
    {"ttl", "SECONDS", "descriptor lifetime in seconds (default 600; refreshed at 2/3 of it)"},
    {"sub-timeout-ms", "N", "planner.answer: deadline of each sub-call in ms"},
    {"fault", "KIND", "testing aid: silent, garbage, forge or uncertified"},
    {"exec", "'CMD ARGS'", "serve CAP with a program: one process per request, input JSON on stdin, output JSON on stdout"},
    {"http", "URL", "serve CAP with a local HTTP service: POST the input as JSON, its JSON reply is the answer"},
    {"max-output-bytes", "N", "--exec/--http: largest stdout or reply accepted (default 32768)"},
    {"max-inflight", "N", "--exec/--http: requests served at once (default 8)"},
    {"description", "TEXT", "--exec/--http: what CAP does, shown to requesters"},
    {"mcp", "'CMD ARGS'", "offer each tool of this MCP server (stdio) as a capability ([CAP.]tool)"},
    {"max-restarts", "N", "--mcp: restarts in a row of an MCP server that exits (default 5)"},
    CLI_LOG_OPTS,
    {NULL},
};
static const cli_cmd agent_run_cmd = {
    "run", "run a capability provider agent",
    "--dir D --agent-id ID --capability CAP [--fixture F] [--env-file F] [--na URL] [--ttl SECONDS]\n"
    "       [--sub-timeout-ms N] [--log FILE] [--log-format json|text] [--log-level L]",
    "Built-in capabilities: repo.summary (--fixture repo.json), llm.chat (LLM_* from the\n"
    "environment or --env-file), planner.answer (composes repo.summary and llm.chat).\n"
    "The node at D must be running. Stops on SIGTERM/SIGINT and unregisters.\n",
    agent_run, run_opts, 0, NULL};
static const cli_cmd *const agent_subs[] = {&agent_run_cmd, NULL};
const cli_cmd cli_agent = {"agent", "run a capability provider agent", NULL, NULL, NULL, NULL, 0, agent_subs};

static const cli_opt ask_opts[] = {
    {"input-json", "JSON", "the input object instead of TEXT"},
    {"dir", "D", "the node directory; its node must be running (default $GM_DIR or .)"},
    {"na", "URL", "the NA (default: na_url of D/node.json)"},
    {"timeout-ms", "N", "deadline in ms, 1..3600000 (default 20000 for planner.answer, else the library's)"},
    {"json", NULL, "print JSON"},
    {NULL},
};
const cli_cmd cli_ask = {
    "ask", "invoke a capability over the mesh and show the provenance",
    "CAPABILITY [TEXT | --input-json JSON] [--dir D] [--timeout-ms N] [--json]",
    "Finds a provider of CAPABILITY through the NA named in D/node.json, checks its certificate\n"
    "and the CRL, sends the request over the mesh through the node running at D, and prints\n"
    "the answer, the provider and the verified provenance (every step's signature, and the\n"
    "certificate of every signer under this network's genesis and CRL).\n",
    run_ask, ask_opts, CLI_MAX_POS, NULL};
