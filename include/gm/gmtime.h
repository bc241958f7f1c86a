/* ISO-8601 timestamps as the signed formats render them (see formats.md "Canonical JSON"),
 * and the monotonic clock used for timeouts. */
#ifndef GM_GMTIME_H
#define GM_GMTIME_H

#include <stdint.h>

#include "gm/error.h"

#define GM_TIME_STRLEN 40

typedef struct gm_time {
    int64_t unix_s;  /* the instant, seconds since the epoch (naive times are read as UTC) */
    int32_t usec;    /* 0..999999 */
    int has_offset;  /* 0 only for old files that carried no offset */
    int offset_min;  /* offset east of UTC, minutes */
} gm_time;

/* Parse YYYY-MM-DDTHH:MM:SS[.f{1,6}][Z|+HH:MM|-HH:MM] (also ' ' instead of 'T'). */
int gm_time_parse(const char *s, gm_time *t, gm_error *err) GM_MUST_CHECK;
/* Canonical rendering: seconds, ".ffffff" only if usec != 0, then "Z", "+HH:MM" or nothing. */
void gm_time_format(const gm_time *t, char out[GM_TIME_STRLEN]);
/* Now, UTC, with microseconds. */
gm_time gm_time_now(void);
gm_time gm_time_add(gm_time t, int64_t seconds);
/* -1, 0, 1 comparing instants. */
int gm_time_cmp(const gm_time *a, const gm_time *b);

/* Milliseconds on the monotonic clock (for deadlines; unrelated to wall time). */
int64_t gm_mono_ms(void);
/* Sleep ms milliseconds (returns early on a signal). */
void gm_sleep_ms(long ms);

#endif
