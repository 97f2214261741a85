#!/usr/bin/env bash
# Issues a certificate from the demo PKI's intermediate (scripts/demo-pki.sh)
# for the reload and admin tests.
#   issue.sh PKI OUT MODE NAME...
# MODE: "new" (new key, bundle leaf+intermediate+key), "nokey" (new key kept
# in OUT.key, bundle without it), or a key file to reuse (bundle leaf +
# intermediate + that key). DAYS: validity (default 90). Prints the new serial.
set -euo pipefail
pki=$1 out=$2 mode=$3
shift 3
san=""
for n in "$@"; do san="${san:+$san,}DNS:$n"; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "$mode" = new ] || [ "$mode" = nokey ]; then
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/key" 2>/dev/null
else
    cp "$mode" "$tmp/key"
fi
openssl req -new -key "$tmp/key" -subj "/CN=$1" -out "$tmp/csr" 2>/dev/null
printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n' \
    "$san" >"$tmp/ext"
# A serial of our own: parallel tests share the PKI directory.
openssl x509 -req -in "$tmp/csr" -CA "$pki/inter.crt" -CAkey "$pki/inter.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "${DAYS:-90}" -extfile "$tmp/ext" -out "$tmp/crt" 2>/dev/null
if [ "$mode" = nokey ]; then
    cat "$tmp/crt" "$pki/inter.crt" >"$out"
    cp "$tmp/key" "$out.key"
else
    cat "$tmp/crt" "$pki/inter.crt" "$tmp/key" >"$out"
fi
openssl x509 -noout -serial -in "$tmp/crt" | sed 's/serial=//'
