#!/usr/bin/env bash
# Build bench_crypto (or use an existing build directory) and run it pinned to one core.
#
#   bench/crypto/run.sh [BUILD_DIR] [-- bench_crypto options...]
#
# Without BUILD_DIR, configures a Release build in /tmp/tlsfront-bench-crypto. The openssl
# child process that bench_crypto starts inherits the pinning, so both run on core 1 while
# core 0 keeps the rest of the machine. Set TF_BENCH_CPU to choose another core.
set -euo pipefail

src_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build_dir=/tmp/tlsfront-bench-crypto
if [[ $# -gt 0 && $1 != -- ]]; then
    build_dir=$1
    shift
fi
[[ ${1:-} == -- ]] && shift
cpu=${TF_BENCH_CPU:-1}

if [[ ! -f $build_dir/CMakeCache.txt ]]; then
    cmake -S "$src_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DTLSFRONT_TESTS=OFF \
        -DTLSFRONT_BENCH=ON >/dev/null
fi
cmake --build "$build_dir" --target bench_crypto -j2 >/dev/null

bin=$(find "$build_dir" -type f -name bench_crypto -perm -u+x | head -n1)
if [[ -z $bin ]]; then
    echo "run.sh: bench_crypto not found under $build_dir" >&2
    exit 1
fi
if command -v taskset >/dev/null; then
    exec taskset -c "$cpu" "$bin" "$@"
fi
echo "run.sh: taskset not found, running unpinned" >&2
exec "$bin" "$@"
