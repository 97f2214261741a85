#!/usr/bin/env bash
# The README's first command: installs what is needed, builds tlsfront with
# the assembly wolfSSL, generates a demo PKI and configuration in ./demo, and
# shows tlsfront judging them. (The proxy itself, `tlsfront run`, joins the
# demo with the front-door issue.)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target tlsfront >/dev/null
demo=$(bash scripts/demo-pki.sh demo)

show() {
    echo
    echo "\$ $*"
    "$@"
}
tlsfront=build/proxy/tlsfront
show $tlsfront version
show $tlsfront check -c "$demo/tlsfront.yaml"
show $tlsfront cert "$demo/certs/acme.pem" "$demo/certs/wildcard.pem"
