#!/usr/bin/env bash
# Builds the Debian package tlsfront_<version>_<arch>.deb (SPEC §14) with dpkg-deb, no
# debhelper: the executable (RelWithDebInfo, stripped), the default configuration and the
# logrotate file as conffiles, the systemd unit, the man pages, and the maintainer scripts
# that create the tlsfront user and its directories. The files come from packaging/.
#
#   bash scripts/package.sh [--binary FILE] [--out DIR]
#
#   --binary FILE  package this tlsfront executable instead of building one in build-pkg/
#                  (the tests package the one they built)
#   --out DIR      where the .deb goes (default: the current directory)
#
# Version: what `tlsfront version` prints (CMake's project version). Depends: what
# dpkg-shlibdeps computes from the executable's shared libraries, plus the tools the
# maintainer scripts run. TLSFRONT_MAINTAINER="Name <address>" sets Maintainer. Prints the
# path of the package.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=$PWD
bin=

usage() {
    sed -n '7,11p' "$0" >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
    --binary) [ $# -ge 2 ] || usage; bin=$(realpath "$2"); shift 2 ;;
    --out) [ $# -ge 2 ] || usage; out=$(realpath "$2"); shift 2 ;;
    *) usage ;;
    esac
done

die() {
    echo "package: $*" >&2
    exit 1
}

for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
    command -v "$tool" >/dev/null || die "$tool is missing: run scripts/install-deps.sh"
done

if [ -z "$bin" ]; then
    build=$src/build-pkg
    mkdir -p "$build"
    log=$build/package-build.log
    echo "package: building tlsfront (RelWithDebInfo) in $build" >&2
    # Debian's hardening flags (stack protector, _FORTIFY_SOURCE, full RELRO with -z now)
    # on top of the project's, as dpkg-buildflags gives them to Debian's own packages.
    export DEB_BUILD_MAINT_OPTIONS=hardening=+all
    cflags="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CFLAGS)"
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTLSFRONT_TESTS=OFF \
        -DTLSFRONT_BENCH=OFF -DCMAKE_C_FLAGS="$cflags" \
        -DCMAKE_EXE_LINKER_FLAGS="$(dpkg-buildflags --get LDFLAGS)" >"$log" 2>&1 ||
        die "cmake failed: see $log"
    cmake --build "$build" -j2 --target tlsfront >>"$log" 2>&1 ||
        die "the build failed: see $log"
    bin=$build/proxy/tlsfront
fi
[ -x "$bin" ] || die "$bin: no such executable"

version=$("$bin" version | sed -n '1s/^tlsfront //p')
[[ "$version" =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "'$bin version' printed no usable version: '$version'"
arch=$(dpkg --print-architecture)
# Reproducible dates: the last commit's, unless the caller fixes one.
epoch=${SOURCE_DATE_EPOCH:-$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)}
# Fixed, not the last commit's author: lintian refuses an address such as a merge's t@t.
maintainer=${TLSFRONT_MAINTAINER:-"tlsfront maintainers <maintainers@users.noreply.h-seed-eed0a8e1.example>"}

work=$(mktemp -d /tmp/tf-package-XXXXXX)
trap 'rm -rf "$work"' EXIT
root=$work/root
pkg=$src/packaging

# subst FILE: the file with @VERSION@ and @DATE@ filled in.
subst() {
    sed -e "s/@VERSION@/$version/g" -e "s/@DATE@/$(date -R -u -d "@$epoch")/g" "$1"
}

# gz NAME < TEXT: compressed the way Debian wants (-9, no name or time stamp inside).
gz() {
    install -d "$(dirname "$root/$1")"
    gzip -9n >"$root/$1"
    chmod 0644 "$root/$1"
}

install -D -m 0755 "$bin" "$root/usr/sbin/tlsfront"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/sbin/tlsfront"
install -D -m 0755 "$pkg/deb/make-default-cert" "$root/usr/libexec/tlsfront/make-default-cert"
install -D -m 0644 "$pkg/deb/tlsfront.yaml" "$root/etc/tlsfront/tlsfront.yaml"
install -D -m 0644 "$pkg/deb/tlsfront.logrotate" "$root/etc/logrotate.d/tlsfront"
install -D -m 0644 "$pkg/deb/tlsfront.service" "$root/lib/systemd/system/tlsfront.service"
subst "$pkg/man/tlsfront.8" | gz usr/share/man/man8/tlsfront.8.gz
subst "$pkg/man/tlsfront.yaml.5" | gz usr/share/man/man5/tlsfront.yaml.5.gz
doc=usr/share/doc/tlsfront
install -D -m 0644 "$pkg/deb/copyright" "$root/$doc/copyright"
subst "$pkg/deb/changelog" | gz "$doc/changelog.gz"
for f in README.md docs/CONFIG.md docs/OPERATIONS.md; do
    gz "$doc/$(basename "$f").gz" <"$src/$f"
done
install -D -m 0644 "$pkg/deb/lintian-overrides" "$root/usr/share/lintian/overrides/tlsfront"

# Depends: dpkg-shlibdeps reads the libraries' symbols files for the lowest versions that
# provide what the executable uses. It wants a debian/control naming the package.
mkdir -p "$work/src/debian"
printf 'Source: tlsfront\n\nPackage: tlsfront\nArchitecture: any\n' >"$work/src/debian/control"
shlibs=$(cd "$work/src" && dpkg-shlibdeps -O "$root/usr/sbin/tlsfront" 2>"$work/shlibdeps.err") ||
    die "dpkg-shlibdeps failed: $(cat "$work/shlibdeps.err")"
shlibs=${shlibs#shlibs:Depends=}
[ -n "$shlibs" ] || die "dpkg-shlibdeps found no shared library"

install -d -m 0755 "$root/DEBIAN"
for f in postinst prerm postrm; do
    install -m 0755 "$pkg/deb/$f" "$root/DEBIAN/$f"
done
printf '/etc/logrotate.d/tlsfront\n/etc/tlsfront/tlsfront.yaml\n' >"$root/DEBIAN/conffiles"
chmod 0644 "$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 md5sum) >"$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
# adduser and openssl: the postinst creates the user and a placeholder certificate.
cat >"$root/DEBIAN/control" <<EOF
Package: tlsfront
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $size
Depends: $shlibs, adduser, openssl
Section: httpd
Priority: optional
Description: SNI-aware TLS-terminating reverse proxy
 tlsfront accepts TLS on port 443, picks the certificate for each connection
 by the server name the client asked for (SNI), decrypts, and forwards HTTP/1.1
 and HTTP/2 requests to the backends of the tenant owning that name, or pipes
 the connection to a TCP backend (SIP, XMPP). Certificates and configuration
 reload while it runs, without dropping a connection; an admin API, Prometheus
 metrics and a built-in ACME client are included.
 .
 The package runs it as a systemd service under its own unprivileged user.
EOF
find "$root" -exec touch -h -d "@$epoch" {} +

deb=$out/tlsfront_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
