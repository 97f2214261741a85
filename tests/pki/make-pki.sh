#!/usr/bin/env bash
# Generates the test PKI for tests/certstore at test time: certificates expire,
# so none is committed, and neither is any private key.
#
#   make-pki.sh OUTDIR
#
# Idempotent: when OUTDIR/DONE exists with the current VERSION it does nothing;
# an older PKI is replaced. Concurrent callers take turns on OUTDIR.lock; the
# PKI is built in a temporary directory and renamed into place at the end.
# OUTDIR/DONE holds the Unix time the PKI was made: tests use it as "now" so
# that day counts do not drift with the age of the build tree.
#
# Layout: OUTDIR/{root,int,<leaf>}.{crt,key} and OUTDIR/bundles/*.pem (see
# tests/certstore/test_bundle.c for what each bundle must produce).
set -euo pipefail

out=${1:?usage: make-pki.sh OUTDIR}
# Bump when the set of files changes, so build trees with an older PKI remake it.
version=3
[ -f "$out/DONE" ] && [ "$(cat "$out/VERSION" 2>/dev/null)" = "$version" ] && exit 0

parent=$(dirname -- "$out")
mkdir -p -- "$parent"
# Callers in parallel: one builds, the others wait and find it done.
exec 8>"$out.lock"
flock 8
[ -f "$out/DONE" ] && [ "$(cat "$out/VERSION" 2>/dev/null)" = "$version" ] && exit 0
rm -rf -- "$out"
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT
umask 077
cd -- "$tmp"
now=$(date -u +%s)

cat >ext.cnf <<'EOF'
[ca_root]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ca_int]
basicConstraints = critical, CA:true, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $ENV::TF_SAN
[leaf_nosan]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf_client]
basicConstraints = CA:false
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $ENV::TF_SAN
[leaf_self]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
subjectAltName = $ENV::TF_SAN
EOF
export TF_SAN=DNS:unused.invalid

# `openssl ca` is the only CLI path to arbitrary validity dates in OpenSSL 3.0.
mkdir -p cadb
: >cadb/index.txt
cat >ca.cnf <<'EOF'
[ca]
default_ca = int
[int]
database = cadb/index.txt
new_certs_dir = cadb
certificate = int.crt
private_key = int.key
rand_serial = yes
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = supplied
EOF

eckey() { openssl genpkey -algorithm EC -pkeyopt "ec_paramgen_curve:${2:-P-256}" -out "$1" 2>/dev/null; }
rsakey() { openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${2:-2048}" -out "$1" 2>/dev/null; }
csr() { openssl req -new -key "$1" -subj "/O=tlsfront tests/CN=$2" -out "$3"; }

# sign NAME CN SAN [extension-section] [extra x509 args...]: NAME.crt from NAME.key.
sign() {
    local name=$1 cn=$2 san=$3 sect=${4:-leaf}
    shift 4 || shift $#
    csr "$name.key" "$cn" "$name.csr"
    TF_SAN=$san openssl x509 -req -in "$name.csr" -CA int.crt -CAkey int.key -set_serial "0x$(openssl rand -hex 8)" \
        -days 365 -extfile ext.cnf -extensions "$sect" -out "$name.crt" "$@" 2>/dev/null
}

# signdates NAME CN SAN START END: like sign, with explicit validity (YYYYMMDDHHMMSSZ).
signdates() {
    csr "$1.key" "$2" "$1.csr"
    TF_SAN=$3 openssl ca -batch -config ca.cnf -notext -in "$1.csr" -out "$1.crt" \
        -startdate "$4" -enddate "$5" -extfile ext.cnf -extensions leaf 2>/dev/null
}
gdate() { date -u -d "@$1" +%Y%m%d%H%M%SZ; }

# --- CAs -------------------------------------------------------------------
eckey root.key P-384
csr root.key "tlsfront Test Root CA" root.csr
openssl x509 -req -in root.csr -signkey root.key -set_serial 0x1000 -days 3650 \
    -extfile ext.cnf -extensions ca_root -out root.crt 2>/dev/null
eckey int.key
csr int.key "tlsfront Test Intermediate CA" int.csr
openssl x509 -req -in int.csr -CA root.crt -CAkey root.key -set_serial 0x1001 -days 1825 \
    -extfile ext.cnf -extensions ca_int -out int.crt 2>/dev/null

# A second intermediate under the first, for chains that stop one level short.
eckey int2.key
csr int2.key "tlsfront Test Second Intermediate CA" int2.csr
openssl x509 -req -in int2.csr -CA int.crt -CAkey int.key -set_serial 0x1002 -days 1825 \
    -extfile ext.cnf -extensions ca_int -out int2.crt 2>/dev/null

# An unrelated CA certificate, for "not part of the chain" warnings.
eckey other.key
openssl req -new -x509 -key other.key -subj "/O=elsewhere/CN=Unrelated CA" -days 3650 \
    -out other.crt 2>/dev/null

# --- leaves ----------------------------------------------------------------
eckey ec.key;       sign ec www.example.com "DNS:www.example.com,DNS:Example.COM"
eckey p384.key P-384; sign p384 p384.example.com "DNS:p384.example.com"
rsakey rsa.key;     sign rsa rsa.example.com "DNS:rsa.example.com"
eckey wild.key;     sign wild "*.example.com" "DNS:*.example.com,DNS:example.com"
eckey cn.key;       sign cn cnonly.example.com "" leaf_nosan
eckey sha1.key;     sign sha1 sha1.example.com "DNS:sha1.example.com" leaf -sha1
rsakey rsa1024.key 1024; sign rsa1024 weak.example.com "DNS:weak.example.com"
eckey client.key;   sign client client.example.com "DNS:client.example.com" leaf_client
eckey expiring.key; sign expiring soon.example.com "DNS:soon.example.com" leaf -days 10
eckey pubtld.key;   sign pubtld "*.com" "DNS:*.com"
eckey pubsfx.key;   sign pubsfx "*.co.uk" "DNS:*.co.uk,DNS:ok.example.com"
eckey badwild.key;  sign badwild good.example.com \
    "DNS:good.example.com,DNS:f*.example.com,DNS:*.*.example.com,DNS:a.*.example.com"
eckey under.key;    sign under under.example.com "DNS:under.example.com,DNS:my_host.example.com"
eckey ipsan.key;    sign ipsan ip.example.com "IP:127.0.0.1"
eckey deep.key
csr deep.key deep.example.com deep.csr
TF_SAN=DNS:deep.example.com openssl x509 -req -in deep.csr -CA int2.crt -CAkey int2.key \
    -set_serial 0x2001 -days 365 -extfile ext.cnf -extensions leaf -out deep.crt 2>/dev/null
eckey expired.key
signdates expired old.example.com "DNS:old.example.com" "$(gdate $((now - 90 * 86400)))" \
    "$(gdate $((now - 2 * 86400)))"
eckey notyet.key
signdates notyet new.example.com "DNS:new.example.com" "$(gdate $((now + 5 * 86400)))" \
    "$(gdate $((now + 400 * 86400)))"
eckey self.key
csr self.key self.example.com self.csr
TF_SAN=DNS:self.example.com openssl x509 -req -in self.csr -signkey self.key -days 365 \
    -set_serial 0x2000 -extfile ext.cnf -extensions leaf_self -out self.crt 2>/dev/null
openssl genpkey -algorithm ED25519 -out ed.key 2>/dev/null
openssl req -new -x509 -key ed.key -subj "/CN=ed.example.com" -days 365 \
    -addext "subjectAltName=DNS:ed.example.com" -out ed.crt 2>/dev/null
eckey mismatch.key

# --- bundles ---------------------------------------------------------------
mkdir bundles
b=bundles
pkcs1() { openssl rsa -in "$1" -traditional 2>/dev/null; }
sec1() { openssl ec -in "$1" 2>/dev/null; }

cat ec.crt int.crt ec.key >$b/ec-pkcs8.pem
cat ec.crt int.crt <(sec1 ec.key) >$b/ec-sec1.pem
{ cat ec.crt int.crt; openssl ecparam -name prime256v1; sec1 ec.key; } >$b/ec-ecparam.pem
cat p384.crt int.crt <(sec1 p384.key) >$b/p384.pem
cat rsa.crt int.crt <(pkcs1 rsa.key) >$b/rsa-pkcs1.pem
cat rsa.crt int.crt rsa.key >$b/rsa-pkcs8.pem
cat ec.key int.crt ec.crt >$b/reversed.pem
cat root.crt int.crt ec.crt ec.key >$b/root-first.pem
cat ec.crt int.crt root.crt ec.key >$b/with-root.pem
cat ec.crt ec.key >$b/no-int.pem
cat deep.crt int2.crt int.crt deep.key >$b/deep-full.pem
cat deep.crt int2.crt deep.key >$b/deep-missing.pem
cat ec.crt int.crt other.crt ec.key >$b/unrelated.pem
sed 's/$/\r/' $b/ec-pkcs8.pem >$b/crlf.pem
{ printf '\xef\xbb\xbf'; cat $b/rsa-pkcs1.pem; } >$b/bom.pem
{ openssl x509 -in ec.crt -text; openssl x509 -in int.crt -text; echo "key follows:"; cat ec.key; } >$b/text.pem
openssl pkcs12 -export -in ec.crt -certfile int.crt -inkey ec.key -passout pass:x \
    -keypbe AES-256-CBC -certpbe AES-256-CBC -out ec.p12 2>/dev/null
openssl pkcs12 -in ec.p12 -passin pass:x -nodes -out $b/p12.pem 2>/dev/null
# The same, key first, as operators get it when they export the key and certificates separately.
{ openssl pkcs12 -in ec.p12 -passin pass:x -nodes -nocerts
  openssl pkcs12 -in ec.p12 -passin pass:x -nokeys; } >$b/p12-keyfirst.pem 2>/dev/null
cat ec.crt int.crt >$b/sib.pem
cp ec.key $b/sib.key
cat rsa.crt int.crt >$b/sibcrt.crt
pkcs1 rsa.key >$b/sibcrt.key
cat ec.crt int.crt >$b/sibupper.CER
cp ec.key $b/sibupper.key
{ cat ec.crt int.crt; head -c 120 ec.key; echo; cat ec.key; } >$b/trunc-key.pem
cat ec.crt int.crt >$b/no-key.pem
cat ec.key >$b/no-cert.pem
cat ec.crt int.crt ec.key mismatch.key >$b/two-keys.pem
cat ec.crt int.crt mismatch.key >$b/mismatch.pem
{ cat ec.crt int.crt; openssl pkey -in ec.key -aes256 -passout pass:x; } >$b/enc-pkcs8.pem
{ cat rsa.crt int.crt; openssl rsa -in rsa.key -traditional -aes256 -passout pass:x 2>/dev/null; } >$b/enc-legacy.pem
printf 'this is not a certificate\r\n\x00\x01binary\n' >$b/garbage.pem
{ sed '3s/[A-Za-z]/!/g' ec.crt; cat int.crt ec.key; } >$b/bad-base64.pem
{ head -c 300 ec.crt; echo; cat ec.key; } >$b/truncated.pem
{ openssl x509 -in ec.crt -outform DER | head -c 200 | base64 -w 64 |
    sed '1i -----BEGIN CERTIFICATE-----' | sed '$a -----END CERTIFICATE-----'; cat ec.key; } >$b/bad-der.pem
cat ed.crt ed.key >$b/ed25519.pem
for n in wild p384 sha1 rsa1024 client expiring expired notyet pubtld pubsfx badwild under ipsan; do
    cat $n.crt int.crt $n.key >$b/$n.pem
done
cat cn.crt int.crt cn.key >$b/cnonly.pem
cat self.crt self.key >$b/selfsigned.pem
cp root.crt trust-root.pem

chmod 600 $b/* ./*.key
rm -rf cadb ./*.csr ec.p12 ca.cnf ext.cnf
echo "$version" >VERSION
echo "$now" >DONE

cd /
if ! mv -T -- "$tmp" "$out" 2>/dev/null; then
    # Another caller won the race: its copy is as good as ours.
    [ -f "$out/DONE" ] || { echo "make-pki.sh: cannot create $out" >&2; exit 1; }
fi
