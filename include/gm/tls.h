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
    __attribute__((warn_unused_result));

/* The pin of the public key in the first certificate of a PEM file. */
int gm_tls_pin_of_cert_file(const char *cert_path, char pin[GM_TLS_PIN_LEN], gm_error *err)
    __attribute__((warn_unused_result));

/* Check the first certificate of a PEM file: it parses, it is valid now, and (when key_path is
 * not NULL) the PEM private key in key_path is its key. not_after (optional) receives the end
 * of its validity, unix seconds. */
int gm_tls_cert_check(const char *cert_path, const char *key_path, int64_t *not_after, gm_error *err)
    __attribute__((warn_unused_result));

/* 0 if s is one pin or several joined by ';' (as CURLOPT_PINNEDPUBLICKEY takes them). */
int gm_tls_pin_check(const char *s, gm_error *err) __attribute__((warn_unused_result));

#endif
