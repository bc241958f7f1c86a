/* One log for the library and its programs. The library reports events with gm_log and
 * gm_log_event; the program decides where they go with gm_log_set_handler (the library never
 * writes to stderr itself). Every record has the same shape, written as one JSON object per
 * line ({"ts","level","component","event"?,"msg", fields...}) or, for a terminal, as text. */
#ifndef GM_LOG_H
#define GM_LOG_H

#include <stdio.h>

#include <jansson.h>

#include "gm/error.h"

typedef enum gm_log_level { GM_LOG_DEBUG = 0, GM_LOG_INFO = 1, GM_LOG_WARN = 2, GM_LOG_ERROR = 3 } gm_log_level;

/* One record, valid only during the handler call. */
typedef struct gm_log_record {
    const char *ts;        /* UTC, gm_time_format */
    gm_log_level level;
    const char *component; /* "na", "node", "agent", ... */
    const char *event;     /* machine-readable event name, or NULL */
    const char *msg;       /* human-readable text (the event name when there is no text) */
    const json_t *fields;  /* extra members (a JSON object), or NULL */
} gm_log_record;

typedef void (*gm_log_fn)(void *ctx, const gm_log_record *rec);

/* Where records go (NULL = nowhere, the default). Set it before starting threads; the
 * handler may be called from any thread and must be thread-safe. */
void gm_log_set_handler(gm_log_fn fn, void *ctx);
/* Records below min are dropped before they are formatted (default GM_LOG_INFO). */
void gm_log_set_level(gm_log_level min);

/* A record with text only. */
void gm_log(gm_log_level level, const char *component, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The inverse of gm_log_level_name; returns 0, or -1 for an unknown name. */
int gm_log_level_parse(const char *name, gm_log_level *out) GM_MUST_CHECK;

typedef enum gm_log_format { GM_LOG_FORMAT_JSON = 0, GM_LOG_FORMAT_TEXT = 1 } gm_log_format;

/* Copy s into out (cap bytes, always terminated) with control characters shown as \xNN, the
 * way the text format shows them; for printing text that came from a file or the network. */
const char *gm_log_safe_text(const char *s, char *out, size_t cap);

/* A ready handler: ctx is a gm_log_file; one line per record, flushed. */
typedef struct gm_log_file {
    FILE *f;
    gm_log_format format;
    const char *path; /* the file f was opened from (for gm_log_file_reopen), NULL for stderr */
} gm_log_file;
void gm_log_file_write(void *ctx, const gm_log_record *rec);
/* gm_log_file_reopen of the process log, when its handler is gm_log_file_write. */
int gm_log_reopen(void);

/* A record with an event name and fields (a JSON object or NULL, consumed); fmt may be NULL
 * (the message is then the event name). */
void gm_log_event(gm_log_level level, const char *component, const char *event, json_t *fields, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));

#endif
