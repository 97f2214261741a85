#!/usr/bin/env bash
# scripts/build-wolfssl.sh --verify-only (issue 18): every committed patch directory
# verifies; a tampered patch, an unpinned one, a missing one, an unexpected Debian
# version, and a patch that needs an offset or fuzz or does not apply at all each stop it
# with a message naming the culprit. The apply checks run on a small made-up source
# tree, so nothing here builds wolfSSL or reaches the network.
set -uo pipefail
src=${TF_SOURCE_DIR:?TF_SOURCE_DIR is not set}
script="$src/scripts/build-wolfssl.sh"
tmp=$(mktemp -d /tmp/tf-wolfssl-pins-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*"
    exit 1
}
ok() { echo "ok: $*"; }

# verify_ok DIR ARGS...: --verify-only with DIR as the patch directory succeeds.
verify_ok() {
    local dir=$1
    shift
    TLSFRONT_WOLFSSL_PATCHES=$dir bash "$script" --verify-only "$@" >"$tmp/out" 2>&1 ||
        fail "--verify-only $* on $dir failed: $(cat "$tmp/out")"
}
# verify_fails DIR PATTERN ARGS...: it fails, and its message matches PATTERN (grep -E).
verify_fails() {
    local dir=$1 pattern=$2
    shift 2
    if TLSFRONT_WOLFSSL_PATCHES=$dir bash "$script" --verify-only "$@" >"$tmp/out" 2>&1; then
        fail "--verify-only $* on $dir succeeded; expected /$pattern/"
    fi
    grep -qE "$pattern" "$tmp/out" || fail "expected /$pattern/ in: $(cat "$tmp/out")"
}

# ---- the committed patch directories ----------------------------------------------------
n=0
for dir in "$src"/scripts/wolfssl-patches/*/; do
    dir=${dir%/}
    verify_ok "$dir"
    # Each pins exactly one .dsc, and that version verifies.
    ver=$(awk '$2 ~ /^wolfssl_.*\.dsc$/ {sub(/^wolfssl_/, "", $2); sub(/\.dsc$/, "", $2); print $2}' \
        "$dir/SHA256SUMS")
    [ "$(echo "$ver" | grep -c .)" = 1 ] || fail "$dir/SHA256SUMS pins '$ver'"
    verify_ok "$dir" --source-version "$ver"
    verify_fails "$dir" "offers wolfssl .*tampered, but the patches" --source-version "$ver+tampered"
    grep -qF "are pinned to $ver " "$tmp/out" || fail "the pinned $ver is not named: $(cat "$tmp/out")"
    n=$((n + 1))
done
[ "$n" -ge 1 ] || fail "no patch directory under scripts/wolfssl-patches/"
ok "$n committed patch directories verify, and refuse another Debian version"

# ---- a tampered copy of a real patch ----------------------------------------------------
default="$src/scripts/wolfssl-patches/trixie"
cp -a "$default" "$tmp/tampered"
victim=$(ls "$tmp/tampered"/*.patch | head -n 1)
sed -i '0,/^+ /s/^+ /+  /' "$victim"
cmp -s "$victim" "$default/$(basename "$victim")" && fail "sed did not change $victim"
verify_fails "$tmp/tampered" "$(basename "$victim") does not match its checksum"
ok "a tampered $(basename "$victim") is refused by name"

cp -a "$default" "$tmp/extra"
cp "$tmp/extra/$(basename "$victim")" "$tmp/extra/zz-unreviewed.patch"
verify_fails "$tmp/extra" "zz-unreviewed.patch is not pinned"
ok "an unpinned patch is refused"

cp -a "$default" "$tmp/missing"
rm "$tmp/missing/$(basename "$victim")"
verify_fails "$tmp/missing" "pins $(basename "$victim"), which is missing"
ok "a pinned patch that is missing is refused"

cp -a "$default" "$tmp/nodsc"
sed -i '/\.dsc$/d' "$tmp/nodsc/SHA256SUMS"
verify_fails "$tmp/nodsc" "must name exactly one wolfssl_<version>.dsc"
ok "a patch directory that pins no Debian source is refused"

# ---- applying: zero fuzz, no offset -----------------------------------------------------
# A made-up tree, one patch made against it, pinned the way the real ones are.
mkdir -p "$tmp/tree/wolfssl-9.9/src" "$tmp/p"
seq 1 40 | sed 's/^/line /' >"$tmp/tree/wolfssl-9.9/src/a.c"
cp -a "$tmp/tree/wolfssl-9.9" "$tmp/edit"
sed -i 's/^line 20$/line 20 patched/' "$tmp/edit/src/a.c"
(cd "$tmp" && diff -u --label a/src/a.c --label b/src/a.c tree/wolfssl-9.9/src/a.c edit/src/a.c) \
    >"$tmp/p/one.patch"
[ -s "$tmp/p/one.patch" ] || fail "diff made an empty patch"
(cd "$tmp/p" && { echo "0000000000000000000000000000000000000000000000000000000000000000  wolfssl_9.9-1.dsc"; sha256sum one.patch; } >SHA256SUMS)
verify_ok "$tmp/p" --source-dir "$tmp/tree/wolfssl-9.9"
grep -q '^line 20$' "$tmp/tree/wolfssl-9.9/src/a.c" || fail "--verify-only patched the source tree itself"
ok "a patch that applies cleanly verifies, on a copy of the tree"

cp -a "$tmp/tree/wolfssl-9.9" "$tmp/shifted"
sed -i '1i line 0a\nline 0b' "$tmp/shifted/src/a.c"
verify_fails "$tmp/p" "one.patch does not apply to shifted with zero fuzz and no offset" \
    --source-dir "$tmp/shifted"
grep -q 'offset 2 lines' "$tmp/out" || fail "patch's own words (the offset) are not shown: $(cat "$tmp/out")"
ok "a patch that needs an offset is refused by name, with patch's output"

cp -a "$tmp/tree/wolfssl-9.9" "$tmp/fuzzy"
sed -i 's/^line 18$/line 18 changed upstream/' "$tmp/fuzzy/src/a.c"
verify_fails "$tmp/p" "one.patch does not apply to fuzzy" --source-dir "$tmp/fuzzy"
ok "a patch that would need fuzz is refused"

cp -a "$tmp/tree/wolfssl-9.9" "$tmp/gone"
sed -i 's/^line 20$/line 20 rewritten upstream/' "$tmp/gone/src/a.c"
verify_fails "$tmp/p" "one.patch does not apply to gone" --source-dir "$tmp/gone"
ok "a patch whose target changed is refused"

cp -a "$tmp/edit" "$tmp/already"
verify_fails "$tmp/p" "one.patch does not apply to already" --source-dir "$tmp/already"
ok "an already applied patch is refused"
echo "all ok"
