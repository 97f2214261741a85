#!/usr/bin/env bash
# proxy/'s libraries are layered one way (obs 1 < http 2 < net 3 < ops 4 <
# cli 5, proxy/CMakeLists.txt): compiled as a lower library, every header of
# a higher one must stop the build with its guard's #error, and so must
# another library's internal header; a library's own public header and any
# lower library's public header must pass the guard. CC and the source root
# come from CTest. The guard's message is checked, not just the exit status,
# so a failure for another reason (a missing system header) does not count.
set -uo pipefail
cc=${CC:?} root=${TF_SOURCE_DIR:?}
declare -A rank=([obs]=1 [http]=2 [net]=3 [ops]=4 [cli]=5)
failures=0 checks=0

# guard_says LAYER HEADER: prints the guard's #error for HEADER compiled in
# library LAYER, or nothing. Only the preprocessor runs: the guards are
# preprocessor lines, and dependencies' headers need not be found.
guard_says() {
    printf '#include "%s"\n' "$2" |
        "$cc" -E -DTF_PROXY_LAYER="$1" -I "$root" -x c - -o /dev/null 2>&1 |
        grep -oE 'is above this library[^"]*|internal to proxy/[a-z]+[^"]*' | head -n 1
}

expect() { # expect WANT(refused|allowed) LAYER HEADER
    local said
    said=$(guard_says "${rank[$2]}" "$3")
    checks=$((checks + 1))
    if [ "$1" = refused ] && [ -z "$said" ]; then
        echo "FAIL: proxy/$2 may include $3"; failures=$((failures + 1))
    elif [ "$1" = allowed ] && [ -n "$said" ]; then
        echo "FAIL: proxy/$2 may not include $3: $said"; failures=$((failures + 1))
    fi
}

for lib in "${!rank[@]}"; do
    for hdr in "$root"/proxy/*/*.h; do
        rel=${hdr#"$root"/}
        owner=$(basename "$(dirname "$hdr")")
        public=$([ "$(basename "$hdr" .h)" = "$owner" ] && echo yes || echo no)
        if [ "${rank[$owner]}" -gt "${rank[$lib]}" ]; then
            expect refused "$lib" "$rel"
        elif [ "$owner" != "$lib" ] && [ "$public" = no ]; then
            expect refused "$lib" "$rel"
        elif [ "$public" = yes ] || [ "$owner" = "$lib" ]; then
            expect allowed "$lib" "$rel"
        fi
    done
done
echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ] && [ "$checks" -gt 0 ]
