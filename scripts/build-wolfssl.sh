#!/usr/bin/env bash
# Builds wolfSSL from Debian's wolfssl source package with the x86-64 assembly
# enabled, into a cache keyed by the source version and the configure flags,
# and prints the install prefix. A second run with the same flags only prints.
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

# Our patches to Debian's source (scripts/wolfssl-patches/, applied after
# Debian's own, in name order; their text is part of the cache key):
# - set-ssl-ctx-native.patch adds wolfSSL_SwitchCTX(), which moves a server
#   connection whose handshake has not started to another WOLFSSL_CTX (what
#   wolfSSL_set_SSL_CTX does, but without OPENSSL_ALL, and freeing what the
#   connection owned): tls/ switches a handshake to a cached context of its
#   tenant's certificate instead of loading the chain and key into every
#   connection (docs/TLS.md, "Tenant contexts").
# - shared-rng.patch adds wolfSSL_CTX_SetSharedRng(): the connections of a
#   context use the caller's generator instead of instantiating a Hash_DRBG
#   each (a /dev/urandom open, read and close and a health test per
#   connection, and 136 bytes per idle one); tls/ keeps one per worker
#   generation, used from that worker's thread only.
# - sha256-shani.patch runs SHA-256 on the x86 SHA extensions (SHA-NI) where
#   the CPU has them, chosen at run time like wolfSSL's AVX paths: about 3-4x
#   the AVX2 code, and a handshake hashes ~100 blocks (transcript, HKDF,
#   Hash_DRBG). wolfSSL has its own since 5.7.0. TLSFRONT_SHA256_NO_SHANI=1 in
#   the environment of a process turns it off (for measuring).
# - transcript-one-hash.patch: a TLS 1.3 server hashes the handshake
#   transcript with the suite's hash alone once its ServerHello is out,
#   instead of SHA-256, SHA-384 and SHA-512 all the way through (the others
#   are never read again): about 2% of a full handshake here.
# - x25519-fixed-base.patch computes an X25519 public key (the server's key
#   share, every full handshake) from Ed25519's precomputed fixed-base table
#   instead of the generic ladder: 13 us instead of 38 here (that is what
#   --enable-ed25519 is for); later wolfSSL releases do the same.
patches_dir="$(cd "$(dirname "$0")" && pwd)/wolfssl-patches"
key=$( (printf '%s\n' "${FLAGS[@]}" "$CFLAGS_W"; cat "$patches_dir"/*.patch) | sha256sum | cut -c1-12)
work="$CACHE/wolfssl-src"
srclist="$work/sources.list"
lists="$work/lists"
mkdir -p "$lists/partial"

# Several build trees may configure at once (the test script's three, or
# parallel CI jobs): one build of the cache at a time.
exec 9>"$work/lock"
flock 9

# Both the release and the security suite, so apt-get source picks the
# highest patched version. The deb-src lines live only in our own files and
# reach apt through -o options: the machine's apt configuration is untouched.
cat > "$srclist" <<SRC
deb-src http://deb.debian.org/debian bookworm main
deb-src http://deb.debian.org/debian-security bookworm-security main
SRC
APT_OPTS=(-o "Dir::Etc::SourceList=$srclist" -o "Dir::Etc::SourceParts=/nonexistent"
          -o "Dir::State::Lists=$lists" -o "APT::Sandbox::User=root")

# The newest source version decides the cache key; look it up cheaply when the
# index is fresh (less than a day old), otherwise refresh it.
# apt keeps the server's timestamps on list files, so a stamp of our own marks
# when the index was last refreshed.
stamp="$work/lists.stamp"
if [ -z "$(find "$stamp" -mmin -1440 2>/dev/null)" ]; then
    { apt-get "${APT_OPTS[@]}" update -q >&2 && touch "$stamp"; } || {
        # Offline but already built: reuse the newest cached build.
        prev=$(ls -d "$CACHE"/wolfssl-5*-"$key" 2>/dev/null | sort -V | tail -n 1 || true)
        if [ -n "$prev" ] && [ -f "$prev/lib/libwolfssl.a" ]; then echo "$prev"; exit 0; fi
        echo "build-wolfssl: cannot reach Debian's source index" >&2; exit 1
    }
fi
ver=$(apt-cache "${APT_OPTS[@]}" showsrc wolfssl 2>/dev/null \
        | awk '/^Version:/ {print $2}' | sort -V | tail -n 1)
[ -n "$ver" ] || { echo "build-wolfssl: no wolfssl source package found" >&2; exit 1; }

prefix="$CACHE/wolfssl-$ver-$key"
# What `tlsfront version` reports; rewritten each run so it always matches the key.
record_flags() {
    mkdir -p "$prefix/share"
    printf '%s ' "${FLAGS[@]}" "CFLAGS=$CFLAGS_W" > "$prefix/share/tlsfront-configure-flags"
    echo "$ver" > "$prefix/share/tlsfront-wolfssl-debian-version"
}
if [ -f "$prefix/lib/libwolfssl.a" ] && [ -f "$prefix/share/tlsfront-wolfssl-debian-version" ]; then
    record_flags
    echo "$prefix"
    exit 0
fi

echo "build-wolfssl: building wolfssl $ver (assembly enabled) into $prefix" >&2
build="$work/build-$ver-$key"
log="$work/build-$ver-$key.log"
rm -rf "$build"
mkdir -p "$build"
if ! (
    set -e
    cd "$build"
    # dpkg-source applies Debian's patches (the security fixes among them).
    apt-get "${APT_OPTS[@]}" source -q "wolfssl=$ver"
    cd "$(find . -maxdepth 1 -mindepth 1 -type d -name 'wolfssl-*' | head -n 1)"
    for p in "$patches_dir"/*.patch; do
        patch -p1 --forward <"$p"
    done
    ./autogen.sh
    ./configure -q --prefix="$prefix" "${FLAGS[@]}" CFLAGS="$CFLAGS_W"
    make -j"$(nproc)"
    make install
) >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "build-wolfssl: failed; full log in $log" >&2
    exit 1
fi
record_flags
rm -rf "$build"
echo "$prefix"
