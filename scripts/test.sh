#!/usr/bin/env bash
# README's test command. Installs the Debian packages the end-to-end tests need when they are
# missing, then runs `cargo test --workspace` (extra arguments are passed on to it).
#
# The tests start their own BIND 9 (`named`, checked with `dig` and `nsupdate`) and OpenSSH
# server on 127.0.0.1, their own Samba AD DC (`samba`, provisioned with `samba-tool`, tickets from
# `kinit`; activation objects seeded with `ldbadd`) on 127.0.0.2, their own MIT KDC (`krb5kdc`, its realm made with `kdb5_util` and
# `kadmin.local`) on 127.0.0.1, and check the metrics and alert rules with Prometheus' `promtool`.
# The WinRM tests read pypsrp's recorded Windows traffic, which this script downloads, with Python
# packages it installs in a venv; two of them (python-gssapi, pykrb5) build against MIT krb5's
# headers (`libkrb5-dev`). They fail, never skip, without those programs: this script is
# what makes a fresh machine ready.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
  echo "test: cargo is missing; install a Rust toolchain (https://rustup.rs) first" >&2
  exit 1
fi

# package -> a program or file it installs (what the tests run); a package without one (the
# samba-ad-dc metapackage) is looked up with dpkg-query
declare -A provides=(
  [bind9]=/usr/sbin/named
  [bind9-dnsutils]=/usr/bin/nsupdate
  [openssh-server]=/usr/sbin/sshd
  [openssh-client]=/usr/bin/ssh-keygen
  [prometheus]=/usr/bin/promtool
  [samba]=/usr/sbin/samba
  [samba-ad-provision]=/usr/share/samba/setup/provision.ldif
  [krb5-user]=/usr/bin/kinit
  [krb5-kdc]=/usr/sbin/krb5kdc
  [krb5-admin-server]=/usr/sbin/kadmin.local
  [libkrb5-dev]=/usr/bin/krb5-config
  [ldb-tools]=/usr/bin/ldbadd
  [chromium]=/usr/bin/chromium
)
missing=()
for package in bind9 bind9-dnsutils openssh-server openssh-client prometheus samba samba-ad-dc \
  samba-ad-provision ldb-tools krb5-user krb5-kdc krb5-admin-server libkrb5-dev chromium; do
  if [ -n "${provides[$package]:-}" ]; then
    [ -e "${provides[$package]}" ] || missing+=("$package")
  elif ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$package")
  fi
done

# a python3 that can make a venv with pip (Debian's needs python3-venv; another one, pyenv's
# say, already can), and build C extensions (Debian's needs python3-dev and a C compiler)
if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing+=(python3 python3-venv)
fi
if ! python3 -c 'import os, sysconfig; assert os.path.exists(sysconfig.get_paths()["include"] + "/Python.h")' \
  >/dev/null 2>&1; then
  missing+=(python3-dev)
fi
command -v cc >/dev/null 2>&1 || missing+=(gcc)

if [ "${#missing[@]}" -gt 0 ]; then
  install="apt-get update && apt-get install -y ${missing[*]}"
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing ${missing[*]}" >&2
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
  elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
    echo "test: installing ${missing[*]} (with sudo)" >&2
    sudo apt-get update
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
  else
    echo "test: the tests need ${missing[*]}; install them as root, then run this script again:" >&2
    echo "  $install" >&2
    exit 1
  fi
fi

# Python test venv: the test WinRM endpoint (tests/winrm/server.py) and the recorded-traffic
# tests run with this interpreter; pip runs again only when the pinned requirement line changes
# (gssapi and krb5, pyspnego's Kerberos, build from source here: about 4 minutes on 2 cores)
requirements="pyyaml==6.0.2 pyspnego==0.12.4 cryptography==50.0.2 gssapi==1.12.0 krb5==0.10.0"
venv=target/test-venv
if [ "$(cat "$venv/requirements.txt" 2>/dev/null)" != "$requirements" ]; then
  python3 -m venv "$venv"
  # shellcheck disable=SC2086 # one word per requirement
  "$venv/bin/pip" install -q --disable-pip-version-check $requirements
  echo "$requirements" >"$venv/requirements.txt"
fi
export KMSCONF_TEST_PYTHON="$PWD/$venv/bin/python"
# pypsrp 0.9.1's recorded WinRM traffic (downloaded once into the cache, never committed)
"$KMSCONF_TEST_PYTHON" scripts/winrm-fixtures.py --cache target/test-cache \
  --out target/test-cache/wsman-fixtures.json
export KMSCONF_WSMAN_FIXTURES="$PWD/target/test-cache/wsman-fixtures.json"

# the PowerShell kmsconf sends a Windows host (agent.ps1 and the bootstrap) must parse: nothing
# here runs PowerShell, so the tree-sitter PowerShell grammar checks it (scripts/ps-syntax.py), in
# a venv of its own made when its pinned requirement line changes
ps_requirements="tree-sitter==0.26.1 tree-sitter-powershell==0.26.4"
ps_venv=target/ps-venv
if [ "$(cat "$ps_venv/requirements.txt" 2>/dev/null)" != "$ps_requirements" ]; then
  python3 -m venv "$ps_venv"
  # shellcheck disable=SC2086 # one word per requirement
  "$ps_venv/bin/pip" install -q --disable-pip-version-check $ps_requirements
  echo "$ps_requirements" >"$ps_venv/requirements.txt"
fi
"$ps_venv/bin/python" scripts/ps-syntax.py

exec cargo test --workspace "$@"
