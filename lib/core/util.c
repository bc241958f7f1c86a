/* Shared helpers: libsodium init, strict base64, atomic files, UUIDs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "gm/util.h"
#include "core_internal.h"

int gm_init(gm_error *err)
{
    if (sodium_init() < 0)
        return gm_error_set(err, GM_ECRYPTO, "libsodium failed to initialise");
    return 0;
}

size_t gm_b64_len(size_t len)
{
    return ((len + 2) / 3) * 4;
}

size_t gm_b64_encode(const uint8_t *in, size_t len, char *out, size_t out_cap)
{
    if (out_cap < gm_b64_len(len) + 1)
        return 0;
    sodium_bin2base64(out, out_cap, in, len, sodium_base64_VARIANT_ORIGINAL);
    return strlen(out);
}

int gm_b64_decode(const char *in, uint8_t *out, size_t out_cap, size_t *out_len, gm_error *err)
{
    const char *end = NULL;
    size_t n = 0, inlen = strlen(in);
    if (inlen == 0 || inlen % 4 != 0)
        return gm_error_set(err, GM_EFORMAT, "bad base64: length %zu is not a multiple of 4", inlen);
    if (sodium_base642bin(out, out_cap, in, inlen, NULL, &n, &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != in + inlen)
        return gm_error_set(err, GM_EFORMAT, "bad base64 (standard alphabet with padding expected)");
    /* Reject non-canonical encodings (stray bits in the last character) and bytes outside the
     * alphabet that libsodium 1.0.18 still maps (0x80..0xff): re-encode, 3072 bytes at a time. */
    char check[4096 + 1];
    for (size_t off = 0; off < n; off += 3072) {
        size_t k = n - off < 3072 ? n - off : 3072;
        gm_b64_encode(out + off, k, check, sizeof check);
        if (memcmp(check, in + off / 3 * 4, gm_b64_len(k)) != 0)
            return gm_error_set(err, GM_EFORMAT, "bad base64: non-canonical encoding");
    }
    *out_len = n;
    return 0;
}

int gm_b64_decode_exact(const char *in, uint8_t *out, size_t expect_len, gm_error *err)
{
    uint8_t buf[512];
    size_t n = 0;
    if (expect_len > sizeof buf || strlen(in) != gm_b64_len(expect_len))
        return gm_error_set(err, GM_EFORMAT, "bad base64: expected %zu characters for %zu bytes, got %zu",
                            gm_b64_len(expect_len), expect_len, strlen(in));
    int rc = gm_b64_decode(in, buf, sizeof buf, &n, err);
    if (rc == 0 && n != expect_len)
        rc = gm_error_set(err, GM_EFORMAT, "bad base64: decodes to %zu bytes, expected %zu", n, expect_len);
    if (rc == 0)
        memcpy(out, buf, expect_len);
    sodium_memzero(buf, sizeof buf);
    return rc;
}

void gm_hex_encode(const uint8_t *in, size_t len, char *out)
{
    sodium_bin2hex(out, 2 * len + 1, in, len);
}

int gm_file_read(const char *path, size_t max, char **out, size_t *len, gm_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return gm_error_set(err, errno == ENOENT ? GM_ENOTFOUND : GM_EIO, "cannot open %s: %s", path,
                            strerror(errno));
    /* never buffer more than max: a small limit must hold from the first read */
    size_t cap = max < 4096 ? max : 4096, n = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        fclose(f);
        return gm_error_set(err, GM_ENOMEM, "out of memory reading %s", path);
    }
    for (;;) {
        if (n == cap) {
            /* a file of exactly max bytes is fine: only refuse if more follows */
            if (cap >= max && fgetc(f) != EOF) {
                free(buf);
                fclose(f);
                return gm_error_set(err, GM_ETOOBIG, "%s is larger than %zu bytes", path, max);
            }
            if (cap >= max)
                break;
            cap = cap * 2 > max ? max : cap * 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return gm_error_set(err, GM_ENOMEM, "out of memory reading %s", path);
            }
            buf = nb;
        }
        size_t r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return gm_error_set(err, GM_EIO, "error reading %s", path);
    }
    buf[n] = '\0';
    *out = buf;
    if (len)
        *len = n;
    return 0;
}

int gm_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode, gm_error *err)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%08x", path, (long)getpid(), (unsigned)randombytes_random()) >=
        (int)sizeof tmp)
        return gm_error_set(err, GM_EINVAL, "path too long: %s", path);
    /* a fresh name, never an existing file or a planted symlink (secrets are written here) */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return gm_error_set(err, GM_EIO, "cannot create %s: %s", tmp, strerror(errno));
    (void)fchmod(fd, mode); /* umask must not widen or narrow what we asked for */
    const char *p = data;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            unlink(tmp);
            return gm_error_set(err, GM_EIO, "cannot write %s: %s", path, strerror(e));
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        unlink(tmp);
        return gm_error_set(err, GM_EIO, "cannot sync %s: %s", path, strerror(errno));
    }
    if (rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return gm_error_set(err, GM_EIO, "cannot rename into %s: %s", path, strerror(e));
    }
    /* the rename itself must survive a power loss: sync the directory entry too */
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    return 0;
}

int gm_file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int gm_mkdir_p(const char *path, mode_t mode, gm_error *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return gm_error_set(err, GM_EINVAL, "path too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return gm_error_set(err, GM_EIO, "cannot create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return gm_error_set(err, GM_EIO, "cannot create directory %s: %s", buf, strerror(errno));
    return 0;
}

int gm_path_join(char *out, size_t cap, const char *dir, const char *name, gm_error *err)
{
    if (snprintf(out, cap, "%s/%s", dir, name) >= (int)cap)
        return gm_error_set(err, GM_EINVAL, "path too long: %s/%s", dir, name);
    return 0;
}

void gm_buf_append(gm_buf *b, const void *data, size_t n)
{
    if (b->oom)
        return;
    if (n > SIZE_MAX / 2 - b->len - 1) {
        b->oom = 1;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void gm_buf_printf(gm_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
    } else if ((size_t)n < sizeof small) {
        gm_buf_append(b, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            b->oom = 1;
        } else {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            gm_buf_append(b, big, (size_t)n);
            free(big);
        }
    }
    va_end(ap2);
}

void gm_buf_free(gm_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

void gm_uuid4(char out[37])
{
    uint8_t b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/* The time of a version 7 UUID: 48 bits of Unix milliseconds, then 12 bits of the millisecond
 * (RFC 9562 6.2 method 3), one more than the last one given when the clock did not move on (or
 * went back), so the ids of one process sort in the order they were made. */
static uint64_t uuid7_time(void)
{
    static _Atomic uint64_t last;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    uint64_t t = ms << 12 | (uint64_t)(ts.tv_nsec % 1000000) * 4096 / 1000000;
    uint64_t prev = atomic_load(&last);
    for (;;) {
        uint64_t next = t > prev ? t : prev + 1;
        if (atomic_compare_exchange_weak(&last, &prev, next))
            return next;
    }
}

void gm_uuid7(char out[37])
{
    uint8_t b[16];
    randombytes_buf(b + 8, 8);
    uint64_t t = uuid7_time();
    for (int i = 0; i < 6; i++)
        b[i] = (uint8_t)(t >> (12 + 8 * (5 - i)));
    b[6] = (uint8_t)(0x70 | ((t >> 8) & 0x0f));
    b[7] = (uint8_t)t;
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

int gm_uuid_valid(const char *s)
{
    if (!s || strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}

int gm_file_check_private(const char *path, int dir, gm_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return gm_error_set(err, GM_EIO, "%s: %s", path, strerror(errno));
    if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return gm_error_set(err, GM_EINVAL, "%s is not a %s", path, dir ? "directory" : "regular file");
    if (st.st_uid != geteuid())
        return gm_error_set(err, GM_EINVAL, "%s belongs to uid %u, not to this user (uid %u)", path,
                            (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & 077)
        return gm_error_set(err, GM_EINVAL, "%s has mode %04o: others may read it; run chmod %s %s", path,
                            (unsigned)(st.st_mode & 07777), dir ? "700" : "600", path);
    return 0;
}

/* 1 when needle[0..n) occurs in p[0..len) (n >= 1). */
static int bytes_occur(const char *p, size_t len, const char *needle, size_t n)
{
    const char *end = p + len, *q = p;
    while ((size_t)(end - q) >= n && (q = memchr(q, needle[0], (size_t)(end - q) - n + 1)) != NULL) {
        if (!memcmp(q, needle, n))
            return 1;
        q++;
    }
    return 0;
}

int gm_json_may_hold(const void *data, size_t len, const char *text)
{
    return bytes_occur(data, len, text, strlen(text)) || bytes_occur(data, len, "\\u", 2);
}
