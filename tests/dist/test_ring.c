/* test_ring.c - the dist tier: ring attention (attn/dist.h) under mpirun.
 * Each test starts the MPI program ring_ranks.c with `mpirun -np P
 * --oversubscribe` (bounded by `timeout`), so a hang fails instead of
 * blocking the suite: on 1, 2, 3 and 4 ranks every rank's slice is checked
 * against the single-process result, forward and backward; with one rank
 * killed mid-call the job must end, non-zero, with mpirun's message.
 * LeakSanitizer is off in the MPI programs (Open MPI's plugins keep memory
 * to the end); ring_ranks.c counts attn's own allocations instead. */
#include "test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

/* Runs `mpirun -np n PROGRAM ARGS` within `seconds`; its exit status
 * (124: timed out) and the first bytes of its output in out. */
static int mpirun_program(int n, const char *program, const char *args, int seconds, char *out, size_t cap)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 "
             "ASAN_OPTIONS=detect_leaks=0 timeout %d %s --oversubscribe -np %d %s %s 2>&1",
             seconds, ATTN_MPIEXEC, n, program, args);
    FILE *f = popen(cmd, "r");
    if (f == NULL) return -1;
    size_t used = 0;
    char line[512];
    while (fgets(line, sizeof line, f) != NULL) {
        if (t_verbose) fputs(line, stdout);
        size_t len = strlen(line);
        if (used + len < cap) {
            memcpy(out + used, line, len);
            used += len;
        }
    }
    out[used] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int mpirun(int n, const char *mode, int seconds, char *out, size_t cap)
{
    return mpirun_program(n, ATTN_RING_RANKS, mode, seconds, out, cap);
}

T_TEST(ring_ranks_vs_single_process)
{
    static char out[1 << 16];
    for (int n = 1; n <= 4; n++) {
        int rc = mpirun(n, "check", 300, out, sizeof out);
        if (rc != 0) fprintf(stderr, "  mpirun -np %d: exit %d\n%s", n, rc, out);
        T_EQ_INT(rc, 0);
        T_CHECK(strstr(out, "0 failed") != NULL);
    }
}

/* `attn ring --backward --check --check-rows R` (the demo): each rank
 * holds only its rows; rank 0 recomputes the sequence in chunks and
 * compares O, dQ, dK, dV; every rank checks its sampled rows in float64. */
T_TEST(ring_cli_check)
{
#ifdef ATTN_CLI
    static char out[1 << 14];
    static const char *const args[2] = {"ring --seq 768 --heads 2 --dim 16 --causal --backward --check --check-rows 40",
                                        "ring --seq 600 --heads 3 --dim 8 --backward --check --check-rows 25"};
    for (int a = 0; a < 2; a++) {
        int rc = mpirun_program(3, ATTN_CLI, args[a], 120, out, sizeof out);
        if (rc != 0 || t_verbose) fprintf(stderr, "  exit %d\n%s", rc, out);
        T_EQ_INT(rc, 0);
        T_CHECK(strstr(out, "check (every row, against one process): max |O err|") != NULL);
        T_CHECK(strstr(out, "max |dK err|") != NULL);
        T_CHECK(strstr(out, "check (float64, ") != NULL);
        T_CHECK(strstr(out, "MISMATCH") == NULL);
        T_CHECK(strstr(out, "bytes sent (+ ") != NULL && strstr(out, "peak memory") != NULL);
    }
#else
    t_skip("the attn program is not built (no libpng)");
#endif
}

T_TEST(ring_rank_killed_ends_job)
{
    static char out[1 << 16];
    int rc = mpirun(3, "kill", 120, out, sizeof out);
    if (t_verbose || rc == 0 || rc == 124) fprintf(stderr, "  exit %d\n%s", rc, out);
    T_CHECK(rc != 0);   /* the job failed ... */
    T_CHECK(rc != 124); /* ... by itself, not by the timeout */
    T_CHECK(rc != 3);   /* no rank came back from the call as if nothing happened */
    T_CHECK(strstr(out, "signal 9") != NULL || strstr(out, "Killed") != NULL);
}
