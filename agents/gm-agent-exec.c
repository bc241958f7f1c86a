/* gm-agent-exec: serves a capability with any program or local HTTP service, no code needed.
 *   --exec 'CMD ARGS'  one process per request: the input as JSON on stdin, the output JSON on
 *                      stdout; killed at the request's deadline; stderr goes to the log; stdout
 *                      bounded; a non-zero exit or output that is not JSON is an error answer.
 *   --http URL         POST the input as JSON to URL; a 2xx JSON reply is the answer, other
 *                      statuses become error answers (400/422 invalid_input, 408/504 timeout,
 *                      413 too_big, 429/503 unavailable, else failed).
 * A client of the node's local API version 2 (docs/local-api.md): the node registers the
 * capability, signs the provenance and attaches its certificate; this program holds no key. */
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
#include "gm/http_client.h"
#include "gm/node.h"
#include "gm/util.h"

#define STARTUP_WAIT_MS 30000
#define LOCAL_API_TIMEOUT_MS 5000
#define STDERR_KEEP 2048           /* bytes of a child's stderr kept for the log and the error */
#define DEADLINE_MARGIN_MS 150     /* the answer must still reach the requester in time */
#define DRAIN_WAIT_MS 5000

enum { OPT_EXEC = 1, OPT_HTTP, OPT_MAX_OUTPUT, OPT_DESCRIPTION, OPT_MAX_INFLIGHT };

struct exec_agent {
    struct agent_cli cli;
    const char *exec, *http, *description;
    char **argv;               /* of --exec */
    long max_output, max_inflight;
    gm_node_conn_t *conn;
    pthread_mutex_t send_lock;
    atomic_int inflight;
    atomic_ulong answers;
};

struct job {
    struct exec_agent *a;
    char request_id[40];
    json_t *input;
    long deadline_ms;          /* time left when the request event was read */
    int64_t start_ms;
};

static int own_option(void *ctx, int opt, const char *val)
{
    struct exec_agent *a = ctx;
    switch (opt) {
    case OPT_EXEC:
        a->exec = val;
        return 0;
    case OPT_HTTP:
        a->http = val;
        return 0;
    case OPT_DESCRIPTION:
        a->description = val;
        return 0;
    case OPT_MAX_OUTPUT:
        return agent_cli_long(&a->cli, "max-output-bytes", val, 2, 1L << 20, &a->max_output);
    case OPT_MAX_INFLIGHT:
        return agent_cli_long(&a->cli, "max-inflight", val, 1, 256, &a->max_inflight);
    default:
        return 2;
    }
}

/* ---- answering ---- */

static void send_answer(struct exec_agent *a, const char *rid, json_t *output, const char *code, const char *msg,
                        const char *detail)
{
    char id[64];
    snprintf(id, sizeof id, "answer-%lu", atomic_fetch_add(&a->answers, 1) + 1);
    json_t *req = agent_cli_answer_req(id, rid, output, code, msg, detail);
    gm_error e = {0};
    pthread_mutex_lock(&a->send_lock);
    int rc = gm_node_conn_send(a->conn, req, &e);
    pthread_mutex_unlock(&a->send_lock);
    json_decref(req);
    if (rc != 0)
        gm_log(GM_LOG_WARN, "agent", "request %s: cannot answer: %s", rid, e.msg);
    else if (output)
        gm_log_event(GM_LOG_INFO, "agent", "answered", json_pack("{s:s}", "request_id", rid), "request %s", rid);
    else
        gm_log_event(GM_LOG_WARN, "agent", "answered_error", json_pack("{s:s,s:s}", "request_id", rid, "code", code),
                     "request %s: %s: %s", rid, code, msg);
}

/* The last line of what a child wrote on stderr, for an error message. */
static const char *last_line(char *buf, size_t len)
{
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        buf[--len] = '\0';
    while (len > 0 && buf[len - 1] != '\n')
        len--;
    return buf + len;
}

/* ---- --exec ---- */

static void kill_child(pid_t pid)
{
    kill(-pid, SIGKILL); /* its process group: what it started goes too */
    kill(pid, SIGKILL);
}

/* Other threads fork too: our pipe ends must not leak into their children. */
static int pipe_cloexec(int p[2])
{
    if (pipe(p) != 0)
        return -1;
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(p[1], F_SETFD, FD_CLOEXEC);
    return 0;
}

static void run_exec(struct job *j)
{
    struct exec_agent *a = j->a;
    char *in = json_dumps(j->input, JSON_COMPACT), msg[GM_AGENT_DETAIL_MAX + 1], detail[GM_AGENT_DETAIL_MAX + 1];
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    char *out = malloc((size_t)a->max_output + 1), errbuf[STDERR_KEEP + 1];
    size_t in_len = in ? strlen(in) : 0, in_off = 0, out_len = 0, err_len = 0;
    const char *prog = a->argv[0];
    if (!in || !out || pipe_cloexec(pin) || pipe_cloexec(pout) || pipe_cloexec(perr)) {
        send_answer(a, j->request_id, NULL, "failed", "cannot start the program: out of resources", NULL);
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(msg, sizeof msg, "cannot start %s: %s", prog, strerror(errno));
        send_answer(a, j->request_id, NULL, "failed", msg, NULL);
        goto out;
    }
    if (pid == 0) {
        setpgid(0, 0);
        dup2(pin[0], 0);
        dup2(pout[1], 1);
        dup2(perr[1], 2);
        signal(SIGPIPE, SIG_DFL);
        execvp(prog, a->argv);
        dprintf(2, "cannot run %s: %s\n", prog, strerror(errno));
        _exit(127);
    }
    setpgid(pid, pid);
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);
    pin[0] = pout[1] = perr[1] = -1;
    fcntl(pin[1], F_SETFL, O_NONBLOCK);
    int64_t end = j->start_ms + j->deadline_ms - DEADLINE_MARGIN_MS;
    const char *why = NULL; /* set when we kill it */
    const char *code = "failed";
    int out_open = 1, err_open = 1;
    while (out_open || err_open) {
        int64_t left = end - gm_mono_ms();
        if (left <= 0) {
            why = "deadline";
            break;
        }
        struct pollfd p[3];
        int np = 0, io = -1, oo = -1, eo = -1;
        if (pin[1] >= 0) {
            p[np] = (struct pollfd){.fd = pin[1], .events = POLLOUT};
            io = np++;
        }
        if (out_open) {
            p[np] = (struct pollfd){.fd = pout[0], .events = POLLIN};
            oo = np++;
        }
        if (err_open) {
            p[np] = (struct pollfd){.fd = perr[0], .events = POLLIN};
            eo = np++;
        }
        int pr = poll(p, (nfds_t)np, (int)(left > 1000 ? 1000 : left));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            break;
        if (io >= 0 && p[io].revents) {
            ssize_t k = write(pin[1], in + in_off, in_len - in_off);
            if (k > 0)
                in_off += (size_t)k;
            if (k < 0 && errno != EAGAIN && errno != EINTR)
                in_off = in_len; /* it closed its stdin: it does not want the input */
            if (in_off == in_len) {
                close(pin[1]);
                pin[1] = -1;
            }
        }
        if (oo >= 0 && p[oo].revents) {
            char tmp[4096];
            ssize_t k = read(pout[0], tmp, sizeof tmp);
            if (k <= 0 && !(k < 0 && (errno == EINTR || errno == EAGAIN))) {
                out_open = 0;
            } else if (k > 0) {
                if (out_len + (size_t)k > (size_t)a->max_output) {
                    why = "output";
                    break;
                }
                memcpy(out + out_len, tmp, (size_t)k);
                out_len += (size_t)k;
            }
        }
        if (eo >= 0 && p[eo].revents) {
            char tmp[1024];
            ssize_t k = read(perr[0], tmp, sizeof tmp);
            if (k <= 0 && !(k < 0 && (errno == EINTR || errno == EAGAIN))) {
                err_open = 0;
            } else if (k > 0) {
                /* keep the end (tmp is smaller than errbuf): the last lines say why it failed */
                if (err_len + (size_t)k > STDERR_KEEP) {
                    size_t drop = err_len + (size_t)k - STDERR_KEEP;
                    memmove(errbuf, errbuf + drop, err_len - drop);
                    err_len -= drop;
                }
                memcpy(errbuf + err_len, tmp, (size_t)k);
                err_len += (size_t)k;
            }
        }
    }
    int status = 0;
    if (!why) {
        /* Both pipes closed: it exits now, or holds on past the deadline. */
        while (waitpid(pid, &status, WNOHANG) == 0) {
            if (gm_mono_ms() >= end) {
                why = "deadline";
                break;
            }
            gm_sleep_ms(5);
        }
    }
    if (why) {
        kill_child(pid);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
    }
    errbuf[err_len] = '\0';
    if (err_len)
        gm_log_event(GM_LOG_INFO, "agent", "stderr", json_pack("{s:s,s:s%}", "request_id", j->request_id, "stderr",
                                                                errbuf, err_len),
                     "%s wrote on stderr", prog);
    long took = (long)(gm_mono_ms() - j->start_ms);
    if (why && !strcmp(why, "deadline")) {
        snprintf(msg, sizeof msg, "%s did not finish before the request's deadline (%ld ms); killed", prog, took);
        code = "timeout";
    } else if (why) {
        snprintf(msg, sizeof msg, "%s wrote more than %ld bytes on stdout; killed", prog, a->max_output);
        code = "too_big";
    } else if (WIFSIGNALED(status)) {
        snprintf(msg, sizeof msg, "%s was killed by signal %d", prog, WTERMSIG(status));
    } else if (WEXITSTATUS(status) != 0) {
        snprintf(msg, sizeof msg, "%s exited with status %d%s%.300s", prog, WEXITSTATUS(status),
                 err_len ? ": " : "", err_len ? last_line(errbuf, err_len) : "");
    } else {
        json_error_t je;
        json_t *o = json_loadb(out, out_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
        if (!o || json_is_null(o)) {
            snprintf(msg, sizeof msg, "%s wrote %s on stdout, not a JSON value%s%.200s", prog,
                     out_len ? "something" : "nothing", out_len ? ": " : "", out_len ? je.text : "");
            json_decref(o);
        } else {
            snprintf(detail, sizeof detail, "ran %.200s (exit 0, %ld ms)", prog, took);
            send_answer(a, j->request_id, o, NULL, NULL, detail);
            json_decref(o);
            goto out;
        }
    }
    send_answer(a, j->request_id, NULL, code, msg, NULL);
out:
    for (int i = 0; i < 2; i++) {
        if (pin[i] >= 0)
            close(pin[i]);
        if (pout[i] >= 0)
            close(pout[i]);
        if (perr[i] >= 0)
            close(perr[i]);
    }
    free(in);
    free(out);
}

/* ---- --http ---- */

static const char *status_code(int status)
{
    switch (status) {
    case 400:
    case 422:
        return "invalid_input";
    case 408:
    case 504:
        return "timeout";
    case 413:
        return "too_big";
    case 429:
    case 503:
        return "unavailable";
    default:
        return "failed";
    }
}

static void run_http(struct job *j)
{
    struct exec_agent *a = j->a;
    char msg[GM_AGENT_DETAIL_MAX + 1], detail[GM_AGENT_DETAIL_MAX + 1];
    char *body = json_dumps(j->input, JSON_COMPACT);
    long left = (long)(j->start_ms + j->deadline_ms - DEADLINE_MARGIN_MS - gm_mono_ms());
    if (!body || left <= 0) {
        send_answer(a, j->request_id, NULL, body ? "timeout" : "failed",
                    body ? "the request's deadline passed before the service was called" : "out of memory", NULL);
        free(body);
        return;
    }
    const char *hdr[] = {"Content-Type: application/json", "Accept: application/json"};
    gm_http_req req = {.method = "POST", .url = a->http, .headers = hdr, .n_headers = 2, .body = body,
                       .body_len = strlen(body), .timeout_ms = left, .max_response = (size_t)a->max_output};
    gm_http_resp resp = {0};
    gm_error e = {0};
    int rc = gm_http_request(&req, &resp, &e);
    free(body);
    if (rc != 0) {
        send_answer(a, j->request_id, NULL,
                    rc == GM_ETIMEOUT ? "timeout" : rc == GM_ETOOBIG ? "too_big" : rc == GM_ENET ? "unavailable" : "failed",
                    e.msg, NULL);
        return;
    }
    json_error_t je;
    json_t *o = resp.len ? json_loadb(resp.body, resp.len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je) : NULL;
    if (resp.status >= 200 && resp.status < 300) {
        if (!o || json_is_null(o)) {
            snprintf(msg, sizeof msg, "the service answered HTTP %d with %s, not a JSON value", resp.status,
                     resp.len ? "something" : "nothing");
            send_answer(a, j->request_id, NULL, "failed", msg, NULL);
        } else {
            snprintf(detail, sizeof detail, "HTTP %d from the local service", resp.status);
            send_answer(a, j->request_id, o, NULL, NULL, detail);
        }
    } else {
        /* Its own words when it gave some: {"error": "..."} or {"error": {"message": "..."}}. */
        const json_t *err = json_object_get(o, "error");
        const char *said = json_is_string(err) ? json_string_value(err)
                           : json_string_value(json_object_get(err, "message"));
        char snippet[201] = "";
        if (!said && resp.body) {
            size_t n = resp.len < 200 ? resp.len : 200;
            for (size_t i = 0; i < n; i++)
                snippet[i] = (resp.body[i] >= 0x20 && resp.body[i] < 0x7f) ? resp.body[i] : ' ';
            snippet[n] = '\0';
            said = snippet;
        }
        snprintf(msg, sizeof msg, "the service answered HTTP %d%s%.300s", resp.status, said && *said ? ": " : "",
                 said ? said : "");
        send_answer(a, j->request_id, NULL, status_code(resp.status), msg, NULL);
    }
    json_decref(o);
    gm_http_resp_free(&resp);
}

static void *job_run(void *arg)
{
    struct job *j = arg;
    if (j->a->argv)
        run_exec(j);
    else
        run_http(j);
    atomic_fetch_sub(&j->a->inflight, 1);
    json_decref(j->input);
    free(j);
    return NULL;
}

static void on_request(struct exec_agent *a, const json_t *ev)
{
    const char *rid = json_string_value(json_object_get(ev, "request_id"));
    const json_t *input = json_object_get(ev, "input");
    if (!rid || !input || strlen(rid) >= sizeof ((struct job *)0)->request_id)
        return;
    gm_log_event(GM_LOG_INFO, "agent", "request", json_pack("{s:s}", "request_id", rid), "request %s from %.12s...",
                 rid, json_string_value(json_object_get(ev, "requester")));
    if (atomic_fetch_add(&a->inflight, 1) >= a->max_inflight) {
        atomic_fetch_sub(&a->inflight, 1);
        send_answer(a, rid, NULL, "unavailable", "this agent is busy (all its slots are running); try another", NULL);
        return;
    }
    struct job *j = calloc(1, sizeof *j);
    pthread_t th;
    pthread_attr_t at;
    if (!j) {
        atomic_fetch_sub(&a->inflight, 1);
        return;
    }
    j->a = a;
    snprintf(j->request_id, sizeof j->request_id, "%s", rid);
    j->input = json_incref((json_t *)input);
    j->deadline_ms = (long)json_integer_value(json_object_get(ev, "deadline_ms"));
    j->start_ms = gm_mono_ms();
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&th, &at, job_run, j) != 0) {
        atomic_fetch_sub(&a->inflight, 1);
        json_decref(j->input);
        free(j);
        send_answer(a, rid, NULL, "unavailable", "this agent cannot start a thread; try another", NULL);
    }
    pthread_attr_destroy(&at);
}

/* ---- the connection ---- */

/* Send req and read until the response with the same id (nothing else can come yet). */
/* Connect, negotiate version 2, provide the capability. */
static int provide(struct exec_agent *a, volatile sig_atomic_t *stop, gm_error *err)
{
    int64_t give_up = gm_mono_ms() + STARTUP_WAIT_MS;
    int rc;
    for (;;) {
        rc = gm_node_conn_open(a->cli.dir, &a->conn, err);
        if (rc == 0 && (rc = gm_node_conn_hello(a->conn, LOCAL_API_TIMEOUT_MS, err)) == GM_EPROTO)
            return rc; /* an older node will not learn it by waiting */
        if (rc == 0) {
            json_t *req = json_pack("{s:s,s:s,s:s,s:s,s:i}", "op", "provide", "id", "provide", "capability",
                                    a->cli.capability, "agent_id", a->cli.agent_id, "ttl_s",
                                    a->cli.ttl_s > 0 ? a->cli.ttl_s : 300),
                   *resp = NULL;
            if (a->description)
                json_object_set_new(req, "description", json_string(a->description));
            rc = gm_node_conn_request(a->conn, req, &resp, LOCAL_API_TIMEOUT_MS * 3, err);
            json_decref(req);
            if (rc == 0 && json_is_true(json_object_get(resp, "ok"))) {
                gm_log_event(GM_LOG_INFO, "agent", "registered",
                             json_pack("{s:s,s:s}", "agent", a->cli.agent_id, "capability", a->cli.capability),
                             "%s offers %s through the node at %s (%s %s)", a->cli.agent_id, a->cli.capability,
                             a->cli.dir, a->argv ? "exec" : "http", a->argv ? a->exec : a->http);
                json_decref(resp);
                return 0;
            }
            if (rc == 0) {
                const json_t *e = json_object_get(resp, "error");
                const char *code = json_string_value(json_object_get(e, "code"));
                rc = gm_error_set(err, GM_EPROTO, "the node refused to provide %s: %s: %s", a->cli.capability,
                                  code ? code : "?", json_string_value(json_object_get(e, "message")));
                int retry = code && !strcmp(code, "unavailable");
                json_decref(resp);
                if (!retry)
                    return rc;
            }
        }
        gm_node_conn_close(a->conn);
        a->conn = NULL;
        if (*stop || gm_mono_ms() > give_up)
            return rc;
        gm_sleep_ms(300);
    }
}

static int serve(struct exec_agent *a, gm_error *err)
{
    volatile sig_atomic_t *stop = agent_cli_signals();
    int rc = provide(a, stop, err);
    if (rc != 0)
        return rc;
    while (!*stop) {
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
        if (ev && !strcmp(ev, "request")) {
            on_request(a, m);
        } else if (ev && !strcmp(ev, "withdrawn")) {
            rc = gm_error_set(err, GM_EPROTO, "the node withdrew %s: %s", a->cli.capability,
                              json_string_value(json_object_get(m, "reason")));
            json_decref(m);
            break;
        } else if (ev && !strcmp(ev, "cancel")) {
            gm_log(GM_LOG_WARN, "agent", "request %s: its deadline passed; the node answered timeout",
                   json_string_value(json_object_get(m, "request_id")));
        } else if (!ev && !json_is_true(json_object_get(m, "ok"))) {
            gm_log(GM_LOG_WARN, "agent", "the node refused %s: %s", json_string_value(json_object_get(m, "id")),
                   json_string_value(json_object_get(json_object_get(m, "error"), "message")));
        }
        json_decref(m);
    }
    /* Let running requests answer, then close: the node withdraws the capability. */
    int64_t drain = gm_mono_ms() + DRAIN_WAIT_MS;
    while (atomic_load(&a->inflight) > 0 && gm_mono_ms() < drain)
        gm_sleep_ms(20);
    pthread_mutex_lock(&a->send_lock);
    gm_node_conn_close(a->conn);
    a->conn = NULL;
    pthread_mutex_unlock(&a->send_lock);
    if (rc == 0)
        gm_log(GM_LOG_INFO, "agent", "%s stopped; the node withdrew %s", a->cli.agent_id, a->cli.capability);
    return rc;
}

int main(int argc, char **argv)
{
    struct exec_agent a = {
        .cli = {.log_format = -1,
                .log_level = GM_LOG_INFO,
                .program = "gm-agent-exec",
                .any_capability = 1,
                .usage = "usage: gm-agent-exec --dir D --agent-id ID --capability CAP (--exec 'CMD ARGS' | --http URL)\n"
                         "                     [--max-output-bytes N] [--description TEXT] [options]\n"
                         "Serves CAP with a program or a local HTTP service through the node running at D\n"
                         "(docs/agents.md \"Write your own agent\"): the node signs; this program holds no key.\n"
                         "  --exec 'CMD ARGS'      run CMD per request: input JSON on stdin, output JSON on stdout;\n"
                         "                         split into words like a shell, without expansion (no shell runs)\n"
                         "  --http URL             POST the input as JSON to URL; its JSON reply is the answer\n"
                         "  --max-output-bytes N   stdout or reply bigger than N is an error (default 32768)\n"
                         "  --max-inflight N       requests served at once, 1..256 (default 8)\n"
                         "  --description TEXT     shown to requesters in the capability's descriptor\n"
                         "  --capability CAP       the capability to serve (required)\n" AGENT_CLI_COMMON_USAGE},
        .max_output = GM_AGENT_OUTPUT_MAX,
        .max_inflight = 8,
    };
    static const struct option opts[] = {{"exec", required_argument, NULL, OPT_EXEC},
                                         {"http", required_argument, NULL, OPT_HTTP},
                                         {"max-output-bytes", required_argument, NULL, OPT_MAX_OUTPUT},
                                         {"max-inflight", required_argument, NULL, OPT_MAX_INFLIGHT},
                                         {"description", required_argument, NULL, OPT_DESCRIPTION},
                                         AGENT_CLI_COMMON_OPTIONS,
                                         {NULL, 0, NULL, 0}};
    int rc = agent_cli_parse(&a.cli, argc, argv, opts, own_option, &a);
    if (rc >= 0)
        return rc;
    if (!a.cli.capability)
        return agent_cli_usage(&a.cli, "--capability is required");
    if (!a.exec == !a.http)
        return agent_cli_usage(&a.cli, "give exactly one of --exec 'CMD ARGS' or --http URL");
    if (a.cli.fault)
        return agent_cli_usage(&a.cli, "--fault is a testing aid of the shipped agents only");
    gm_error err = {0};
    size_t n;
    if (a.exec && gm_argv_split(a.exec, &a.argv, &n, &err) != 0)
        return agent_cli_usage(&a.cli, "--exec: %s", err.msg);
    if (a.http && strncmp(a.http, "http://", 7) != 0 && strncmp(a.http, "https://", 8) != 0)
        return agent_cli_usage(&a.cli, "--http must be an http:// or https:// URL");
    pthread_mutex_init(&a.send_lock, NULL);
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
