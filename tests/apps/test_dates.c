/* test_dates.c - the dates -> ISO task (apps/attn/task/dates.c) and the character
 * vocabulary (apps/attn/task/charvocab.c). The oracle is this file's own
 * calendar (Zeller's congruence, its own month lengths) and its own parser,
 * which knows only the reading rule of dates.h and its own word lists, not
 * the format: every source parsing back to its date is the proof that each
 * source has exactly one reading. */
#include "nn_test.h"

#include "task/charvocab.h"
#include "task/dates.h"

#include <stdlib.h>
#include <string.h>

/* ---- the oracle calendar ----------------------------------------------------- */

static bool o_leap(int y)
{
    return y % 400 == 0 || (y % 100 != 0 && y % 4 == 0);
}

static int o_month_days(int y, int m)
{
    if (m == 2) return o_leap(y) ? 29 : 28;
    return m == 4 || m == 6 || m == 9 || m == 11 ? 30 : 31;
}

static bool o_valid(int y, int m, int d)
{
    return y >= 1900 && y <= 2099 && m >= 1 && m <= 12 && d >= 1 && d <= o_month_days(y, m);
}

/* Zeller's congruence, returned as 0 = Monday .. 6 = Sunday. */
static int o_weekday(int y, int m, int d)
{
    if (m < 3) {
        m += 12;
        y -= 1;
    }
    int k = y % 100, j = y / 100;
    int h = (d + 13 * (m + 1) / 5 + k + k / 4 + j / 4 + 5 * j) % 7; /* 0 = Saturday */
    return (h + 5) % 7;
}

/* ---- the oracle parser: the reading rule of dates.h, its own words -------------- */

static const char *const o_months[12] = {"january", "february", "march",     "april",
                                         "may",     "june",     "july",      "august",
                                         "september", "october", "november", "december"};
static const char *const o_days[7] = {"monday", "tuesday",  "wednesday", "thursday",
                                      "friday", "saturday", "sunday"};
static const char *const o_units[10] = {"zero", "one", "two",   "three", "four",
                                        "five", "six", "seven", "eight", "nine"};
static const char *const o_teens[10] = {"ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                        "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
static const char *const o_tens[10] = {"",      "",      "twenty",  "thirty", "forty",
                                       "fifty", "sixty", "seventy", "eighty", "ninety"};
static const char *const o_unit_ords[10] = {"",      "first", "second",  "third",  "fourth",
                                            "fifth", "sixth", "seventh", "eighth", "ninth"};
static const char *const o_teen_ords[10] = {
    "tenth",       "eleventh",    "twelfth",     "thirteenth", "fourteenth",
    "fifteenth",   "sixteenth",   "seventeenth", "eighteenth", "nineteenth"};

/* Index of w (length n) in list [count], or -1; with abbr, its first three
 * letters also match. */
static int o_lookup(const char *w, size_t n, const char *const *list, int count, bool abbr)
{
    for (int i = 0; i < count; i++) {
        size_t len = strlen(list[i]);
        if ((n == len || (abbr && n == 3)) && strncmp(w, list[i], n) == 0) return i;
    }
    return -1;
}

/* A word of number: 1..99 as a cardinal ("forty-two") with ordinal false,
 * or as an ordinal ("twenty-first", "thirtieth") with ordinal true; -1 if w
 * is not one. */
static int o_number_word(const char *w, size_t n, bool ordinal)
{
    const char *dash = memchr(w, '-', n);
    if (dash != NULL) {
        int t = o_lookup(w, (size_t)(dash - w), o_tens, 10, false);
        const char *u = dash + 1;
        size_t un = n - (size_t)(u - w);
        int v = o_lookup(u, un, ordinal ? o_unit_ords : o_units, 10, false);
        return t >= 2 && v >= 1 ? 10 * t + v : -1;
    }
    int v = o_lookup(w, n, ordinal ? o_unit_ords : o_units, 10, false);
    if (v >= 1) return v;
    v = o_lookup(w, n, ordinal ? o_teen_ords : o_teens, 10, false);
    if (v >= 0) return 10 + v;
    if (ordinal) {
        if (n == 9 && strncmp(w, "twentieth", n) == 0) return 20;
        if (n == 9 && strncmp(w, "thirtieth", n) == 0) return 30;
        return -1;
    }
    v = o_lookup(w, n, o_tens, 10, false);
    return v >= 2 ? 10 * v : -1;
}

typedef struct {
    int y, m, d;
    int weekday; /* named in the source, or -1 */
} o_date;

static int o_two_digit_year(int v)
{
    return v < 50 ? 2000 + v : 1900 + v;
}

/* All-digit sources: YYYYMMDD, Y?M?D with a 4-digit Y first, M/D/Y, D.M.Y, D-M-Y. */
static bool o_parse_numeric(const char *s, o_date *out)
{
    int v[4], len[4], nf = 0;
    char sep = 0;
    for (const char *p = s; *p;) {
        if (nf == 4) return false;
        v[nf] = len[nf] = 0;
        for (; *p >= '0' && *p <= '9'; p++, len[nf]++) v[nf] = v[nf] * 10 + (*p - '0');
        if (len[nf] == 0 || len[nf] > 8) return false;
        nf++;
        if (*p == '\0') break;
        if (sep != 0 && *p != sep) return false;
        sep = *p++;
    }
    if (nf == 1 && len[0] == 8) {
        *out = (o_date){v[0] / 10000, v[0] / 100 % 100, v[0] % 100, -1};
        return true;
    }
    if (nf != 3 || len[1] > 2) return false;
    if (len[0] == 4 && len[2] <= 2) {
        *out = (o_date){v[0], v[1], v[2], -1};
    } else if (len[0] <= 2 && (len[2] == 4 || len[2] == 2)) {
        int y = len[2] == 2 ? o_two_digit_year(v[2]) : v[2];
        if (sep == '/')
            *out = (o_date){y, v[0], v[1], -1};
        else if (sep == '.' || sep == '-')
            *out = (o_date){y, v[1], v[0], -1};
        else
            return false;
    } else {
        return false;
    }
    return true;
}

/* What a source with words has shown so far. */
typedef struct {
    int month, weekday, year, year_sources, days, day;
    int smalls[3], n_small;
    char words[4][24];
    int n_words;
} o_parts;

/* "nineteen hundred", "nineteen oh five", "nineteen ninety-nine",
 * "two thousand", "two thousand four", "twenty twenty-four". */
static int o_year_words(const o_parts *p)
{
    int n = p->n_words, v[4];
    for (int i = 0; i < n; i++) v[i] = o_number_word(p->words[i], strlen(p->words[i]), false);
    if (n >= 2 && v[0] == 2 && strcmp(p->words[1], "thousand") == 0) {
        if (n == 2) return 2000;
        return n == 3 && v[2] >= 1 ? 2000 + v[2] : -1;
    }
    if (n < 2 || (v[0] != 19 && v[0] != 20)) return -1;
    if (n == 2 && strcmp(p->words[1], "hundred") == 0) return 100 * v[0];
    if (n == 3 && strcmp(p->words[1], "oh") == 0 && v[2] >= 1 && v[2] <= 9) return 100 * v[0] + v[2];
    return n == 2 && v[1] >= 10 ? 100 * v[0] + v[1] : -1;
}

/* One word of a source with words into parts; false if it means nothing. */
static bool o_word(const char *w, size_t n, o_parts *p)
{
    int i;
    if ((i = o_lookup(w, n, o_months, 12, true)) >= 0) {
        if (p->month >= 0) return false;
        p->month = i + 1;
    } else if ((i = o_lookup(w, n, o_days, 7, true)) >= 0) {
        if (p->weekday >= 0) return false;
        p->weekday = i;
    } else if ((n == 3 && strncmp(w, "the", 3) == 0) || (n == 2 && strncmp(w, "of", 2) == 0)) {
        return true;
    } else if ((i = o_number_word(w, n, true)) >= 0) {
        p->days++;
        p->day = i;
    } else {
        if (p->n_words == 4 || n >= sizeof p->words[0]) return false;
        memcpy(p->words[p->n_words], w, n);
        p->words[p->n_words++][n] = '\0';
    }
    return true;
}

/* The suffix of the ordinal number v: st, nd, rd, th. */
static const char *o_suffix(int v)
{
    if (v % 100 >= 11 && v % 100 <= 13) return "th";
    return v % 10 == 1 ? "st" : v % 10 == 2 ? "nd" : v % 10 == 3 ? "rd" : "th";
}

/* A number at p (digits, then maybe an ordinal suffix) into parts; returns
 * the position after it, or NULL. */
static const char *o_number(const char *p, bool apostrophe, o_parts *pt)
{
    int v = 0, len = 0;
    for (; *p >= '0' && *p <= '9'; p++, len++) v = v * 10 + (*p - '0');
    if (len == 0 || len > 4) return NULL;
    if (*p >= 'a' && *p <= 'z') {
        if (apostrophe || len > 2 || strncmp(p, o_suffix(v), 2) != 0) return NULL;
        pt->days++;
        pt->day = v;
        return p + 2;
    }
    if (apostrophe || len == 4) {
        if (apostrophe && len != 2) return NULL;
        pt->year = apostrophe ? o_two_digit_year(v) : v;
        pt->year_sources++;
    } else if (len <= 2 && pt->n_small < 3) {
        pt->smalls[pt->n_small++] = v;
    } else {
        return NULL;
    }
    return p;
}

/* Sources with words: the month, day and year rule of dates.h. */
static bool o_parse_words(const char *s, o_date *out)
{
    o_parts p = {.month = -1, .weekday = -1};
    while (*s) {
        if (*s == ' ' || *s == ',' || *s == '.' || *s == '-') {
            s++;
        } else if ((*s >= '0' && *s <= '9') || *s == '\'') {
            s = o_number(s + (*s == '\''), *s == '\'', &p);
            if (s == NULL) return false;
        } else if (*s >= 'a' && *s <= 'z') {
            const char *w = s;
            while ((*s >= 'a' && *s <= 'z') || (*s == '-' && s[1] >= 'a' && s[1] <= 'z')) s++;
            if (!o_word(w, (size_t)(s - w), &p)) return false;
        } else {
            return false;
        }
    }
    if (p.n_words > 0) {
        p.year = o_year_words(&p);
        p.year_sources++;
        if (p.year < 0) return false;
    }
    if (p.month < 0 || p.year_sources > 1) return false;
    if (p.year_sources == 0) { /* 17-Mar-24: the day, then a two-digit year */
        if (p.n_small != 2 || p.days != 0) return false;
        p.day = p.smalls[0];
        p.year = o_two_digit_year(p.smalls[1]);
    } else {
        if (p.days + p.n_small != 1) return false;
        if (p.n_small == 1) p.day = p.smalls[0];
    }
    *out = (o_date){p.year, p.month, p.day, p.weekday};
    return true;
}

/* The reading of a source: its date, and the weekday it names (or -1). */
static bool o_parse(const char *src, o_date *out)
{
    char s[64];
    size_t n = strlen(src);
    bool letters = false;
    if (n == 0 || n >= sizeof s) return false;
    for (size_t i = 0; i <= n; i++) {
        char c = src[i];
        s[i] = c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
        letters |= (s[i] >= 'a' && s[i] <= 'z') || c == '\'';
    }
    bool ok = letters ? o_parse_words(s, out) : o_parse_numeric(s, out);
    return ok && o_valid(out->y, out->m, out->d);
}

/* ---- helpers ------------------------------------------------------------------ */

static bool same_date(const o_date *o, const task_date *d)
{
    return o->y == d->year && o->m == d->month && o->d == d->day;
}

/* Checks one source of date d: length, characters, its one reading, the
 * weekday it names. Counts a failure with a reproducer. */
static void check_source(const char *src, const task_date *d, const char *what)
{
    o_date o;
    size_t n = strlen(src);
    bool printable = n > 0;
    for (size_t i = 0; i < n; i++) printable &= src[i] >= 32 && src[i] <= 126;
    bool ok = printable && n <= TASK_DATES_SRC_MAX && o_parse(src, &o) && same_date(&o, d) &&
              (o.weekday < 0 || o.weekday == o_weekday(d->year, d->month, d->day));
    t_checks++;
    if (!ok)
        t_fail(__FILE__, __LINE__, "%s: source '%s' (%zu chars) does not read back as %04d-%02d-%02d",
               what, src, n, d->year, d->month, d->day);
}

static void iso_of(const task_date *d, char *buf)
{
    snprintf(buf, 16, "%04d-%02d-%02d", d->year, d->month, d->day);
}

static const uint64_t SEED = 20240317;

/* ---- tests -------------------------------------------------------------------- */

T_TEST(dates_calendar_facts)
{
    static const struct {
        task_date d;
        int weekday; /* 0 = Monday */
    } facts[] = {{{2024, 3, 17}, 6}, {{1900, 1, 1}, 0},  {{2000, 2, 29}, 1},
                 {{2099, 12, 31}, 3}, {{1969, 7, 20}, 6}, {{2001, 9, 11}, 1}};
    for (size_t i = 0; i < sizeof facts / sizeof facts[0]; i++) {
        const task_date *d = &facts[i].d;
        T_EQ_INT(task_date_weekday(d), facts[i].weekday);
        T_EQ_INT(o_weekday(d->year, d->month, d->day), facts[i].weekday);
    }
    int leap_days = 0;
    task_date prev = {1899, 12, 31};
    for (int32_t n = 0; n < TASK_DATES_N_DAYS; n++) {
        task_date d;
        T_EQ_STATUS(task_date_from_days(n, &d), ATTN_OK);
        /* d is the day after prev, by the oracle's month lengths */
        bool next = (d.year == prev.year && d.month == prev.month && d.day == prev.day + 1) ||
                    (d.year == prev.year && d.month == prev.month + 1 && d.day == 1 &&
                     prev.day == o_month_days(prev.year, prev.month)) ||
                    (d.year == prev.year + 1 && d.month == 1 && d.day == 1 && prev.month == 12 &&
                     prev.day == 31);
        if (!next || task_date_to_days(&d) != n ||
            task_date_weekday(&d) != o_weekday(d.year, d.month, d.day)) {
            T_CHECK(next);
            T_EQ_INT(task_date_to_days(&d), n);
            T_EQ_INT(task_date_weekday(&d), o_weekday(d.year, d.month, d.day));
            break;
        }
        leap_days += d.month == 2 && d.day == 29;
        prev = d;
    }
    T_CHECK(prev.year == 2099 && prev.month == 12 && prev.day == 31);
    T_EQ_INT(leap_days, 49); /* 1904 .. 2096 every 4 years; 1900 is not leap, 2000 is */
}

T_TEST(dates_calendar_args)
{
    static const task_date bad[] = {{1900, 2, 29}, {1899, 12, 31}, {2100, 1, 1}, {2023, 2, 29},
                                    {2024, 4, 31}, {2024, 0, 1},   {2024, 13, 1}, {2024, 1, 0}};
    char iso[16] = "untouched";
    task_date d = {0, 0, 0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        T_CHECK(!task_date_valid(&bad[i]));
        T_EQ_INT(task_date_to_days(&bad[i]), -1);
        T_EQ_INT(task_date_weekday(&bad[i]), -1);
        T_EQ_STATUS(task_date_iso(&bad[i], iso), ATTN_BAD_PARAM);
    }
    T_CHECK(strcmp(iso, "untouched") == 0);
    T_CHECK(!task_date_valid(NULL));
    T_CHECK(task_date_valid(&(task_date){2000, 2, 29}));
    T_EQ_STATUS(task_date_from_days(-1, &d), ATTN_BAD_PARAM);
    T_EQ_STATUS(task_date_from_days(TASK_DATES_N_DAYS, &d), ATTN_BAD_PARAM);
    T_EQ_STATUS(task_date_from_days(0, NULL), ATTN_NULL_ARG);
    T_CHECK(d.year == 0 && d.month == 0 && d.day == 0);
    T_EQ_STATUS(task_date_iso(NULL, iso), ATTN_NULL_ARG);
    T_EQ_STATUS(task_date_iso(&(task_date){2024, 3, 17}, NULL), ATTN_NULL_ARG);

    static const char *const not_iso[] = {"2024-3-17",  "2024-02-30", "2024-03-17x", "1899-12-31",
                                          "2100-01-01", "2024/03/17", "",            "2024-03-1"};
    for (size_t i = 0; i < sizeof not_iso / sizeof not_iso[0]; i++)
        T_EQ_STATUS(task_date_parse_iso(not_iso[i], &d), ATTN_BAD_PARAM);
    T_CHECK(d.year == 0);
    T_EQ_STATUS(task_date_parse_iso(NULL, &d), ATTN_NULL_ARG);
    T_EQ_STATUS(task_date_parse_iso("2024-03-17", NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(task_date_parse_iso("2000-02-29", &d), ATTN_OK);
    T_CHECK(d.year == 2000 && d.month == 2 && d.day == 29);
    T_EQ_STATUS(task_date_iso(&(task_date){1905, 7, 4}, iso), ATTN_OK);
    T_CHECK(strcmp(iso, "1905-07-04") == 0);
}

/* Hand-written sources of known dates, one or more per kind of format. */
T_TEST(dates_known_sources)
{
    static const struct {
        task_date d;
        const char *format;
        uint64_t variant;
        const char *src;
    } cases[] = {
        {{2024, 3, 17}, "iso", 0, "2024-03-17"},
        {{2024, 3, 7}, "ymd_dash_nopad", 0, "2024-3-7"},
        {{2024, 3, 17}, "ymd_compact", 0, "20240317"},
        {{2024, 3, 7}, "mdy_slash", 0, "03/07/2024"},
        {{2024, 3, 7}, "mdy_slash_nopad_yy", 0, "3/7/24"},
        {{1950, 1, 2}, "mdy_slash_yy", 0, "01/02/50"},
        {{2024, 3, 7}, "dmy_dot", 0, "07.03.2024"},
        {{2024, 3, 7}, "dmy_dot_nopad", 0, "7.3.2024"},
        {{2049, 12, 31}, "dmy_dot_yy", 0, "31.12.49"},
        {{2024, 3, 17}, "ymd_space", 0, "2024 03 17"},
        {{2024, 3, 17}, "wd_mdy_full", 0, "Sunday, March 17, 2024"},
        {{2024, 3, 17}, "wd_dmy_abbr", 1, "Sun 17 Mar 2024"},
        {{2024, 3, 17}, "wd_rfc", 3, "SUN, 17 MAR 2024"},
        {{2024, 5, 17}, "mdy_abbr_dot", 0, "May 17, 2024"},
        {{2024, 9, 1}, "mdy_abbr_dot", 2, "sep. 1, 2024"},
        {{1999, 12, 31}, "mdy_abbr_apos", 0, "Dec 31 '99"},
        {{2007, 1, 5}, "dmy_abbr_dash_yy", 0, "05-Jan-07"},
        {{2021, 5, 3}, "the_ord_of", 0, "the 3rd of May 2021"},
        {{2021, 5, 11}, "the_ord_of", 3, "THE 11TH OF MAY 2021"},
        {{2021, 5, 22}, "dmy_ord", 0, "22nd May 2021"},
        {{2021, 5, 31}, "mdy_ord", 0, "May 31st, 2021"},
        {{2024, 3, 17}, "wd_the_ord_of", 0, "Sunday the 17th of March, 2024"},
        {{2024, 3, 17}, "spelled_of", 0, "seventeenth of March 2024"},
        {{2024, 3, 17}, "mdy_spelled", 0, "March seventeenth, 2024"},
        {{1999, 6, 21}, "the_spelled_of", 0, "the twenty-first of June, 1999"},
        {{1999, 6, 20}, "the_spelled_of", 2, "the twentieth of june, 1999"},
        {{1999, 6, 21}, "dmy_year_words", 0, "21 June nineteen ninety-nine"},
        {{2004, 2, 29}, "mdy_year_words", 0, "February 29, two thousand four"},
        {{2024, 3, 17}, "mdy_year_words", 0, "March 17, twenty twenty-four"},
        {{2024, 3, 17}, "mdy_year_words", 4, "March 17, two thousand twenty-four"},
        {{2010, 3, 17}, "mdy_year_words", 0, "March 17, twenty ten"},
        {{2000, 1, 1}, "the_ord_year_words", 0, "the 1st of Jan, two thousand"},
        {{1900, 1, 1}, "spelled_all", 0, "first of Jan nineteen hundred"},
        {{1905, 8, 2}, "spelled_all", 3, "SECOND OF AUG NINETEEN OH FIVE"},
        {{2077, 9, 27}, "spelled_all", 4, "twenty-seventh of Sep two thousand seventy-seven"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[TASK_DATES_SRC_MAX + 1] = "";
        int f = task_dates_format_find(cases[i].format);
        T_CHECK(f >= 0);
        T_EQ_STATUS(task_dates_format(&cases[i].d, f, cases[i].variant, src, sizeof src), ATTN_OK);
        t_checks++;
        if (strcmp(src, cases[i].src) != 0)
            t_fail(__FILE__, __LINE__, "%s: '%s', want '%s'", cases[i].format, src, cases[i].src);
        check_source(cases[i].src, &cases[i].d, cases[i].format);
    }
}

T_TEST(dates_format_table_and_args)
{
    int n = task_dates_n_formats();
    T_LE(25, n);
    for (int f = 0; f < n; f++) {
        T_EQ_INT(task_dates_format_find(task_dates_format_name(f)), f); /* names are unique */
        T_CHECK(strcmp(task_dates_format_name(f), "unknown") != 0);
    }
    T_EQ_INT(task_dates_format_find("no_such_format"), -1);
    T_EQ_INT(task_dates_format_find(NULL), -1);
    T_CHECK(strcmp(task_dates_format_name(-1), "unknown") == 0);
    T_CHECK(strcmp(task_dates_format_name(n), "unknown") == 0);

    task_date d = {2024, 3, 17}, old = {1920, 3, 17}, bad = {2023, 2, 29};
    int yy = task_dates_format_find("mdy_slash_yy"), words = task_dates_format_find("spelled_of");
    char src[64] = "untouched";
    T_EQ_STATUS(task_dates_format(NULL, 0, 0, src, sizeof src), ATTN_NULL_ARG);
    T_EQ_STATUS(task_dates_format(&d, 0, 0, NULL, sizeof src), ATTN_NULL_ARG);
    T_EQ_STATUS(task_dates_format(&bad, 0, 0, src, sizeof src), ATTN_BAD_PARAM);
    T_EQ_STATUS(task_dates_format(&d, -1, 0, src, sizeof src), ATTN_BAD_PARAM);
    T_EQ_STATUS(task_dates_format(&d, n, 0, src, sizeof src), ATTN_BAD_PARAM);
    T_EQ_STATUS(task_dates_format(&old, yy, 0, src, sizeof src), ATTN_UNSUPPORTED);
    T_EQ_STATUS(task_dates_format(&d, words, 0, src, 25), ATTN_BAD_PARAM); /* needs 26 */
    T_EQ_STATUS(task_dates_format(&d, words, 0, src, 0), ATTN_BAD_PARAM);
    T_CHECK(strcmp(src, "untouched") == 0);
    T_EQ_STATUS(task_dates_format(&d, words, 0, src, 26), ATTN_OK);
    T_CHECK(!task_dates_format_fits(&old, yy) && task_dates_format_fits(&d, yy));
    T_CHECK(task_dates_format_fits(&(task_date){1950, 1, 1}, yy));
    T_CHECK(!task_dates_format_fits(&(task_date){1949, 12, 31}, yy));
    T_CHECK(task_dates_format_fits(&(task_date){2049, 12, 31}, yy));
    T_CHECK(!task_dates_format_fits(&(task_date){2050, 1, 1}, yy));
    T_CHECK(!task_dates_format_fits(&bad, 0) && !task_dates_format_fits(&d, n));

    task_dates_sample s;
    T_EQ_STATUS(task_dates_example(1, 0, TASK_DATES_TRAIN, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(task_dates_example(1, 0, (task_dates_split)3, &s), ATTN_BAD_PARAM);
    T_CHECK(!task_dates_is_heldout(NULL, 0) && !task_dates_is_heldout(&d, -1));
    T_CHECK(!task_dates_is_heldout(&d, n) && !task_dates_is_heldout(&bad, 0));
}

/* One example of the stream checked against the oracle; counts into seen. */
static void check_example(const task_dates_sample *s, uint64_t index)
{
    char iso[16], what[64];
    snprintf(what, sizeof what, "example %llu (%s)", (unsigned long long)index,
             task_dates_format_name(s->format));
    iso_of(&s->date, iso);
    t_checks++;
    if (strcmp(s->tgt, iso) != 0 || !o_valid(s->date.year, s->date.month, s->date.day))
        t_fail(__FILE__, __LINE__, "%s: target '%s' for date %s", what, s->tgt, iso);
    check_source(s->src, &s->date, what);
    bool lower = false, upper = false;
    for (const char *p = s->src; *p; p++) {
        lower |= *p >= 'a' && *p <= 'z';
        upper |= *p >= 'A' && *p <= 'Z';
    }
    t_checks++;
    if ((s->variant % 4 == 2 && upper) || (s->variant % 4 == 3 && lower))
        t_fail(__FILE__, __LINE__, "%s: '%s' is not in the case of variant %llu", what, s->src,
               (unsigned long long)(s->variant % 4));
}

T_TEST(dates_examples_100k)
{
    enum { N = 100000 };
    int n_formats = task_dates_n_formats(), per_format[64] = {0}, leap_days = 0;
    int cases[4] = {0, 0, 0, 0};
    long bad_status = 0, not_again = 0, max_len = 0;
    for (uint64_t i = 0; i < N; i++) {
        task_dates_sample s, again;
        if (task_dates_example(SEED, i, TASK_DATES_ANY, &s) != ATTN_OK ||
            task_dates_example(SEED, i, TASK_DATES_ANY, &again) != ATTN_OK) {
            bad_status++;
            continue;
        }
        not_again += memcmp(&s, &again, sizeof s) != 0;
        check_example(&s, i);
        if (s.format >= 0 && s.format < n_formats) per_format[s.format]++;
        leap_days += s.date.month == 2 && s.date.day == 29;
        cases[s.variant % 4]++;
        if ((long)strlen(s.src) > max_len) max_len = (long)strlen(s.src);
    }
    T_EQ_INT(bad_status, 0);
    T_EQ_INT(not_again, 0);
    T_LE(max_len, TASK_DATES_SRC_MAX);
    for (int f = 0; f < n_formats; f++) {
        t_checks++;
        if (per_format[f] < N / n_formats / 3)
            t_fail(__FILE__, __LINE__, "format %s occurs %d times in %d examples",
                   task_dates_format_name(f), per_format[f], N);
    }
    T_LE(20, leap_days); /* expected 100000 * 49 / 73049 = 67 */
    for (int c = 0; c < 4; c++) T_LE(N / 8, cases[c]);

    /* The stream is a function of (seed, index): skipping ahead, another
     * seed, another split. */
    task_dates_sample a, b;
    int same_other_seed = 0;
    for (uint64_t i = 0; i < 100; i++) {
        task_dates_example(SEED, i, TASK_DATES_ANY, &a);
        task_dates_example(SEED + 1, i, TASK_DATES_ANY, &b);
        same_other_seed += strcmp(a.src, b.src) == 0;
    }
    T_LE(same_other_seed, 2);
    T_EQ_STATUS(task_dates_example(SEED, UINT64_MAX, TASK_DATES_TRAIN, &a), ATTN_OK);
    check_example(&a, UINT64_MAX);
}

/* One (date, format) pair in two variants that differ in the year wording
 * (the longest sources come from "two thousand ..."): a format that does not
 * fit must refuse and not be held out; one that fits must write a source
 * with one reading. Returns -1 (does not fit), else whether it is held out. */
static int check_pair(const task_date *d, int f, uint64_t variant)
{
    char src[TASK_DATES_SRC_MAX + 1];
    const char *name = task_dates_format_name(f);
    if (!task_dates_format_fits(d, f)) {
        T_EQ_STATUS(task_dates_format(d, f, variant, src, sizeof src), ATTN_UNSUPPORTED);
        T_CHECK(!task_dates_is_heldout(d, f));
        return -1;
    }
    for (uint64_t v = variant; v <= (variant | 4); v += 4) {
        attn_status st = task_dates_format(d, f, v, src, sizeof src);
        if (st == ATTN_OK)
            check_source(src, d, name);
        else
            T_EQ_STATUS(st, ATTN_OK);
    }
    return task_dates_is_heldout(d, f);
}

/* Every (date, format) pair of the task, the cases spread over them:
 * lengths, one reading, and the split's rule (two held out per date). */
T_TEST(dates_every_pair)
{
    int n_formats = task_dates_n_formats();
    long pairs = 0, held = 0, bad_dates = 0, held_per_format[64] = {0};
    for (int32_t n = 0; n < TASK_DATES_N_DAYS; n++) {
        task_date d;
        task_date_from_days(n, &d);
        int held_here = 0, train_here = 0;
        for (int f = 0; f < n_formats; f++) {
            int h = check_pair(&d, f, ((uint64_t)n * 7 + (uint64_t)f) & ~(uint64_t)4);
            if (h < 0) continue;
            pairs++;
            held += h;
            held_here += h;
            train_here += !h;
            held_per_format[f] += h;
        }
        bad_dates += held_here != 2 || train_here < 2;
    }
    T_EQ_INT(bad_dates, 0);
    double frac = (double)held / (double)pairs;
    T_LE(0.04, frac);
    T_LE(frac, 0.07);
    for (int f = 0; f < n_formats; f++) T_LE(500, held_per_format[f]);
}

T_TEST(dates_split_draws)
{
    enum { N_TRAIN = 100000, N_HELD = 20000 };
    int n_formats = task_dates_n_formats();
    size_t n_pairs = (size_t)TASK_DATES_N_DAYS * (size_t)n_formats;
    unsigned char *seen = calloc(n_pairs, 1); /* [days, formats]: drawn for training */
    T_CHECK(seen != NULL);
    if (seen == NULL) return;
    long wrong_train = 0, wrong_held = 0, shared = 0, held_formats = 0;
    int per_format[64] = {0};
    for (uint64_t i = 0; i < N_TRAIN; i++) {
        task_dates_sample s;
        task_dates_example(SEED, i, TASK_DATES_TRAIN, &s);
        wrong_train += task_dates_is_heldout(&s.date, s.format);
        seen[(size_t)task_date_to_days(&s.date) * (size_t)n_formats + (size_t)s.format] = 1;
        if (i < 1000) check_example(&s, i);
    }
    for (uint64_t i = 0; i < N_HELD; i++) {
        task_dates_sample s;
        task_dates_example(SEED, i, TASK_DATES_HELDOUT, &s);
        wrong_held += !task_dates_is_heldout(&s.date, s.format);
        shared += seen[(size_t)task_date_to_days(&s.date) * (size_t)n_formats + (size_t)s.format];
        per_format[s.format]++;
        if (i < 1000) check_example(&s, i);
    }
    for (int f = 0; f < n_formats; f++) held_formats += per_format[f] > 0;
    T_EQ_INT(wrong_train, 0);
    T_EQ_INT(wrong_held, 0);
    T_EQ_INT(shared, 0);
    T_EQ_INT(held_formats, n_formats);
    free(seen);

    /* Held-out pairs drawn by the ANY stream come at the predicate's rate. */
    long held_any = 0;
    for (uint64_t i = 0; i < 20000; i++) {
        task_dates_sample s;
        task_dates_example(SEED, i, TASK_DATES_ANY, &s);
        held_any += task_dates_is_heldout(&s.date, s.format);
    }
    T_LE(600, held_any); /* about 1150 */
    T_LE(held_any, 1700);
}

T_TEST(dates_print_examples)
{
    int n_formats = task_dates_n_formats(), shown[64] = {0}, done = 0;
    for (uint64_t i = 0; done < n_formats && i < 1000000; i++) {
        task_dates_sample s;
        T_EQ_STATUS(task_dates_example(SEED, i, TASK_DATES_ANY, &s), ATTN_OK);
        if (shown[s.format] == 3) continue;
        if (t_verbose)
            printf("  %-20s %-48s -> %s\n", task_dates_format_name(s.format), s.src, s.tgt);
        done += ++shown[s.format] == 3;
    }
    T_EQ_INT(done, n_formats);
}

/* ---- the character vocabulary ---------------------------------------------------- */

T_TEST(charvocab_ids_and_labels)
{
    T_EQ_INT(TASK_CHARVOCAB_SIZE, 99);
    for (int c = 0; c < 256; c++) {
        int32_t id = task_charvocab_id((unsigned char)c);
        if (c >= 32 && c <= 126) {
            T_EQ_INT(id, 4 + c - 32);
            const char *label = task_charvocab_label(id);
            T_CHECK(label[0] == (char)c && label[1] == '\0');
        } else {
            T_EQ_INT(id, TASK_CHAR_UNK);
        }
    }
    T_CHECK(strcmp(task_charvocab_label(0), "<pad>") == 0);
    T_CHECK(strcmp(task_charvocab_label(1), "<s>") == 0);
    T_CHECK(strcmp(task_charvocab_label(2), "</s>") == 0);
    T_CHECK(strcmp(task_charvocab_label(3), "<unk>") == 0);
    T_CHECK(strcmp(task_charvocab_label(-1), "<bad>") == 0);
    T_CHECK(strcmp(task_charvocab_label(99), "<bad>") == 0);
}

T_TEST(charvocab_round_trips)
{
    char all[96], back[128];
    int32_t ids[128];
    int64_t n = -1;
    size_t len = 0;
    for (int c = 32; c <= 126; c++) all[c - 32] = (char)c;
    all[95] = '\0';
    T_EQ_STATUS(task_charvocab_encode(all, ids, 128, &n), ATTN_OK);
    T_EQ_INT(n, 95);
    T_EQ_STATUS(task_charvocab_decode(ids, n, back, sizeof back, &len), ATTN_OK);
    T_EQ_INT(len, 95);
    T_CHECK(strcmp(back, all) == 0);
    long mismatches = 0;
    for (uint64_t i = 0; i < 2000; i++) { /* sources and targets, framed by BOS/EOS */
        task_dates_sample s;
        task_dates_example(SEED, i, TASK_DATES_ANY, &s);
        int64_t ns = 0, nt = 0;
        ids[0] = TASK_CHAR_BOS;
        task_charvocab_encode(s.src, ids + 1, 100, &ns);
        ids[1 + ns] = TASK_CHAR_EOS;
        ids[2 + ns] = 'x'; /* after EOS: ignored */
        task_charvocab_decode(ids, 3 + ns, back, sizeof back, NULL);
        mismatches += strcmp(back, s.src) != 0;
        task_charvocab_encode(s.tgt, ids, 128, &nt);
        task_charvocab_decode(ids, nt, back, sizeof back, NULL);
        mismatches += strcmp(back, s.tgt) != 0 || nt != 10;
    }
    T_EQ_INT(mismatches, 0);

    /* unknown bytes, PAD and BOS skipped, UNK as '?' */
    T_EQ_STATUS(task_charvocab_encode("a\tb\x80", ids, 4, &n), ATTN_OK);
    T_CHECK(n == 4 && ids[1] == TASK_CHAR_UNK && ids[3] == TASK_CHAR_UNK);
    int32_t mixed[6] = {TASK_CHAR_PAD, TASK_CHAR_BOS, task_charvocab_id('z'), TASK_CHAR_UNK,
                        TASK_CHAR_PAD, task_charvocab_id('9')};
    T_EQ_STATUS(task_charvocab_decode(mixed, 6, back, sizeof back, &len), ATTN_OK);
    T_CHECK(strcmp(back, "z?9") == 0 && len == 3);
    T_EQ_STATUS(task_charvocab_decode(NULL, 0, back, 1, &len), ATTN_OK);
    T_CHECK(back[0] == '\0' && len == 0);
}

T_TEST(charvocab_args)
{
    int32_t ids[4] = {-7, -7, -7, -7};
    int64_t n = -1;
    char out[8] = "keep";
    T_EQ_STATUS(task_charvocab_encode("hello", NULL, 0, &n), ATTN_OK); /* size query */
    T_EQ_INT(n, 5);
    T_EQ_STATUS(task_charvocab_encode("hello", ids, 4, &n), ATTN_BAD_PARAM);
    T_CHECK(ids[0] == -7 && ids[3] == -7);
    T_EQ_STATUS(task_charvocab_encode("hello", ids, -1, &n), ATTN_BAD_DIM);
    T_EQ_STATUS(task_charvocab_encode(NULL, ids, 4, &n), ATTN_NULL_ARG);
    T_EQ_STATUS(task_charvocab_encode("hi", ids, 4, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(task_charvocab_encode("hi", NULL, 4, &n), ATTN_NULL_ARG);

    int32_t good[3] = {task_charvocab_id('a'), task_charvocab_id('b'), TASK_CHAR_EOS};
    int32_t bad[3] = {task_charvocab_id('a'), 99, TASK_CHAR_EOS};
    int32_t bad_after_eos[3] = {task_charvocab_id('a'), TASK_CHAR_EOS, -5};
    T_EQ_STATUS(task_charvocab_decode(bad, 3, out, sizeof out, NULL), ATTN_BAD_PARAM);
    bad[1] = -1;
    T_EQ_STATUS(task_charvocab_decode(bad, 3, out, sizeof out, NULL), ATTN_BAD_PARAM);
    T_EQ_STATUS(task_charvocab_decode(good, 3, out, 2, NULL), ATTN_BAD_PARAM); /* needs 3 */
    T_EQ_STATUS(task_charvocab_decode(good, -1, out, sizeof out, NULL), ATTN_BAD_DIM);
    T_EQ_STATUS(task_charvocab_decode(NULL, 3, out, sizeof out, NULL), ATTN_NULL_ARG);
    T_EQ_STATUS(task_charvocab_decode(good, 3, NULL, sizeof out, NULL), ATTN_NULL_ARG);
    T_CHECK(strcmp(out, "keep") == 0);
    T_EQ_STATUS(task_charvocab_decode(good, 3, out, 3, NULL), ATTN_OK);
    T_CHECK(strcmp(out, "ab") == 0);
    T_EQ_STATUS(task_charvocab_decode(bad_after_eos, 3, out, sizeof out, NULL), ATTN_OK);
    T_CHECK(strcmp(out, "a") == 0);
}
