/* Fuzz target for the log formatter (gm/log.h): whatever bytes a record carries (a request
 * path, a peer's error text, a field value), its JSON line parses back to the same text when
 * the text is UTF-8, and neither the JSON nor the text line holds a control character that
 * could drive a terminal. The input is split at NUL bytes into component, message and one
 * field value. Violations abort(). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gm/log.h"
#include "core_internal.h"

#define FAIL(why)                                                                  \
    do {                                                                           \
        fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, why); \
        abort();                                                                   \
    } while (0)

static void check_line(const char *line, int json)
{
    if (!line)
        return; /* out of memory only */
    for (const unsigned char *p = (const unsigned char *)line; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            FAIL("a control character reached the log line");
        if (json && *p >= 0x80)
            FAIL("a JSON log line is not ASCII");
        if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
            FAIL("a C1 control reached the log line");
    }
}

static void capture(void *ctx, const gm_log_record *rec)
{
    (void)ctx;
    char *j = gm_log_format_line(rec, GM_LOG_FORMAT_JSON), *t = gm_log_format_line(rec, GM_LOG_FORMAT_TEXT);
    check_line(j, 1);
    check_line(t, 0);
    json_t *o = j ? json_loads(j, 0, NULL) : NULL;
    if (j && !o)
        FAIL("a JSON log line does not parse");
    json_t *back = json_string(rec->msg);
    if (o && back && strcmp(json_string_value(json_object_get(o, "msg")), rec->msg) != 0)
        FAIL("the msg of a UTF-8 record does not parse back to itself");
    json_decref(back);
    json_decref(o);
    free(j);
    free(t);
    char small[16];
    check_line(gm_log_safe_text(rec->msg, small, sizeof small), 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 3);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = buf[size + 1] = buf[size + 2] = '\0';
    const char *component = buf, *msg = component + strlen(component) + 1;
    if (msg > buf + size)
        msg = buf + size;
    const char *value = msg + strlen(msg) + 1;
    if (value > buf + size)
        value = buf + size;
    gm_log_set_handler(capture, NULL);
    gm_log_set_level(GM_LOG_DEBUG);
    json_t *fields = json_object(), *v = json_string(value); /* NULL unless UTF-8, like every caller's */
    if (v)
        json_object_set_new(fields, "value", v);
    gm_log_event(GM_LOG_WARN, component, msg, fields, "%s", msg);
    gm_log(GM_LOG_INFO, component, "%s", msg);
    gm_log_set_handler(NULL, NULL);
    free(buf);
    return 0;
}
