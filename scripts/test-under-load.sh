#!/usr/bin/env bash
# The test command (scripts/test.sh, as the README gives it) three times in a
# row while CPU hogs keep every core busy, as on a shared CI machine: a suite
# that holds only on a quiet machine fails here. Reports each run's result
# and duration; exits non-zero if any run failed.
#
#   TF_LOAD_RUNS=N    runs (default 3)
#   TF_LOAD_HOGS=N    CPU hogs (default: one per core, nproc)
#   Other variables (TF_FUZZ_SECONDS, TF_TSAN_SECONDS...) reach scripts/test.sh.
set -uo pipefail
cd "$(dirname "$0")/.."

runs=${TF_LOAD_RUNS:-3}
nhogs=${TF_LOAD_HOGS:-$(nproc)}
logdir=$(mktemp -d /tmp/tlsfront-under-load.XXXXXX)

hogs=()
stop_hogs() {
    for p in "${hogs[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${hogs[@]}"; do wait "$p" 2>/dev/null; done
    hogs=()
}
# The hogs go however this script ends (an error, Ctrl-C, a CI timeout).
trap stop_hogs EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq "$nhogs"); do
    # A busy loop in a shell of its own: a hog per core, never yielding.
    sh -c 'while :; do :; done' &
    hogs+=("$!")
done
echo "test-under-load: $nhogs CPU hogs (pids ${hogs[*]}); $runs runs of scripts/test.sh; logs in $logdir"

failed=0
results=()
for i in $(seq "$runs"); do
    start=$SECONDS
    bash scripts/test.sh >"$logdir/run$i.log" 2>&1
    rc=$?
    took=$((SECONDS - start))
    summary=$(grep -E '^total: ' "$logdir/run$i.log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        result="passed"
    else
        result="FAILED (exit $rc)"
        failed=$((failed + 1))
    fi
    line="run $i: $result in $((took / 60))m$((took % 60))s; ${summary:-no summary}"
    results+=("$line")
    echo "test-under-load: $line"
    grep -E '^FAILED: |^ *[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Exception)' "$logdir/run$i.log" |
        sed 's/^/    /'
done
stop_hogs

echo
for r in "${results[@]}"; do echo "$r"; done
echo "test-under-load: $((runs - failed)) of $runs runs passed (logs in $logdir)"
[ "$failed" -eq 0 ]
