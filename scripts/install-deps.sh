#!/usr/bin/env bash
# Installs the Debian packages tlsfront builds, tests and benchmarks with.
# Runs apt-get only when something is missing, so a second run takes a moment.
set -euo pipefail

PKGS=(
    build-essential cmake pkg-config git
    libuv1-dev libhttp-parser-dev libyaml-dev libjansson-dev libcriterion-dev
    dpkg-dev autoconf automake libtool patch     # building wolfSSL from Debian's source package (and our patch)
    clang libclang-rt-14-dev                     # libFuzzer and sanitizer runtimes
    openssl curl gnutls-bin ca-certificates      # real peers in the end-to-end tests
    publicsuffix                                 # refusing wildcards on public suffixes (*.co.uk)
    python3                                      # the demo backend; JSON checks in tests
    prometheus                                   # promtool checks GET /metrics (tests/ops)
    pebble                                       # ACME test server and pebble-challtestsrv (tests/acme)
    libnghttp2-dev                               # HTTP/2 to clients (SPEC §12)
    nghttp2-client python3-h2                    # h2 peers in tests: nghttp, h2load, frame-level attacks
    chromium                                     # a real browser through the proxy (tests/browser)
    haproxy                                      # the L4 balancer in front (tests/proxy, SPEC §14) and benchmarks
    libsystemd-dev                               # sd_notify for the Type=notify unit (proxy/cli/notify.c)
    lintian systemd man-db logrotate             # checking the Debian package (scripts/package.sh, tests/pkg)
)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}" >&2
$SUDO apt-get update -q
# Through env: sudo's env_reset would drop a plain assignment.
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
