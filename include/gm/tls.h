/* The NA's TLS identity: a self-signed certificate and key made by `genesis-mesh init`
 * (GnuTLS, no external tool), and the public-key pin ("sha256//<base64>", the form libcurl's
 * CURLOPT_PINNEDPUBLICKEY takes) that clients keep to recognise the NA. */
#ifndef GM_TLS_H
#define GM_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "gm/error.h"

/* "sha256//" + 44 base64 characters + NUL */
#define GM_TLS_PIN_LEN 53
#define GM_TLS_DEFAULT_DAYS 3650

/* Create an ECDSA P-256 key (key_path, 0600, never overwritten) and a self-signed certificate
 * (cert_path, 0644) for the NA, valid for days, naming every entry of hosts (DNS names or IP
 * addresses) as a subject alternative name. pin (optional) receives the key's pin. */
int gm_tls_make_self_signed(const char *cert_path, const char *key_path, const char *const *hosts,
                            size_t n_hosts, unsigned days, char pin[GM_TLS_PIN_LEN], gm_error *err)
    GM_MUST_CHECK;

/* The pin of the public key in the first certificate of a PEM file. */
int gm_tls_pin_of_cert_file(const char *cert_path, char pin[GM_TLS_PIN_LEN], gm_error *err)
    GM_MUST_CHECK;

#endif
