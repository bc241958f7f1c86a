/* genesis-mesh dev up: builds a whole local network in a temporary directory (genesis, NA,
 * eight enrolled node processes, four agents, a mock LLM) and walks through the demo: a
 * question answered by composed agents with provenance, the CRM revocation drill, and a
 * failover after revoking a provider. Every step is printed; the last line is the verdict. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "gm/agent.h"
#include "gm/http_client.h"
#include "gm/node.h"
#include "gm/policy.h"
#include "gm/util.h"

#define MAX_PROCS 32
#define QUESTION "Summarize Genesis Mesh and explain why discovery matters."

/* The nodes of the demo: the seed's four agents, then the AI agents. */
static const struct dev_node {
    const char *name, *role, *capability, *fixture;
} nodes[] = {
    {"supervisor", "supervisor", NULL, NULL},
    {"finance", "finance", NULL, NULL},
    {"crm", "crm", NULL, NULL},
    {"support", "support", NULL, NULL},
    {"repo-agent-a", "service:repo", "repo.summary", "repo-a.json"},
    {"repo-agent-b", "service:repo", "repo.summary", "repo-b.json"},
    {"llm-1", "service:llm", "llm.chat", NULL},
    {"planner-1", "service:planner", "planner.answer", NULL},
};
#define N_NODES (sizeof nodes / sizeof nodes[0])
enum { SUPERVISOR = 0, FINANCE = 1, CRM = 2, REPO_A = 4, PLANNER = 7 };

/* Offline fixtures for the two repo agents (same text as examples/repo-*.json). */
static const char fixture_a[] =
    "{\"name\":\"genesis-mesh\",\"source\":\"repository snapshot A (core)\",\"description\":\"Genesis Mesh is a "
    "permissioned peer-to-peer network in C11: a Root Sovereign key signs a genesis block naming one Network "
    "Authority (NA); the NA enrolls nodes with invite tokens, signs their join certificates and publishes a signed "
    "certificate revocation list (CRL).\",\"language\":\"C11\",\"highlights\":[\"nodes link over Noise XX with their "
    "Ed25519 keys converted to X25519, and route with a distance-vector protocol\",\"messages between nodes are "
    "end-to-end encrypted (Noise IK inside DATA frames)\",\"revoking a certificate removes the node from every peer "
    "and route as the CRL spreads\"],\"files\":[{\"path\":\"lib/core/genesis.c\",\"summary\":\"genesis block\"},"
    "{\"path\":\"lib/core/cert.c\",\"summary\":\"join certificates\"},{\"path\":\"lib/core/crl.c\",\"summary\":\"revocation "
    "lists\"},{\"path\":\"lib/net/route.c\",\"summary\":\"distance-vector routing\"}]}\n";
static const char fixture_b[] =
    "{\"name\":\"genesis-mesh\",\"source\":\"repository snapshot B (agents)\",\"description\":\"Genesis Mesh lets AI "
    "agents find each other by capability: each node signs an agent descriptor, registers it with the Network "
    "Authority, and requesters discover providers through the NA, check their certificates and the CRL themselves, "
    "and call them over the encrypted mesh.\",\"language\":\"C11\",\"highlights\":[\"requesters ask for a capability "
    "(llm.chat, repo.summary, planner.answer), never for a node address\",\"every answer carries provenance steps "
    "signed by the node keys of the agents that produced it\",\"when a provider is revoked, discovery stops "
    "selecting it and callers fail over to the next one\"],\"files\":[{\"path\":\"lib/core/agent_desc.c\",\"summary\":"
    "\"signed agent descriptors\"},{\"path\":\"lib/agent/agent_discover.c\",\"summary\":\"discovery with the requester's "
    "own checks\"},{\"path\":\"lib/agent/agent_provenance.c\",\"summary\":\"signed provenance\"},{\"path\":\"lib/"
    "na_agents.c\",\"summary\":\"the NA's agent registry\"}]}\n";

struct proc {
    pid_t pid;
    char name[64];
};

struct dev {
    char root[PATH_MAX];
    char self[PATH_MAX];
    char mock[PATH_MAX];
    char na_url[128];
    char pk[N_NODES][GM_PK_B64_LEN + 1];
    char port[N_NODES][16];
    pid_t node_pid[N_NODES];
    struct proc procs[MAX_PROCS];
    size_t n_procs;
    int failed;
    int64_t t0;
};

static volatile sig_atomic_t g_interrupted;

static void on_signal(int sig)
{
    (void)sig;
    g_interrupted = 1;
}

static void say(struct dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct dev *d, const char *fmt, ...)
{
    va_list ap;
    printf("[%5.1fs] ", (double)(gm_mono_ms() - d->t0) / 1000.0);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static void check(struct dev *d, int ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check(struct dev *d, int ok, const char *fmt, ...)
{
    va_list ap;
    printf("[%5.1fs]   %s ", (double)(gm_mono_ms() - d->t0) / 1000.0, ok ? "ok  " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    if (!ok)
        d->failed = 1;
}

/* Start self (or prog) with argv; stdout to out_path (NULL = the log), stderr to log_path. */
static pid_t spawn(struct dev *d, const char *prog, char *const argv[], const char *log_path, const char *out_path,
                   int track)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int in = open("/dev/null", O_RDONLY);
        int lg = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int out = out_path ? open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600) : lg;
        if (in < 0 || lg < 0 || out < 0)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(lg, 2);
        execv(prog, argv);
        _exit(127);
    }
    if (track && d->n_procs < MAX_PROCS) {
        d->procs[d->n_procs].pid = pid;
        snprintf(d->procs[d->n_procs].name, sizeof d->procs[0].name, "%s", argv[1] ? argv[1] : prog);
        d->n_procs++;
    }
    return pid;
}

/* Wait for pid up to timeout_ms; returns its exit code, or -1 if still running (-2 on signal). */
static int wait_exit(pid_t pid, long timeout_ms)
{
    int64_t end = gm_mono_ms() + timeout_ms;
    for (;;) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : -2;
        if (r < 0)
            return -2;
        if (gm_mono_ms() >= end)
            return -1;
        gm_sleep_ms(20);
    }
}

static void untrack(struct dev *d, pid_t pid)
{
    for (size_t i = 0; i < d->n_procs; i++)
        if (d->procs[i].pid == pid)
            d->procs[i].pid = 0;
}

static void stop_proc(struct dev *d, pid_t pid)
{
    if (pid <= 0)
        return;
    kill(pid, SIGTERM);
    if (wait_exit(pid, 5000) == -1) {
        kill(pid, SIGKILL);
        wait_exit(pid, 2000);
    }
    untrack(d, pid);
}

/* Run the CLI to completion; returns its exit code (-1 on timeout). Output in out_path. */
static int run_cli(struct dev *d, char *const argv[], const char *out_path, long timeout_ms)
{
    char log[PATH_MAX + 32];
    snprintf(log, sizeof log, "%s/logs/cli.log", d->root);
    pid_t pid = spawn(d, d->self, argv, log, out_path, 0);
    if (pid < 0)
        return -1;
    int rc = wait_exit(pid, timeout_ms);
    if (rc == -1) {
        kill(pid, SIGKILL);
        wait_exit(pid, 1000);
    }
    return rc;
}

static int read_text(const char *path, char **out)
{
    size_t len;
    gm_error e = {0};
    return gm_file_read(path, 1 << 20, out, &len, &e);
}

static int wait_file(const char *path, long timeout_ms)
{
    int64_t end = gm_mono_ms() + timeout_ms;
    while (gm_mono_ms() < end && !g_interrupted) {
        struct stat st;
        if (stat(path, &st) == 0 && st.st_size > 0)
            return 0;
        gm_sleep_ms(20);
    }
    return -1;
}

static void path_of(struct dev *d, char *out, size_t cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void path_of(struct dev *d, char *out, size_t cap, const char *fmt, ...)
{
    char rel[PATH_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rel, sizeof rel, fmt, ap);
    va_end(ap);
    size_t a = strlen(d->root), b = strlen(rel);
    if (a + 1 + b >= cap) { /* cannot happen with our short names; fail visibly, not silently */
        snprintf(out, cap, "/nonexistent-path-too-long");
        return;
    }
    memcpy(out, d->root, a);
    out[a] = '/';
    memcpy(out + a + 1, rel, b + 1);
}

/* The node's status through its local API, or NULL. */
static json_t *node_status(struct dev *d, size_t i)
{
    char sock[PATH_MAX + 32];
    path_of(d, sock, sizeof sock, "nodes/%s/node.sock", nodes[i].name);
    json_t *req = json_pack("{s:s}", "op", "status"), *resp = NULL;
    gm_error e = {0};
    int rc = gm_node_api_call_path(sock, req, &resp, 2000, &e);
    json_decref(req);
    if (rc != 0 || !json_is_true(json_object_get(resp, "ok"))) {
        json_decref(resp);
        return NULL;
    }
    return resp;
}

static json_int_t crl_seq(const json_t *st)
{
    const json_t *s = json_object_get(st, "crl_sequence");
    if (!s)
        s = json_object_get(json_object_get(st, "status"), "crl_sequence");
    return json_is_integer(s) ? json_integer_value(s) : -1;
}

static const json_t *routes_of(const json_t *st)
{
    const json_t *r = json_object_get(st, "routes");
    return r ? r : json_object_get(json_object_get(st, "status"), "routes");
}

static int has_route_to(const json_t *st, const char *pk)
{
    const json_t *r = routes_of(st);
    for (size_t i = 0; i < json_array_size(r); i++) {
        const json_t *e = json_array_get(r, i);
        const char *dst = json_string_value(json_object_get(e, "destination"));
        const json_t *m = json_object_get(e, "metric");
        if (dst && !strcmp(dst, pk) && !(json_is_integer(m) && json_integer_value(m) >= 0xFFFF))
            return 1;
    }
    return 0;
}

static int step_setup(struct dev *d)
{
    char dir[PATH_MAX + 64], portf[PATH_MAX + 64], log[PATH_MAX + 64], out[PATH_MAX + 64];
    gm_error e = {0};
    path_of(d, dir, sizeof dir, "logs");
    if (gm_mkdir_p(dir, 0700, &e) != 0)
        return cli_fail("dev up", &e);
    path_of(d, dir, sizeof dir, "fixtures");
    if (gm_mkdir_p(dir, 0700, &e) != 0)
        return cli_fail("dev up", &e);
    path_of(d, out, sizeof out, "fixtures/repo-a.json");
    if (gm_file_write_atomic(out, fixture_a, strlen(fixture_a), 0600, &e) != 0)
        return cli_fail("dev up", &e);
    path_of(d, out, sizeof out, "fixtures/repo-b.json");
    if (gm_file_write_atomic(out, fixture_b, strlen(fixture_b), 0600, &e) != 0)
        return cli_fail("dev up", &e);

    say(d, "1. genesis: root, NA and operator keys and a signed genesis block for network DEVNET");
    path_of(d, dir, sizeof dir, "authority");
    path_of(d, out, sizeof out, "logs/init.out");
    char *init[] = {"genesis-mesh", "init", "--dir", dir, "--network", "DEVNET", "--listen", "127.0.0.1:0", NULL};
    int rc = run_cli(d, init, out, 20000);
    check(d, rc == 0, "genesis-mesh init --dir %s", dir);
    if (rc != 0)
        return -1;

    say(d, "2. Network Authority: start it on a free port");
    path_of(d, portf, sizeof portf, "na.port");
    path_of(d, log, sizeof log, "logs/na.log");
    char *na[] = {"genesis-mesh", "na", "start", "--dir", dir, "--listen", "127.0.0.1:0", "--port-file", portf, NULL};
    if (spawn(d, d->self, na, log, NULL, 1) < 0 || wait_file(portf, 15000) != 0) {
        check(d, 0, "NA did not start (see %s)", log);
        return -1;
    }
    char *port = NULL;
    read_text(portf, &port);
    port[strcspn(port, "\r\n")] = '\0';
    snprintf(d->na_url, sizeof d->na_url, "https://127.0.0.1:%s", port);
    free(port);
    /* HTTPS with the certificate init made: the nodes join with it as their CA (kept in each
     * node directory), and this process trusts it for its own NA calls. */
    char na_ca[PATH_MAX];
    path_of(d, na_ca, sizeof na_ca, "authority/tls.crt");
    if (gm_http_trust_set(d->na_url, na_ca, NULL, &e) != 0) {
        check(d, 0, "NA TLS certificate: %s", e.msg);
        return -1;
    }
    check(d, 1, "NA listening at %s (TLS, certificate %s)", d->na_url, na_ca);

    const char *model = getenv("LLM_MODEL"), *key = getenv("LLM_API_KEY");
    if (model && *model && key && *key) {
        say(d, "3. LLM: LLM_MODEL and LLM_API_KEY are set, llm-1 uses the real provider (%s)", model);
    } else {
        say(d, "3. LLM: starting the mock OpenAI-compatible server (set LLM_MODEL and LLM_API_KEY for a real one)");
        path_of(d, portf, sizeof portf, "mock.port");
        path_of(d, log, sizeof log, "logs/mock-llm.log");
        char *mock[] = {"gm-mock-llm", "--port", "0", "--port-file", portf, "--require-key", "sk-dev-mock-key", NULL};
        if (spawn(d, d->mock, mock, log, NULL, 1) < 0 || wait_file(portf, 10000) != 0) {
            check(d, 0, "mock LLM did not start (%s; see %s)", d->mock, log);
            return -1;
        }
        read_text(portf, &port);
        port[strcspn(port, "\r\n")] = '\0';
        char url[128];
        snprintf(url, sizeof url, "http://127.0.0.1:%s/v1", port);
        free(port);
        setenv("LLM_MODEL", "gm-mock-model", 1);
        setenv("LLM_BASE_URL", url, 1);
        setenv("LLM_API_KEY", "sk-dev-mock-key", 1);
        check(d, 1, "mock LLM at %s", url);
    }

    say(d, "4. enrollment: the operator invites each node, each node joins with its own key");
    for (size_t i = 0; i < N_NODES && !g_interrupted; i++) {
        path_of(d, out, sizeof out, "logs/invite-%s.json", nodes[i].name);
        char *inv[] = {"genesis-mesh", "admin", "invite", "--dir", dir, "--na", d->na_url, "--role",
                       (char *)nodes[i].role, "--json", NULL};
        char *text = NULL;
        if (run_cli(d, inv, out, 15000) != 0 || read_text(out, &text) != 0) {
            check(d, 0, "invite for %s failed (see %s/logs/cli.log)", nodes[i].name, d->root);
            free(text);
            return -1;
        }
        json_t *j = json_loads(text, 0, NULL);
        free(text);
        const char *tok = json_string_value(json_object_get(j, "token"));
        char token[256], ndir[PATH_MAX + 64];
        snprintf(token, sizeof token, "%s", tok ? tok : "");
        json_decref(j);
        path_of(d, ndir, sizeof ndir, "nodes/%s", nodes[i].name);
        path_of(d, out, sizeof out, "logs/join-%s.out", nodes[i].name);
        char *join[] = {"genesis-mesh", "join", "--dir", ndir, "--na", d->na_url, "--token", token, "--na-ca", na_ca,
                        NULL};
        if (!token[0] || run_cli(d, join, out, 15000) != 0) {
            check(d, 0, "join of %s failed (see %s)", nodes[i].name, out);
            return -1;
        }
        char pub[PATH_MAX + 80];
        uint8_t pk[GM_PK_LEN];
        snprintf(pub, sizeof pub, "%s/node.pub", ndir);
        if (gm_pk_load(pub, pk, &e) != 0) {
            check(d, 0, "%s: %s", nodes[i].name, e.msg);
            return -1;
        }
        gm_pk_encode(pk, d->pk[i]);
        check(d, 1, "%-12s role:%-15s node key %s", nodes[i].name, nodes[i].role, d->pk[i]);
    }
    return g_interrupted ? -1 : 0;
}

static int start_node(struct dev *d, size_t i)
{
    char ndir[PATH_MAX + 64], portf[PATH_MAX + 64], log[PATH_MAX + 64], errlog[PATH_MAX + 64], p1[64], p2[64];
    path_of(d, ndir, sizeof ndir, "nodes/%s", nodes[i].name);
    path_of(d, portf, sizeof portf, "nodes/%s.port", nodes[i].name);
    path_of(d, log, sizeof log, "logs/node-%s.log", nodes[i].name);
    path_of(d, errlog, sizeof errlog, "logs/node-%s.stderr", nodes[i].name);
    unlink(portf);
    snprintf(p1, sizeof p1, "127.0.0.1:%s", d->port[SUPERVISOR]);
    snprintf(p2, sizeof p2, "127.0.0.1:%s", d->port[FINANCE]);
    /* A small redundant topology: everyone links to supervisor and finance, so revoking any
     * other node never splits the mesh. */
    char *argv[24] = {"genesis-mesh", "node", "start", "--dir", ndir, "--listen", "127.0.0.1:0", "--port-file", portf,
                      "--log", log, "--crl-poll-ms", "300"};
    int n = 13;
    if (i != SUPERVISOR) {
        argv[n++] = "--peer";
        argv[n++] = p1;
    }
    if (i > FINANCE) {
        argv[n++] = "--peer";
        argv[n++] = p2;
    }
    argv[n] = NULL;
    pid_t pid = spawn(d, d->self, argv, errlog, NULL, 1);
    if (pid < 0 || wait_file(portf, 15000) != 0)
        return -1;
    d->node_pid[i] = pid;
    char *port = NULL;
    read_text(portf, &port);
    snprintf(d->port[i], sizeof d->port[i], "%.*s", (int)strcspn(port, "\r\n"), port);
    free(port);
    return 0;
}

static int step_mesh(struct dev *d)
{
    say(d, "5. mesh: start the %zu node processes (Noise XX links, distance-vector routes)", N_NODES);
    for (size_t i = 0; i < N_NODES; i++) {
        if (start_node(d, i) != 0) {
            check(d, 0, "node %s did not start (see %s/logs/node-%s.stderr)", nodes[i].name, d->root, nodes[i].name);
            return -1;
        }
    }
    int64_t end = gm_mono_ms() + 30000;
    size_t full = 0;
    while (gm_mono_ms() < end && !g_interrupted) {
        full = 0;
        for (size_t i = 0; i < N_NODES; i++) {
            json_t *st = node_status(d, i);
            size_t reach = 0;
            for (size_t j = 0; j < N_NODES; j++)
                reach += j != i && st && has_route_to(st, d->pk[j]);
            full += reach == N_NODES - 1;
            json_decref(st);
        }
        if (full == N_NODES)
            break;
        gm_sleep_ms(200);
    }
    check(d, full == N_NODES, "%zu of %zu nodes have a route to every other node", full, N_NODES);
    return full == N_NODES ? 0 : -1;
}

static int count_agents(struct dev *d)
{
    char url[256];
    snprintf(url, sizeof url, "%s/agents", d->na_url);
    json_t *body = NULL;
    int status = 0;
    gm_error e = {0};
    if (gm_http_get_json(url, NULL, 0, 3000, &status, &body, &e) != 0 || status != 200) {
        json_decref(body);
        return -1;
    }
    int n = (int)json_array_size(json_object_get(body, "agents"));
    json_decref(body);
    return n;
}

static int step_agents(struct dev *d)
{
    say(d, "6. agents: each registers a signed descriptor with the NA and listens on the mesh port 'capability'");
    int want = 0;
    for (size_t i = 0; i < N_NODES; i++) {
        if (!nodes[i].capability)
            continue;
        char ndir[PATH_MAX + 64], log[PATH_MAX + 64], fx[PATH_MAX + 64];
        path_of(d, ndir, sizeof ndir, "nodes/%s", nodes[i].name);
        path_of(d, log, sizeof log, "logs/agent-%s.log", nodes[i].name);
        char *argv[16] = {"genesis-mesh", "agent", "run", "--dir", ndir, "--agent-id", (char *)nodes[i].name,
                          "--capability", (char *)nodes[i].capability, "--log", log};
        int n = 11;
        if (nodes[i].fixture) {
            path_of(d, fx, sizeof fx, "fixtures/%s", nodes[i].fixture);
            argv[n++] = "--fixture";
            argv[n++] = fx;
        }
        argv[n] = NULL;
        if (spawn(d, d->self, argv, log, NULL, 1) < 0)
            return -1;
        want++;
    }
    int64_t end = gm_mono_ms() + 20000;
    int have = 0;
    while (gm_mono_ms() < end && !g_interrupted && (have = count_agents(d)) < want)
        gm_sleep_ms(100);
    check(d, have == want, "%d of %d agents registered (genesis-mesh agents --dir %s/nodes/supervisor)", have, want,
          d->root);
    if (have == want) {
        char sdir[PATH_MAX + 64], out[PATH_MAX + 64];
        path_of(d, sdir, sizeof sdir, "nodes/supervisor");
        path_of(d, out, sizeof out, "logs/agents.out");
        char *ls[] = {"genesis-mesh", "agents", "--dir", sdir, NULL};
        char *text = NULL;
        if (run_cli(d, ls, out, 10000) == 0 && read_text(out, &text) == 0) {
            char *save = NULL;
            for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                printf("           %s\n", line);
        }
        free(text);
    }
    return have == want ? 0 : -1;
}

/* Ask the question as the supervisor (a requester that only knows the NA address). */
static int ask(struct dev *d, const char *label, char **text)
{
    char sdir[PATH_MAX + 64], out[PATH_MAX + 64];
    path_of(d, sdir, sizeof sdir, "nodes/supervisor");
    path_of(d, out, sizeof out, "logs/ask-%s.out", label);
    say(d, "   $ genesis-mesh ask planner.answer \"%s\" --dir %s", QUESTION, sdir);
    char *argv[] = {"genesis-mesh", "ask", "planner.answer", QUESTION, "--dir", sdir, NULL};
    int rc = run_cli(d, argv, out, 40000);
    *text = NULL;
    read_text(out, text);
    if (*text) {
        char *copy = strdup(*text), *save = NULL;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
            printf("           %s\n", line);
        free(copy);
    }
    return rc;
}

static int revoke_node(struct dev *d, size_t i)
{
    char dir[PATH_MAX + 64], out[PATH_MAX + 64];
    path_of(d, dir, sizeof dir, "authority");
    path_of(d, out, sizeof out, "logs/revoke-%s.out", nodes[i].name);
    say(d, "   $ genesis-mesh admin revoke --node-key %s --reason key_compromise", d->pk[i]);
    char *argv[] = {"genesis-mesh", "admin",    "revoke",           "--dir",  dir, "--na", d->na_url, "--node-key",
                    d->pk[i],       "--reason", "key_compromise", NULL};
    return run_cli(d, argv, out, 15000);
}

/* Wait until every running node but skip holds CRL sequence >= seq; prints them. */
static int wait_crl(struct dev *d, json_int_t seq, size_t skip)
{
    int64_t end = gm_mono_ms() + 15000;
    size_t good = 0, total = 0;
    char line[1024];
    while (gm_mono_ms() < end && !g_interrupted) {
        good = total = 0;
        size_t n = 0;
        line[0] = '\0';
        for (size_t i = 0; i < N_NODES; i++) {
            if (i == skip || d->node_pid[i] <= 0)
                continue;
            json_t *st = node_status(d, i);
            json_int_t s = st ? crl_seq(st) : -1;
            json_decref(st);
            total++;
            good += s >= seq;
            n += (size_t)snprintf(line + n, sizeof line - n, "%s%s=%lld", n ? " " : "", nodes[i].name, (long long)s);
            if (n >= sizeof line)
                n = sizeof line - 1;
        }
        if (good == total)
            break;
        gm_sleep_ms(100);
    }
    check(d, good == total, "CRL sequence %lld reached %zu of %zu nodes: %s", (long long)seq, good, total, line);
    return good == total ? 0 : -1;
}

/* 1 if one line of text holds both a and b. */
static int has_line(const char *text, const char *a, const char *b)
{
    for (const char *l = text; l && *l;) {
        const char *end = strchr(l, '\n');
        size_t n = end ? (size_t)(end - l) : strlen(l);
        char *line = strndup(l, n);
        int hit = line && strstr(line, a) && strstr(line, b);
        free(line);
        if (hit)
            return 1;
        l = end ? end + 1 : NULL;
    }
    return 0;
}

/* The source tree (its sdk/python and examples/): $GM_SOURCE, else the parent of the folder of
 * this program (a build directory inside the checkout). 0 when found. */
static int find_source(const struct dev *d, char *out, size_t cap)
{
    const char *env = getenv("GM_SOURCE");
    char probe[PATH_MAX + 80];
    if (env && *env)
        snprintf(out, cap, "%s", env);
    else {
        snprintf(out, cap, "%s", d->self);
        for (int up = 0; up < 2; up++) {
            char *slash = strrchr(out, '/');
            if (slash)
                *slash = '\0';
        }
    }
    snprintf(probe, sizeof probe, "%s/sdk/python/genesis_mesh/__init__.py", out);
    return access(probe, R_OK) == 0 ? 0 : -1;
}

/* genesis-mesh ask CAP --input-json INPUT as the supervisor; *text: what it printed. */
static int ask_json(struct dev *d, const char *cap, const char *input, const char *label, char **text)
{
    char sdir[PATH_MAX + 64], out[PATH_MAX + 64];
    path_of(d, sdir, sizeof sdir, "nodes/supervisor");
    path_of(d, out, sizeof out, "logs/ask-%s.out", label);
    say(d, "   $ genesis-mesh ask %s --input-json '%s' --dir %s", cap, input, sdir);
    char *argv[] = {"genesis-mesh", "ask", (char *)cap, "--input-json", (char *)input, "--dir", sdir, NULL};
    int rc = run_cli(d, argv, out, 30000);
    *text = NULL;
    read_text(out, text);
    if (*text) {
        char *copy = strdup(*text), *save = NULL;
        for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save))
            printf("           %s\n", line);
        free(copy);
    }
    return rc;
}

/* Agents not written in C: one with the Python SDK, one --exec program, on the support node; the
 * researcher uses both on the planner's answer. */
static int step_open_agents(struct dev *d)
{
    say(d, "7b. open agents: a Python SDK agent (glossary.define) and an --exec program (text.stats) join on support");
    char src[PATH_MAX], ndir[PATH_MAX + 64], log[PATH_MAX + 64], log2[PATH_MAX + 64], py[PATH_MAX + 64],
        stats[PATH_MAX + 64], cmd[2 * PATH_MAX], pypath[PATH_MAX + 32];
    if (find_source(d, src, sizeof src) != 0) {
        say(d, "   note: skipped: no genesis-mesh source tree (sdk/python, examples/) found; set GM_SOURCE");
        return 0;
    }
    path_of(d, ndir, sizeof ndir, "nodes/support");
    path_of(d, log, sizeof log, "logs/agent-glossary-py.log");
    path_of(d, log2, sizeof log2, "logs/agent-stats-exec.log");
    snprintf(py, sizeof py, "%s/examples/python/glossary_agent.py", src);
    snprintf(stats, sizeof stats, "%s/examples/exec/text_stats.py", src);
    snprintf(pypath, sizeof pypath, "%s/sdk/python", src);
    setenv("PYTHONPATH", pypath, 1);
    /* Debian's python3 when there (a python3 earlier in PATH may be a slow-starting shim) */
    const char *python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    snprintf(cmd, sizeof cmd, "%s '%s'", python, stats);
    int want = count_agents(d) + 2;
    char *pyargv[] = {"env", (char *)python, "-u", py, ndir, "glossary-py", NULL};
    char *exargv[] = {"genesis-mesh", "agent",  "run",           "--dir", ndir, "--agent-id", "stats-exec",
                      "--capability", "text.stats", "--exec", cmd, "--description",
                      "words, sentences and characters of a text (an --exec program)", "--log", log2, NULL};
    if (spawn(d, "/usr/bin/env", pyargv, log, NULL, 1) < 0 || spawn(d, d->self, exargv, log2, NULL, 1) < 0)
        return -1;
    int64_t end = gm_mono_ms() + 30000;
    while (gm_mono_ms() < end && !g_interrupted && count_agents(d) < want)
        gm_sleep_ms(100);
    check(d, count_agents(d) >= want, "glossary-py (Python SDK) and stats-exec (--exec) registered");
    char *text = NULL;
    int rc = ask_json(d, "glossary.define", "{\"term\":\"provenance\"}", "glossary", &text);
    int ok = rc == 0 && text && strstr(text, "provider: glossary-py") && strstr(text, "every signature verified");
    check(d, ok, "the researcher looks up a term of the answer: glossary.define answered by glossary-py (Python), "
                 "provenance verified");
    free(text);
    text = NULL;
    rc = ask_json(d, "text.stats", "{\"text\":\"" QUESTION "\"}", "stats", &text);
    int ok2 = rc == 0 && text && strstr(text, "provider: stats-exec") && strstr(text, "every signature verified") &&
              strstr(text, "\"words\"");
    check(d, ok2, "the researcher measures the question: text.stats answered by stats-exec (--exec), provenance "
                  "verified");
    free(text);
    return ok && ok2 ? 0 : -1;
}

static int step_question(struct dev *d)
{
    say(d, "7. the researcher's question: the supervisor node asks for the capability planner.answer");
    char *text = NULL;
    int rc = ask(d, "first", &text);
    int ok = rc == 0 && text && strstr(text, "provider: planner-1") && has_line(text, "repo-agent-a", " executed ") &&
             has_line(text, "llm-1", " executed ") && strstr(text, "every signature verified") &&
             strstr(text, "signers (3, each holding a valid, unrevoked certificate");
    check(d, ok, "answer from planner-1 composed of repo-agent-a and llm-1, provenance verified, its 3 signers "
                 "certified");
    free(text);
    return ok ? 0 : -1;
}

#define LEDGER_FIXTURE "{\"name\":\"ledger\",\"description\":\"Q3 revenue 1.2M, costs 0.9M.\",\"source\":\"finance demo\"}\n"

/* Milliseconds from issued to the last running node logging policy_updated for seq (its own
 * clock, same machine); *slowest names that node. -1 when a node has not logged it. */
static double policy_spread_ms(struct dev *d, json_int_t seq, const gm_time *issued, const char **slowest)
{
    double worst = 0;
    *slowest = "?";
    for (size_t i = 0; i < N_NODES; i++) {
        char log[PATH_MAX + 64], *text = NULL;
        if (d->node_pid[i] <= 0)
            continue;
        path_of(d, log, sizeof log, "logs/node-%s.log", nodes[i].name);
        double got = -1;
        if (read_text(log, &text) == 0) {
            char *save = NULL;
            for (char *line = strtok_r(text, "\n", &save); line && got < 0; line = strtok_r(NULL, "\n", &save)) {
                if (!strstr(line, "\"policy_updated\""))
                    continue;
                json_t *ev = json_loads(line, 0, NULL);
                gm_time t;
                if (json_integer_value(json_object_get(ev, "sequence")) == seq &&
                    gm_time_parse(json_string_value(json_object_get(ev, "ts")), &t, NULL) == 0)
                    got = (double)(t.unix_s - issued->unix_s) * 1000.0 + (t.usec - issued->usec) / 1000.0;
                json_decref(ev);
            }
        }
        free(text);
        if (got < 0)
            return -1;
        if (got >= worst) {
            worst = got;
            *slowest = nodes[i].name;
        }
    }
    return worst;
}

/* admin policy set with rules; then wait until every running node holds sequence seq. */
static int set_policy(struct dev *d, const char *label, const char *rules, json_int_t seq)
{
    char dir[PATH_MAX + 64], file[PATH_MAX + 64], out[PATH_MAX + 64], *text = NULL;
    gm_error e = {0};
    path_of(d, dir, sizeof dir, "authority");
    path_of(d, file, sizeof file, "policy-%s.rules", label);
    path_of(d, out, sizeof out, "logs/policy-set-%s.json", label);
    if (gm_file_write_atomic(file, rules, strlen(rules), 0644, &e) != 0) {
        check(d, 0, "%s", e.msg);
        return -1;
    }
    say(d, "   $ genesis-mesh admin policy set %s", file);
    char *argv[] = {"genesis-mesh", "admin", "policy", "set", file, "--dir", dir, "--na", d->na_url, "--json", NULL};
    gm_time issued;
    json_t *resp = NULL;
    if (run_cli(d, argv, out, 15000) == 0 && read_text(out, &text) == 0)
        resp = json_loads(text, 0, NULL);
    free(text);
    int ok = resp && gm_time_parse(json_string_value(json_object_get(json_object_get(resp, "policy"), "issued_at")),
                                   &issued, NULL) == 0;
    json_decref(resp);
    if (!ok) {
        check(d, 0, "admin policy set failed (see %s and %s/logs/cli.log)", out, d->root);
        return -1;
    }
    size_t good = 0, total = 0;
    int64_t end = gm_mono_ms() + 15000;
    while (gm_mono_ms() < end && !g_interrupted) {
        good = total = 0;
        for (size_t i = 0; i < N_NODES; i++) {
            if (d->node_pid[i] <= 0)
                continue;
            json_t *st = node_status(d, i);
            total++;
            good += st && json_integer_value(json_object_get(json_object_get(st, "access_policy"), "sequence")) >= seq;
            json_decref(st);
        }
        if (good == total)
            break;
        gm_sleep_ms(20);
    }
    const char *slowest = "?";
    double ms = good == total ? policy_spread_ms(d, seq, &issued, &slowest) : -1;
    check(d, good == total && ms >= 0,
          "access policy %lld reached %zu of %zu nodes; the last (%s) installed it %.0f ms after the NA signed it",
          (long long)seq, good, total, slowest, ms);
    return good == total && ms >= 0 ? 0 : -1;
}

/* genesis-mesh ask CAP as node i; its exit code. *text: what it printed, stdout and stderr. */
static int ask_as(struct dev *d, size_t i, const char *cap, const char *label, char **text)
{
    char ndir[PATH_MAX + 64], out[PATH_MAX + 64];
    path_of(d, ndir, sizeof ndir, "nodes/%s", nodes[i].name);
    path_of(d, out, sizeof out, "logs/ask-%s.out", label);
    say(d, "   $ genesis-mesh ask %s \"how was Q3?\" --dir %s", cap, ndir);
    char *argv[] = {"genesis-mesh", "ask", (char *)cap, "how was Q3?", "--dir", ndir, NULL};
    unlink(out);
    pid_t pid = spawn(d, d->self, argv, out, NULL, 0);
    int rc = pid < 0 ? -1 : wait_exit(pid, 30000);
    if (rc == -1 && pid > 0) {
        kill(pid, SIGKILL);
        wait_exit(pid, 1000);
    }
    *text = NULL;
    read_text(out, text);
    if (*text) {
        char *copy = strdup(*text), *save = NULL;
        for (char *line = copy ? strtok_r(copy, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save))
            printf("           %s\n", line);
        free(copy);
    }
    return rc;
}

static int step_policy(struct dev *d)
{
    say(d, "8. access policy: the roles in the certificates decide who may call what");
    char ndir[PATH_MAX + 64], fx[PATH_MAX + 64], log[PATH_MAX + 64], *text = NULL;
    gm_error e = {0};
    path_of(d, ndir, sizeof ndir, "nodes/finance");
    path_of(d, fx, sizeof fx, "fixtures/ledger.json");
    path_of(d, log, sizeof log, "logs/agent-ledger.log");
    if (gm_file_write_atomic(fx, LEDGER_FIXTURE, strlen(LEDGER_FIXTURE), 0644, &e) != 0) {
        check(d, 0, "%s", e.msg);
        return -1;
    }
    char *argv[] = {"genesis-mesh", "agent", "run", "--dir", ndir, "--agent-id", "ledger", "--capability",
                    "finance.report", "--fixture", fx, "--log", log, NULL};
    if (spawn(d, d->self, argv, log, NULL, 1) < 0)
        return -1;
    int64_t end = gm_mono_ms() + 20000;
    int want = count_agents(d) + 1;
    while (gm_mono_ms() < end && !g_interrupted && count_agents(d) < want)
        gm_sleep_ms(100);
    check(d, count_agents(d) >= want, "the finance node serves finance.report (agent ledger)");
    say(d, "   deny by default: supervisor may call everything, crm may not call finance.*");
    if (set_policy(d, "deny-by-default", gm_policy_seed_example, 1) != 0)
        return -1;
    int rc = ask_as(d, CRM, "finance.report", "crm-refused", &text);
    int ok = rc != 0 && text && strstr(text, "forbidden") && strstr(text, "rule 2: deny role:crm capability finance.*");
    check(d, ok, "crm is refused finance.report by rule 2 of the access policy");
    free(text);
    if (!ok)
        return -1;
    rc = ask_as(d, SUPERVISOR, "finance.report", "supervisor-allowed", &text);
    ok = rc == 0 && text && strstr(text, "authorized: access policy 1, rule 1: allow role:supervisor capability *");
    check(d, ok, "the supervisor's call is allowed; the executed step names the rule");
    free(text);
    if (!ok)
        return -1;
    say(d, "   the operator lets crm read finance reports:");
    char *rules2 = strdup(gm_policy_seed_example);
    char *line = rules2 ? strstr(rules2, "deny  role:crm capability finance.*") : NULL;
    if (line)
        memcpy(line, "allow", 5);
    rc = line ? set_policy(d, "crm-finance", rules2, 2) : -1;
    free(rules2);
    if (rc != 0)
        return -1;
    rc = ask_as(d, CRM, "finance.report", "crm-allowed", &text);
    ok = rc == 0 && text && strstr(text, "authorized: access policy 2, rule 2: allow role:crm capability finance.*");
    check(d, ok, "crm's finance.report call now succeeds under policy 2, rule 2");
    free(text);
    return ok ? 0 : -1;
}

static int step_crm_drill(struct dev *d)
{
    say(d, "9. CRM revocation drill: revoke crm, watch the CRL spread and crm's routes disappear");
    json_t *st = node_status(d, SUPERVISOR);
    json_int_t before = st ? crl_seq(st) : -1;
    json_decref(st);
    check(d, before >= 0, "supervisor holds CRL sequence %lld", (long long)before);
    if (revoke_node(d, CRM) != 0) {
        check(d, 0, "admin revoke crm failed (see %s/logs/revoke-crm.out)", d->root);
        return -1;
    }
    if (wait_crl(d, before + 1, CRM) != 0)
        return -1;
    int64_t end = gm_mono_ms() + 15000;
    size_t still = 0;
    while (gm_mono_ms() < end && !g_interrupted) {
        still = 0;
        for (size_t i = 0; i < N_NODES; i++) {
            if (i == CRM)
                continue;
            json_t *s = node_status(d, i);
            still += s && has_route_to(s, d->pk[CRM]);
            json_decref(s);
        }
        if (still == 0)
            break;
        gm_sleep_ms(100);
    }
    check(d, still == 0, "no node has a route to crm any more (%zu still had one)", still);
    say(d, "   restart crm with its revoked certificate:");
    stop_proc(d, d->node_pid[CRM]);
    d->node_pid[CRM] = 0;
    char ndir[PATH_MAX + 64], out[PATH_MAX + 64];
    path_of(d, ndir, sizeof ndir, "nodes/crm");
    path_of(d, out, sizeof out, "logs/crm-restart.out");
    char *argv[] = {"genesis-mesh", "node", "start", "--dir", ndir, "--listen", "127.0.0.1:0", NULL};
    char log[PATH_MAX + 64];
    path_of(d, log, sizeof log, "logs/crm-restart.err");
    unlink(log);
    pid_t pid = spawn(d, d->self, argv, log, out, 0);
    int rc = wait_exit(pid, 10000);
    if (rc == -1) {
        kill(pid, SIGKILL);
        wait_exit(pid, 1000);
    }
    char *why = NULL;
    read_text(log, &why);
    if (why)
        why[strcspn(why, "\n")] = '\0';
    check(d, rc == 1, "crm refused to start (exit %d): %.200s", rc, why ? why : "");
    free(why);
    return d->failed ? -1 : 0;
}

static int step_failover(struct dev *d)
{
    say(d, "10. failover: revoke repo-agent-a; the same question must be answered through repo-agent-b");
    json_t *st = node_status(d, SUPERVISOR);
    json_int_t before = st ? crl_seq(st) : -1;
    json_decref(st);
    if (revoke_node(d, REPO_A) != 0) {
        check(d, 0, "admin revoke repo-agent-a failed");
        return -1;
    }
    wait_crl(d, before + 1, REPO_A); /* the revoked node itself may stop on learning it */
    char *text = NULL;
    int rc = ask(d, "failover", &text);
    int ok = rc == 0 && text && strstr(text, "provider: planner-1") && has_line(text, "repo-agent-b", " executed ") &&
             !has_line(text, "repo-agent-a", " executed ") && strstr(text, "failover: repo-agent-a") &&
             strstr(text, "signers (3, each holding a valid, unrevoked certificate");
    check(d, ok, "answered through repo-agent-b; the provenance records the failover from repo-agent-a, and no step "
                 "is signed by the revoked key");
    free(text);
    return ok ? 0 : -1;
}

static void cleanup(struct dev *d)
{
    /* Agents first (they unregister), then nodes, then the NA and the mock. */
    for (size_t i = 0; i < d->n_procs; i++)
        if (d->procs[i].pid > 0 && !strcmp(d->procs[i].name, "agent"))
            kill(d->procs[i].pid, SIGTERM);
    for (size_t i = 0; i < d->n_procs; i++)
        if (d->procs[i].pid > 0 && !strcmp(d->procs[i].name, "agent"))
            stop_proc(d, d->procs[i].pid);
    for (size_t k = d->n_procs; k-- > 0;)
        if (d->procs[k].pid > 0)
            kill(d->procs[k].pid, SIGTERM);
    for (size_t k = d->n_procs; k-- > 0;)
        if (d->procs[k].pid > 0)
            stop_proc(d, d->procs[k].pid);
}

static void rm_rf(const char *path)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", "--", path, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        wait_exit(pid, 30000);
}

static int dev_up(const cli_args *a)
{
    const char *dir = cli_str(a, "dir", NULL);
    int keep = cli_has(a, "keep");
    static struct dev d;
    memset(&d, 0, sizeof d);
    d.t0 = gm_mono_ms();
    ssize_t n = readlink("/proc/self/exe", d.self, sizeof d.self - 1);
    if (n <= 0) {
        fprintf(stderr, "genesis-mesh: dev up: cannot find my own program (/proc/self/exe)\n");
        return 1;
    }
    d.self[n] = '\0';
    snprintf(d.mock, sizeof d.mock, "%s", d.self);
    char *slash = strrchr(d.mock, '/');
    snprintf(slash + 1, sizeof d.mock - (size_t)(slash + 1 - d.mock), "gm-mock-llm");
    if (dir) {
        struct stat st;
        if (stat(dir, &st) == 0) {
            fprintf(stderr, "genesis-mesh: dev up: %s already exists; give a new directory\n", dir);
            return 1;
        }
        gm_error e = {0};
        if (gm_mkdir_p(dir, 0700, &e) != 0)
            return cli_fail("dev up", &e);
        if (!realpath(dir, d.root))
            return 1;
        keep = 1;
    } else {
        const char *tmp = getenv("TMPDIR");
        snprintf(d.root, sizeof d.root, "%s/gm-dev-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(d.root)) {
            fprintf(stderr, "genesis-mesh: dev up: cannot create a temporary directory: %s\n", strerror(errno));
            return 1;
        }
    }
    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    say(&d, "genesis-mesh dev up: a local agent network in %s", d.root);
    int rc = step_setup(&d);
    if (rc == 0 && !g_interrupted)
        rc = step_mesh(&d);
    if (rc == 0 && !g_interrupted)
        rc = step_agents(&d);
    if (rc == 0 && !g_interrupted)
        rc = step_question(&d);
    if (rc == 0 && !g_interrupted)
        rc = step_open_agents(&d);
    if (rc == 0 && !g_interrupted)
        rc = step_policy(&d);
    if (rc == 0 && !g_interrupted)
        rc = step_crm_drill(&d);
    if (rc == 0 && !g_interrupted)
        rc = step_failover(&d);
    if (g_interrupted)
        say(&d, "interrupted");
    say(&d, "stopping %zu processes", d.n_procs);
    cleanup(&d);
    int pass = rc == 0 && !d.failed && !g_interrupted;
    if (keep)
        say(&d, "kept %s (logs in %s/logs)", d.root, d.root);
    else if (pass)
        rm_rf(d.root);
    else
        say(&d, "FAIL: kept %s for inspection (logs in %s/logs)", d.root, d.root);
    printf("verdict: %s (%.1f s)\n", pass ? "PASS" : "FAIL", (double)(gm_mono_ms() - d.t0) / 1000.0);
    return pass ? 0 : 1;
}

static const cli_opt up_opts[] = {
    {"dir", "D", "build the network in D (a new directory; kept afterwards)"},
    {"keep", NULL, "keep the directory (keys, logs) for inspection"},
    {NULL},
};
static const cli_cmd dev_up_cmd = {
    "up", "run the whole local AI agent network demo", "[--keep] [--dir D]",
    "Builds a whole local network in a new directory (D, or a temporary one), runs the\n"
    "agents demo and the revocation drills, prints each step and a PASS/FAIL verdict, then\n"
    "stops every process. Uses the mock LLM (gm-mock-llm next to this program) unless\n"
    "LLM_MODEL and LLM_API_KEY are set.\n",
    dev_up, up_opts, 0, NULL};
static const cli_cmd *const dev_subs[] = {&dev_up_cmd, NULL};
const cli_cmd cli_dev = {"dev", "dev up: run the whole local AI agent network demo", NULL, NULL, NULL, NULL, 0,
                         dev_subs};
