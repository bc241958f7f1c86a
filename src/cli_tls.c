/* How the CLI commands learn to trust the NA over HTTPS: --na-ca / --na-pin, else the
 * GM_NA_CA / GM_NA_PIN environment variables, else what `join` kept in the node directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gm/http_client.h"
#include "gm/util.h"

int cli_na_trust(const char *url, const char *ca, const char *pin, const char *dir, gm_error *err)
{
    if (!ca && !pin) {
        ca = getenv("GM_NA_CA");
        pin = getenv("GM_NA_PIN");
        if (ca && !*ca)
            ca = NULL;
        if (pin && !*pin)
            pin = NULL;
    }
    if (ca || pin) {
        int rc = gm_http_trust_set(url, ca, pin, err);
        return rc ? gm_error_prefix(err, "NA trust (--na-ca / --na-pin)") : 0;
    }
    return dir ? gm_http_trust_load_dir(dir, url, err) : 0;
}

int cli_na_trust_keep(const char *dir, const char *ca, const char *pin, gm_error *err)
{
    char path[4096], *text = NULL;
    size_t len = 0;
    int rc;
    if (!ca && !pin) {
        ca = getenv("GM_NA_CA");
        pin = getenv("GM_NA_PIN");
        if (ca && !*ca)
            ca = NULL;
        if (pin && !*pin)
            pin = NULL;
    }
    if (!ca && !pin)
        return 0;
    /* What is kept replaces what was kept: a stale pin next to a new CA would refuse the NA. */
    if ((rc = gm_path_join(path, sizeof path, dir, GM_HTTP_TRUST_CA_FILE, err)) != 0)
        return rc;
    if (ca) {
        if ((rc = gm_file_read(ca, 1024 * 1024, &text, &len, err)) != 0 ||
            (rc = gm_file_write_atomic(path, text, len, 0644, err)) != 0) {
            free(text);
            return rc;
        }
        free(text);
    } else {
        remove(path);
    }
    if ((rc = gm_path_join(path, sizeof path, dir, GM_HTTP_TRUST_PIN_FILE, err)) != 0)
        return rc;
    if (pin) {
        char line[1024];
        int n = snprintf(line, sizeof line, "%s\n", pin);
        if (n < 0 || (size_t)n >= sizeof line)
            return gm_error_set(err, GM_EINVAL, "TLS pin too long");
        return gm_file_write_atomic(path, line, (size_t)n, 0644, err);
    }
    remove(path);
    return 0;
}
