#!/usr/bin/env bash
# fuzz_campaign.sh - the fuzzing campaign (docs/testing.md, "The campaign"):
# every libFuzzer target in turn, one at a time (one core) under nice -n 19,
# until it has run its goal of executions (FUZZ_GOAL, 10,000,000; the slow
# model targets FUZZ_GOAL_SLOW, 1,000,000), on a corpus kept between runs,
# so that the campaign can be interrupted and resumed at any time.
#
#   scripts/fuzz_campaign.sh [TARGET...]   run (or resume) the campaign
#   scripts/fuzz_campaign.sh --status      the table of every target so far
#   scripts/fuzz_campaign.sh --retry T     after a finding of T was looked at
#                                          (its artifact moved away): let the
#                                          next run continue T
#
# Pausing: while the file /tmp/attn-quiet (ATTN_QUIET_FILE) exists, no
# fuzzer runs. The running one is interrupted (SIGINT: libFuzzer prints its
# final stats and exits), its executions so far are added to the target's
# count, and the campaign waits for the file to go, then starts the target
# again on the same corpus for the executions it still lacks. A fuzzer is
# never stopped with SIGSTOP: its -timeout counts wall-clock time, so a
# stopped input would be reported as a hang.
#
# What counts: each run's stat::number_of_executed_units minus the
# executions of its start-up pass over the corpus (libFuzzer's INITED line),
# which a resumed run repeats: only inputs the fuzzer made. Both are kept.
#
# State (FUZZ_CAMPAIGN_DIR, build-fuzz/campaign/): bin/ the fuzz binaries
# copied at the first start (a resumed campaign keeps fuzzing the same
# build; `commit` says which), and per target <t>/corpus/ (seeded from
# fuzz/corpus/<t>/), <t>/state (the counts), <t>/run-<n>.log (each run's
# output) and any artifact (crash-*, timeout-*, oom-*, leak-*). The log
# (FUZZ_CAMPAIGN_LOG, build-fuzz/campaign.log) has one line per event;
# <dir>/pid is the running script's (kill it, SIGTERM, to stop).
# `make clean` deletes all of it; a new campaign starts after
# `rm -rf build-fuzz/campaign`.
set -u
cd "$(dirname "$0")/.." || exit 2

DIR=${FUZZ_CAMPAIGN_DIR:-build-fuzz/campaign}
LOG=${FUZZ_CAMPAIGN_LOG:-build-fuzz/campaign.log}
QUIET=${ATTN_QUIET_FILE:-/tmp/attn-quiet}
GOAL=${FUZZ_GOAL:-10000000}
GOAL_SLOW=${FUZZ_GOAL_SLOW:-1000000}
SLOW_TARGETS=" checkpoint seq2seq_checkpoint bert_weights resume_meta"
MAKE="make -s --no-print-directory"

log() {
    local line
    line="$(date '+%Y-%m-%d %H:%M:%S') $*"
    echo "$line" >> "$LOG"
    echo "$line"
}

goal_of() { case "$SLOW_TARGETS " in *" $1 "*) echo "$GOAL_SLOW" ;; *) echo "$GOAL" ;; esac; }

# state_get T KEY [DEFAULT]; state_set T KEY VALUE
state_get() {
    local v
    v=$(sed -n "s/^$2=//p" "$DIR/$1/state" 2>/dev/null | tail -n 1)
    echo "${v:-${3:-}}"
}
state_set() {
    local f="$DIR/$1/state"
    touch "$f"
    grep -v "^$2=" "$f" > "$f.new"
    echo "$2=$3" >> "$f.new"
    mv "$f.new" "$f"
}

status_table() {
    printf '%-19s %10s %10s %10s %5s %8s %7s %5s %5s %6s  %s\n' target goal executions units runs seconds exec/s cov ft corpus status
    local t
    for t in $TARGETS; do
        [ -d "$DIR/$t" ] || { printf '%-19s %10s %10s\n' "$t" "$(goal_of "$t")" "-"; continue; }
        local e s
        e=$(state_get "$t" execs 0)
        s=$(state_get "$t" seconds 0)
        printf '%-19s %10s %10s %10s %5s %8s %7s %5s %5s %6s  %s\n' "$t" "$(state_get "$t" goal "$(goal_of "$t")")" "$e" \
            "$(state_get "$t" units 0)" "$(state_get "$t" runs 0)" "$s" "$(( s > 0 ? e / s : 0 ))" \
            "$(state_get "$t" cov -)" "$(state_get "$t" ft -)" "$(state_get "$t" corpus -)" \
            "$(state_get "$t" status running)"
    done
}

ALL=$($MAKE fuzz-targets)
[ -n "$ALL" ] || { echo "fuzz_campaign.sh: make fuzz-targets listed nothing" >&2; exit 2; }
TARGETS=$ALL

case "${1:-}" in
--status)
    status_table
    exit 0 ;;
--retry)
    [ -n "${2:-}" ] && [ -d "$DIR/$2" ] || { echo "usage: fuzz_campaign.sh --retry TARGET (one with a state)" >&2; exit 2; }
    state_set "$2" status running
    log "$2: marked to continue (--retry)"
    exit 0 ;;
-*)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 2 ;;
esac
[ $# -gt 0 ] && TARGETS="$*"

mkdir -p "$DIR"
exec 9> "$DIR/lock"
flock -n 9 || { echo "fuzz_campaign.sh: a campaign is already running on $DIR" >&2; exit 1; }
echo $$ > "$DIR/pid"

# TMPDIR of the fuzzers (bert_weights writes its inputs there), in memory
# when /dev/shm is there; emptied after every run, since an interrupted
# fuzzer exits without its atexit clean-up.
SCRATCH=$(mktemp -d /dev/shm/attn-fuzz.XXXXXX 2> /dev/null || mktemp -d /tmp/attn-fuzz.XXXXXX) || exit 1
trap 'rm -rf "$SCRATCH"' EXIT

STOP=0
PID=
on_signal() {
    STOP=1
    [ -n "$PID" ] && kill -INT "$PID" 2> /dev/null
}
trap on_signal INT TERM

# Waits while the quiet file exists; returns 1 if the campaign is stopping.
wait_quiet() {
    [ -e "$QUIET" ] || return 0
    local t0
    t0=$(date +%s)
    log "paused: $QUIET exists"
    while [ -e "$QUIET" ] && [ "$STOP" = 0 ]; do sleep 1; done
    [ "$STOP" = 0 ] || return 1
    log "resumed: $QUIET gone after $(( $(date +%s) - t0 )) s"
}

# make fuzz-build, one job under nice -n 19; stopped (its process group)
# while the quiet file exists and started again after.
build() {
    local b rc stopped
    while :; do
        wait_quiet || return 1
        log "building the fuzz targets (nice -n 19, one job): $DIR/build.log"
        set -m # its own process group
        nice -n 19 $MAKE fuzz-build > "$DIR/build.log" 2>&1 &
        b=$!
        set +m
        stopped=0
        while kill -0 "$b" 2> /dev/null; do
            if [ -e "$QUIET" ] || [ "$STOP" = 1 ]; then
                kill -TERM -- "-$b" 2> /dev/null
                stopped=1
            fi
            sleep 1
        done
        wait "$b"
        rc=$?
        [ "$STOP" = 0 ] || return 1
        [ "$stopped" = 0 ] || { log "build stopped: $QUIET exists"; continue; }
        [ "$rc" = 0 ] || { log "build failed: $DIR/build.log"; return 1; }
        return 0
    done
}

if [ ! -d "$DIR/bin" ]; then
    build || exit 1
    mkdir -p "$DIR/bin.new"
    for t in $ALL; do cp "build-fuzz/fuzz_$t" "$DIR/bin.new/" || exit 1; done
    mv "$DIR/bin.new" "$DIR/bin"
    echo "$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- fuzz src apps include Makefile || echo ' (with uncommitted changes)')" > "$DIR/commit"
fi
log "campaign: targets $TARGETS; goals $GOAL ($GOAL_SLOW for the slow ones:$SLOW_TARGETS); binaries of $(cat "$DIR/commit"); pausing on $QUIET"

# One run of target t toward its goal; accounts for it in the state.
# Returns 1 on a finding.
run_once() {
    local t=$1 goal=$2 execs=$3 d="$DIR/$1"
    local n runs t0 rc interrupted=0 units inited counted cov ft corp last
    n=$(( $(state_get "$t" runs 0) + 1 ))
    local corpus_n
    corpus_n=$(find "$d/corpus" -maxdepth 1 -type f | wc -l)
    runs=$(( goal - execs + corpus_n + 64 )) # -runs counts the start-up pass too
    t0=$(date +%s)
    touch "$d/.run-start"
    # shellcheck disable=SC2046
    TMPDIR=$SCRATCH nice -n 19 "$DIR/bin/fuzz_$t" $(cat "$d/opts") -runs="$runs" -print_final_stats=1 \
        -artifact_prefix="$d/" "$d/corpus" > "$d/run-$n.log" 2>&1 &
    PID=$!
    while kill -0 "$PID" 2> /dev/null; do
        if [ -e "$QUIET" ] && [ "$interrupted" = 0 ]; then
            kill -INT "$PID" 2> /dev/null
            interrupted=1
            log "$t: interrupting run $n: $QUIET exists"
        fi
        sleep 1
    done
    wait "$PID"
    rc=$?
    PID=
    rm -rf "${SCRATCH:?}"/*
    [ "$STOP" = 1 ] && interrupted=1
    local secs=$(( $(date +%s) - t0 ))
    units=$(sed -n 's/^stat::number_of_executed_units: *//p' "$d/run-$n.log" | tail -n 1)
    inited=$(sed -n 's/^#\([0-9]*\)[[:space:]]*INITED.*/\1/p' "$d/run-$n.log" | head -n 1)
    units=${units:-0}
    inited=${inited:-0}
    if [ "$inited" -gt 0 ] && [ "$units" -gt "$inited" ]; then counted=$(( units - inited )); else counted=0; fi
    last=$(grep -E '^#[0-9]+.*cov: ' "$d/run-$n.log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.*cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(find "$d/corpus" -maxdepth 1 -type f | wc -l)
    execs=$(( execs + counted ))
    state_set "$t" runs "$n"
    state_set "$t" execs "$execs"
    state_set "$t" units "$(( $(state_get "$t" units 0) + units ))"
    state_set "$t" seconds "$(( $(state_get "$t" seconds 0) + secs ))"
    [ -n "$cov" ] && state_set "$t" cov "$cov"
    [ -n "$ft" ] && state_set "$t" ft "$ft"
    state_set "$t" corpus "$corp"
    local how="finished"
    [ "$interrupted" = 1 ] && how="interrupted"
    local artifacts
    artifacts=$(find "$d" -maxdepth 1 -type f -newer "$d/.run-start" \
        \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | sort)
    local finding=
    if [ -n "$artifacts" ]; then
        finding="$(echo $artifacts)"
    elif [ "$rc" != 0 ] && ! { [ "$interrupted" = 1 ] && [ "$rc" = 72 ]; }; then
        finding="exit code $rc without an artifact"
    fi
    log "$t: run $n $how: +$counted executions ($units units, $inited of them the start-up pass over the corpus) in $secs s; $execs of $goal so far in $(state_get "$t" seconds) s; cov ${cov:--} ft ${ft:--} corpus $corp; ${finding:+FINDING: }${finding:-no finding}"
    if [ -n "$finding" ]; then
        local why
        why=$(grep -m 1 -E 'ERROR: |SUMMARY: |Timeout|out-of-memory|deadly signal' "$d/run-$n.log")
        log "$t: FINDING, target stopped: ${why:-see $d/run-$n.log}; replay: $DIR/bin/fuzz_$t <artifact>"
        state_set "$t" status finding
        return 1
    fi
    return 0
}

for t in $TARGETS; do
    [ "$STOP" = 0 ] || break
    d="$DIR/$t"
    [ -x "$DIR/bin/fuzz_$t" ] || { log "$t: no binary in $DIR/bin (a campaign of other targets: rm -rf $DIR)"; continue; }
    if [ ! -d "$d/corpus" ]; then
        mkdir -p "$d/corpus.new" && cp fuzz/corpus/"$t"/* "$d/corpus.new/" && mv "$d/corpus.new" "$d/corpus" || exit 1
        $MAKE "fuzz-opts-$t" > "$d/opts"
        state_set "$t" status running
    fi
    status=$(state_get "$t" status running)
    [ "$status" = running ] || { log "$t: $status ($(state_get "$t" execs 0) executions), skipped"; continue; }
    goal=$(goal_of "$t")
    state_set "$t" goal "$goal"
    while [ "$STOP" = 0 ]; do
        execs=$(state_get "$t" execs 0)
        if [ "$execs" -ge "$goal" ]; then
            state_set "$t" status done
            log "$t: DONE: $execs executions in $(state_get "$t" seconds) s, $(state_get "$t" runs) runs, cov $(state_get "$t" cov) ft $(state_get "$t" ft), no finding"
            break
        fi
        wait_quiet || break
        run_once "$t" "$goal" "$execs" || break
    done
done
if [ "$STOP" = 1 ]; then
    log "campaign stopped by a signal; run scripts/fuzz_campaign.sh again to resume"
else
    log "campaign: every target done or stopped"
    status_table >> "$LOG"
fi
