#!/usr/bin/env bash
# Builds bin/readocr as it was at a git revision, for a before/after benchmark in one run:
#   hack/build-at.sh <revision> <output binary>      (make bench BEFORE=<revision>)
set -euo pipefail
rev=$1 out=$(realpath -m "$2")
cd "$(dirname "$0")/.."
tree=$(mktemp -d)
trap 'git worktree remove --force "$tree" >/dev/null 2>&1 || rm -rf "$tree"' EXIT
git worktree add --detach -q "$tree" "$rev"
(cd "$tree" && go build -trimpath -o "$out" ./service/cmd/readocr)
echo "built $rev as $out"
