#!/usr/bin/env bash
# The Debian package (SPEC §14, scripts/package.sh), built from the tlsfront under test and
# checked from the outside: its control data and files (dpkg-deb -I, -x), lintian, the unit
# (systemd-analyze verify), the man pages (man -l), the logrotate file (logrotate -d), the
# default configuration (tlsfront check), and the packaged binary's sd_notify messages
# (notify_driver.py). Prints one line per check; exits 1 on the first failure, 77 (skipped)
# only when a tool it needs is not installed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=${TF_SOURCE_DIR:?TF_SOURCE_DIR is not set}
bin=${TF_TLSFRONT:?TF_TLSFRONT is not set}
tmp=$(mktemp -d /tmp/tf-pkg-test-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

fail() {
    echo "FAIL: $*"
    exit 1
}
ok() { echo "ok: $*"; }

for tool in dpkg-deb dpkg-shlibdeps lintian systemd-analyze man logrotate openssl python3 readelf; do
    command -v "$tool" >/dev/null || {
        echo "SKIP: $tool is not installed (scripts/install-deps.sh installs it)"
        exit 77
    }
done

# ---- building ---------------------------------------------------------------------------
deb=$(bash "$src/scripts/package.sh" --binary "$bin" --out "$tmp" 2>"$tmp/package.err") ||
    fail "package.sh: $(cat "$tmp/package.err")"
version=$("$bin" version | sed -n '1s/^tlsfront //p')
arch=$(dpkg --print-architecture)
[ "$deb" = "$tmp/tlsfront_${version}_${arch}.deb" ] || fail "package named $deb"
ok "package.sh built $(basename "$deb")"

# ---- control data -----------------------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = tlsfront ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version $(field Version), tlsfront version says $version"
[ "$(field Architecture)" = "$arch" ] || fail "Architecture: $(field Architecture)"
depends=$(field Depends)
dpkg-deb -I "$deb" >"$tmp/info" || fail "dpkg-deb -I"
for f in control conffiles md5sums postinst prerm postrm; do
    grep -q " $f" "$tmp/info" || fail "no $f in the control archive"
done
dpkg-deb -e "$deb" "$tmp/control"
printf '/etc/logrotate.d/tlsfront\n/etc/tlsfront/tlsfront.yaml\n' | diff - "$tmp/control/conffiles" >/dev/null ||
    fail "conffiles: $(cat "$tmp/control/conffiles")"
for s in postinst prerm postrm; do
    sh -n "$tmp/control/$s" || fail "$s: syntax error"
done
grep -q 'adduser --quiet --system --group --no-create-home --home /var/lib/tlsfront tlsfront' \
    "$tmp/control/postinst" || fail "postinst does not create the tlsfront system user"
ok "control: version $version, conffiles, maintainer scripts"

# ---- files --------------------------------------------------------------------------------
x=$tmp/x
dpkg-deb -x "$deb" "$x" || fail "dpkg-deb -x"
for f in usr/sbin/tlsfront usr/libexec/tlsfront/make-default-cert etc/tlsfront/tlsfront.yaml \
    etc/logrotate.d/tlsfront lib/systemd/system/tlsfront.service \
    usr/share/man/man8/tlsfront.8.gz usr/share/man/man5/tlsfront.yaml.5.gz \
    usr/share/doc/tlsfront/copyright usr/share/doc/tlsfront/changelog.gz; do
    [ -f "$x/$f" ] || fail "$f is not in the package"
done
dpkg-deb -c "$deb" >"$tmp/contents" || fail "dpkg-deb -c"
grep -q '^-rwxr-xr-x root/root .* ./usr/sbin/tlsfront$' "$tmp/contents" ||
    fail "usr/sbin/tlsfront is not root-owned mode 0755: $(grep sbin/tlsfront "$tmp/contents")"
readelf -S "$x/usr/sbin/tlsfront" | grep -q '\.debug_info\|\.symtab' && fail "the binary is not stripped"
[ "$("$x/usr/sbin/tlsfront" version | head -1)" = "tlsfront $version" ] || fail "the packaged binary's version"
ok "files: binary (stripped), configuration, unit, man pages, logrotate, copyright, changelog"

# Depends names the package of every library the binary needs, at the version installed here
# or lower.
for lib in $(readelf -d "$x/usr/sbin/tlsfront" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|'"$arch"'/ {print $NF; exit}')
    [ -n "$path" ] || path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
    owner=$(dpkg -S "$(realpath "$path")" 2>/dev/null | head -1 | cut -d: -f1)
    [ -n "$owner" ] || owner=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
    [ -n "$owner" ] || fail "$lib ($path): no package owns it"
    [[ ",$depends," =~ ,\ ?$owner[\ ,] ]] || fail "Depends ($depends) lacks $owner, which has $lib"
done
ok "Depends covers every shared library: $depends"

# ---- lintian ------------------------------------------------------------------------------
lintian --fail-on error,warning --tag-display-limit 0 "$deb" >"$tmp/lintian" 2>&1 ||
    fail "lintian: $(grep -v 'root privileges' "$tmp/lintian")"
grep -q '^[EW]:' "$tmp/lintian" && fail "lintian: $(cat "$tmp/lintian")"
ok "lintian: no errors or warnings"

# ---- the unit -----------------------------------------------------------------------------
# systemd-analyze checks that the commands exist: a root with the package's files, the host's
# units (sysinit.target...) and /bin/kill; the man pages come from the package.
root=$tmp/root
mkdir -p "$root/bin" "$root/usr/lib/systemd"
cp -a "$x/." "$root/"
cp /bin/kill "$root/bin/"
cp -a /lib/systemd/system "$root/usr/lib/systemd/"
verify() { MANPATH=$x/usr/share/man systemd-analyze verify --root="$root" tlsfront.service 2>&1; }
out=$(verify) || fail "systemd-analyze verify: $out"
[ -z "$out" ] || fail "systemd-analyze verify warns: $out"
unit=$root/lib/systemd/system/tlsfront.service
for want in Type=notify User=tlsfront Group=tlsfront AmbientCapabilities=CAP_NET_BIND_SERVICE \
    CapabilityBoundingSet=CAP_NET_BIND_SERVICE NoNewPrivileges=yes ProtectSystem=strict \
    'ReadWritePaths=/etc/tlsfront/certs /var/lib/tlsfront /var/log/tlsfront' \
    'ExecReload=/bin/kill -HUP $MAINPID' \
    'ExecStart=/usr/sbin/tlsfront run -c /etc/tlsfront/tlsfront.yaml'; do
    grep -qxF "$want" "$unit" || fail "the unit lacks $want"
done
# The check can fail: a unit whose command is missing does not verify.
sed -i 's|^ExecStart=/usr/sbin/tlsfront|ExecStart=/usr/sbin/tlsfront-missing|' "$unit"
verify >/dev/null && fail "systemd-analyze verify accepts a unit whose ExecStart is missing"
ok "systemd-analyze verify passes on the unit (and fails on a broken copy)"

# ---- man pages ----------------------------------------------------------------------------
for page in man8/tlsfront.8.gz man5/tlsfront.yaml.5.gz; do
    p=$x/usr/share/man/$page
    text=$(MANWIDTH=80 man -l "$p" 2>"$tmp/man.err") || fail "man -l $page: $(cat "$tmp/man.err")"
    [ -s "$tmp/man.err" ] && fail "man -l $page: $(cat "$tmp/man.err")"
    # groff's own warnings, as lintian asks for them.
    warn=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$p" 2>&1 >/dev/null)
    [ -z "$warn" ] || fail "man $page warns: $warn"
    for section in NAME SYNOPSIS DESCRIPTION "SEE ALSO"; do
        grep -q "^$section" <<<"$text" || fail "$page has no $section section"
    done
    grep -q "tlsfront $version" <<<"$text" || fail "$page does not name version $version"
done
ok "man -l renders tlsfront(8) and tlsfront.yaml(5) without warnings"

# ---- logrotate ----------------------------------------------------------------------------
# The tlsfront user exists only where the package is installed: the test's user instead.
grep -q '^\s*create 0640 tlsfront adm$' "$x/etc/logrotate.d/tlsfront" ||
    fail "logrotate does not create the new log as tlsfront:adm 0640"
sed -e "s|/var/log/tlsfront|$tmp/log|" -e "s|create 0640 tlsfront adm|create 0640 $(id -un) $(id -gn)|" \
    "$x/etc/logrotate.d/tlsfront" >"$tmp/logrotate.conf"
mkdir -m 0750 "$tmp/log" && touch "$tmp/log/access.log"
logrotate -d -s "$tmp/logrotate.state" "$tmp/logrotate.conf" >"$tmp/logrotate.out" 2>&1 ||
    fail "logrotate -d: $(cat "$tmp/logrotate.out")"
grep -qi 'error' "$tmp/logrotate.out" && fail "logrotate -d: $(cat "$tmp/logrotate.out")"
grep -q 'USR1' "$x/etc/logrotate.d/tlsfront" || fail "logrotate does not send SIGUSR1"
ok "logrotate -d reads the logrotate file"

# ---- the default configuration ------------------------------------------------------------
# With its paths moved under $tmp and a placeholder certificate made by the packaged helper,
# as the postinst makes one.
etc=$tmp/etc
mkdir -p "$etc/certs"
"$x/usr/libexec/tlsfront/make-default-cert" "$etc/certs/system.pem" || fail "make-default-cert"
[ "$(stat -c %a "$etc/certs/system.pem")" = 600 ] || fail "make-default-cert: mode $(stat -c %a "$etc/certs/system.pem")"
sed -e "s|/etc/tlsfront|$etc|g" -e "s|/var/lib/tlsfront|$tmp/lib|g" -e "s|/var/log/tlsfront|$tmp/log|g" \
    "$x/etc/tlsfront/tlsfront.yaml" >"$etc/tlsfront.yaml"
"$x/usr/sbin/tlsfront" check -c "$etc/tlsfront.yaml" >"$tmp/check.out" 2>&1 ||
    fail "tlsfront check on the default configuration: $(cat "$tmp/check.out")"
grep -q '^warning:\|^error:' "$tmp/check.out" && fail "tlsfront check warns: $(cat "$tmp/check.out")"
ok "tlsfront check accepts the default configuration with the placeholder certificate"

# ---- sd_notify ----------------------------------------------------------------------------
cat >"$tmp/run.yaml" <<EOF
log: {access: "off"}
listen: {https: ["127.0.0.1:0"]}
admin: {listen: "127.0.0.1:0"}
tls: {certs: [], default_cert: "$etc/certs/system.pem"}
tenants: {all: {hosts: ["*"], backends: ["127.0.0.1:9"]}}
EOF
python3 "$here/notify_driver.py" "$x/usr/sbin/tlsfront" "$tmp/run.yaml" "$tmp" || exit 1
echo "all package checks passed"
