#!/usr/bin/env bash
# Runs kmsconf's main job on the bundled two-host example against lab hosts (simulated KMS hosts
# in state files; no Windows needed): plan, apply, plan again to show nothing is left, then the
# day-2 view: simulated clients, status and doctor, which ends with no failed check.
#
# The example's addresses (kms01.corp.example, ...) are made-up names, so this copy of it points
# them at 127.0.0.1, where `kmsconf lab listen` holds each lab host's KMS port open as a running
# KMS host would; doctor's port check is a real TCP connect to it. Each run starts from fresh lab
# hosts in a temporary copy of the example, and stops the listener it started, by PID, on exit.
# `KMSCONF=PATH` runs that binary instead of building one (the end-to-end test does).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -n "${KMSCONF:-}" ]; then
  # the script works in a temporary directory: a relative path is taken from where it was run
  case "$KMSCONF" in
    */*) kmsconf="$(cd "$(dirname "$KMSCONF")" && pwd)/$(basename "$KMSCONF")" ;;
    *) kmsconf="$(command -v "$KMSCONF")" ;;
  esac
else
  cargo build --quiet --manifest-path "$root/Cargo.toml" --bin kmsconf
  kmsconf="$root/target/debug/kmsconf"
fi
work="$(mktemp -d)"
listener=""
cleanup() {
  if [ -n "$listener" ]; then
    kill "$listener" 2>/dev/null || true
    wait "$listener" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
cp -r "$root/examples/two-hosts/." "$work/"
rm -rf "$work/lab"
cd "$work"
sed 's/^address = .*/address = "127.0.0.1"/' kmsconf.toml > kmsconf.toml.new
mv kmsconf.toml.new kmsconf.toml
# Made-up keys in the product-key alphabet: a lab host accepts any well-formed key.
export KMS_HOST_KEY="BCDFG-HJKMP-QRTVW-XY234-6789B"
export KMS_HOST_KEY_2="PQRTV-WXY23-46789-BCDFG-HJKMP"
echo "== kmsconf validate"; "$kmsconf" validate
echo; echo "== kmsconf plan"; "$kmsconf" plan
echo; echo "== kmsconf apply --auto-approve"; "$kmsconf" apply --auto-approve
echo; echo "== kmsconf plan --detailed-exitcode (0 = converged)"; "$kmsconf" plan --detailed-exitcode
echo; echo "== kmsconf lab clients add (30 simulated clients ask kms01, 25 ask kms02)"
"$kmsconf" lab clients add lab/kms01.json --count 30
"$kmsconf" lab clients add lab/kms02.json --count 25
echo; echo "== kmsconf status"; "$kmsconf" status
echo; echo "== kmsconf lab listen lab/kms01.json lab/kms02.json & (the hosts' KMS ports on 127.0.0.1)"
"$kmsconf" lab listen lab/kms01.json lab/kms02.json > listen.log &
listener=$!
for _ in $(seq 100); do
  if grep -q '^listening for' listen.log; then break; fi
  if ! kill -0 "$listener" 2>/dev/null; then
    wait "$listener" || true
    listener=""
    echo "quickstart: \`kmsconf lab listen\` stopped; its output is above" >&2
    exit 1
  fi
  sleep 0.1
done
cat listen.log
echo; echo "== kmsconf doctor"; "$kmsconf" doctor
