#!/usr/bin/env bash
# Builds the book in docs/ (`mdbook build docs`, into docs/book/), installing the pinned mdBook
# with `cargo install --locked` when it is missing (a few minutes on 2 cores, once; it stays in
# ~/.cargo/bin), then runs the book's checks: every relative link and #anchor of README.md,
# CONTRIBUTING.md and docs/src resolves, and the generated reference pages are fresh
# (tests/e2e/docs; `KMSCONF_UPDATE_DOCS=1 cargo test --test e2e docs::` writes those pages).
# mdBook's own build fails on a chapter SUMMARY.md names that is missing (create-missing = false)
# but not on a broken link, hence the check.
set -euo pipefail
cd "$(dirname "$0")/.."

version=0.5.4
mdbook="$(command -v mdbook || echo "${CARGO_HOME:-$HOME/.cargo}/bin/mdbook")"
if [ "$("$mdbook" --version 2>/dev/null)" != "mdbook v$version" ]; then
  echo "docs: installing mdbook $version with cargo (a few minutes, once)" >&2
  # without the `serve` and `watch` features: no web server or file watcher to build
  cargo install --locked mdbook --version "$version" --no-default-features --features search
  mdbook="${CARGO_HOME:-$HOME/.cargo}/bin/mdbook"
fi
"$mdbook" build docs
cargo test --locked --test e2e docs::
