/* dates.c - the dates -> ISO 8601 task (dates.h): the calendar, the format
 * table with its small pattern language, the variant (case, year wording),
 * the fixed held-out split and the counter-based example stream. */
#include "dates.h"

#include <string.h>

/* ---- calendar ------------------------------------------------------------- */

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Leap years in 1 .. y-1. */
static int32_t leaps_before(int y)
{
    return (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400;
}

static int32_t days_before_year(int y)
{
    return 365 * (int32_t)(y - TASK_DATES_MIN_YEAR) + leaps_before(y) -
           leaps_before(TASK_DATES_MIN_YEAR);
}

bool task_date_valid(const task_date *d)
{
    return d != NULL && d->year >= TASK_DATES_MIN_YEAR && d->year <= TASK_DATES_MAX_YEAR &&
           d->month >= 1 && d->month <= 12 && d->day >= 1 &&
           d->day <= days_in_month(d->year, d->month);
}

int32_t task_date_to_days(const task_date *d)
{
    if (!task_date_valid(d)) return -1;
    int32_t n = days_before_year(d->year);
    for (int m = 1; m < d->month; m++) n += days_in_month(d->year, m);
    return n + d->day - 1;
}

attn_status task_date_from_days(int32_t days, task_date *d)
{
    if (d == NULL) return attn_fail(ATTN_NULL_ARG, "task_date_from_days: argument 'd' is NULL");
    if (days < 0 || days >= TASK_DATES_N_DAYS)
        return attn_fail(ATTN_BAD_PARAM,
                         "task_date_from_days: argument 'days' is %ld; it must be in [0, %d)",
                         (long)days, TASK_DATES_N_DAYS);
    /* days / 365 overshoots the year by at most one per 365 leap days. */
    int y = TASK_DATES_MIN_YEAR + days / 365;
    while (days_before_year(y) > days) y--;
    int32_t left = days - days_before_year(y);
    int m = 1;
    while (left >= days_in_month(y, m)) left -= days_in_month(y, m++);
    d->year = y;
    d->month = m;
    d->day = (int)left + 1;
    return ATTN_OK;
}

int task_date_weekday(const task_date *d)
{
    int32_t n = task_date_to_days(d);
    return n < 0 ? -1 : (int)(n % 7); /* 1900-01-01 was a Monday (0) */
}

attn_status task_date_iso(const task_date *d, char *iso)
{
    if (d == NULL) return attn_fail(ATTN_NULL_ARG, "task_date_iso: argument 'd' is NULL");
    if (iso == NULL) return attn_fail(ATTN_NULL_ARG, "task_date_iso: argument 'iso' is NULL");
    if (!task_date_valid(d))
        return attn_fail(ATTN_BAD_PARAM,
                         "task_date_iso: argument 'd' (%d-%d-%d) is not a date in %d..%d",
                         d->year, d->month, d->day, TASK_DATES_MIN_YEAR, TASK_DATES_MAX_YEAR);
    int v[8] = {d->year / 1000, d->year / 100 % 10, d->year / 10 % 10, d->year % 10,
                d->month / 10,  d->month % 10,      d->day / 10,       d->day % 10};
    static const int at[8] = {0, 1, 2, 3, 5, 6, 8, 9};
    for (int i = 0; i < 8; i++) iso[at[i]] = (char)('0' + v[i]);
    iso[4] = iso[7] = '-';
    iso[10] = '\0';
    return ATTN_OK;
}

attn_status task_date_parse_iso(const char *s, task_date *d)
{
    if (s == NULL) return attn_fail(ATTN_NULL_ARG, "task_date_parse_iso: argument 's' is NULL");
    if (d == NULL) return attn_fail(ATTN_NULL_ARG, "task_date_parse_iso: argument 'd' is NULL");
    int v[3] = {0, 0, 0};
    for (int i = 0; i < TASK_DATES_TGT_LEN; i++) {
        bool dash = i == 4 || i == 7;
        if (dash ? s[i] != '-' : !(s[i] >= '0' && s[i] <= '9'))
            return attn_fail(ATTN_BAD_PARAM,
                             "task_date_parse_iso: argument 's' is not YYYY-MM-DD at character %d",
                             i);
        int *field = &v[i < 4 ? 0 : i < 7 ? 1 : 2];
        if (!dash) *field = *field * 10 + (s[i] - '0');
    }
    task_date r = {v[0], v[1], v[2]};
    if (s[TASK_DATES_TGT_LEN] != '\0' || !task_date_valid(&r))
        return attn_fail(ATTN_BAD_PARAM,
                         "task_date_parse_iso: argument 's' is not one date in %d..%d as YYYY-MM-DD",
                         TASK_DATES_MIN_YEAR, TASK_DATES_MAX_YEAR);
    *d = r;
    return ATTN_OK;
}

/* ---- words ------------------------------------------------------------------ */

static const char *const month_names[12] = {"January", "February", "March",     "April",
                                            "May",     "June",     "July",      "August",
                                            "September", "October", "November", "December"};
static const char *const weekday_names[7] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                             "Friday", "Saturday", "Sunday"};
static const char *const small_cardinals[20] = {
    "",        "one",     "two",       "three",    "four",     "five",    "six",
    "seven",   "eight",   "nine",      "ten",      "eleven",   "twelve",  "thirteen",
    "fourteen", "fifteen", "sixteen",  "seventeen", "eighteen", "nineteen"};
static const char *const small_ordinals[20] = {
    "",            "first",      "second",     "third",       "fourth",
    "fifth",       "sixth",      "seventh",    "eighth",      "ninth",
    "tenth",       "eleventh",   "twelfth",    "thirteenth",  "fourteenth",
    "fifteenth",   "sixteenth",  "seventeenth", "eighteenth", "nineteenth"};
static const char *const tens_cardinals[10] = {"",      "",      "twenty",  "thirty", "forty",
                                               "fifty", "sixty", "seventy", "eighty", "ninety"};
static const char *const tens_ordinals[4] = {"", "", "twentieth", "thirtieth"};

/* ---- the writer: a bounded string under construction ------------------------ */

typedef struct {
    char s[96];
    size_t n;
    bool full; /* something did not fit */
} writer;

static void put_char(writer *w, char c)
{
    if (w->n + 1 < sizeof w->s) {
        w->s[w->n++] = c;
        w->s[w->n] = '\0';
    } else {
        w->full = true;
    }
}

static void put_str(writer *w, const char *s)
{
    while (*s) put_char(w, *s++);
}

static void put_prefix(writer *w, const char *s, int len)
{
    for (int i = 0; i < len && s[i]; i++) put_char(w, s[i]);
}

/* n >= 0 in decimal, zero-padded to at least width digits. */
static void put_num(writer *w, int n, int width)
{
    char digits[12];
    int k = 0;
    do {
        digits[k++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    while (k < width) digits[k++] = '0';
    while (k > 0) put_char(w, digits[--k]);
}

/* 1..99 in words: "seven", "nineteen", "forty", "twenty-four". */
static void put_cardinal(writer *w, int n)
{
    if (n < 20) {
        put_str(w, small_cardinals[n]);
        return;
    }
    put_str(w, tens_cardinals[n / 10]);
    if (n % 10 != 0) {
        put_char(w, '-');
        put_str(w, small_cardinals[n % 10]);
    }
}

/* 1..31 in ordinal words: "first", "twentieth", "twenty-first". */
static void put_ordinal_words(writer *w, int n)
{
    if (n < 20) {
        put_str(w, small_ordinals[n]);
    } else if (n % 10 == 0) {
        put_str(w, tens_ordinals[n / 10]);
    } else {
        put_str(w, tens_cardinals[n / 10]);
        put_char(w, '-');
        put_str(w, small_ordinals[n % 10]);
    }
}

/* "1st", "2nd", "3rd", "11th", "22nd". */
static void put_ordinal(writer *w, int n)
{
    static const char *const suffix[4] = {"th", "st", "nd", "rd"};
    int last = n % 10, teen = n % 100 >= 11 && n % 100 <= 13;
    put_num(w, n, 1);
    put_str(w, suffix[!teen && last >= 1 && last <= 3 ? last : 0]);
}

/* The year in words (the rule in dates.h); two_thousand picks "two thousand
 * twenty-four" over "twenty twenty-four" for 2010..2099. */
static void put_year_words(writer *w, int y, bool two_thousand)
{
    int lo = y % 100;
    if (y < 2000) {
        put_str(w, "nineteen ");
        if (lo == 0) put_str(w, "hundred");
        if (lo > 0 && lo < 10) put_str(w, "oh ");
        if (lo > 0) put_cardinal(w, lo);
        return;
    }
    put_str(w, lo >= 10 && !two_thousand ? "twenty " : "two thousand");
    if (lo > 0 && (lo < 10 || two_thousand)) put_char(w, ' ');
    if (lo > 0) put_cardinal(w, lo);
}

/* ---- formats ------------------------------------------------------------------ */

/* Pattern language: %Y year, %y two-digit year, %m / %n month with / without
 * a leading zero, %d / %e day with / without, %B "March", %b "Mar", %p
 * "Mar." ("May" keeps no dot), %A "Sunday", %a "Sun", %o "17th", %O
 * "seventeenth", %S the year in words; other characters are copied. */
typedef struct {
    const char *name;
    const char *pattern;
} date_format;

static const date_format formats[] = {
    {"iso", "%Y-%m-%d"},                        /* 2024-03-17 */
    {"ymd_dash_nopad", "%Y-%n-%e"},             /* 2024-3-17 */
    {"ymd_slash", "%Y/%m/%d"},                  /* 2024/03/17 */
    {"ymd_dot", "%Y.%m.%d"},                    /* 2024.03.17 */
    {"ymd_space", "%Y %m %d"},                  /* 2024 03 17 */
    {"ymd_compact", "%Y%m%d"},                  /* 20240317 */
    {"mdy_slash", "%m/%d/%Y"},                  /* 03/17/2024 */
    {"mdy_slash_nopad", "%n/%e/%Y"},            /* 3/17/2024 */
    {"mdy_slash_yy", "%m/%d/%y"},               /* 03/17/24 */
    {"mdy_slash_nopad_yy", "%n/%e/%y"},         /* 3/17/24 */
    {"dmy_dot", "%d.%m.%Y"},                    /* 17.03.2024 */
    {"dmy_dot_nopad", "%e.%n.%Y"},              /* 17.3.2024 */
    {"dmy_dot_yy", "%d.%m.%y"},                 /* 17.03.24 */
    {"dmy_dash", "%d-%m-%Y"},                   /* 17-03-2024 */
    {"mdy_full", "%B %e, %Y"},                  /* March 17, 2024 */
    {"dmy_full", "%e %B %Y"},                   /* 17 March 2024 */
    {"mdy_abbr", "%b %e, %Y"},                  /* Mar 17, 2024 */
    {"mdy_abbr_dot", "%p %e, %Y"},              /* Mar. 17, 2024 */
    {"dmy_abbr", "%e %b %Y"},                   /* 17 Mar 2024 */
    {"dmy_abbr_dash", "%d-%b-%Y"},              /* 17-Mar-2024 */
    {"dmy_abbr_dash_yy", "%d-%b-%y"},           /* 17-Mar-24 */
    {"mdy_abbr_apos", "%b %e '%y"},             /* Mar 17 '24 */
    {"ymd_abbr", "%Y %b %d"},                   /* 2024 Mar 17 */
    {"wd_mdy_full", "%A, %B %e, %Y"},           /* Sunday, March 17, 2024 */
    {"wd_dmy_abbr", "%a %e %b %Y"},             /* Sun 17 Mar 2024 */
    {"wd_rfc", "%a, %d %b %Y"},                 /* Sun, 17 Mar 2024 */
    {"wd_dmy_full", "%A %e %B %Y"},             /* Sunday 17 March 2024 */
    {"mdy_ord", "%B %o, %Y"},                   /* March 17th, 2024 */
    {"dmy_ord", "%o %B %Y"},                    /* 17th March 2024 */
    {"the_ord_of", "the %o of %B %Y"},          /* the 3rd of May 2021 */
    {"wd_the_ord_of", "%A the %o of %B, %Y"},   /* Sunday the 17th of March, 2024 */
    {"spelled_of", "%O of %B %Y"},              /* seventeenth of March 2024 */
    {"mdy_spelled", "%B %O, %Y"},               /* March seventeenth, 2024 */
    {"the_spelled_of", "the %O of %B, %Y"},     /* the twenty-first of June, 1999 */
    {"mdy_year_words", "%B %e, %S"},            /* March 17, twenty twenty-four */
    {"dmy_year_words", "%e %B %S"},             /* 17 March nineteen ninety-nine */
    {"the_ord_year_words", "the %o of %b, %S"}, /* the 3rd of May, two thousand four */
    {"spelled_all", "%O of %b %S"},             /* first of Jan nineteen hundred */
};

enum { N_FORMATS = (int)(sizeof formats / sizeof formats[0]) };

int task_dates_n_formats(void)
{
    return N_FORMATS;
}

const char *task_dates_format_name(int format)
{
    return format >= 0 && format < N_FORMATS ? formats[format].name : "unknown";
}

int task_dates_format_find(const char *name)
{
    for (int f = 0; name != NULL && f < N_FORMATS; f++)
        if (strcmp(formats[f].name, name) == 0) return f;
    return -1;
}

/* Whether a valid format can write a year: only 1950..2049 with a
 * two-digit year (the rule of dates.h). */
static bool fits_year(int format, int year)
{
    return (year >= 1950 && year <= 2049) || strstr(formats[format].pattern, "%y") == NULL;
}

bool task_dates_format_fits(const task_date *d, int format)
{
    return task_date_valid(d) && format >= 0 && format < N_FORMATS && fits_year(format, d->year);
}

/* One pattern code of the pattern language for date d. */
static void put_code(writer *w, char code, const task_date *d, bool two_thousand)
{
    const char *month = month_names[d->month - 1];
    const char *weekday = weekday_names[task_date_weekday(d)];
    switch (code) {
    case 'Y': put_num(w, d->year, 4); break;
    case 'y': put_num(w, d->year % 100, 2); break;
    case 'm': put_num(w, d->month, 2); break;
    case 'n': put_num(w, d->month, 1); break;
    case 'd': put_num(w, d->day, 2); break;
    case 'e': put_num(w, d->day, 1); break;
    case 'B': put_str(w, month); break;
    case 'b': put_prefix(w, month, 3); break;
    case 'p':
        put_prefix(w, month, 3);
        if (d->month != 5) put_char(w, '.');
        break;
    case 'A': put_str(w, weekday); break;
    case 'a': put_prefix(w, weekday, 3); break;
    case 'o': put_ordinal(w, d->day); break;
    case 'O': put_ordinal_words(w, d->day); break;
    case 'S': put_year_words(w, d->year, two_thousand); break;
    default: put_char(w, code); break;
    }
}

/* The variant's case: 0, 1 Title (as written), 2 lower, 3 UPPER. */
static void apply_case(writer *w, uint64_t variant)
{
    for (size_t i = 0; i < w->n; i++) {
        char c = w->s[i];
        if (variant % 4 == 2 && c >= 'A' && c <= 'Z') w->s[i] = (char)(c - 'A' + 'a');
        if (variant % 4 == 3 && c >= 'a' && c <= 'z') w->s[i] = (char)(c - 'a' + 'A');
    }
}

attn_status task_dates_format(const task_date *d, int format, uint64_t variant, char *src,
                              size_t cap)
{
    if (d == NULL) return attn_fail(ATTN_NULL_ARG, "task_dates_format: argument 'd' is NULL");
    if (src == NULL) return attn_fail(ATTN_NULL_ARG, "task_dates_format: argument 'src' is NULL");
    if (!task_date_valid(d))
        return attn_fail(ATTN_BAD_PARAM,
                         "task_dates_format: argument 'd' (%d-%d-%d) is not a date in %d..%d",
                         d->year, d->month, d->day, TASK_DATES_MIN_YEAR, TASK_DATES_MAX_YEAR);
    if (format < 0 || format >= N_FORMATS)
        return attn_fail(ATTN_BAD_PARAM,
                         "task_dates_format: argument 'format' is %d; it must be in [0, %d)",
                         format, N_FORMATS);
    if (!task_dates_format_fits(d, format))
        return attn_fail(ATTN_UNSUPPORTED,
                         "task_dates_format: format '%s' (two-digit year) cannot write year %d; "
                         "it needs 1950..2049",
                         formats[format].name, d->year);
    writer w = {{0}, 0, false};
    for (const char *p = formats[format].pattern; *p; p++) {
        if (*p == '%' && p[1] != '\0')
            put_code(&w, *++p, d, (variant / 4) % 2 == 1);
        else
            put_char(&w, *p);
    }
    apply_case(&w, variant);
    if (w.full || w.n + 1 > cap)
        return attn_fail(ATTN_BAD_PARAM,
                         "task_dates_format: argument 'cap' is %zu; this source needs %zu bytes",
                         cap, w.n + 1);
    memcpy(src, w.s, w.n + 1);
    return ATTN_OK;
}

/* ---- the split and the example stream ---------------------------------------- */

/* splitmix64's output function of z + its increment: a bijection of 64 bits. */
static uint64_t mix64(uint64_t z)
{
    z += 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* The formats of split that fit the valid date d, in id order, into
 * list [N_FORMATS]; returns their count (never 0: see the SPLIT rule). For
 * each date, the fitting formats at positions r and r + count/2 (mod count)
 * are held out, r from a fixed hash of the day number. */
static int formats_in_split(const task_date *d, task_dates_split split, int *list)
{
    int fit[N_FORMATS], n_fit = 0, n = 0;
    for (int f = 0; f < N_FORMATS; f++)
        if (fits_year(f, d->year)) fit[n_fit++] = f;
    uint64_t h = mix64((uint64_t)task_date_to_days(d) ^ 0x5DA7E5EEDull);
    int r1 = (int)(h % (uint64_t)n_fit), r2 = (r1 + n_fit / 2) % n_fit;
    for (int i = 0; i < n_fit; i++) {
        bool held = i == r1 || i == r2;
        if (split == TASK_DATES_ANY || held == (split == TASK_DATES_HELDOUT)) list[n++] = fit[i];
    }
    return n;
}

bool task_dates_is_heldout(const task_date *d, int format)
{
    int list[N_FORMATS];
    if (!task_dates_format_fits(d, format)) return false;
    int n = formats_in_split(d, TASK_DATES_HELDOUT, list);
    for (int i = 0; i < n; i++)
        if (list[i] == format) return true;
    return false;
}

attn_status task_dates_example(uint64_t seed, uint64_t index, task_dates_split split,
                               task_dates_sample *out)
{
    if (out == NULL) return attn_fail(ATTN_NULL_ARG, "task_dates_example: argument 'out' is NULL");
    if (split != TASK_DATES_ANY && split != TASK_DATES_TRAIN && split != TASK_DATES_HELDOUT)
        return attn_fail(ATTN_BAD_PARAM,
                         "task_dates_example: argument 'split' is %d; it must be 0, 1 or 2",
                         (int)split);
    /* Counter-based: the stream key from (seed, split), then three draws
     * from (key, index). Modulo bias of a 64-bit draw is below 1e-14. */
    uint64_t key = mix64(mix64(seed) ^ ((uint64_t)split * 0xD1B54A32D192ED03ull));
    uint64_t h = mix64(key ^ (index * 0xA24BAED4963EE407ull));
    task_dates_sample s;
    attn_status st = task_date_from_days((int32_t)(mix64(h) % TASK_DATES_N_DAYS), &s.date);
    if (st != ATTN_OK) return st;
    int list[N_FORMATS];
    int n = formats_in_split(&s.date, split, list);
    s.format = list[mix64(h + 0x9E3779B97F4A7C15ull) % (uint64_t)n];
    s.variant = mix64(h + 2 * 0x9E3779B97F4A7C15ull);
    st = task_dates_format(&s.date, s.format, s.variant, s.src, sizeof s.src);
    if (st == ATTN_OK) st = task_date_iso(&s.date, s.tgt);
    if (st != ATTN_OK) return st;
    *out = s;
    return ATTN_OK;
}
