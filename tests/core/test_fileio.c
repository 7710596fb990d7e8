/* test_fileio.c - the file rules of src/core/fileio.c, in a scratch
 * directory: inputs that are not regular files (a FIFO without a writer, a
 * socket, a directory) are refused without blocking; outputs that are not
 * regular files are refused and left untouched; symbolic links are
 * followed to the file they name, which is replaced atomically with its
 * mode kept; stale temporaries are removed without being followed; paths
 * over the limits are refused before anything is created; a failed
 * replacement leaves the target as it was; allocation failures leak
 * nothing. A regression that blocks on a FIFO is ended by an alarm. */
#include "test.h"

#include "core/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------------- */

/* name in the scratch directory's fileio/ subdirectory (made on first
 * use); a ring of 8 results, so keep a copy of one needed longer. */
static const char *fio_path(const char *name)
{
    static char buf[8][600];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/fileio", t_tmpdir());
    mkdir(buf[k], 0700);
    snprintf(buf[k], sizeof buf[k], "%s/fileio/%s", t_tmpdir(), name);
    return buf[k];
}

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    T_CHECK(f != NULL);
    if (!f) return;
    T_EQ_INT(fwrite(text, 1, strlen(text), f), strlen(text));
    fclose(f);
}

/* The file's text (up to 255 bytes) in a static buffer, or "" if unreadable. */
static const char *get(const char *path)
{
    static char buf[256];
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
    return buf;
}

static bool exists(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0;
}

static mode_t kind_of(const char *path)
{
    struct stat sb;
    return lstat(path, &sb) == 0 ? sb.st_mode & S_IFMT : 0;
}

/* A FIFO, a socket or a directory at path; returns its S_IF* kind. */
static mode_t make_special(const char *what, const char *path)
{
    if (strcmp(what, "fifo") == 0) {
        T_EQ_INT(mkfifo(path, 0600), 0);
        return S_IFIFO;
    }
    if (strcmp(what, "socket") == 0) {
        struct sockaddr_un a;
        memset(&a, 0, sizeof a);
        a.sun_family = AF_UNIX;
        T_CHECK(strlen(path) < sizeof a.sun_path);
        snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        T_CHECK(s >= 0);
        T_EQ_INT(bind(s, (const struct sockaddr *)&a, sizeof a), 0);
        close(s);
        return S_IFSOCK;
    }
    T_EQ_INT(mkdir(path, 0700), 0);
    return S_IFDIR;
}

/* One complete replacement of path by text; its status. */
static attn_status replace(const char *path, const char *text)
{
    attn__atomic a;
    attn_status st = attn__atomic_open("replace", path, &a);
    if (st != ATTN_OK) return st;
    attn__atomic_write(&a, text, strlen(text));
    return attn__atomic_commit(&a);
}

static bool has(const char *needle) { return strstr(attn_last_error(), needle) != NULL; }

/* ---- inputs --------------------------------------------------------------------- */

T_TEST(fileio_inputs_must_be_regular)
{
    const char *kinds[3] = {"fifo", "socket", "dir"};
    const char *names[3] = {"a FIFO", "a socket", "a directory"};
    char *data = NULL;
    size_t size = 0;
    alarm(20); /* a blocking open would hang here: the alarm ends the run */
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "in-%s", kinds[i]);
        const char *path = fio_path(name);
        mode_t kind = make_special(kinds[i], path);
        T_EQ_STATUS(attn__read_file("reader", path, 1000, &data, &size), ATTN_IO);
        T_CHECK(has("reader: it is ") && has(names[i]) && has("not a regular file"));
        T_CHECK(data == NULL);
        T_EQ_INT(kind_of(path), kind);
        /* through a symbolic link too */
        snprintf(name, sizeof name, "in-link-%s", kinds[i]);
        const char *link = fio_path(name);
        T_EQ_INT(symlink(path, link), 0);
        T_EQ_STATUS(attn__read_file("reader", link, 1000, &data, &size), ATTN_IO);
        T_CHECK(has(names[i]));
    }
    alarm(0);
    /* a regular file (also through a link) reads whole, with O_NONBLOCK cleared */
    const char *path = fio_path("in-regular"), *link = fio_path("in-link-regular");
    put(path, "hello");
    T_EQ_INT(symlink("in-regular", link), 0);
    T_EQ_STATUS(attn__read_file("reader", link, 5, &data, &size), ATTN_OK);
    T_CHECK(data != NULL && size == 5 && memcmp(data, "hello", 6) == 0);
    attn_release(data);
    data = NULL;
    T_EQ_STATUS(attn__read_file("reader", path, 4, &data, &size), ATTN_BAD_FILE);
    T_CHECK(data == NULL && has("5 bytes; at most 4"));
    int fd = -1;
    struct stat sb;
    T_EQ_STATUS(attn__open_input("reader", path, &fd, &sb), ATTN_OK);
    T_CHECK(fd >= 0 && (fcntl(fd, F_GETFL) & O_NONBLOCK) == 0 && sb.st_size == 5);
    if (fd >= 0) close(fd);
    T_EQ_STATUS(attn__read_file("reader", fio_path("in-missing"), 5, &data, &size), ATTN_IO);
    T_CHECK(has("cannot open"));
}

/* ---- outputs -------------------------------------------------------------------- */

T_TEST(fileio_outputs_refuse_special_files)
{
    const char *kinds[3] = {"fifo", "socket", "dir"};
    const char *names[3] = {"is a FIFO", "is a socket", "is a directory"};
    for (int i = 0; i < 3; i++) {
        char name[32], tmp[640];
        snprintf(name, sizeof name, "out-%s", kinds[i]);
        const char *path = fio_path(name);
        mode_t kind = make_special(kinds[i], path);
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        T_EQ_STATUS(replace(path, "new"), ATTN_IO);
        T_CHECK(has(path) && has(names[i]) && has("left untouched"));
        T_EQ_INT(kind_of(path), kind);
        T_CHECK(!exists(tmp));
        T_EQ_STATUS(attn__output_target("check", path, NULL, NULL), ATTN_IO);
        /* a symbolic link to it: refused, naming both; the link stays */
        snprintf(name, sizeof name, "out-link-%s", kinds[i]);
        const char *link = fio_path(name);
        T_EQ_INT(symlink(path, link), 0);
        T_EQ_STATUS(replace(link, "new"), ATTN_IO);
        T_CHECK(has(link) && has("leads to") && has(names[i] + 3));
        T_EQ_INT(kind_of(link), S_IFLNK);
        T_EQ_INT(kind_of(path), kind);
    }
}

T_TEST(fileio_output_symlinks_followed)
{
    /* link in a/ -> ../b/real (relative): the file in b/ is replaced, in b/ */
    char a[600], b[600];
    snprintf(a, sizeof a, "%s", fio_path("a"));
    snprintf(b, sizeof b, "%s", fio_path("b"));
    T_EQ_INT(mkdir(a, 0700), 0);
    T_EQ_INT(mkdir(b, 0700), 0);
    char real[600], link[600];
    snprintf(real, sizeof real, "%s", fio_path("b/real"));
    snprintf(link, sizeof link, "%s", fio_path("a/link"));
    put(real, "old");
    T_EQ_INT(chmod(real, 0640), 0);
    T_EQ_INT(symlink("../b/real", link), 0);
    char *target = NULL;
    int there = -1;
    T_EQ_STATUS(attn__output_target("check", link, &target, &there), ATTN_OK);
    T_CHECK(target != NULL && strcmp(target, fio_path("a/../b/real")) == 0 && there == 1);
    attn_release(target);
    attn__atomic w;
    T_EQ_STATUS(attn__atomic_open("replace", link, &w), ATTN_OK);
    T_CHECK(exists(fio_path("b/real.tmp")) && !exists(fio_path("a/link.tmp")));
    attn__atomic_write(&w, "new", 3);
    T_EQ_STATUS(attn__atomic_commit(&w), ATTN_OK);
    T_CHECK(strcmp(get(real), "new") == 0);
    T_EQ_INT(kind_of(link), S_IFLNK);
    struct stat sb;
    T_CHECK(stat(real, &sb) == 0 && (sb.st_mode & 0777) == 0640);
    T_CHECK(!exists(fio_path("b/real.tmp")));

    /* a chain of links, the last absolute */
    const char *l2 = fio_path("a/link2"), *l3 = fio_path("link3");
    T_EQ_INT(symlink(real, l2), 0);
    T_EQ_INT(symlink("a/link2", l3), 0);
    T_EQ_STATUS(replace(l3, "chain"), ATTN_OK);
    T_CHECK(strcmp(get(real), "chain") == 0 && kind_of(l3) == S_IFLNK && kind_of(l2) == S_IFLNK);

    /* a dangling link: the file it names is created */
    const char *dangling = fio_path("dangling");
    T_EQ_INT(symlink("b/created", dangling), 0);
    T_EQ_STATUS(attn__output_target("check", dangling, NULL, &there), ATTN_OK);
    T_EQ_INT(there, 0);
    T_EQ_STATUS(replace(dangling, "made"), ATTN_OK);
    T_CHECK(strcmp(get(fio_path("b/created")), "made") == 0 && kind_of(dangling) == S_IFLNK);

    /* a loop of links */
    const char *x = fio_path("loop-x"), *y = fio_path("loop-y");
    T_EQ_INT(symlink("loop-y", x), 0);
    T_EQ_INT(symlink("loop-x", y), 0);
    T_EQ_STATUS(replace(x, "never"), ATTN_IO);
    T_CHECK(has("more than 40 symbolic links"));
    T_CHECK(kind_of(x) == S_IFLNK && kind_of(y) == S_IFLNK);

    /* a path through a regular file */
    T_EQ_STATUS(replace(fio_path("b/real/inside"), "never"), ATTN_IO);
    T_CHECK(strcmp(get(real), "chain") == 0);
}

T_TEST(fileio_atomic_replacement_failures)
{
    const char *path = fio_path("target"), *tmp = fio_path("target.tmp");
    put(path, "old");
    /* a stale temporary file is replaced */
    put(tmp, "stale");
    T_EQ_STATUS(replace(path, "one"), ATTN_OK);
    T_CHECK(strcmp(get(path), "one") == 0 && !exists(tmp));
    /* a stale temporary that is a link: removed, never followed */
    const char *victim = fio_path("victim");
    put(victim, "victim");
    T_EQ_INT(symlink(victim, tmp), 0);
    T_EQ_STATUS(replace(path, "two"), ATTN_OK);
    T_CHECK(strcmp(get(path), "two") == 0 && strcmp(get(victim), "victim") == 0 && !exists(tmp));
    /* a temporary that is a directory: refused, the target untouched */
    T_EQ_INT(mkdir(tmp, 0700), 0);
    T_EQ_STATUS(replace(path, "three"), ATTN_IO);
    T_CHECK(has("temporary file") && has("a directory"));
    T_CHECK(strcmp(get(path), "two") == 0 && kind_of(tmp) == S_IFDIR);
    T_EQ_INT(rmdir(tmp), 0);
    /* a write error: the temporary goes, the target stays */
    attn__atomic w;
    T_EQ_STATUS(attn__atomic_open("replace", path, &w), ATTN_OK);
    attn__atomic_write(&w, "partial", 7);
    w.err = ENOSPC;
    attn__atomic_write(&w, "more", 4); /* skipped after an error */
    T_EQ_STATUS(attn__atomic_commit(&w), ATTN_IO);
    T_CHECK(has("writing") && has(strerror(ENOSPC)));
    T_CHECK(strcmp(get(path), "two") == 0 && !exists(tmp));
    /* an abandoned replacement */
    T_EQ_STATUS(attn__atomic_open("replace", path, &w), ATTN_OK);
    attn__atomic_write(&w, "abandoned", 9);
    attn__atomic_abort(&w);
    T_CHECK(strcmp(get(path), "two") == 0 && !exists(tmp));
    /* no such directory */
    T_EQ_STATUS(replace(fio_path("missing/target"), "x"), ATTN_IO);
    T_CHECK(has("cannot create"));
}

/* ---- limits --------------------------------------------------------------------- */

T_TEST(fileio_path_limits)
{
    /* a name of 256 bytes, and a path of 4096: refused, nothing created */
    char name[300], path[5000];
    memset(name, 'n', 256);
    name[256] = '\0';
    snprintf(path, sizeof path, "%s/%s", fio_path("limits"), name);
    T_EQ_STATUS(replace(path, "x"), ATTN_BAD_PARAM);
    T_CHECK(has("a name of 256 bytes") && has("at most 255"));
    T_CHECK(!exists(fio_path("limits")));
    size_t n = (size_t)snprintf(path, sizeof path, "%s", fio_path("limits"));
    while (n < ATTN__PATH_MAX) n += (size_t)snprintf(path + n, sizeof path - n, "/%.100s", name);
    T_EQ_STATUS(attn__path_check("check", "argument 'path'", path), ATTN_BAD_PARAM);
    T_CHECK(has("check: argument 'path' is") && has("at most 4095"));
    T_EQ_STATUS(replace(path, "x"), ATTN_BAD_PARAM);
    T_CHECK(!exists(fio_path("limits")));
    T_EQ_STATUS(attn__path_check("check", "argument 'path'", ""), ATTN_BAD_PARAM);
    /* the temporary's name needs 4 bytes more: 251 fits, 252 does not */
    T_EQ_INT(mkdir(fio_path("limits"), 0700), 0);
    name[252] = '\0';
    snprintf(path, sizeof path, "%s/%s", fio_path("limits"), name);
    T_EQ_STATUS(attn__path_check("check", "argument 'path'", path), ATTN_OK);
    T_EQ_STATUS(replace(path, "x"), ATTN_BAD_PARAM);
    T_CHECK(has("with '.tmp' added"));
    name[251] = '\0';
    snprintf(path, sizeof path, "%s/%s", fio_path("limits"), name);
    T_EQ_STATUS(replace(path, "fits"), ATTN_OK);
    T_CHECK(strcmp(get(path), "fits") == 0);
    /* a link whose text makes the path too long */
    char text[ATTN__PATH_MAX];
    size_t k = 0;
    while (k + 3 < ATTN__PATH_MAX - 8) k += (size_t)snprintf(text + k, sizeof text - k, "../");
    snprintf(text + k, sizeof text - k, "x");
    T_EQ_INT(symlink(text, fio_path("limits/long-link")), 0);
    T_EQ_STATUS(replace(fio_path("limits/long-link"), "x"), ATTN_BAD_PARAM);
    T_CHECK(has("longer than 4095"));
}

/* ---- out of memory -------------------------------------------------------------- */

T_TEST(fileio_out_of_memory)
{
    const char *real = fio_path("oom-real"), *link = fio_path("oom-link");
    put(real, "old");
    T_EQ_INT(symlink("oom-real", link), 0);
    for (long k = 1;; k++) {
        t_counting c = {0, 0, k};
        attn_set_allocator(t_count_alloc, t_count_free, &c);
        attn_status st = replace(link, "new");
        attn_set_allocator(NULL, NULL, NULL);
        T_EQ_INT(c.live, 0);
        T_CHECK(!exists(fio_path("oom-real.tmp")));
        if (c.calls < k) {
            T_EQ_STATUS(st, ATTN_OK);
            T_EQ_INT(k - 1, 3); /* the path, the link's target, the temporary's name */
            break;
        }
        T_EQ_STATUS(st, ATTN_NO_MEMORY);
        T_CHECK(strcmp(get(real), "old") == 0 && kind_of(link) == S_IFLNK);
    }
    T_CHECK(strcmp(get(real), "new") == 0);
}
