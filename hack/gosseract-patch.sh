#!/usr/bin/env bash
# Writes third_party/gosseract-readocr.patch: the whole difference between gosseract v2.4.1 (from
# the Go module proxy) and the fork in third_party/gosseract. --verify fails when the file is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
up=$(go mod download -json github.com/otiai10/gosseract/v2@v2.4.1 | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
patch() {
  for f in client.go tessbridge.cpp tessbridge.h preprocessflags_x.go; do
    diff -u --label "a/$f" --label "b/$f" "$up/$f" "third_party/gosseract/$f" || true
  done
  for f in nolibs_static.c preprocessflags_static.go; do
    diff -u --label /dev/null --label "b/$f" /dev/null "third_party/gosseract/$f" || true
  done
}
out=third_party/gosseract-readocr.patch
if [ "${1:-}" = --verify ]; then
  diff -q <(patch) "$out" >/dev/null || { echo "$out is stale: run hack/gosseract-patch.sh"; exit 1; }
  echo "$out is up to date"
else
  patch >"$out"
fi
