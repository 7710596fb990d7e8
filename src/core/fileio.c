/* fileio.c - the file rules every tier follows (fileio.h).
 *
 * Inputs: opened with O_NONBLOCK so that a FIFO or a device cannot hang the
 * open, checked with fstat to be a regular file, then read completely (a
 * read error is an error, never a short file).
 *
 * Outputs: the path is followed through its symbolic links to the file it
 * names, which must be a regular file or not exist; the new bytes go to
 * "<target>.tmp" beside it, created exclusively, and are flushed, synced
 * and renamed over the target, whose directory is then synced. A device,
 * FIFO, socket or directory is refused and left untouched. */
#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

const char *attn__file_kind(mode_t mode)
{
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISSOCK(mode)) return "a socket";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISLNK(mode)) return "a symbolic link";
    return "not a file";
}

/* errno, or EIO where a call failed without setting it. */
static int error_number(void) { return errno != 0 ? errno : EIO; }

attn_status attn__path_check(const char *fn, const char *arg, const char *path)
{
    size_t len = strlen(path);
    if (len == 0) return attn_fail(ATTN_BAD_PARAM, "%s: %s is empty", fn, arg);
    if (len >= ATTN__PATH_MAX)
        return attn_fail(ATTN_BAD_PARAM, "%s: %s is %zu bytes long; at most %d are accepted", fn,
                         arg, len, ATTN__PATH_MAX - 1);
    for (const char *p = path; *p;) {
        size_t name = strcspn(p, "/");
        if (name > ATTN__NAME_MAX)
            return attn_fail(ATTN_BAD_PARAM, "%s: %s holds a name of %zu bytes ('%.40s...'); at "
                             "most %d are accepted", fn, arg, name, p, ATTN__NAME_MAX);
        p += name;
        p += strspn(p, "/");
    }
    return ATTN_OK;
}

/* ---- inputs -------------------------------------------------------------------------- */

attn_status attn__open_input(const char *prefix, const char *path, int *fd, struct stat *sb)
{
    int f;
    do f = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    while (f < 0 && errno == EINTR);
    if (f < 0) {
        int err = error_number();
        if (stat(path, sb) == 0 && !S_ISREG(sb->st_mode)) /* a socket cannot be opened at all */
            return attn_fail(ATTN_IO, "%s: it is %s, not a regular file", prefix, attn__file_kind(sb->st_mode));
        return attn_fail(ATTN_IO, "%s: cannot open: %s", prefix, strerror(err));
    }
    attn_status st = ATTN_OK;
    int flags;
    if (fstat(f, sb) != 0)
        st = attn_fail(ATTN_IO, "%s: cannot stat: %s", prefix, strerror(error_number()));
    else if (!S_ISREG(sb->st_mode))
        st = attn_fail(ATTN_IO, "%s: it is %s, not a regular file", prefix, attn__file_kind(sb->st_mode));
    else if ((flags = fcntl(f, F_GETFL)) < 0 || fcntl(f, F_SETFL, flags & ~O_NONBLOCK) != 0)
        st = attn_fail(ATTN_IO, "%s: cannot clear O_NONBLOCK: %s", prefix, strerror(error_number()));
    if (st != ATTN_OK) {
        close(f);
        return st;
    }
    *fd = f;
    return ATTN_OK;
}

/* Reads want bytes of fd into buf; *got receives how many arrived before
 * the end of the file (fewer if it shrank). Returns 0 or an errno. */
static int read_fully(int fd, char *buf, size_t want, size_t *got)
{
    size_t n = 0;
    while (n < want) {
        ssize_t k = read(fd, buf + n, want - n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            *got = n;
            return error_number();
        }
        if (k == 0) break;
        n += (size_t)k;
    }
    *got = n;
    return 0;
}

attn_status attn__read_file(const char *prefix, const char *path, size_t max_bytes,
                            char **data, size_t *size)
{
    int fd;
    struct stat sb;
    attn_status st = attn__open_input(prefix, path, &fd, &sb);
    if (st != ATTN_OK) return st;
    char *buf = NULL;
    size_t want = (size_t)sb.st_size, got = 0;
    if ((uintmax_t)sb.st_size > max_bytes)
        st = attn_fail(ATTN_BAD_FILE, "%s: %jd bytes; at most %zu are accepted", prefix,
                       (intmax_t)sb.st_size, max_bytes);
    else if ((buf = attn_alloc(want + 1)) == NULL)
        st = attn_fail(ATTN_NO_MEMORY, "%s: no memory for the %zu-byte file", prefix, want);
    int err = st == ATTN_OK ? read_fully(fd, buf, want, &got) : 0;
    if (st == ATTN_OK && (err != 0 || got < want))
        st = attn_fail(ATTN_IO, "%s: read %zu of %zu bytes: %s", prefix, got, want,
                       err != 0 ? strerror(err) : "the file shrank");
    close(fd);
    if (st != ATTN_OK) {
        attn_release(buf);
        return st;
    }
    buf[want] = '\0';
    *data = buf;
    *size = want;
    return ATTN_OK;
}

/* ---- outputs ------------------------------------------------------------------------- */

/* A new allocation holding the first n bytes of a, then b. */
static char *concat(const char *a, size_t n, const char *b)
{
    size_t m = strlen(b);
    char *s = attn_alloc(n + m + 1);
    if (s == NULL) return NULL;
    memcpy(s, a, n);
    memcpy(s + n, b, m + 1);
    return s;
}

/* Where the symbolic link `link` (its text) leads from the link at path:
 * an absolute text as it is, a relative one from path's directory. */
static attn_status follow(const char *fn, const char *path, const char *link, char **next)
{
    const char *slash = strrchr(path, '/');
    size_t dir = link[0] == '/' || slash == NULL ? 0 : (size_t)(slash - path) + 1;
    if (dir + strlen(link) >= ATTN__PATH_MAX)
        return attn_fail(ATTN_BAD_PARAM, "%s: the symbolic link '%.200s' leads to a path longer "
                         "than %d bytes", fn, path, ATTN__PATH_MAX - 1);
    *next = concat(path, dir, link);
    return *next ? ATTN_OK : attn_fail(ATTN_NO_MEMORY, "%s: no memory for a path", fn);
}

/* One step of attn__output_target on *cur: 1 if it was a link (now
 * followed), 0 if *cur is the target, or an error status (< 0). */
static int resolve_step(const char *fn, const char *path, char **cur, int *exists)
{
    struct stat sb;
    if (lstat(*cur, &sb) != 0) {
        if (errno == ENOENT) {
            *exists = 0;
            return 0;
        }
        return attn_fail(ATTN_IO, "%s: cannot use the output '%.200s': %s", fn, *cur, strerror(error_number()));
    }
    if (S_ISLNK(sb.st_mode)) {
        char link[ATTN__PATH_MAX];
        ssize_t n = readlink(*cur, link, sizeof link);
        if (n < 0 || (size_t)n >= sizeof link)
            return attn_fail(ATTN_IO, "%s: cannot read the symbolic link '%.200s': %s", fn, *cur,
                             n < 0 ? strerror(error_number()) : "too long");
        link[n] = '\0';
        char *next = NULL;
        attn_status st = follow(fn, *cur, link, &next);
        if (st != ATTN_OK) return st;
        attn_release(*cur);
        *cur = next;
        return 1;
    }
    if (!S_ISREG(sb.st_mode)) {
        if (strcmp(*cur, path) == 0)
            return attn_fail(ATTN_IO, "%s: the output '%.200s' is %s, not a regular file; it is "
                             "left untouched", fn, path, attn__file_kind(sb.st_mode));
        return attn_fail(ATTN_IO, "%s: the output '%.200s' leads to '%.200s', which is %s, not a "
                         "regular file; it is left untouched", fn, path, *cur, attn__file_kind(sb.st_mode));
    }
    *exists = 1;
    return 0;
}

attn_status attn__output_target(const char *fn, const char *path, char **target, int *exists)
{
    attn_status st = attn__path_check(fn, "argument 'path'", path);
    if (st != ATTN_OK) return st;
    char *cur = concat(path, 0, path);
    if (cur == NULL) return attn_fail(ATTN_NO_MEMORY, "%s: no memory for a path", fn);
    int found = 0, r = 1;
    for (int hops = 0; r == 1 && hops <= ATTN__MAX_LINKS; hops++) r = resolve_step(fn, path, &cur, &found);
    if (r == 1)
        r = attn_fail(ATTN_IO, "%s: the output '%.200s' leads through more than %d symbolic links",
                      fn, path, ATTN__MAX_LINKS);
    if (r == 0 && (st = attn__path_check(fn, "the path its links lead to", cur)) != ATTN_OK) r = st;
    if (r != 0 || target == NULL) attn_release(cur);
    if (r != 0) return (attn_status)r;
    if (target != NULL) *target = cur;
    if (exists != NULL) *exists = found;
    return ATTN_OK;
}

/* Removes a stale temporary file: a regular file or a symbolic link (not
 * what it points to); anything else there is refused. */
static attn_status clear_stale(const char *fn, const char *tmp)
{
    struct stat sb;
    if (lstat(tmp, &sb) != 0) return ATTN_OK;
    if ((S_ISREG(sb.st_mode) || S_ISLNK(sb.st_mode)) && unlink(tmp) == 0) return ATTN_OK;
    return attn_fail(ATTN_IO, "%s: the temporary file '%.200s' exists and is %s that cannot be "
                     "removed", fn, tmp, attn__file_kind(sb.st_mode));
}

/* The name of the temporary file must fit in a name too. */
static attn_status tmp_name_check(const char *fn, const char *target)
{
    const char *slash = strrchr(target, '/');
    size_t name = strlen(slash ? slash + 1 : target);
    if (name + 4 > ATTN__NAME_MAX)
        return attn_fail(ATTN_BAD_PARAM, "%s: the file name of '%.200s' is %zu bytes; with '.tmp' "
                         "added it must fit in %d", fn, target, name, ATTN__NAME_MAX);
    if (strlen(target) + 4 >= ATTN__PATH_MAX)
        return attn_fail(ATTN_BAD_PARAM, "%s: the path '%.200s...' is too long to add '.tmp' (%d "
                         "bytes at most)", fn, target, ATTN__PATH_MAX - 1);
    return ATTN_OK;
}

/* Creates a->tmp for writing, with the target's mode if it exists. */
static attn_status create_tmp(attn__atomic *a, int exists)
{
    struct stat sb;
    int fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd < 0) return attn_fail(ATTN_IO, "%s: cannot create '%.200s': %s", a->fn, a->tmp, strerror(error_number()));
    if (exists && stat(a->target, &sb) == 0) (void)fchmod(fd, sb.st_mode & 0777);
    a->fp = fdopen(fd, "wb");
    if (a->fp != NULL) return ATTN_OK;
    int err = error_number();
    close(fd);
    unlink(a->tmp);
    return attn_fail(err == ENOMEM ? ATTN_NO_MEMORY : ATTN_IO, "%s: cannot open a stream on '%.200s': %s",
                     a->fn, a->tmp, strerror(err));
}

attn_status attn__atomic_open(const char *fn, const char *path, attn__atomic *a)
{
    memset(a, 0, sizeof *a);
    a->fn = fn;
    int exists = 0;
    attn_status st = attn__output_target(fn, path, &a->target, &exists);
    if (st == ATTN_OK) st = tmp_name_check(fn, a->target);
    if (st == ATTN_OK && (a->tmp = concat(a->target, strlen(a->target), ".tmp")) == NULL)
        st = attn_fail(ATTN_NO_MEMORY, "%s: no memory for a path", fn);
    if (st == ATTN_OK) st = clear_stale(fn, a->tmp);
    if (st == ATTN_OK) st = create_tmp(a, exists);
    if (st != ATTN_OK) {
        attn_release(a->target);
        attn_release(a->tmp);
        memset(a, 0, sizeof *a);
    }
    return st;
}

void attn__atomic_write(attn__atomic *a, const void *p, size_t n)
{
    if (a->err != 0 || n == 0) return;
    errno = 0;
    if (fwrite(p, 1, n, a->fp) != n) a->err = error_number();
}

/* Syncs the directory holding path (best effort); buf, of at least
 * strlen(path) + 2 bytes, receives its name (no allocation can fail here). */
static void sync_dir(const char *path, char *buf)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);
    if (n == 0) buf[n++] = '.';
    else memcpy(buf, path, n);
    buf[n] = '\0';
    int fd = open(buf, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

static void atomic_release(attn__atomic *a)
{
    attn_release(a->target);
    attn_release(a->tmp);
    memset(a, 0, sizeof *a);
}

attn_status attn__atomic_commit(attn__atomic *a)
{
    int err = a->err;
    errno = 0;
    if (err == 0 && ferror(a->fp)) err = EIO;
    if (err == 0 && (fflush(a->fp) != 0 || fsync(fileno(a->fp)) != 0)) err = error_number();
    if (fclose(a->fp) != 0 && err == 0) err = error_number();
    attn_status st = ATTN_OK;
    if (err != 0) {
        st = attn_fail(ATTN_IO, "%s: writing '%.200s' failed: %s", a->fn, a->tmp, strerror(err));
    } else if (rename(a->tmp, a->target) != 0) {
        st = attn_fail(ATTN_IO, "%s: cannot rename '%.200s' to '%.200s': %s", a->fn, a->tmp,
                       a->target, strerror(error_number()));
    }
    if (st != ATTN_OK) unlink(a->tmp);
    else sync_dir(a->target, a->tmp);
    atomic_release(a);
    return st;
}

void attn__atomic_abort(attn__atomic *a)
{
    if (a->fp != NULL) {
        fclose(a->fp);
        unlink(a->tmp);
    }
    atomic_release(a);
}
