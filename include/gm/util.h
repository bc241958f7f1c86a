/* Small shared helpers: strict base64, files with modes, UUIDs, hex. */
#ifndef GM_UTIL_H
#define GM_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gm/error.h"

/* Initialise libsodium once; returns 0 or GM_ECRYPTO. Safe to call many times. */
int gm_init(gm_error *err) GM_MUST_CHECK;

/* Standard base64 with padding. out needs gm_b64_len(len)+1 bytes; returns chars written. */
size_t gm_b64_len(size_t len);
size_t gm_b64_encode(const uint8_t *in, size_t len, char *out, size_t out_cap);
/* Strict decode of any length up to out_cap; *out_len receives the decoded length. */
int gm_b64_decode(const char *in, uint8_t *out, size_t out_cap, size_t *out_len, gm_error *err) GM_MUST_CHECK;

void gm_hex_encode(const uint8_t *in, size_t len, char *out /* 2*len+1 */);

/* Read a whole file (at most max bytes, else GM_ETOOBIG); *out is malloc'd and NUL-terminated. */
int gm_file_read(const char *path, size_t max, char **out, size_t *len, gm_error *err) GM_MUST_CHECK;
/* Write via a temp file + fsync + rename, so a crash never leaves a half-written file. */
int gm_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, gm_error *err) GM_MUST_CHECK;
int gm_file_exists(const char *path);
/* mkdir -p with the given mode for the directories it creates. */
int gm_mkdir_p(const char *path, mode_t mode, gm_error *err) GM_MUST_CHECK;
/* snprintf into a path buffer; GM_EINVAL if it does not fit. */
int gm_path_join(char *out, size_t cap, const char *dir, const char *name, gm_error *err) GM_MUST_CHECK;

/* A growable byte buffer, always NUL-terminated. A failed allocation sets oom and makes later
 * appends no-ops, so a caller checks once at the end. Zero-initialise; release with gm_buf_free. */
typedef struct gm_buf {
    char *p;
    size_t len, cap;
    int oom;
} gm_buf;
void gm_buf_append(gm_buf *b, const void *data, size_t n);
void gm_buf_free(gm_buf *b);

#endif
