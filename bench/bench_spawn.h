/* An NA of a benchmark's own: `genesis-mesh init` in a temp dir (optionally filled before the
 * start by a callback), `na start --listen 127.0.0.1:0 --port-file ... --quiet`, trusted as its own
 * TLS CA, stopped and removed at the end. Shared by the benchmarks that need a real NA. */
#ifndef GM_BENCH_SPAWN_H
#define GM_BENCH_SPAWN_H

#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gm/http_client.h"

typedef struct bench_na {
    pid_t pid;
    char dir[256];
    char url[256];
} bench_na;

static inline void bench_die(const char *prog, const char *what, const char *msg)
{
    fprintf(stderr, "%s: %s%s%s\n", prog, what, msg ? ": " : "", msg ? msg : "");
    exit(1);
}

/* The genesis-mesh binary: opt, else $GM_BIN, else ../genesis-mesh next to this program. */
static inline const char *bench_find_bin(const char *opt)
{
    static char path[4096];
    if (opt)
        return opt;
    if (getenv("GM_BIN"))
        return getenv("GM_BIN");
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return "genesis-mesh";
    self[n] = '\0';
    snprintf(path, sizeof path, "%s/../genesis-mesh", dirname(self));
    return path;
}

/* `init` into a new temp dir (na->dir), with extra init arguments (may be ""). */
static inline void bench_na_init(bench_na *na, const char *prog, const char *bin, const char *init_args)
{
    char cmd[8192];
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    memset(na, 0, sizeof *na);
    snprintf(na->dir, sizeof na->dir, "%s/gm-bench-na-XXXXXX", tmp);
    if (!mkdtemp(na->dir))
        bench_die(prog, "mkdtemp", na->dir);
    snprintf(cmd, sizeof cmd, "'%s' init --dir '%s' %s >/dev/null", bin, na->dir, init_args);
    if (system(cmd) != 0)
        bench_die(prog, "genesis-mesh init failed (pass --bin or set GM_BIN)", cmd);
}

/* `na start` on the initialized dir; returns once it listens (na->url set; https with its TLS
 * certificate trusted when init made one, http after `init --no-tls`). */
static inline void bench_na_start(bench_na *na, const char *prog, const char *bin)
{
    char port_file[512];
    snprintf(port_file, sizeof port_file, "%s/port", na->dir);
    unlink(port_file);
    na->pid = fork();
    if (na->pid == 0) {
        execl(bin, bin, "na", "start", "--dir", na->dir, "--listen", "127.0.0.1:0", "--port-file", port_file,
              "--quiet", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 3000; i++) {
        FILE *f = fopen(port_file, "r");
        unsigned port = 0;
        if (f && fscanf(f, "%u", &port) == 1 && port) {
            fclose(f);
            /* init made a TLS certificate: the NA serves HTTPS, trusted here as its own CA */
            char ca[300];
            gm_error terr = {0};
            snprintf(ca, sizeof ca, "%s/tls.crt", na->dir);
            int tls = access(ca, F_OK) == 0;
            snprintf(na->url, sizeof na->url, "%s://127.0.0.1:%u", tls ? "https" : "http", port);
            if (tls && gm_http_trust_set(na->url, ca, NULL, &terr) != 0)
                bench_die(prog, "NA TLS certificate", terr.msg);
            return;
        }
        if (f)
            fclose(f);
        usleep(20000);
    }
    bench_die(prog, "the NA did not start", na->dir);
}

/* SIGTERM, wait, and remove the dir. */
static inline void bench_na_stop(bench_na *na, const char *prog)
{
    if (na->pid > 0) {
        kill(na->pid, SIGTERM);
        waitpid(na->pid, NULL, 0);
        na->pid = 0;
    }
    if (na->dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", na->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "%s: could not remove %s\n", prog, na->dir);
        na->dir[0] = '\0';
    }
}

#endif
