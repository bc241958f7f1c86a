/* The NA's TLS identity with GnuTLS: key and self-signed certificate, and public-key pins
 * (see gm/tls.h). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>

#include "gm/tls.h"
#include "gm/util.h"
#include "core_internal.h"

#define CERT_FILE_MAX (256 * 1024)

static int tls_fail(gm_error *err, const char *what, int grc)
{
    return gm_error_set(err, GM_EINTERNAL, "TLS: %s: %s", what, gnutls_strerror(grc));
}

/* sha256// + base64 of the SHA-256 of the DER SubjectPublicKeyInfo. */
static int pin_of_crt(gnutls_x509_crt_t crt, char pin[GM_TLS_PIN_LEN], gm_error *err)
{
    gnutls_pubkey_t pub = NULL;
    gnutls_datum_t der = {NULL, 0};
    int grc = gnutls_pubkey_init(&pub);
    if (grc == 0)
        grc = gnutls_pubkey_import_x509(pub, crt, 0);
    if (grc == 0)
        grc = gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &der);
    gnutls_pubkey_deinit(pub);
    if (grc != 0)
        return tls_fail(err, "cannot read the certificate's public key", grc);
    uint8_t h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, der.data, der.size);
    gnutls_free(der.data);
    memcpy(pin, "sha256//", 8);
    sodium_bin2base64(pin + 8, GM_TLS_PIN_LEN - 8, h, sizeof h, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

int gm_tls_pin_check(const char *s, gm_error *err)
{
    uint8_t h[crypto_hash_sha256_BYTES];
    const char *p = s;
    if (!s || !*s)
        return gm_error_set(err, GM_EINVAL, "empty TLS pin (expected sha256//<base64 of 32 bytes>)");
    for (;;) {
        size_t n = strcspn(p, ";");
        char one[64];
        size_t bin_len = 0;
        if (n != GM_TLS_PIN_LEN - 1 || strncmp(p, "sha256//", 8) != 0)
            return gm_error_set(err, GM_EINVAL, "bad TLS pin '%.60s': expected sha256//<44 base64 characters>", p);
        memcpy(one, p + 8, n - 8);
        one[n - 8] = '\0';
        if (sodium_base642bin(h, sizeof h, one, strlen(one), NULL, &bin_len, NULL, sodium_base64_VARIANT_ORIGINAL) !=
                0 ||
            bin_len != sizeof h)
            return gm_error_set(err, GM_EINVAL, "bad TLS pin '%.60s': not base64 of 32 bytes", p);
        if (p[n] == '\0')
            return 0;
        p += n + 1;
    }
}

int gm_tls_pin_of_cert_file(const char *cert_path, char pin[GM_TLS_PIN_LEN], gm_error *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = gm_file_read(cert_path, CERT_FILE_MAX, &text, &len, err);
    if (rc != 0)
        return rc;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t d = {(unsigned char *)text, (unsigned)len};
    int grc = gnutls_x509_crt_init(&crt);
    if (grc == 0)
        grc = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
    free(text);
    if (grc != 0) {
        gnutls_x509_crt_deinit(crt);
        return gm_error_set(err, GM_EFORMAT, "%s is not a PEM certificate: %s", cert_path, gnutls_strerror(grc));
    }
    rc = pin_of_crt(crt, pin, err);
    gnutls_x509_crt_deinit(crt);
    return rc;
}

int gm_tls_cert_check(const char *cert_path, const char *key_path, int64_t *not_after, gm_error *err)
{
    char *text = NULL;
    size_t len = 0;
    int rc = gm_file_read(cert_path, CERT_FILE_MAX, &text, &len, err);
    if (rc != 0)
        return rc;
    gnutls_x509_crt_t crt = NULL;
    gnutls_x509_privkey_t key = NULL;
    gnutls_datum_t d = {(unsigned char *)text, (unsigned)len};
    int grc = gnutls_x509_crt_init(&crt);
    if (grc == 0)
        grc = gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM);
    free(text);
    text = NULL;
    if (grc != 0) {
        rc = gm_error_set(err, GM_EFORMAT, "%s is not a PEM certificate: %s", cert_path, gnutls_strerror(grc));
        goto out;
    }
    time_t end = gnutls_x509_crt_get_expiration_time(crt), now = time(NULL);
    if (not_after)
        *not_after = (int64_t)end;
    if (end != (time_t)-1 && end < now) {
        rc = gm_error_set(err, GM_EEXPIRED, "the TLS certificate %s has expired", cert_path);
        goto out;
    }
    if (gnutls_x509_crt_get_activation_time(crt) > now) {
        rc = gm_error_set(err, GM_EEXPIRED, "the TLS certificate %s is not valid yet", cert_path);
        goto out;
    }
    if (!key_path)
        goto out;
    if ((rc = gm_file_read(key_path, CERT_FILE_MAX, &text, &len, err)) != 0)
        goto out;
    d.data = (unsigned char *)text;
    d.size = (unsigned)len;
    grc = gnutls_x509_privkey_init(&key);
    if (grc == 0)
        grc = gnutls_x509_privkey_import(key, &d, GNUTLS_X509_FMT_PEM);
    sodium_memzero(text, len);
    free(text);
    if (grc != 0) {
        rc = gm_error_set(err, GM_EFORMAT, "%s is not a PEM private key: %s", key_path, gnutls_strerror(grc));
        goto out;
    }
    unsigned char id_crt[64], id_key[64];
    size_t n_crt = sizeof id_crt, n_key = sizeof id_key;
    if ((grc = gnutls_x509_crt_get_key_id(crt, 0, id_crt, &n_crt)) != 0 ||
        (grc = gnutls_x509_privkey_get_key_id(key, 0, id_key, &n_key)) != 0) {
        rc = tls_fail(err, "cannot compare the certificate and key", grc);
        goto out;
    }
    if (n_crt != n_key || memcmp(id_crt, id_key, n_crt) != 0)
        rc = gm_error_set(err, GM_EINVAL, "the TLS key %s is not the key of the certificate %s", key_path, cert_path);
out:
    gnutls_x509_privkey_deinit(key);
    gnutls_x509_crt_deinit(crt);
    return rc;
}

/* Add host as an IP address or DNS subject alternative name. */
static int add_san(gnutls_x509_crt_t crt, const char *host)
{
    unsigned char ip[16];
    if (inet_pton(AF_INET, host, ip) == 1)
        return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4, GNUTLS_FSAN_APPEND);
    if (inet_pton(AF_INET6, host, ip) == 1)
        return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 16, GNUTLS_FSAN_APPEND);
    return gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, host, (unsigned)strlen(host),
                                                GNUTLS_FSAN_APPEND);
}

int gm_tls_make_self_signed(const char *cert_path, const char *key_path, const char *const *hosts, size_t n_hosts,
                            unsigned days, char pin[GM_TLS_PIN_LEN], gm_error *err)
{
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t key_pem = {NULL, 0}, crt_pem = {NULL, 0};
    uint8_t serial[16];
    int rc = 0, grc;
    const char *step = "cannot create the key";
    if (n_hosts == 0)
        return gm_error_set(err, GM_EINVAL, "TLS: the certificate needs at least one host name or address");
    randombytes_buf(serial, sizeof serial);
    serial[0] &= 0x7f; /* a positive serial number */
    time_t now = time(NULL);
    if ((grc = gnutls_x509_privkey_init(&key)) ||
        (grc = gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
                                            0)))
        goto gnutls_out;
    step = "cannot build the certificate";
    if ((grc = gnutls_x509_crt_init(&crt)) || (grc = gnutls_x509_crt_set_version(crt, 3)) ||
        (grc = gnutls_x509_crt_set_serial(crt, serial, sizeof serial)) ||
        (grc = gnutls_x509_crt_set_activation_time(crt, now - 3600)) ||
        (grc = gnutls_x509_crt_set_expiration_time(crt, now + (time_t)days * 86400)) ||
        (grc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, hosts[0],
                                             (unsigned)strlen(hosts[0]))) ||
        (grc = gnutls_x509_crt_set_key(crt, key)) ||
        /* Self-signed and the only certificate: its own trust anchor when given as a CA file. */
        (grc = gnutls_x509_crt_set_basic_constraints(crt, 1, 0)) ||
        (grc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE | GNUTLS_KEY_KEY_CERT_SIGN)) ||
        (grc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)))
        goto gnutls_out;
    for (size_t i = 0; i < n_hosts; i++)
        if ((grc = add_san(crt, hosts[i])) != 0)
            goto gnutls_out;
    step = "cannot sign the certificate";
    if ((grc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)))
        goto gnutls_out;
    step = "cannot encode the key and certificate";
    if ((grc = gnutls_x509_privkey_export2(key, GNUTLS_X509_FMT_PEM, &key_pem)) ||
        (grc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &crt_pem)))
        goto gnutls_out;
    if (pin && (rc = pin_of_crt(crt, pin, err)) != 0)
        goto out;
    if ((rc = gm_file_write_atomic(key_path, (const char *)key_pem.data, key_pem.size, 0600, err)) == 0)
        rc = gm_file_write_atomic(cert_path, (const char *)crt_pem.data, crt_pem.size, 0644, err);
    goto out;
gnutls_out:
    rc = tls_fail(err, step, grc);
out:
    if (key_pem.data) {
        sodium_memzero(key_pem.data, key_pem.size);
        gnutls_free(key_pem.data);
    }
    gnutls_free(crt_pem.data);
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
    return rc;
}
