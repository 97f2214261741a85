#!/usr/bin/env bash
# Builds wolfSSL from Debian's wolfssl source package with the x86-64 assembly
# enabled and our patches applied, into a cache keyed by the source version,
# the configure flags and the patches, and prints the install prefix. A second
# run with the same flags only prints.
#
#   scripts/build-wolfssl.sh                 build (or find) it, print the prefix
#   scripts/build-wolfssl.sh --verify-only [--source-version V] [--source-dir DIR]
#       check the pins without building or any network: every patch against
#       SHA256SUMS, V (a Debian version) against the pinned one, and that the
#       patches apply to DIR (an unpacked source tree, left untouched: they are
#       applied to a copy) with zero fuzz and no offset. Exit 0 or 1 with why.
#
# TLSFRONT_WOLFSSL_SUITE (default trixie, wolfSSL 5.7.2; bookworm: 5.5.4): the
# Debian release whose source is built; its patches, and the pinned .dsc in SHA256SUMS, are in
# scripts/wolfssl-patches/<suite>/. TLSFRONT_WOLFSSL_PATCHES=DIR: another
# patch directory of that layout (the tests use it).
#
# Why not Debian's libwolfssl: it is a generic C build, 10-100x slower here
# (see docs/PERFORMANCE.md and SPEC §1).
set -euo pipefail

CACHE=${TLSFRONT_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/tlsfront}

# The features tlsfront uses; keep docs/BUILD.md in step with this list.
FLAGS=(
    --enable-static --disable-shared --with-pic
    --enable-intelasm --enable-aesni --enable-sp --enable-sp-asm
    --enable-tls13 --disable-oldtls --enable-sni --enable-alpn --enable-supportedcurves
    --enable-session-ticket --enable-curve25519 --enable-ed25519 --enable-ecc
    --enable-aesgcm=small --enable-chacha --enable-poly1305 --enable-harden
    --enable-certgen --enable-keygen --enable-certext --enable-certreq
    --disable-examples --disable-crypttests --disable-benchmark
)
# --enable-aesgcm=small: no 512-byte GHASH table in each AES-GCM key (two per
# TLS connection, 1 KiB idle). The table only serves the C code path: with
# AES-NI (--enable-aesni, checked at run time) wolfSSL never builds it.
#
# RDRAND as wolfSSL's random source (TLSFRONT_WOLFSSL_RDRAND=1, or the CMake
# option of the same name): no Hash_DRBG instantiation (health test,
# /dev/urandom read) per connection, but on this AMD host RDRAND's own cost
# leaves 0-3% per handshake, inside the noise, for trusting one hardware
# source. Off; and it needs proxy/listener.c to keep descriptor headroom:
# without the /dev/urandom open in wolfSSL_new, running out of descriptors
# reaches accept(), where libuv silently resets the backlog. docs/TLS.md has
# the decision and the patch.
if [ "${TLSFRONT_WOLFSSL_RDRAND:-0}" = 1 ]; then
    FLAGS+=(--enable-intelrand)
fi
# --enable-certreq (WOLFSSL_CERT_REQ): the ACME client (acme/csr.c) builds the
# certificate signing request it finalizes an order with; without it wolfCrypt
# has no wc_MakeCertReq. Changing this list changes the cache key, so existing
# trees rebuild the library once.
# No --enable-opensslextra: it forces KEEP_PEER_CERT, a 3.5 KB X509 inside
# every WOLFSSL object that a server without client certificates never uses
# (docs/TLS.md); tls/ and certstore/ use the native API only.
# WOLFSSL_ALT_NAMES: subjectAltName in generated certificates (bench fixtures).
# WOLFSSL_ALWAYS_KEEP_SNI: the server keeps the client's SNI after the
# handshake, for the log line of a ClientHello that tls/hello.c cannot read.
# WOLFSSL_EXTRA_ALERTS: fatal alerts on handshake errors (no shared suite:
# handshake_failure); opensslextra used to turn it on.
# WOLFSSL_TLS13_TICKET_BEFORE_FINISHED: the TLS 1.3 ticket goes out with the
# server's first flight (RFC 8446 4.6.1), one write per full handshake
# instead of two: about +4% full and +7% resumed handshakes per CPU-second.
CFLAGS_W="-O2 -g -DWOLFSSL_ALT_NAMES -DWOLFSSL_ALWAYS_KEEP_SNI -DWOLFSSL_EXTRA_ALERTS"
CFLAGS_W+=" -DWOLFSSL_TLS13_TICKET_BEFORE_FINISHED"
# WOLFSSL_IP_ALT_NAME: IP addresses in subjectAltName are decoded, so that a
# TLS backend addressed by an IP literal is verified against its IP SANs
# (wolfSSL_check_domain_name with the address, SPEC §14).
CFLAGS_W+=" -DWOLFSSL_IP_ALT_NAME"
# WOLFSSL_GETRANDOM: seeds from getrandom(2), not by opening /dev/urandom. The
# generator is shared by a worker's connections (shared-rng.patch below): its
# reseeds must not depend on a free descriptor, or running out of them once
# would leave it failed for every later handshake.
CFLAGS_W+=" -DWOLFSSL_GETRANDOM"

# Our patches to Debian's source (scripts/wolfssl-patches/<suite>/, applied
# after Debian's own, in name order; their text is part of the cache key).
# docs/BUILD.md has one line per patch: why, what it gains, upstream status.
# The default suite is trixie (wolfSSL 5.7.2), which needs three; bookworm
# (5.5.4) stays selectable, with the two more it needed (issue 18,
# docs/PERFORMANCE.md "wolfSSL base").
# - set-ssl-ctx-native.patch adds wolfSSL_SwitchCTX(), which moves a server
#   connection whose handshake has not started to another WOLFSSL_CTX (what
#   wolfSSL_set_SSL_CTX does, but without OPENSSL_ALL, and freeing what the
#   connection owned): tls/ switches a handshake to a cached context of its
#   tenant's certificate instead of loading the chain and key into every
#   connection (docs/TLS.md, "Tenant contexts").
# - shared-rng.patch adds wolfSSL_CTX_SetSharedRng(): the connections of a
#   context use the caller's generator instead of instantiating a Hash_DRBG
#   each (a seed read and a health test per connection, and 136 bytes per
#   idle one); tls/ keeps one per worker generation, used from that worker's
#   thread only.
# - x25519-fixed-base.patch computes an X25519 public key (the server's key
#   share, every full handshake) from Ed25519's precomputed fixed-base table
#   instead of the generic ladder (that is what --enable-ed25519 is for).
# - bookworm only: sha256-shani.patch (SHA-256 on the x86 SHA extensions,
#   which wolfSSL has itself since 5.7.0; TLSFRONT_SHA256_NO_SHANI=1 turns it
#   off) and transcript-one-hash.patch (a TLS 1.3 server's transcript hashed
#   with its suite's hash alone after the ServerHello: under the 5% a patch
#   must earn, so trixie goes without it).
#
# Each patch is pinned by its checksum in SHA256SUMS, next to the one of the
# Debian .dsc it was made against; a patch must apply with zero fuzz and no
# offset. Whatever differs stops the build with what to do: this never builds
# a library with a patch missing or applied somewhere else than reviewed.
suite=${TLSFRONT_WOLFSSL_SUITE:-trixie}
case $suite in
    *[!a-z]* | '') echo "build-wolfssl: TLSFRONT_WOLFSSL_SUITE='$suite' is not a Debian suite name" >&2; exit 1 ;;
esac
patches_dir=${TLSFRONT_WOLFSSL_PATCHES:-"$(cd "$(dirname "$0")" && pwd)/wolfssl-patches/$suite"}

# die FIRST_LINE [MORE_LINES...]: the message, then exit 1.
die() {
    printf 'build-wolfssl: %s\n' "$1" >&2
    shift
    [ $# -eq 0 ] || printf '  %s\n' "$@" >&2
    exit 1
}

# The pinned Debian version: from the one .dsc line of SHA256SUMS.
pinned_version() {
    local dsc
    dsc=$(awk '$2 ~ /^wolfssl_.*\.dsc$/ {print $2}' "$patches_dir/SHA256SUMS")
    [ "$(printf '%s\n' "$dsc" | grep -c .)" = 1 ] ||
        die "$patches_dir/SHA256SUMS must name exactly one wolfssl_<version>.dsc"
    dsc=${dsc#wolfssl_}
    echo "${dsc%.dsc}"
}

# Every *.patch listed in SHA256SUMS with its checksum, and every listed one there.
verify_patch_sums() {
    local sums="$patches_dir/SHA256SUMS" p name want got
    [ -d "$patches_dir" ] || die "no patch directory $patches_dir (TLSFRONT_WOLFSSL_SUITE=$suite)"
    [ -f "$sums" ] || die "$sums is missing: every patch and the Debian .dsc are pinned there"
    for p in "$patches_dir"/*.patch; do
        [ -e "$p" ] || continue
        name=$(basename "$p")
        want=$(awk -v n="$name" '$2 == n {print $1}' "$sums")
        [ -n "$want" ] || die "$name is not pinned in $sums." \
            "If it is meant to be applied, add its line: (cd $patches_dir && sha256sum $name >> SHA256SUMS)"
        got=$(sha256sum "$p" | cut -d' ' -f1)
        [ "$got" = "$want" ] || die "$name does not match its checksum in $sums" \
            "(pinned $want, file $got). Someone changed the patch: review the change," \
            "check it applies (--verify-only --source-dir), then update its line in SHA256SUMS."
    done
    while read -r want name; do
        case $name in
            *.patch) [ -f "$patches_dir/$name" ] || die "$sums pins $name, which is missing from $patches_dir" ;;
        esac
    done <"$sums"
}

# $1: the Debian version found (in the source index).
verify_source_version() {
    local pin
    pin=$(pinned_version)
    [ "$1" = "$pin" ] && return 0
    die "Debian's $suite source index offers wolfssl $1, but the patches in $patches_dir" \
        "are pinned to $pin (its .dsc in SHA256SUMS). Not building an unchecked combination." \
        "To move: unpack $1 (apt-get source), run scripts/build-wolfssl.sh --verify-only" \
        "--source-dir <its directory>, regenerate any patch it rejects against $1, then put" \
        "the new .dsc's sha256 (apt-cache showsrc wolfssl) and the patches' in SHA256SUMS."
}

# Applies the patches to the source tree in $1 (its top directory), in name
# order; a patch that needs fuzz or an offset, or does not apply, stops here.
apply_patches() {
    local p out
    for p in "$patches_dir"/*.patch; do
        [ -e "$p" ] || continue
        if ! out=$(cd "$1" && patch -p1 --forward -F0 --no-backup-if-mismatch <"$p" 2>&1) ||
            printf '%s\n' "$out" | grep -qE '^Hunk #|Reversed|previously applied'; then
            printf '%s\n' "$out" >&2
            die "$(basename "$p") does not apply to $(basename "$1") with zero fuzz and no offset" \
                "(patch's output above). Regenerate it against this source (docs/BUILD.md, \"Our" \
                "patches to Debian's source\") and update its line in $patches_dir/SHA256SUMS."
        fi
    done
}

if [ "${1:-}" = --verify-only ]; then
    shift
    verify_patch_sums
    pin=$(pinned_version)
    while [ $# -gt 0 ]; do
        case $1 in
            --source-version) verify_source_version "${2:?--source-version needs a version}"; shift 2 ;;
            --source-dir)
                [ -d "${2:-}" ] || die "--source-dir needs a directory"
                tmp=$(mktemp -d "${TMPDIR:-/tmp}/build-wolfssl-verify.XXXXXX")
                trap 'rm -rf "$tmp"' EXIT
                cp -a "$2" "$tmp/$(basename "$2")"
                apply_patches "$tmp/$(basename "$2")"
                shift 2 ;;
            *) die "unknown option $1 (--verify-only [--source-version V] [--source-dir DIR])" ;;
        esac
    done
    echo "build-wolfssl: $patches_dir: the patches match SHA256SUMS (pinned to wolfssl $pin)" >&2
    exit 0
fi
[ $# -eq 0 ] || die "unknown option $1 (none, or --verify-only)"

verify_patch_sums
pin=$(pinned_version)
key=$( (printf '%s\n' "${FLAGS[@]}" "$CFLAGS_W"; cat "$patches_dir"/*.patch) | sha256sum | cut -c1-12)
prefix="$CACHE/wolfssl-$pin-$key"
work="$CACHE/wolfssl-src"
# One index per suite: builds of two suites never see each other's versions.
srclist="$work/sources-$suite.list"
lists="$work/lists-$suite"
stamp="$work/lists-$suite.stamp"
mkdir -p "$lists/partial"

# What `tlsfront version` reports; rewritten each run so it always matches the key.
record_flags() {
    mkdir -p "$prefix/share"
    printf '%s ' "${FLAGS[@]}" "CFLAGS=$CFLAGS_W" > "$prefix/share/tlsfront-configure-flags"
    echo "$pin" > "$prefix/share/tlsfront-wolfssl-debian-version"
}
built() {
    [ -f "$prefix/lib/libwolfssl.a" ] && [ -f "$prefix/share/tlsfront-wolfssl-debian-version" ]
}

# Several build trees may configure at once (the test script's three, or
# parallel CI jobs): one build of the cache at a time.
exec 9>"$work/lock"
flock 9

# Both the release and the security suite, so that the index shows the newest
# patched version. The deb-src lines live only in our own files and reach apt
# through -o options: the machine's apt configuration is untouched.
cat > "$srclist" <<SRC
deb-src http://deb.debian.org/debian $suite main
deb-src http://deb.debian.org/debian-security $suite-security main
SRC
APT_OPTS=(-o "Dir::Etc::SourceList=$srclist" -o "Dir::Etc::SourceParts=/nonexistent"
          -o "Dir::State::Lists=$lists" -o "APT::Sandbox::User=root")

# The index is refreshed at most once a day (apt keeps the server's
# timestamps on list files, so a stamp of our own marks when). The pinned
# build, once made, needs no network: offline, or when Debian has moved on,
# it is still what this prints, with a warning for the latter.
if [ -z "$(find "$stamp" -mmin -1440 2>/dev/null)" ]; then
    if apt-get "${APT_OPTS[@]}" update -q >"$work/apt-update-$suite.log" 2>&1; then
        touch "$stamp"
    elif ! built; then
        cat "$work/apt-update-$suite.log" >&2
        die "cannot reach Debian's $suite source index, and wolfssl $pin is not built in $CACHE yet"
    fi
fi
ver=$(apt-cache "${APT_OPTS[@]}" showsrc wolfssl 2>/dev/null \
        | awk '/^Version:/ {print $2}' | sort -V | tail -n 1 || true)
if built; then
    if [ -n "$ver" ] && [ "$ver" != "$pin" ]; then
        echo "build-wolfssl: warning: Debian's $suite now has wolfssl $ver; using the pinned" \
             "$pin (scripts/build-wolfssl.sh --verify-only --source-version $ver says what to do)" >&2
    fi
    record_flags
    echo "$prefix"
    exit 0
fi
[ -n "$ver" ] || die "no wolfssl source package in Debian's $suite index"
verify_source_version "$ver"

echo "build-wolfssl: building wolfssl $ver (assembly enabled) into $prefix" >&2
build="$work/build-$ver-$key"
log="$work/build-$ver-$key.log"
rm -rf "$build"
mkdir -p "$build"
# The .dsc (which pins the orig and Debian tarballs by their checksums, as
# dpkg-source checks) must be the one the patches were made against.
if ! (cd "$build" && apt-get "${APT_OPTS[@]}" source -q --download-only "wolfssl=$ver") >"$log" 2>&1; then
    tail -n 20 "$log" >&2
    die "apt-get source wolfssl=$ver failed; full log in $log"
fi
dsc="wolfssl_${ver#*:}.dsc"
want=$(awk -v n="$dsc" '$2 == n {print $1}' "$patches_dir/SHA256SUMS")
got=$(sha256sum "$build/$dsc" | cut -d' ' -f1)
[ "$got" = "$want" ] || die "$dsc from Debian has sha256 $got, not the pinned $want" \
    "($patches_dir/SHA256SUMS): the same version with other contents. Not building it."
# dpkg-source applies Debian's patches (the security fixes among them).
(cd "$build" && dpkg-source -x "$dsc" src) >>"$log" 2>&1 || {
    tail -n 20 "$log" >&2
    die "dpkg-source -x $dsc failed; full log in $log"
}
apply_patches "$build/src"
if ! (
    set -e
    cd "$build/src"
    ./autogen.sh
    ./configure -q --prefix="$prefix" "${FLAGS[@]}" CFLAGS="$CFLAGS_W"
    make -j"$(nproc)"
    make install
) >>"$log" 2>&1; then
    tail -n 40 "$log" >&2
    die "failed; full log in $log"
fi
record_flags
rm -rf "$build"
echo "$prefix"
