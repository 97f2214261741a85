#!/usr/bin/env bash
# Fixtures for test_store: a small CA and bundles whose names collide on
# purpose (renewals, not-yet-valid replacements), made at test time.
#
#   store-fixtures.sh OUTDIR
#
# Idempotent (OUTDIR/DONE) and safe for concurrent callers (built in a
# temporary directory, renamed into place).
set -euo pipefail
out=${1:?usage: store-fixtures.sh OUTDIR}
[ -f "$out/DONE" ] && exit 0
mkdir -p -- "$(dirname -- "$out")"
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
umask 077
cd -- "$tmp"
now=$(date -u +%s)
gdate() { date -u -d "@$1" +%Y%m%d%H%M%SZ; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=tlsfront store test CA" -keyout ca.key -out ca.crt 2>/dev/null
mkdir db && : >db/index.txt && echo 1000 >db/serial
cat >ca.cnf <<CNF
[ca]
default_ca = test
[test]
dir = $tmp/db
database = \$dir/index.txt
serial = \$dir/serial
new_certs_dir = \$dir
certificate = $tmp/ca.crt
private_key = $tmp/ca.key
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
[leaf]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = \$ENV::TF_SAN
CNF

# bundle FILE CN SAN START-OFFSET-DAYS END-OFFSET-DAYS
bundle() {
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
        -keyout "$1.key" -out "$1.csr" 2>/dev/null
    TF_SAN=$3 openssl ca -batch -config ca.cnf -extensions leaf -notext -in "$1.csr" \
        -out "$1.crt" -startdate "$(gdate $((now + $4 * 86400)))" \
        -enddate "$(gdate $((now + $5 * 86400)))" 2>/dev/null
    cat "$1.crt" ca.crt "$1.key" >"$1.pem"
}

bundle acme portal.acme.example "DNS:portal.acme.example,DNS:chat.acme.example" -1 90
bundle wild "*.tenants.example" "DNS:*.tenants.example" -1 90
bundle system system.example "DNS:system.example" -1 90
bundle renew-short www.renew.example "DNS:www.renew.example" -60 30
bundle renew-long www.renew.example "DNS:www.renew.example" -1 200
bundle valid www.stale.example "DNS:www.stale.example" -1 100
bundle notyet www.stale.example "DNS:www.stale.example" 5 400
bundle other other.example "DNS:other.example" -1 90
# The same certificate as other.pem, with its key in a sibling file.
cp other.crt sib.crt
cat ca.crt >>sib.crt
cp other.key sib.key
bundle sibnew other.example "DNS:other.example" -1 91

rm -rf db ./*.csr ca.cnf
echo "$now" >DONE
cd /
mv -T -- "$tmp" "$out" 2>/dev/null || [ -f "$out/DONE" ] || { echo "cannot create $out" >&2; exit 1; }
