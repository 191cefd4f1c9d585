#!/usr/bin/env bash
# Checks, builds and runs kmsconf for Windows on this Linux machine (docs/src/windows-build.md):
# `cargo check` and `cargo clippy --all-targets -D warnings` for x86_64-pc-windows-gnu and
# x86_64-pc-windows-msvc, a windows-gnu `kmsconf.exe`, and under Wine its `--version`, the
# quickstart, the unit tests and the end-to-end tests that need no Linux daemon.
#
# rustup cannot download a Windows standard library here, so the image's nightly compiles one
# from source (`-Zbuild-std`), from Debian sid's `rust-src` (downloaded with apt-get through a
# private sources list and unpacked, never installed) linked into a private copy of that
# nightly. MinGW-w64 links the gnu build; clang-cl and llvm-lib build ring's C code for the msvc
# check; Wine 8.0 runs the result, with a stand-in `bcryptprimitives.dll` (scripts/windows/).
# Every step either runs or fails saying what is missing and what to change: none is skipped.
#
# What it makes (the toolchain copy, the unpacked rust-src, the Windows target directory, the Wine
# prefix; about 12 GB, 9 of them the target directory) lives in one cache outside the clone,
# `$KMSCONF_WINDOWS_CACHE` (default `${XDG_CACHE_HOME:-$HOME/.cache}/kmsconf-windows`), so a fresh
# clone's run is warm too.
#
#   bash scripts/windows-check.sh               everything above
#   bash scripts/windows-check.sh --e2e FILTER...
#       only the end-to-end tests whose name contains a FILTER (e.g. `quickstart::`), under Wine
#       (no check, clippy, quickstart or unit tests); a FILTER that matches no test is an error
set -euo pipefail
cd "$(dirname "$0")/.."

e2e_only=false
e2e_filter=()
case "${1:-}" in
  "") ;;
  --e2e)
    [ "$#" -ge 2 ] || { echo "usage: $0 [--e2e FILTER...]" >&2; exit 2; }
    e2e_only=true
    e2e_filter=("${@:2}")
    ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
  *) echo "usage: $0 [--e2e FILTER...]" >&2; exit 2 ;;
esac

# --- The pins: change these (and only these) when the image's nightly or Debian sid moves on.
# The nightly that compiles the standard library (`rustup toolchain list`), and the version it
# must report; sid's `rust-src` it compiles, with the SHA-256 of its .deb (`apt-cache show`).
nightly=nightly-x86_64-unknown-linux-gnu
nightly_release="rustc 1.97.0-nightly (e50aa6fba 2026-05-19)"
rust_src_version=1.97.1+dfsg1-1
rust_src_sha256=d0637f8f464234ffb12baa55fc0e851f5f9dcfd0199c1a0922e4488a4f591992
sid_mirror=http://deb.debian.org/debian

work="${KMSCONF_WINDOWS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kmsconf-windows}"
gnu=x86_64-pc-windows-gnu
msvc=x86_64-pc-windows-msvc
started=$SECONDS

fail() {
  echo "windows-check: $*" >&2
  exit 1
}
step() {
  echo "== windows-check: $* ($((SECONDS - started)) s)"
}

# --- System packages: installed when missing (root, or sudo), as scripts/test.sh does.
declare -A provides=(
  [gcc-mingw-w64-x86-64]=/usr/bin/x86_64-w64-mingw32-gcc
  [wine64]=/usr/lib/wine/wine64
  [clang-14]=/usr/bin/clang-14
  [llvm-14]=/usr/bin/llvm-lib-14
)
missing=()
for package in "${!provides[@]}"; do
  [ -e "${provides[$package]}" ] || missing+=("$package")
done
command -v apt-get >/dev/null 2>&1 || fail "apt-get is missing: this script needs Debian (bookworm) to fetch sid's rust-src"
command -v dpkg-deb >/dev/null 2>&1 || fail "dpkg-deb is missing: this script needs Debian (bookworm)"
if [ "${#missing[@]}" -gt 0 ]; then
  step "installing ${missing[*]}"
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 ||
      fail "the Windows build needs ${missing[*]}; as root run: apt-get update && apt-get install -y ${missing[*]}"
    as_root=(sudo)
  fi
  "${as_root[@]}" apt-get update ||
    fail "\`apt-get update\` failed (above), so ${missing[*]} cannot be installed: fix the system's apt sources or network, or install them by hand"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" ||
    fail "\`apt-get install ${missing[*]}\` failed (above): these are Debian bookworm's package names; where they differ, change \`provides\` in $0 (each package and a file it installs)"
fi
wine=/usr/lib/wine/wine64
mkdir -p "$work/bin" || fail "cannot create the cache $work: set KMSCONF_WINDOWS_CACHE to a writable directory"
# one run at a time per cache: two would rebuild the toolchain copy under each other
exec 9>"$work/lock"
if ! flock -n 9; then
  echo "windows-check: waiting for the other run that holds $work/lock"
  flock 9
fi

# --- The toolchain: a hard-linked copy of the nightly with sid's library source in it.
step "toolchain"
command -v rustup >/dev/null 2>&1 || fail "rustup is missing; the Windows build needs rustup's \`$nightly\` toolchain"
found="$(rustup run "$nightly" rustc -V 2>/dev/null)" ||
  fail "the toolchain \`$nightly\` is gone (see \`rustup toolchain list\`): set \`nightly\` in $0 to a nightly that is there, \`nightly_release\` to what its \`rustc -V\` prints, and \`rust_src_version\`/\`rust_src_sha256\` to a sid rust-src of the same release"
[ "$found" = "$nightly_release" ] ||
  fail "\`$nightly\` is now \`$found\`, not the pinned \`$nightly_release\`: set \`nightly_release\` in $0, and \`rust_src_version\`/\`rust_src_sha256\` to the sid rust-src of that release"
deb="$work/rust-src_${rust_src_version}_all.deb"
if [ ! -e "$deb" ] || [ "$(sha256sum "$deb" | cut -d' ' -f1)" != "$rust_src_sha256" ]; then
  rm -f "$deb"
  apt_dir="$work/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $sid_mirror sid main" >"$apt_dir/sources.list"
  apt_private=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o Debug::NoLocking=1
    -o APT::Sandbox::User="$(id -un)" -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false)
  # --error-on=any: a source it cannot reach is an error, not a warning
  apt-get "${apt_private[@]}" -q --error-on=any update >/dev/null ||
    fail "cannot read Debian sid's package list from $sid_mirror (private list in $apt_dir): check the network, or set \`sid_mirror\` in $0"
  if ! (cd "$work" && apt-get "${apt_private[@]}" -q download "rust-src=$rust_src_version"); then
    served="$(apt-cache "${apt_private[@]}" show rust-src 2>/dev/null |
      awk '/^Version:/ { v = $2 } /^SHA256:/ { printf "%s%s (SHA-256 %s)", sep, v, $2; sep = ", " }')" || true
    fail "Debian sid no longer serves rust-src $rust_src_version; it serves ${served:-no rust-src at all}: set \`rust_src_version\` and \`rust_src_sha256\` in $0 to one of those, and \`nightly\`/\`nightly_release\` to a toolchain that builds it; or set \`sid_mirror\` to a snapshot.debian.org URL that still has $rust_src_version"
  fi
  got="$(sha256sum "$deb" | cut -d' ' -f1)"
  [ "$got" = "$rust_src_sha256" ] ||
    fail "$deb has SHA-256 $got, not the pinned $rust_src_sha256: if Debian rebuilt rust-src $rust_src_version, check it and set \`rust_src_sha256\` in $0"
fi
toolchain="$work/toolchain"
stamp="$nightly_release / rust-src $rust_src_version $rust_src_sha256"
# the stamp says which nightly and rust-src the copy holds; the source link must still resolve
# (it does not when target/ was moved)
if [ "$(cat "$toolchain/kmsconf-windows-stamp" 2>/dev/null)" != "$stamp" ] ||
  [ ! -e "$toolchain/lib/rustlib/src/rust/library/Cargo.lock" ]; then
  rm -rf "$toolchain" "$work/rust-src"
  dpkg-deb -x "$deb" "$work/rust-src"
  source_dir="$(find "$work/rust-src/usr/src" -maxdepth 1 -name 'rustc-*' | head -n 1)"
  [ -d "$source_dir/library" ] || fail "$deb has no usr/src/rustc-*/library: set \`rust_src_version\` in $0 to a rust-src that does"
  sysroot="$(rustup run "$nightly" rustc --print sysroot)"
  # hard links: the copy costs no space (a plain copy where the two are on different file systems)
  cp -al "$sysroot" "$toolchain" 2>/dev/null || { rm -rf "$toolchain" && cp -a "$sysroot" "$toolchain"; }
  rm -rf "$toolchain/lib/rustlib/src"
  mkdir -p "$toolchain/lib/rustlib/src"
  ln -s "$source_dir" "$toolchain/lib/rustlib/src/rust"
  [ -x "$toolchain/bin/cargo-clippy" ] || fail "\`$nightly\` has no clippy: run \`rustup component add clippy --toolchain $nightly\`"
  echo "$stamp" >"$toolchain/kmsconf-windows-stamp"
fi
export RUSTUP_TOOLCHAIN="$toolchain"
export CARGO_TARGET_DIR="$work/cargo"
build_std=(-Zbuild-std=std,panic_abort)

# --- msvc: ring's C code through clang-cl and llvm-lib, with no Windows SDK: ring built with
# `RING_CORE_NOSTDLIBINC` needs no C library header beyond clang's own, except one `stdlib.h`
# it includes for MSVC's byte-swap intrinsics, which clang-cl has built in, so an empty one does.
# INCLUDE (which clang-cl searches) names that one directory, and keeps cc from looking for an
# MSVC installation. A check, so nothing is linked.
ln -sf /usr/bin/clang-14 "$work/bin/clang-cl"
ln -sf /usr/bin/llvm-lib-14 "$work/bin/llvm-lib"
mkdir -p "$work/msvc-include"
: >"$work/msvc-include/stdlib.h"
export PATH="$work/bin:$PATH"
export CC_x86_64_pc_windows_msvc=clang-cl AR_x86_64_pc_windows_msvc=llvm-lib
export CFLAGS_x86_64_pc_windows_msvc=-DRING_CORE_NOSTDLIBINC=1 INCLUDE="$work/msvc-include"

if ! $e2e_only; then
  for target in "$gnu" "$msvc"; do
    step "cargo check --target $target"
    cargo check "${build_std[@]}" --locked --workspace --all-targets --target "$target"
    step "cargo clippy --all-targets --target $target"
    cargo clippy "${build_std[@]}" --locked --workspace --all-targets --target "$target" -- -D warnings
  done
fi

step "cargo build --target $gnu"
cargo build "${build_std[@]}" --locked --target "$gnu" --bin kmsconf
exe="$CARGO_TARGET_DIR/$gnu/debug/kmsconf.exe"

# --- Wine: a prefix of its own, with the stand-in bcryptprimitives.dll in its system32, and
# the stand-in powershell.exe the end-to-end test of `target = "local"` puts first on PATH.
step "Wine prefix"
export WINEPREFIX="$work/wine" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
# Wine's server and device processes of this prefix outlive the programs; stop them at the end
trap '"$(dirname "$wine")/wineserver" -k >/dev/null 2>&1 || true' EXIT
if [ ! -e "$WINEPREFIX/system.reg" ]; then
  "$wine" wineboot --init >/dev/null 2>&1 ||
    fail "\`wine64 wineboot --init\` failed for WINEPREFIX=$WINEPREFIX: run it by hand to see why"
  "$(dirname "$wine")/wineserver" -w
fi
# one server for the whole run: by default it exits 3 s after its last program, and a test binary
# that starts in that moment lost its connection ("wine client error:0: recvmsg: Connection
# reset by peer", the unit tests of one CI run); a server already running (a run killed before
# its trap) is kept
"$(dirname "$wine")/wineserver" -p >/dev/null 2>&1 || true
mingw() {
  local out="$1" source="$2"
  shift 2
  if [ ! -e "$out" ] || [ "$source" -nt "$out" ]; then
    x86_64-w64-mingw32-gcc -O2 -Wall -Werror -municode -o "$out" "$source" "$@" ||
      fail "MinGW-w64 cannot build $source"
  fi
}
mingw "$work/bcryptprimitives.dll" scripts/windows/bcryptprimitives.c -shared -lbcrypt
cp "$work/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
mkdir -p "$work/standin"
mingw "$work/standin/powershell.exe" scripts/windows/powershell-standin.c
export KMSCONF_TEST_STANDIN_POWERSHELL="$work/standin/powershell.exe"

export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER="$wine"
if $e2e_only; then
  step "end-to-end tests matching ${e2e_filter[*]} under Wine"
  # a filter that matches nothing would pass having run nothing: say so instead
  listed="$(cargo test "${build_std[@]}" --locked --target "$gnu" --test e2e -- "${e2e_filter[@]}" --list)" ||
    fail "the end-to-end tests under Wine cannot be listed (above)"
  grep -q ': test$' <<<"${listed//$'\r'/}" ||
    fail "no end-to-end test of the Windows build matches \`${e2e_filter[*]}\`: modules and tests marked \`#[cfg(unix)]\` are compiled out there (tests/e2e/main.rs)"
  cargo test "${build_std[@]}" --locked --target "$gnu" --test e2e -- "${e2e_filter[@]}"
  step "done in $((SECONDS - started)) s"
  exit 0
fi

step "kmsconf.exe --version under Wine"
version="$("$wine" "$exe" --version)" || fail "\`$exe --version\` failed under Wine (exit 53 with no output: the stand-in bcryptprimitives.dll is missing)"
case "$version" in
  kmsconf\ *) echo "$version" ;;
  *) fail "\`kmsconf.exe --version\` printed \`$version\`" ;;
esac

step "the quickstart with kmsconf.exe under Wine"
printf '#!/bin/sh\nexec %s %s "$@"\n' "$wine" "$exe" >"$work/bin/kmsconf-wine"
chmod +x "$work/bin/kmsconf-wine"
KMSCONF="$work/bin/kmsconf-wine" bash scripts/quickstart.sh | tee "$work/quickstart.log"
tail -n 1 "$work/quickstart.log" | grep -q '^Doctor: .* 0 failed' ||
  fail "the quickstart under Wine did not end with a doctor that found nothing failed (log: $work/quickstart.log)"

# --- The tests under Wine, cargo's runner for the target. The e2e modules that start Linux
# daemons are compiled out on Windows (tests/e2e/main.rs).
step "unit tests under Wine"
cargo test "${build_std[@]}" --locked --target "$gnu" --workspace --lib --bins --test setting_row
# one test at a time: two at once on a loaded machine lost tests to Wine (a process start failing
# with os error 1359, an apply that never got going); one at a time all passed, in 7 minutes
step "end-to-end tests under Wine"
cargo test "${build_std[@]}" --locked --target "$gnu" --test e2e -- --test-threads=1
step "done in $((SECONDS - started)) s"
