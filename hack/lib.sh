# Helpers shared by the scripts under hack/ (sourced). Pinned versions are in hack/versions.sh.
# shellcheck shell=bash
# shellcheck disable=SC2034 # REPO_ROOT and CACHE are read by the scripts that source this file

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=hack/versions.sh
source "$REPO_ROOT/hack/versions.sh"
# What the offline builds make (hours of CPU cold) is kept here between runs.
CACHE=${READOCR_CACHE:-$HOME/.cache/readocr}

# log prints a timestamped line on stderr.
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# die logs and exits 1.
die() {
  log "error: $*"
  exit 1
}

# as_root runs a command as root (sudo when not root already).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# apt_install installs the Debian packages that are missing (nothing when all are there).
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing ${missing[*]}"
  find /var/lib/apt/lists -maxdepth 1 -name '*_InRelease' -mmin -1440 2>/dev/null | grep -q . ||
    as_root apt-get update -qq -o DPkg::Lock::Timeout=600
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    --no-install-recommends "${missing[@]}" >/dev/null
}

# module_dir prints where the Go module proxy's copy of module@version was unpacked.
module_dir() {
  (cd /tmp && go mod download -json "$1") | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'
}

# since prints the seconds since the epoch time $1.
since() { echo $(($(date +%s) - $1)); }
