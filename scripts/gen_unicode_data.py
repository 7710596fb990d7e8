#!/usr/bin/env python3
"""gen_unicode_data.py - writes src/text/unicode_data.c, the Unicode tables of
the tokenizers: WordPiece (src/text/wordpiece.c) and the byte-level BPE
(src/text/bpe.c). Run by hand from the repo root:

    python3 scripts/gen_unicode_data.py          # rewrites src/text/unicode_data.c

The output is deterministic and committed; the build never runs this.

What the tables must reproduce is not one Unicode version. The reference is
the Rust `tokenizers` BertNormalizer + BertPreTokenizer (what
sentence-transformers runs for all-MiniLM-L6-v2), and it mixes three:

  * General_Category (control/format/private-use removal, Mn stripping,
    punctuation) comes from the crate unicode_categories 0.1.1 (2016):
    Unicode 8.0.0. Its tables list UnicodeData.txt lines, so unassigned code
    points are never "other" and are kept (only private use has ranges).
  * NFD and the canonical combining classes come from
    unicode-normalization-alignments 0.1.12: Unicode 9.0.0.
  * Lowercase (char::to_lowercase, per character, no final-sigma context)
    and White_Space (char::is_whitespace) come from the Rust standard
    library of the compiler that built the wheel (rustc 1.99): Unicode 17.0.

Python 3.11's unicodedata is Unicode 14.0.0. The older versions are derived
from it with the Age property (Perl's Unicode::UCD, also 14.0.0, is the only
Age source on a stock Debian): a code point counts as assigned in version V
if its Age <= V. Canonical decompositions and combining classes never change
once assigned (Unicode stability policy), so 9.0 NFD = 14.0 NFD restricted to
Age <= 9.0. General categories can change; the few changes between 8.0 and
14.0 that touch the predicates used here are listed in GC_8_0 below. The
lowercase mappings added after 14.0 are listed in LOWER_AFTER_14.
python/tests/test_tokenizer.py checks every code point against the reference.

The byte-level BPE's reference is the Rust `tokenizers` Digits and ByteLevel
pre-tokenizers (SmolLM2's tokenizer.json), again with two versions:

  * the GPT-2 regex (\p{L}, \p{N}, \s) runs in the regex engine Oniguruma,
    whose tables in tokenizers 0.23 are Unicode 16.0: the categories L and N
    of 14.0 plus the code points 15.0 and 16.0 assigned to them, listed in
    L_AFTER_14 and N_AFTER_14 (no assigned code point changed between L, N
    and the rest). Its \s is White_Space, the same table as above.
  * the digit split uses char::is_numeric of the Rust standard library
    (categories Nd, Nl, No; Unicode 17.0): N of 16.0 plus NUMERIC_IN_17.
python/tests/test_bpe.py checks every code point against the reference.
"""
import bisect
import os
import textwrap
import subprocess
import sys
import unicodedata

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "text",
                   "unicode_data.c")

# Categories in Unicode 8.0.0 of the code points whose category changed by
# 14.0.0 in a way that matters here (Cc/Cf/Co, Mn, P*).
GC_8_0 = {
    0x1734: "Mn",   # HANUNOO SIGN PAMUDPOD: Mc since 14.0
    0x1885: "Lo",   # MONGOLIAN LETTER ALI GALI BALUDA: Mn since 9.0
    0x1886: "Lo",   # MONGOLIAN LETTER ALI GALI THREE BALUDA: Mn since 9.0
    0x166D: "Po",   # CANADIAN SYLLABICS CHI SIGN: So since 12.0
    0xA9BD: "Mc",   # JAVANESE CONSONANT SIGN KERET: Mn since 12.0
    0x111C9: "Po",  # SHARADA SANDHI MARK: Mn since 11.0
}

# Simple lowercase mappings of letters added in Unicode 15.0-17.0 (none in
# 15.x): Cyrillic TJE, Latin additions, Garay, Beria Erfe.
LOWER_AFTER_14 = {0x1C89: 0x1C8A, 0xA7CB: 0x0264, 0xA7CC: 0xA7CD, 0xA7CE: 0xA7CF,
                  0xA7D2: 0xA7D3, 0xA7D4: 0xA7D5, 0xA7DA: 0xA7DB, 0xA7DC: 0x019B}
LOWER_AFTER_14.update({c: c + 0x20 for c in range(0x10D50, 0x10D66)})
LOWER_AFTER_14.update({c: c + 0x1B for c in range(0x16EA0, 0x16EB9)})

# Code points assigned in Unicode 15.0-16.0 with a category L* / N* ([lo, hi]).
L_AFTER_14 = [
    (0x1C89, 0x1C8A), (0xA7CB, 0xA7CD), (0xA7DA, 0xA7DC), (0x105C0, 0x105F3),
    (0x10D4A, 0x10D65), (0x10D6F, 0x10D85), (0x10EC2, 0x10EC4), (0x1123F, 0x11240),
    (0x11380, 0x11389), (0x1138B, 0x1138B), (0x1138E, 0x1138E), (0x11390, 0x113B5),
    (0x113B7, 0x113B7), (0x113D1, 0x113D1), (0x113D3, 0x113D3), (0x11BC0, 0x11BE0),
    (0x11F02, 0x11F02), (0x11F04, 0x11F10), (0x11F12, 0x11F33), (0x1342F, 0x1342F),
    (0x13441, 0x13446), (0x13460, 0x143FA), (0x16100, 0x1611D), (0x16D40, 0x16D6C),
    (0x18CFF, 0x18CFF), (0x1B132, 0x1B132), (0x1B155, 0x1B155), (0x1DF25, 0x1DF2A),
    (0x1E030, 0x1E06D), (0x1E4D0, 0x1E4EB), (0x1E5D0, 0x1E5ED), (0x1E5F0, 0x1E5F0),
    (0x2B739, 0x2B739), (0x2EBF0, 0x2EE5D), (0x31350, 0x323AF),
]
N_AFTER_14 = [
    (0x10D40, 0x10D49), (0x116D0, 0x116E3), (0x11BF0, 0x11BF9), (0x11F50, 0x11F59),
    (0x16130, 0x16139), (0x16D70, 0x16D79), (0x1CCF0, 0x1CCF9), (0x1D2C0, 0x1D2D3),
    (0x1E4F0, 0x1E4F9), (0x1E5F1, 0x1E5FA),
]
# Numeric code points (Nd, Nl, No) assigned in Unicode 17.0.
NUMERIC_IN_17 = [(0x11DE0, 0x11DE9), (0x16FF4, 0x16FF6)]
# The classes of attn__uc_gpt2_class (unicode_data.h).
GPT2_LETTER, GPT2_NUMBER, GPT2_NUMERIC = 1, 2, 3

ASCII_PUNCT = [c for c in range(0x21, 0x7F) if not chr(c).isalnum()]
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3


def code_points():
    return [c for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]


def load_ages():
    """Sorted (first code point, (major, minor) or None) from Perl's UCD."""
    script = ('use Unicode::UCD qw(prop_invmap);'
              'print Unicode::UCD::UnicodeVersion(), "\\n";'
              'my ($l, $m) = prop_invmap("Age");'
              'printf "%X %s\\n", $l->[$_], $m->[$_] for 0 .. $#$l;')
    lines = subprocess.run(["perl", "-e", script], check=True, capture_output=True,
                           text=True).stdout.split("\n")
    if lines[0] != unicodedata.unidata_version:
        sys.exit(f"Perl's UCD is {lines[0]}, Python's {unicodedata.unidata_version}")
    ages = []
    for line in lines[1:]:
        if line:
            first, age = line.split()
            v = None if age in ("NA", "Unassigned") else tuple(map(int, age.split(".")))
            ages.append((int(first, 16), v))
    return ages


class Ucd:
    def __init__(self):
        self.ages = load_ages()
        self.starts = [a for a, _ in self.ages]

    def assigned_by(self, c, version):
        v = self.ages[bisect.bisect_right(self.starts, c) - 1][1]
        return v is not None and v <= version

    def cat8(self, c):
        if not self.assigned_by(c, (8, 0)):
            return "Cn"
        return GC_8_0.get(c, unicodedata.category(chr(c)))

    def nfd9(self, c):
        """Full canonical decomposition in Unicode 9.0 (None if none)."""
        if not self.assigned_by(c, (9, 0)) or HANGUL_FIRST <= c <= HANGUL_LAST:
            return None
        d = [ord(x) for x in unicodedata.normalize("NFD", chr(c))]
        return None if d == [c] else d

    def ccc9(self, c):
        return unicodedata.combining(chr(c)) if self.assigned_by(c, (9, 0)) else 0


def lower17(c):
    if c in LOWER_AFTER_14:
        return [LOWER_AFTER_14[c]]
    m = [ord(x) for x in chr(c).lower()]
    return None if m == [c] else m


def expand(rs):
    return {c for lo, hi in rs for c in range(lo, hi + 1)}


def gpt2_classes(cps):
    """{cp: class} of the BPE pre-tokenizer, for the code points not OTHER."""
    added_l, added_n, numeric17 = expand(L_AFTER_14), expand(N_AFTER_14), expand(NUMERIC_IN_17)
    for c in added_l | added_n | numeric17:
        assert unicodedata.category(chr(c)) == "Cn", hex(c)  # all new since 14.0
    out = {}
    for c in cps:
        cat = unicodedata.category(chr(c))
        if cat.startswith("L") or c in added_l:
            out[c] = GPT2_LETTER
        elif cat.startswith("N") or c in added_n:
            out[c] = GPT2_NUMBER
        elif c in numeric17:
            out[c] = GPT2_NUMERIC
    return out


def white_space(c):
    # White_Space: the Cc ones, Zs, Zl, Zp (stable since Unicode 6.3).
    return c in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85) or \
        unicodedata.category(chr(c)) in ("Zs", "Zl", "Zp")


def ranges(cps):
    out = []
    for c in sorted(cps):
        if out and out[-1][1] == c - 1:
            out[-1][1] = c
        else:
            out.append([c, c])
    return out


def valued_ranges(pairs):
    """[(lo, hi, value)] for consecutive code points sharing a value."""
    out = []
    for c, v in sorted(pairs):
        if out and out[-1][1] == c - 1 and out[-1][2] == v:
            out[-1][1] = c
        else:
            out.append([c, c, v])
    return out


def comment(w, text):
    w("\n".join(textwrap.wrap(f"/* {text} */", 90, subsequent_indent=" * ")) + "\n")


def emit_ranges(w, name, what, rs):
    comment(w, f"{what}: {len(rs)} ranges [lo, hi].")
    w(f"static const uint32_t {name}[][2] = {{\n")
    for i in range(0, len(rs), 4):
        w("    " + " ".join(f"{{0x{lo:05X}, 0x{hi:05X}}}," for lo, hi in rs[i:i + 4]) + "\n")
    w("};\n\n")


def emit_mapping(w, name, what, table):
    """table: {cp: [cps]} -> entries {cp, start, len} over a shared pool."""
    pool, entries = [], []
    for c in sorted(table):
        entries.append((c, len(pool), len(table[c])))
        pool.extend(table[c])
    assert len(pool) < 65536 and max(n for _, _, n in entries) <= 255
    comment(w, f"{what}: {len(entries)} code points, their mappings in {name}_pool.")
    w(f"static const uint32_t {name}_pool[] = {{\n")
    for i in range(0, len(pool), 8):
        w("    " + " ".join(f"0x{c:05X}," for c in pool[i:i + 8]) + "\n")
    w("};\n")
    w(f"static const map_entry {name}[] = {{\n")
    for i in range(0, len(entries), 3):
        w("    " + " ".join(f"{{0x{c:05X}, {s}, {n}}}," for c, s, n in entries[i:i + 3]) + "\n")
    w("};\n\n")
    return max(n for _, _, n in entries)


HEADER = """\
/* unicode_data.c - GENERATED by scripts/gen_unicode_data.py; do not edit.
 * The character properties of the tokenizers (unicode_data.h), as their
 * references (Rust tokenizers) have them. WordPiece: categories of Unicode
 * 8.0.0, NFD and combining classes of Unicode 9.0.0, lowercase and
 * White_Space of Unicode 17.0. Byte-level BPE: letters and numbers of
 * Unicode 16.0, numeric of 17.0 (see the generator's notes).
 * Generated from Python's unicodedata %s with Age from Perl's Unicode::UCD.
 */
#include "text/unicode_data.h"

#include <stddef.h>

typedef struct map_entry {
    uint32_t cp;
    uint16_t start; /* first code point of the mapping in the pool */
    uint16_t len;
} map_entry;

"""

FUNCS = """\
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Index of the range of t [n][2] holding c, or -1 (binary search). */
static ptrdiff_t find_range(const uint32_t (*t)[2], size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < t[mid][0]) hi = mid;
        else if (c > t[mid][1]) lo = mid + 1;
        else return (ptrdiff_t)mid;
    }
    return -1;
}

/* Copies the mapping of c in t [n] to out and returns its length, or 0. */
static int find_map(const map_entry *t, size_t n, const uint32_t *pool, uint32_t c,
                    uint32_t *out)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < t[mid].cp) {
            hi = mid;
        } else if (c > t[mid].cp) {
            lo = mid + 1;
        } else {
            for (int i = 0; i < t[mid].len; i++) out[i] = pool[t[mid].start + i];
            return t[mid].len;
        }
    }
    return 0;
}

bool attn__uc_is_removed(uint32_t c)
{
    return find_range(removed, COUNT(removed), c) >= 0;
}

bool attn__uc_is_space(uint32_t c)
{
    return find_range(space, COUNT(space), c) >= 0;
}

bool attn__uc_is_punct(uint32_t c)
{
    return find_range(punct, COUNT(punct), c) >= 0;
}

bool attn__uc_is_nonspacing(uint32_t c)
{
    return find_range(nonspacing, COUNT(nonspacing), c) >= 0;
}

int attn__uc_ccc(uint32_t c)
{
    size_t lo = 0, hi = COUNT(ccc);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < ccc[mid].lo) hi = mid;
        else if (c > ccc[mid].hi) lo = mid + 1;
        else return ccc[mid].ccc;
    }
    return 0;
}

/* Hangul syllables decompose algorithmically (The Unicode Standard, 3.12). */
enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7,
       V_COUNT = 21, T_COUNT = 28, S_COUNT = 11172 };

int attn__uc_nfd(uint32_t c, uint32_t out[ATTN__UC_MAX_NFD])
{
    if (c >= S_BASE && c < S_BASE + S_COUNT) {
        uint32_t s = c - S_BASE, t = s % T_COUNT;
        out[0] = L_BASE + s / (V_COUNT * T_COUNT);
        out[1] = V_BASE + (s % (V_COUNT * T_COUNT)) / T_COUNT;
        if (t == 0) return 2;
        out[2] = T_BASE + t;
        return 3;
    }
    int n = find_map(nfd, COUNT(nfd), nfd_pool, c, out);
    if (n > 0) return n;
    out[0] = c;
    return 1;
}

int attn__uc_lower(uint32_t c, uint32_t out[ATTN__UC_MAX_LOWER])
{
    int n = find_map(lower, COUNT(lower), lower_pool, c, out);
    if (n > 0) return n;
    out[0] = c;
    return 1;
}

int attn__uc_gpt2_class(uint32_t c)
{
    size_t lo = 0, hi = COUNT(gpt2);
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < gpt2[mid].lo) hi = mid;
        else if (c > gpt2[mid].hi) lo = mid + 1;
        else return gpt2[mid].cls;
    }
    return ATTN__UC_GPT2_OTHER;
}
"""


def main():
    if unicodedata.unidata_version != "14.0.0":
        sys.exit(f"expected Python's unicodedata 14.0.0, got {unicodedata.unidata_version}")
    u = Ucd()
    cps = code_points()
    cat8 = {c: u.cat8(c) for c in cps}
    removed = [c for c in cps if c in (0, 0xFFFD) or
               (cat8[c] in ("Cc", "Cf", "Co") and c not in (0x09, 0x0A, 0x0D))]
    space = [c for c in cps if white_space(c)]
    punct = sorted(set(ASCII_PUNCT) | {c for c in cps if cat8[c].startswith("P")})
    nonspacing = [c for c in cps if cat8[c] == "Mn"]
    ccc = valued_ranges((c, u.ccc9(c)) for c in cps if u.ccc9(c) != 0)
    nfd = {c: d for c in cps for d in [u.nfd9(c)] if d is not None}
    lower = {c: m for c in cps for m in [lower17(c)] if m is not None}
    # The tokenizer's streaming reorder relies on these (checked, not assumed).
    for c, d in nfd.items():
        cls = [u.ccc9(x) for x in d]
        assert all(not (cls[i] == 0 and cls[i - 1] > 0) for i in range(1, len(d))), hex(c)

    parts = []
    w = parts.append
    w(HEADER % unicodedata.unidata_version)
    emit_ranges(w, "removed", "Removed by clean-up: U+0000, U+FFFD and categories "
                "Cc, Cf, Co of Unicode 8.0 except tab, LF, CR", ranges(removed))
    emit_ranges(w, "space", "White_Space", ranges(space))
    emit_ranges(w, "punct", "ASCII punctuation (33-47, 58-64, 91-96, 123-126) and "
                "categories P* of Unicode 8.0", ranges(punct))
    emit_ranges(w, "nonspacing", "Category Mn of Unicode 8.0", ranges(nonspacing))
    comment(w, f"Canonical combining classes (Unicode 9.0), nonzero only: {len(ccc)} ranges.")
    w("static const struct {\n    uint32_t lo, hi;\n    uint8_t ccc;\n} ccc[] = {\n")
    for i in range(0, len(ccc), 3):
        w("    " + " ".join(f"{{0x{lo:05X}, 0x{hi:05X}, {v}}}," for lo, hi, v in ccc[i:i + 3])
          + "\n")
    w("};\n\n")
    max_nfd = emit_mapping(w, "nfd", "Full canonical decompositions (Unicode 9.0), "
                           "Hangul syllables excepted", nfd)
    max_lower = emit_mapping(w, "lower", "Full lowercase mappings, per character "
                             "(Unicode 17.0)", lower)
    assert max_nfd <= 4 and max_lower <= 3, (max_nfd, max_lower)
    gpt2 = valued_ranges(gpt2_classes(cps).items())
    comment(w, f"Classes of the BPE pre-tokenizer (letters and numbers of Unicode 16.0, "
            f"numeric of 17.0), all but OTHER: {len(gpt2)} ranges.")
    w("static const struct {\n    uint32_t lo, hi;\n    uint8_t cls;\n} gpt2[] = {\n")
    for i in range(0, len(gpt2), 3):
        w("    " + " ".join(f"{{0x{lo:05X}, 0x{hi:05X}, {v}}}," for lo, hi, v in gpt2[i:i + 3])
          + "\n")
    w("};\n")
    w(f"_Static_assert(ATTN__UC_GPT2_LETTER == {GPT2_LETTER} && ATTN__UC_GPT2_NUMBER == "
      f"{GPT2_NUMBER} && ATTN__UC_GPT2_NUMERIC == {GPT2_NUMERIC}, \"classes\");\n\n")
    w(f"_Static_assert(ATTN__UC_MAX_NFD >= {max(max_nfd, 3)}, \"NFD buffer\");\n")
    w(f"_Static_assert(ATTN__UC_MAX_LOWER >= {max_lower}, \"lowercase buffer\");\n\n")
    w(FUNCS)
    with open(OUT, "w", encoding="ascii", newline="\n") as f:
        f.write("".join(parts))
    print(f"wrote {os.path.normpath(OUT)}: {len(ranges(removed))} removed, "
          f"{len(ranges(space))} space, {len(ranges(punct))} punct, "
          f"{len(ranges(nonspacing))} Mn ranges, {len(ccc)} ccc ranges, {len(nfd)} NFD, "
          f"{len(lower)} lowercase, {len(gpt2)} BPE class ranges")


if __name__ == "__main__":
    main()
