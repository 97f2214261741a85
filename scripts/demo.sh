#!/usr/bin/env bash
# The README's first command: installs what is needed, builds tlsfront with
# the assembly wolfSSL, and shows it working. Until the front door lands
# (issue 4) the demo validates the shipped example configuration; then it
# will start the proxy with a generated demo PKI.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target tlsfront

echo
echo "\$ build/tlsfront version"
build/tlsfront version
echo
echo "\$ build/tlsfront check -c examples/tlsfront.yaml"
build/tlsfront check -c examples/tlsfront.yaml
