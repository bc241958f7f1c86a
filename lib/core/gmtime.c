/* Timestamps: strict ISO-8601 parsing and the canonical rendering the signatures cover;
 * the monotonic clock for timeouts. */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "gm/gmtime.h"
#include "core_internal.h"

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t yy = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int gm_time_parse(const char *s, gm_time *t, gm_error *err)
{
    int Y, M, D, h, mi, sec, usec = 0;
    size_t len = s ? strlen(s) : 0;
    if (len < 19 || len > 40 || digits(s, 4, &Y) || s[4] != '-' || digits(s + 5, 2, &M) || s[7] != '-' ||
        digits(s + 8, 2, &D) || (s[10] != 'T' && s[10] != ' ') || digits(s + 11, 2, &h) || s[13] != ':' ||
        digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec))
        return gm_error_set(err, GM_EFORMAT, "bad timestamp '%.40s' (expected YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+HH:MM])",
                            s ? s : "(null)");
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (Y % 4 == 0 && Y % 100 != 0) || Y % 400 == 0;
    if (M < 1 || M > 12 || D < 1 || D > mdays[M - 1] || (M == 2 && D == 29 && !leap) || h > 23 || mi > 59 ||
        sec > 59)
        return gm_error_set(err, GM_EFORMAT, "bad timestamp '%s': date or time out of range", s);
    const char *p = s + 19;
    if (*p == '.') {
        int n = 0;
        p++;
        while (p[n] >= '0' && p[n] <= '9')
            n++;
        if (n < 1 || n > 6)
            return gm_error_set(err, GM_EFORMAT, "bad timestamp '%s': 1 to 6 fraction digits expected", s);
        digits(p, n, &usec);
        for (int i = n; i < 6; i++)
            usec *= 10;
        p += n;
    }
    t->has_offset = 0;
    t->offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        t->has_offset = 1;
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || oh > 23 || om > 59)
            return gm_error_set(err, GM_EFORMAT, "bad timestamp '%s': offset must be +HH:MM", s);
        t->has_offset = 1;
        t->offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    }
    if (*p != '\0')
        return gm_error_set(err, GM_EFORMAT, "bad timestamp '%s': trailing characters", s);
    int64_t local = days_from_civil(Y, (unsigned)M, (unsigned)D) * 86400 + h * 3600 + mi * 60 + sec;
    t->unix_s = local - (int64_t)t->offset_min * 60;
    t->usec = usec;
    return 0;
}

void gm_time_format(const gm_time *t, char out[GM_TIME_STRLEN])
{
    int64_t local = t->unix_s + (int64_t)t->offset_min * 60;
    int64_t days = local >= 0 ? local / 86400 : -((-local + 86399) / 86400);
    int64_t rem = local - days * 86400;
    int y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(out, GM_TIME_STRLEN, "%04d-%02u-%02uT%02d:%02d:%02d", y, m, d, (int)(rem / 3600),
                     (int)(rem % 3600 / 60), (int)(rem % 60));
    if (t->usec != 0)
        n += snprintf(out + n, (size_t)(GM_TIME_STRLEN - n), ".%06d", (int)t->usec);
    if (t->has_offset) {
        if (t->offset_min == 0) {
            snprintf(out + n, (size_t)(GM_TIME_STRLEN - n), "Z");
        } else {
            int o = t->offset_min < 0 ? -t->offset_min : t->offset_min;
            snprintf(out + n, (size_t)(GM_TIME_STRLEN - n), "%c%02d:%02d", t->offset_min < 0 ? '-' : '+', o / 60,
                     o % 60);
        }
    }
}

gm_time gm_time_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    gm_time t = {.unix_s = tv.tv_sec, .usec = (int32_t)tv.tv_usec, .has_offset = 1, .offset_min = 0};
    return t;
}

gm_time gm_time_from_unix(int64_t unix_s)
{
    gm_time t = {.unix_s = unix_s, .usec = 0, .has_offset = 1, .offset_min = 0};
    return t;
}

gm_time gm_time_add(gm_time t, int64_t seconds)
{
    t.unix_s += seconds;
    return t;
}

int gm_time_cmp(const gm_time *a, const gm_time *b)
{
    if (a->unix_s != b->unix_s)
        return a->unix_s < b->unix_s ? -1 : 1;
    if (a->usec != b->usec)
        return a->usec < b->usec ? -1 : 1;
    return 0;
}

int gm_time_canonical(const char *in, char out[GM_TIME_STRLEN], gm_error *err)
{
    gm_time t;
    int rc = gm_time_parse(in, &t, err);
    if (rc == 0)
        gm_time_format(&t, out);
    return rc;
}

int64_t gm_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void gm_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}
