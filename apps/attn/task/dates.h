/* dates.h - the built-in translation task of `attn`: dates as people write
 * them ("Sun 17 Mar 2024", "the twenty-first of June, 1999", "3/17/24")
 * -> ISO 8601 ("2024-03-17"). No downloads: every example is generated, and
 * each one is a pure function of (seed, index, split), so any example can be
 * regenerated and a training stream resumed bit-exactly.
 *
 * Dates: 1900-01-01 .. 2099-12-31 (73049 days, Gregorian leap years: 1900 is
 * not one, 2000 is), drawn uniformly. The format is then drawn uniformly
 * among the formats that can write the date, and a variant picks the letter
 * case and the wording of spelled-out years.
 *
 * READING RULE. Every source has exactly one reading under these rules (the
 * test parses every source back with its own parser that knows only them):
 *
 *   source                                   reading
 *   ---------------------------------------  ---------------------------------
 *   8 digits, no separator                   YYYYMMDD           20240317
 *   3 numbers, the first of 4 digits         Y M D, separator   2024-03-17
 *                                            '-', '/', '.', ' ' 2024/3/17
 *   3 numbers, the last of 4 or 2 digits,
 *     separated by '/'                       M/D/Y (US)         03/17/2024
 *     separated by '.' or '-'                D.M.Y, D-M-Y       17.03.24
 *   a month name (full "March", 3 letters    the month is the word; the year
 *     "Mar", or "Mar."; May has no dot)      is the 4-digit number, or the
 *                                            '-prefixed 2 digits ('24), or
 *                                            the year in words, or else the
 *                                            second of two 1-2 digit numbers
 *                                            (17-Mar-24); the day is the other
 *                                            number (17, 17th) or an ordinal
 *                                            word (seventeenth, twenty-first)
 *   a weekday name (Sunday, Sun)             agrees with the date; adds nothing
 *   "the", "of", ',', '.'                    add nothing
 *
 *   Two-digit years: 00-49 -> 2000-2049, 50-99 -> 1950-1999. They are never
 *   first, and only dates in 1950..2049 are written with them (the formats
 *   that use them do not fit other dates: task_dates_format_fits).
 *   Years in words: 1900 "nineteen hundred", 1901-1909 "nineteen oh five",
 *   1910-1999 "nineteen ninety-nine", 2000 "two thousand", 2001-2009 "two
 *   thousand four", 2010-2099 "twenty twenty-four" or "two thousand
 *   twenty-four" (by the variant).
 *
 * VARIANT (a uint64_t; only these bits matter): variant % 4 is the case of
 * the letters: 0, 1 Title ("March", "the 3rd of May"), 2 lower, 3 UPPER
 * ("THE 3RD OF MAY"); (variant / 4) % 2 picks "two thousand twenty-four"
 * (1) over "twenty twenty-four" (0) for 2010-2099.
 *
 * SPLIT. For every date, exactly two of the formats that fit it are held out
 * (chosen by a fixed hash of the date, the same for every seed): 2 of 38
 * formats for 1950..2049 and 2 of 33 otherwise, about 5.6% of the (date,
 * format) pairs. Training draws never produce a held-out pair, held-out
 * draws produce only held-out pairs, and every date and format occurs in
 * both. The split ignores the variant.
 */
#ifndef TASK_DATES_H
#define TASK_DATES_H

#include <attn/attn.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TASK_DATES_MIN_YEAR 1900
#define TASK_DATES_MAX_YEAR 2099
#define TASK_DATES_N_DAYS 73049 /* days in 1900-01-01 .. 2099-12-31 */
#define TASK_DATES_SRC_MAX 48   /* longest source, in characters */
#define TASK_DATES_TGT_LEN 10   /* "YYYY-MM-DD" */

typedef struct task_date {
    int year, month, day; /* month 1..12, day 1..31 */
} task_date;

/* ---- calendar ------------------------------------------------------------- */

/* True if d is not NULL and a real day in 1900-01-01 .. 2099-12-31. */
bool task_date_valid(const task_date *d);
/* Days since 1900-01-01 (0 .. TASK_DATES_N_DAYS-1), or -1 if not valid. */
int32_t task_date_to_days(const task_date *d);
/* The date of day number days (0 = 1900-01-01). */
attn_status task_date_from_days(int32_t days, task_date *d);
/* 0 = Monday .. 6 = Sunday, or -1 if d is not valid. */
int task_date_weekday(const task_date *d);
/* "YYYY-MM-DD" and its NUL into iso[TASK_DATES_TGT_LEN + 1]. */
attn_status task_date_iso(const task_date *d, char *iso);
/* Reads exactly "YYYY-MM-DD" (a valid date in range; nothing else around it). */
attn_status task_date_parse_iso(const char *s, task_date *d);

/* ---- formats -------------------------------------------------------------- */

/* Format ids are 0 .. task_dates_n_formats()-1; 0 is "iso" itself. */
int task_dates_n_formats(void);
/* Short name ("mdy_slash", "the_spelled_of"), or "unknown" if out of range. */
const char *task_dates_format_name(int format);
/* The id of a format name, or -1. */
int task_dates_format_find(const char *name);
/* Whether format can write d (two-digit-year formats: 1950..2049 only). */
bool task_dates_format_fits(const task_date *d, int format);
/* Writes d in format with the case and wording of variant (see VARIANT) and
 * a NUL into src [cap]; at most TASK_DATES_SRC_MAX characters.
 * ATTN_NULL_ARG, ATTN_BAD_PARAM (invalid d, format out of range, cap too
 * small for this source), ATTN_UNSUPPORTED (the format does not fit d). */
attn_status task_dates_format(const task_date *d, int format, uint64_t variant,
                              char *src, size_t cap);

/* ---- examples and the split ------------------------------------------------ */

/* True if (d, format) is in the held-out set (false for invalid arguments
 * and for formats that do not fit d). */
bool task_dates_is_heldout(const task_date *d, int format);

typedef enum task_dates_split {
    TASK_DATES_ANY = 0,     /* any fitting (date, format) pair */
    TASK_DATES_TRAIN = 1,   /* pairs outside the held-out set */
    TASK_DATES_HELDOUT = 2  /* pairs inside it */
} task_dates_split;

typedef struct task_dates_sample {
    char src[TASK_DATES_SRC_MAX + 1]; /* the date as a person wrote it */
    char tgt[TASK_DATES_TGT_LEN + 1]; /* "YYYY-MM-DD" */
    task_date date;
    int format;
    uint64_t variant;
} task_dates_sample;

/* Example number index of the stream (seed, split): a pure function of its
 * arguments (counter-based splitmix64, no state), so example i can be made
 * without making 0..i-1. Different splits are different streams.
 * ATTN_NULL_ARG, ATTN_BAD_PARAM (split). */
attn_status task_dates_example(uint64_t seed, uint64_t index, task_dates_split split,
                               task_dates_sample *out);

#ifdef __cplusplus
}
#endif

#endif /* TASK_DATES_H */
