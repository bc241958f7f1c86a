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

int cmd_agents(int argc, char **argv)
{
    const char *dir = NULL, *na = NULL, *cap = NULL, *tls_ca = NULL, *tls_pin = NULL;
    int as_json = 0;
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = cli_opt(argc, argv, &i, "--dir", &dir)) || (m = cli_opt(argc, argv, &i, "--na", &na)) ||
            (m = cli_opt(argc, argv, &i, "--capability", &cap)) || (m = cli_opt(argc, argv, &i, "--na-ca", &tls_ca)) ||
            (m = cli_opt(argc, argv, &i, "--na-pin", &tls_pin))) {
            if (m < 0)
                return cli_usage("%s needs a value", argv[i]);
        } else if (cli_flag(argv, i, "--json")) {
            as_json = 1;
        } else if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            printf("usage: genesis-mesh agents [--capability C] [--dir D | --na URL [--na-ca F | --na-pin P]] [--json]\n"
                   "Lists the agents registered with the NA. With --dir, each is also checked like a requester\n"
                   "would (descriptor signature, certificate under the genesis, the NA's signed CRL).\n");
            return 0;
        } else {
            return cli_usage("agents: unknown option '%s'", argv[i]);
        }
    }
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

struct run_log {
    FILE *f;
    const char *agent_id;
};

static void run_log_fn(void *user, const char *level, const char *event, const char *text)
{
    struct run_log *l = user;
    char ts[GM_TIME_STRLEN];
    gm_time now = gm_time_now();
    gm_time_format(&now, ts);
    json_t *o = json_pack("{s:s,s:s,s:s,s:s,s:s}", "ts", ts, "level", level, "event", event, "agent", l->agent_id,
                          "text", text);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s) {
        fprintf(l->f, "%s\n", s);
        fflush(l->f);
    }
    free(s);
    json_decref(o);
}

/* The provider's log callback wraps the handler's user pointer; keep both. */
struct run_user {
    struct run_log log;
    gm_agent_handler handler;
    void *handler_user;
};

static int run_dispatch(void *user, const gm_agent_call_in *in, json_t **output, gm_error *err)
{
    struct run_user *u = user;
    return u->handler(u->handler_user, in, output, err);
}

static void run_log_wrap(void *user, const char *level, const char *event, const char *text)
{
    struct run_user *u = user;
    run_log_fn(&u->log, level, event, text);
}

static int agent_run(int argc, char **argv)
{
    const char *dir = NULL, *na = NULL, *id = NULL, *cap = NULL, *fixture = NULL, *env_file = NULL, *ttl = NULL,
               *logpath = NULL, *fault = NULL, *sub_timeout = NULL;
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = cli_opt(argc, argv, &i, "--dir", &dir)) || (m = cli_opt(argc, argv, &i, "--na", &na)) ||
            (m = cli_opt(argc, argv, &i, "--agent-id", &id)) || (m = cli_opt(argc, argv, &i, "--capability", &cap)) ||
            (m = cli_opt(argc, argv, &i, "--fixture", &fixture)) ||
            (m = cli_opt(argc, argv, &i, "--env-file", &env_file)) || (m = cli_opt(argc, argv, &i, "--ttl", &ttl)) ||
            (m = cli_opt(argc, argv, &i, "--log", &logpath)) || (m = cli_opt(argc, argv, &i, "--fault", &fault)) ||
            (m = cli_opt(argc, argv, &i, "--sub-timeout-ms", &sub_timeout))) {
            if (m < 0)
                return cli_usage("%s needs a value", argv[i]);
        } else if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            printf("usage: genesis-mesh agent run --dir D --agent-id ID --capability CAP [--fixture F]\n"
                   "       [--env-file F] [--na URL] [--ttl SECONDS] [--log FILE] [--sub-timeout-ms N]\n"
                   "Built-in capabilities: repo.summary (--fixture repo.json), llm.chat (LLM_* from the\n"
                   "environment or --env-file), planner.answer (composes repo.summary and llm.chat).\n"
                   "The node at D must be running. Stops on SIGTERM/SIGINT and unregisters.\n");
            return 0;
        } else {
            return cli_usage("agent run: unknown option '%s'", argv[i]);
        }
    }
    if (!id || !cap)
        return cli_usage("agent run: --agent-id and --capability are required");
    if (!gm_agent_id_valid(id))
        return cli_usage("agent run: --agent-id must be 1..%d characters of [A-Za-z0-9._-]", GM_AGENT_ID_MAX);
    if (fault && strcmp(fault, "silent") && strcmp(fault, "garbage") && strcmp(fault, "forge") &&
        strcmp(fault, "uncertified"))
        return cli_usage("agent run: --fault is silent, garbage, forge or uncertified");
    gm_error err = {0};
    char ncap[GM_AGENT_CAP_MAX + 1];
    if (gm_agent_cap_normalize(cap, ncap, &err) != 0)
        return cli_fail("agent run", &err);
    struct run_user u = {.log = {.f = stderr, .agent_id = id}};
    if (logpath && !(u.log.f = fopen(logpath, "a"))) {
        gm_error_set(&err, GM_EIO, "cannot open log file %s", logpath);
        return cli_fail("agent run", &err);
    }
    gm_agent_repo repo = {0};
    gm_llm_config llm = {0};
    gm_agent_planner planner = {0};
    int rc = 0;
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
            planner.sub_timeout_ms = atol(sub_timeout);
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
    p.ttl_s = ttl ? atoi(ttl) : 600;
    p.stop = &g_stop;
    p.fault = fault;
    p.log = run_log_wrap;
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
    if (u.log.f && u.log.f != stderr)
        fclose(u.log.f);
    return rc;
}

int cmd_agent(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "run"))
        return agent_run(argc - 1, argv + 1);
    if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: genesis-mesh agent run --help\n");
        return 0;
    }
    return cli_usage("agent: expected 'agent run' (see genesis-mesh agent run --help)");
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

int cmd_ask(int argc, char **argv)
{
    const char *dir = NULL, *na = NULL, *cap = NULL, *text = NULL, *input_json = NULL, *timeout = NULL;
    int as_json = 0;
    for (int i = 1; i < argc; i++) {
        int m;
        if ((m = cli_opt(argc, argv, &i, "--dir", &dir)) || (m = cli_opt(argc, argv, &i, "--na", &na)) ||
            (m = cli_opt(argc, argv, &i, "--input-json", &input_json)) ||
            (m = cli_opt(argc, argv, &i, "--timeout-ms", &timeout))) {
            if (m < 0)
                return cli_usage("%s needs a value", argv[i]);
        } else if (cli_flag(argv, i, "--json")) {
            as_json = 1;
        } else if (cli_flag(argv, i, "--help") || cli_flag(argv, i, "-h")) {
            printf("usage: genesis-mesh ask CAPABILITY [TEXT | --input-json JSON] [--dir D] [--timeout-ms N] [--json]\n"
                   "Finds a provider of CAPABILITY through the NA named in D/node.json, checks its certificate\n"
                   "and the CRL, sends the request over the mesh through the node running at D, and prints\n"
                   "the answer, the provider and the verified provenance (every step's signature, and the\n"
                   "certificate of every signer under this network's genesis and CRL).\n");
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage("ask: unknown option '%s'", argv[i]);
        } else if (!cap) {
            cap = argv[i];
        } else if (!text) {
            text = argv[i];
        } else {
            return cli_usage("ask: too many arguments (quote the question)");
        }
    }
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
    long t = timeout ? atol(timeout) : (!strcmp(ncap, "planner.answer") ? 20000 : GM_AGENT_DEFAULT_TIMEOUT_MS);
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
