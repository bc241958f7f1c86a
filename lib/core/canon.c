/* Canonical JSON serializer (formats.md "Canonical JSON"): the bytes every signature covers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gm/canon.h"
#include "gm/util.h"
#include "core_internal.h"

#define CANON_MAX_DEPTH 64


static void put_u16(gm_buf *b, unsigned v)
{
    static const char hex[] = "0123456789abcdef";
    char e[6] = {'\\', 'u', hex[(v >> 12) & 15], hex[(v >> 8) & 15], hex[(v >> 4) & 15], hex[v & 15]};
    gm_buf_append(b, e, 6);
}

/* Decode one UTF-8 code point; returns its length or 0 if invalid. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len;
    uint32_t c, min;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2, c = s[0] & 0x1f, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, c = s[0] & 0x0f, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

static int put_string(gm_buf *b, const char *s, size_t n, gm_error *err)
{
    const unsigned char *u = (const unsigned char *)s;
    gm_buf_append(b, "\"", 1);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = utf8_next(u + i, n - i, &cp);
        if (l == 0)
            return gm_error_set(err, GM_EFORMAT, "string is not valid UTF-8");
        i += l;
        switch (cp) {
        case '"': gm_buf_append(b, "\\\"", 2); continue;
        case '\\': gm_buf_append(b, "\\\\", 2); continue;
        case '\b': gm_buf_append(b, "\\b", 2); continue;
        case '\f': gm_buf_append(b, "\\f", 2); continue;
        case '\n': gm_buf_append(b, "\\n", 2); continue;
        case '\r': gm_buf_append(b, "\\r", 2); continue;
        case '\t': gm_buf_append(b, "\\t", 2); continue;
        default: break;
        }
        if (cp >= 0x20 && cp <= 0x7e) {
            char c = (char)cp;
            gm_buf_append(b, &c, 1);
        } else if (cp > 0xffff) {
            cp -= 0x10000;
            put_u16(b, 0xd800 + (cp >> 10));
            put_u16(b, 0xdc00 + (cp & 0x3ff));
        } else {
            put_u16(b, cp);
        }
    }
    gm_buf_append(b, "\"", 1);
    return 0;
}

static int cmp_keys(const void *a, const void *b)
{
    /* UTF-8 byte order is code point order. */
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int dump(gm_buf *b, const json_t *v, const char *skip_key, int depth, gm_error *err)
{
    if (depth > CANON_MAX_DEPTH)
        return gm_error_set(err, GM_EFORMAT, "JSON nested deeper than %d levels", CANON_MAX_DEPTH);
    switch (json_typeof(v)) {
    case JSON_NULL: gm_buf_append(b, "null", 4); return 0;
    case JSON_TRUE: gm_buf_append(b, "true", 4); return 0;
    case JSON_FALSE: gm_buf_append(b, "false", 5); return 0;
    case JSON_REAL: return gm_error_set(err, GM_EFORMAT, "floating-point numbers are not allowed in signed JSON");
    case JSON_INTEGER: {
        char num[32];
        int n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        gm_buf_append(b, num, (size_t)n);
        return 0;
    }
    case JSON_STRING: return put_string(b, json_string_value(v), json_string_length(v), err);
    case JSON_ARRAY: {
        gm_buf_append(b, "[", 1);
        for (size_t i = 0; i < json_array_size(v); i++) {
            if (i)
                gm_buf_append(b, ",", 1);
            int rc = dump(b, json_array_get(v, i), NULL, depth + 1, err);
            if (rc)
                return rc;
        }
        gm_buf_append(b, "]", 1);
        return 0;
    }
    case JSON_OBJECT: {
        size_t n = json_object_size(v), k = 0;
        const char **keys = malloc((n ? n : 1) * sizeof *keys);
        if (!keys)
            return gm_error_set(err, GM_ENOMEM, "out of memory");
        const char *key;
        json_t *val;
        json_object_foreach((json_t *)v, key, val)
        {
            if (!skip_key || strcmp(key, skip_key) != 0)
                keys[k++] = key;
        }
        qsort(keys, k, sizeof *keys, cmp_keys);
        gm_buf_append(b, "{", 1);
        int rc = 0;
        for (size_t i = 0; i < k && rc == 0; i++) {
            if (i)
                gm_buf_append(b, ",", 1);
            rc = put_string(b, keys[i], strlen(keys[i]), err);
            gm_buf_append(b, ":", 1);
            if (rc == 0)
                rc = dump(b, json_object_get(v, keys[i]), NULL, depth + 1, err);
        }
        gm_buf_append(b, "}", 1);
        free(keys);
        return rc;
    }
    }
    return gm_error_set(err, GM_EFORMAT, "unknown JSON type");
}

static int canon(const json_t *v, const char *skip, char **out, size_t *len, gm_error *err)
{
    gm_buf b = {0};
    if (!v)
        return gm_error_set(err, GM_EINVAL, "no JSON value to serialize");
    int rc = dump(&b, v, skip, 0, err);
    if (rc == 0 && b.oom)
        rc = gm_error_set(err, GM_ENOMEM, "out of memory serializing JSON");
    if (rc != 0) {
        gm_buf_free(&b);
        return rc;
    }
    *out = b.p;
    if (len)
        *len = b.len;
    return 0;
}

int gm_canon_dump(const json_t *v, char **out, size_t *len, gm_error *err)
{
    return canon(v, NULL, out, len, err);
}

int gm_canon_dump_unsigned(const json_t *obj, char **out, size_t *len, gm_error *err)
{
    if (!json_is_object(obj))
        return gm_error_set(err, GM_EFORMAT, "signed document must be a JSON object");
    return canon(obj, "signatures", out, len, err);
}
