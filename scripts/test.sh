#!/usr/bin/env bash
# The whole test suite: installs what is missing, then builds and runs the
# Criterion suites three ways — a normal build, an AddressSanitizer +
# UndefinedBehaviorSanitizer build, and the libFuzzer targets for a bounded
# time each — then a ThreadSanitizer soak of the proxy, and ends with one
# summary line.
#
#   TF_FUZZ_SECONDS=N   seconds per fuzz target (default 20; 0 skips fuzzing)
#   TF_TSAN_SECONDS=N   seconds of the ThreadSanitizer soak (default 20; 0 skips it)
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh || { echo "test: installing dependencies failed" >&2; exit 1; }

fuzz_seconds=${TF_FUZZ_SECONDS:-20}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

passed=0
failed=0
broken=()

# run_build NAME DIR CMAKE-ARGS...: configure, build, ctest; tallies results.
run_build() {
    local name=$1 dir=$2
    shift 2
    echo "=== $name build ($dir)"
    mkdir -p "$dir"
    if ! cmake -S . -B "$dir" "$@" >"$dir/configure.log" 2>&1; then
        tail -n 30 "$dir/configure.log"
        broken+=("$name: configure failed")
        return
    fi
    if ! cmake --build "$dir" -j"$(nproc)" >"$dir/build.log" 2>&1; then
        grep -E 'error|Error' "$dir/build.log" | head -n 30
        broken+=("$name: build failed (see $dir/build.log)")
        return
    fi
    (cd "$dir" && ctest --output-on-failure --timeout 600 -j2) | tee "$dir/ctest.log"
    local line p f
    line=$(grep -E 'tests passed, [0-9]+ tests failed out of [0-9]+' "$dir/ctest.log" | tail -n 1)
    if [ -z "$line" ]; then
        broken+=("$name: ctest printed no summary")
        return
    fi
    f=$(sed -E 's/.* ([0-9]+) tests failed out of ([0-9]+).*/\1/' <<<"$line")
    p=$(( $(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line") - f ))
    passed=$((passed + p))
    failed=$((failed + f))
    [ "$f" -eq 0 ] || broken+=("$name: $f failed")
}

run_build normal build -DCMAKE_BUILD_TYPE=RelWithDebInfo
run_build sanitizers build-asan -DCMAKE_BUILD_TYPE=Debug -DTLSFRONT_SANITIZE=ON \
    -DTLSFRONT_BENCH=OFF
if [ "$fuzz_seconds" -gt 0 ]; then
    run_build fuzz build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
        -DTLSFRONT_FUZZ=ON -DTLSFRONT_TESTS=OFF -DTLSFRONT_BENCH=OFF \
        -DTLSFRONT_FUZZ_SECONDS="$fuzz_seconds"
fi

# Threads: Criterion does not run under ThreadSanitizer, so the proxy built
# with it runs two workers under load while reloads, renewals and admin file
# work cross threads (scripts/tsan-soak.sh). TF_TSAN_SECONDS=0 skips it.
tsan_seconds=${TF_TSAN_SECONDS:-20}
if [ "$tsan_seconds" -gt 0 ]; then
    echo "=== ThreadSanitizer soak (build-tsan)"
    if SOAK_SECONDS="$tsan_seconds" bash scripts/tsan-soak.sh build; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        broken+=("tsan soak failed")
    fi
fi

echo
for b in "${broken[@]}"; do echo "FAILED: $b"; done
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ ${#broken[@]} -eq 0 ]
