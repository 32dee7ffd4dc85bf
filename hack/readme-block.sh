#!/usr/bin/env bash
# Prints a shell block of a Markdown file, as the tests run it: the fenced block that follows the
# line `<!-- test: NAME -->`, with the substitutions of test/readme/substitutions.sed applied (the
# only place where a test may differ from what a user types; each substitution says why).
#   hack/readme-block.sh README.md kubectl | bash -euxo pipefail
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
file=${1:?usage: readme-block.sh FILE NAME}
name=${2:?usage: readme-block.sh FILE NAME}
block=$(awk -v want="<!-- test: $name -->" '
  $0 == want { armed = 1; next }
  armed && /^```/ { if (inside) exit; inside = 1; next }
  inside { print; next }
  armed && NF { exit }' "$file")
[ -n "$block" ] || { echo "readme-block: no block \"$name\" in $file" >&2; exit 1; }
printf '%s\n' "$block" | sed -f "$root/test/readme/substitutions.sed"
