/* genesis-mesh agents | agent run | ask: list the registry, serve a capability, invoke one. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "gm/agent.h"
#include "gm/llm.h"
#include "gm/util.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

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

static int run_agents(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", NULL), *na = cli_str(a, "na", NULL), *cap = cli_str(a, "capability", NULL);
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
    }
    json_t *listing = NULL;
    if (gm_agent_list(na_url, cap, 5000, &listing, &err) != 0) {
        if (have_ctx)
            gm_agent_ctx_close(&ctx);
        return cli_fail("agents", &err);
    }
    gm_crl crl;
    int have_crl = have_ctx && gm_agent_fetch_crl(&ctx, &crl, &err) == 0;
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
                check = reason;
            } else {
                snprintf(reason, sizeof reason, "%s", e2.msg);
                check = reason;
            }
            gm_agent_candidates_free(&cs);
        }
        json_array_append_new(rows, json_pack("{s:O,s:O?,s:s}", "descriptor", d, "certificate",
                                              json_object_get(item, "certificate"), "check", check));
        json_decref(one);
    }
    if (as_json) {
        char *s = json_dumps(rows, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
    } else if (json_array_size(rows) == 0) {
        printf("no agents registered%s%s at %s\n", cap ? " for " : "", cap ? cap : "", na_url);
    } else {
        printf("%-16s %-18s %-16s %-28s %s\n", "AGENT", "CAPABILITIES", "NODE", "EXPIRES", "CHECK");
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
            printf("%-16s %-18s %-16s %-28s %s\n", id ? id : "?", caps, k, exp ? exp : "?",
                   json_string_value(json_object_get(r, "check")));
        }
    }
    json_decref(rows);
    json_decref(listing);
    if (have_crl)
        gm_crl_free(&crl);
    if (have_ctx)
        gm_agent_ctx_close(&ctx);
    return 0;
}

/* ---- agent run ---- */

/* The provider calls the handler of the built-in capability. */
struct run_user {
    gm_agent_handler handler;
    void *handler_user;
};

static int run_dispatch(void *user, const gm_agent_call_in *in, json_t **output, gm_error *err)
{
    struct run_user *u = user;
    return u->handler(u->handler_user, in, output, err);
}

static int agent_run(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", NULL), *na = cli_str(a, "na", NULL), *id = cli_str(a, "agent-id", NULL),
               *cap = cli_str(a, "capability", NULL), *fixture = cli_str(a, "fixture", NULL),
               *env_file = cli_str(a, "env-file", NULL), *fault = cli_str(a, "fault", NULL);
    long long ttl, sub_timeout;
    if (cli_int(a, "ttl", 1, GM_AGENT_TTL_MAX_S, 600, &ttl) || cli_int(a, "sub-timeout-ms", 1, 3600000, 0, &sub_timeout))
        return 2;
    if (!id || !cap)
        return cli_usage("agent run: --agent-id and --capability are required");
    if (!gm_agent_id_valid(id))
        return cli_usage("agent run: --agent-id must be 1..%d characters of [A-Za-z0-9._-]", GM_AGENT_ID_MAX);
    static const char *const faults[] = {"silent", "garbage", "forge", "uncertified", NULL};
    int kind;
    if (fault && cli_parse_choice(a->path, "fault", fault, faults, &kind))
        return 2;
    gm_error err = {0};
    char ncap[GM_AGENT_CAP_MAX + 1];
    if (gm_agent_cap_normalize(cap, ncap, &err) != 0)
        return cli_fail("agent run", &err);
    struct run_user u = {0};
    int rc = cli_log_open(a, NULL);
    if (rc != 0)
        return rc;
    gm_agent_repo repo = {0};
    gm_llm_config llm = {0};
    gm_agent_planner planner = {0};
    if (!strcmp(ncap, "repo.summary")) {
        if (!fixture) {
            rc = cli_usage("agent run: repo.summary needs --fixture FILE (see examples/repo-a.json)");
            goto out;
        }
        if (gm_agent_repo_load(&repo, fixture, &err) != 0) {
            rc = cli_fail("agent run", &err);
            goto out;
        }
        u.handler = gm_agent_repo_handle;
        u.handler_user = &repo;
    } else if (!strcmp(ncap, "llm.chat")) {
        if (gm_llm_config_load(&llm, env_file, &err) != 0) {
            rc = cli_fail("agent run: LLM configuration", &err);
            goto out;
        }
        u.handler = gm_agent_llm_handle;
        u.handler_user = &llm;
    } else if (!strcmp(ncap, "planner.answer")) {
        if (gm_agent_planner_init(&planner, &err) != 0) {
            rc = cli_fail("agent run", &err);
            goto out;
        }
        if (sub_timeout)
            planner.sub_timeout_ms = (long)sub_timeout;
        u.handler = gm_agent_planner_handle;
        u.handler_user = &planner;
    } else {
        rc = cli_usage("agent run: no built-in handler for '%s' (built in: repo.summary, llm.chat, planner.answer)",
                       ncap);
        goto out;
    }
    gm_agent_provider p = {0};
    if (gm_agent_ctx_open(&p.ctx, default_dir(dir), na, &err) != 0) {
        rc = cli_fail("agent run", &err);
        goto out;
    }
    snprintf(p.ctx.agent_id, sizeof p.ctx.agent_id, "%s", id);
    p.capability = ncap;
    p.handler = run_dispatch;
    p.user = &u;
    p.ttl_s = (int)ttl;
    p.stop = &g_stop;
    p.fault = fault;
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (gm_agent_provider_run(&p, &err) != 0) {
        if (u.handler_user == &llm)
            gm_llm_redact(&llm, err.msg);
        rc = cli_fail("agent run", &err);
    }
    gm_agent_ctx_close(&p.ctx);
out:
    gm_agent_repo_free(&repo);
    gm_llm_config_free(&llm);
    if (planner.lock)
        gm_agent_planner_free(&planner);
    cli_log_close();
    return rc;
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
    char k[16];
    short_key(json_string_value(json_object_get(s, "signer")), k);
    printf("  %2zu. %-14s %-10s %-15s %s  [signed by %s, %s]\n", i + 1,
           json_string_value(json_object_get(s, "agent")), json_string_value(json_object_get(s, "action")),
           json_string_value(json_object_get(s, "capability")), json_string_value(json_object_get(s, "detail")), k,
           json_string_value(json_object_get(s, "at")));
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
        code = cli_fail("ask", &err);
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
                printf("error: %s: %s\n", resp.error_code, resp.error_message);
            } else if (ans) {
                printf("answer: %s\n", ans);
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
    {"capability", "CAP", "repo.summary, llm.chat or planner.answer (required)"},
    {"fixture", "F", "repo.summary: the repository JSON to answer from"},
    {"env-file", "F", "llm.chat: read LLM_* settings from F instead of the environment"},
    {"na", "URL", "the NA (default: na_url of D/node.json)"},
    {"ttl", "SECONDS", "descriptor lifetime in seconds (default 600; refreshed at 2/3 of it)"},
    {"sub-timeout-ms", "N", "planner.answer: deadline of each sub-call in ms"},
    {"fault", "KIND", "testing aid: silent, garbage, forge or uncertified"},
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
