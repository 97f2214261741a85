#!/usr/bin/env bash
# Fixtures for test_tls_ctxcache: a root, an intermediate, and bundles
# (leaf, intermediate, key) issued by the intermediate:
#   ecdsa/t0.pem .. t11.pem   P-256, CN and SAN tN.cache.example
#   ecdsa/rsa.pem             RSA-2048, CN and SAN rsa.cache.example
#   ecdsa/default.pem         P-256, CN default.cache.example (the default)
#   rsa-default.pem           RSA-2048, CN rsadefault.cache.example
#   t0-renewed.pem            P-256, CN t0 renewed, SAN t0.cache.example
#   root.crt                  the trust anchor
#
#   cache-fixtures.sh OUTDIR
#
# Idempotent (OUTDIR/DONE) and safe for concurrent callers (built in a
# temporary directory, renamed into place).
set -euo pipefail
out=${1:?usage: cache-fixtures.sh OUTDIR}
[ -f "$out/DONE" ] && exit 0
mkdir -p -- "$(dirname -- "$out")"
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
umask 077
cd -- "$tmp"

ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
rsa() { openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1" 2>/dev/null; }

ec root.key
openssl req -x509 -new -key root.key -days 3650 -subj "/CN=tlsfront cache test root" \
    -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign \
    -out root.crt 2>/dev/null
ec inter.key
openssl req -new -key inter.key -subj "/CN=tlsfront cache test intermediate" -out inter.csr \
    2>/dev/null
printf 'basicConstraints=critical,CA:true,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign\n' \
    >inter.ext
openssl x509 -req -in inter.csr -CA root.crt -CAkey root.key -set_serial 0x1000 -days 3650 \
    -extfile inter.ext -out inter.crt 2>/dev/null

# leaf KEYGEN OUT CN NAME
leaf() {
    "$1" "$2.key"
    openssl req -new -key "$2.key" -subj "/CN=$3" -out "$2.csr" 2>/dev/null
    printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth\n' "$4" >"$2.ext"
    openssl x509 -req -in "$2.csr" -CA inter.crt -CAkey inter.key \
        -set_serial "0x$(openssl rand -hex 16)" -days 90 -extfile "$2.ext" -out "$2.crt" \
        2>/dev/null
    cat "$2.crt" inter.crt "$2.key" >"$2.pem"
    rm -f "$2.key" "$2.csr" "$2.ext" "$2.crt"
}

mkdir ecdsa
for i in $(seq 0 11); do
    leaf ec "ecdsa/t$i" "t$i.cache.example" "t$i.cache.example"
done
leaf rsa ecdsa/rsa rsa.cache.example rsa.cache.example
leaf ec ecdsa/default default.cache.example default.cache.example
leaf rsa rsa-default rsadefault.cache.example rsadefault.cache.example
leaf ec t0-renewed "t0 renewed" t0.cache.example
rm -f root.key inter.key inter.csr inter.ext
touch DONE
cd /
mv -T -- "$tmp" "$out" 2>/dev/null || true
