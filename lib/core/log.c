/* The one log interface (gm/log.h): records from every layer go to the handler the program
 * set, in one shape. The handler and level are process-wide, set once at startup. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gm/gmtime.h"
#include "gm/log.h"
#include "gm/util.h"
#include "core_internal.h"

#define LOG_MSG_MAX 2048

static gm_log_fn g_handler;
static void *g_handler_ctx;
static gm_log_level g_min = GM_LOG_INFO;

void gm_log_set_handler(gm_log_fn fn, void *ctx)
{
    g_handler = fn;
    g_handler_ctx = ctx;
}

void gm_log_set_level(gm_log_level min)
{
    g_min = min;
}

int gm_log_enabled(gm_log_level level)
{
    return g_handler != NULL && level >= g_min;
}

const char *gm_log_level_name(gm_log_level level)
{
    switch (level) {
    case GM_LOG_DEBUG: return "debug";
    case GM_LOG_INFO: return "info";
    case GM_LOG_WARN: return "warn";
    default: return "error";
    }
}

int gm_log_level_parse(const char *name, gm_log_level *out)
{
    for (int l = GM_LOG_DEBUG; l <= GM_LOG_ERROR; l++)
        if (name && !strcmp(name, gm_log_level_name((gm_log_level)l))) {
            *out = (gm_log_level)l;
            return 0;
        }
    return -1;
}

static void emit(gm_log_level level, const char *component, const char *event, const json_t *fields,
                 const char *msg)
{
    char ts[GM_TIME_STRLEN];
    gm_time now = gm_time_now();
    gm_time_format(&now, ts);
    gm_log_record rec = {.ts = ts, .level = level, .component = component ? component : "", .event = event,
                         .msg = msg, .fields = json_is_object(fields) ? fields : NULL};
    g_handler(g_handler_ctx, &rec);
}

void gm_log(gm_log_level level, const char *component, const char *fmt, ...)
{
    if (!gm_log_enabled(level))
        return;
    char msg[LOG_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    emit(level, component, NULL, NULL, msg);
}

void gm_log_event(gm_log_level level, const char *component, const char *event, json_t *fields, const char *fmt,
                  ...)
{
    if (!gm_log_enabled(level)) {
        json_decref(fields);
        return;
    }
    char msg[LOG_MSG_MAX];
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    } else {
        snprintf(msg, sizeof msg, "%s", event ? event : "");
    }
    emit(level, component, event, fields, msg);
    json_decref(fields);
}

/* ---- formatting ---- */

/* The text form of the character at u (a C0/C1 control becomes \xNN); *used = bytes read. */
static size_t safe_char(const unsigned char *u, char out[5], size_t *used)
{
    int c1 = u[0] == 0xc2 && u[1] >= 0x80 && u[1] <= 0x9f; /* C1 controls in UTF-8 */
    *used = 1 + (size_t)c1;
    if (*u < 0x20 || *u == 0x7f || c1)
        return (size_t)snprintf(out, 5, "\\x%02x", c1 ? u[1] : *u);
    out[0] = (char)*u;
    return 1;
}

static void append_safe(gm_buf *b, const char *s)
{
    char e[5];
    size_t used;
    for (const unsigned char *u = (const unsigned char *)(s ? s : ""); *u; u += used)
        gm_buf_append(b, e, safe_char(u, e, &used));
}

const char *gm_log_safe_text(const char *s, char *out, size_t cap)
{
    char e[5];
    size_t n = 0, used, k;
    for (const unsigned char *u = (const unsigned char *)(s ? s : ""); *u && cap; u += used) {
        if (n + (k = safe_char(u, e, &used)) >= cap)
            break;
        memcpy(out + n, e, k);
        n += k;
    }
    if (cap)
        out[n] = '\0';
    return out;
}

/* A JSON string for text that may not be UTF-8: invalid bytes become \xNN text. */
static json_t *json_text(const char *s)
{
    json_t *v = json_string(s ? s : "");
    if (v)
        return v;
    gm_buf b = {0};
    for (const unsigned char *u = (const unsigned char *)s; *u; u++)
        if (*u < 0x80)
            gm_buf_append(&b, u, 1);
        else
            gm_buf_printf(&b, "\\x%02x", *u);
    v = b.oom ? NULL : json_string(b.p ? b.p : "");
    gm_buf_free(&b);
    return v;
}

static char *format_json(const gm_log_record *rec)
{
    json_t *o = json_object();
    json_object_set_new(o, "ts", json_string(rec->ts));
    json_object_set_new(o, "level", json_string(gm_log_level_name(rec->level)));
    json_object_set_new(o, "component", json_text(rec->component));
    if (rec->event)
        json_object_set_new(o, "event", json_text(rec->event));
    json_object_set_new(o, "msg", json_text(rec->msg));
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)rec->fields, key, v)
    {
        if (!json_object_get(o, key)) /* the fixed members keep their meaning */
            json_object_set(o, key, v);
    }
    /* ASCII only: no raw C1 control can reach a terminal that shows the file */
    char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    json_decref(o);
    if (!line || !strchr(line, 0x7f))
        return line;
    /* jansson leaves DEL raw; outside strings a JSON text has none, so escape every one */
    gm_buf b = {0};
    for (const char *p = line; *p; p++)
        if (*p == 0x7f)
            gm_buf_append(&b, "\\u007f", 6);
        else
            gm_buf_append(&b, p, 1);
    free(line);
    if (b.oom) {
        gm_buf_free(&b);
        return NULL;
    }
    return b.p;
}

static char *format_text(const gm_log_record *rec)
{
    gm_buf b = {0};
    gm_buf_printf(&b, "%s %-5s ", rec->ts, gm_log_level_name(rec->level));
    append_safe(&b, rec->component);
    gm_buf_append(&b, ": ", 2);
    append_safe(&b, rec->msg);
    if (rec->event && strcmp(rec->event, rec->msg ? rec->msg : "")) {
        gm_buf_append(&b, " [", 2);
        append_safe(&b, rec->event);
        gm_buf_append(&b, "]", 1);
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)rec->fields, key, v)
    {
        gm_buf_append(&b, " ", 1);
        append_safe(&b, key);
        gm_buf_append(&b, "=", 1);
        if (json_is_string(v)) {
            append_safe(&b, json_string_value(v));
        } else {
            char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            append_safe(&b, s);
            free(s);
        }
    }
    if (b.oom) {
        gm_buf_free(&b);
        return NULL;
    }
    return b.p;
}

char *gm_log_format_line(const gm_log_record *rec, gm_log_format format)
{
    return format == GM_LOG_FORMAT_TEXT ? format_text(rec) : format_json(rec);
}

void gm_log_file_write(void *ctx, const gm_log_record *rec)
{
    gm_log_file *lf = ctx;
    char *line = gm_log_format_line(rec, lf->format);
    if (line) {
        /* one call per line, so lines from several threads do not interleave */
        fprintf(lf->f, "%s\n", line);
        fflush(lf->f);
    }
    free(line);
}

int gm_log_file_reopen(gm_log_file *lf)
{
    if (!lf || !lf->f || !lf->path)
        return 0;
    int fd = open(lf->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    /* Records are flushed line by line, so nothing of the old file is left in the buffer;
     * dup2 swaps the descriptor under the FILE at once, for every thread. */
    int rc = dup2(fd, fileno(lf->f)) < 0 ? -1 : 0;
    close(fd);
    return rc;
}

int gm_log_reopen(void)
{
    return g_handler == gm_log_file_write ? gm_log_file_reopen(g_handler_ctx) : 0;
}
