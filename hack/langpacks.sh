#!/usr/bin/env bash
# Puts language packs, Debian's tesseract-ocr-<pack> packages (tessdata_fast, Apache-2.0), into a
# directory for `readocr --langpacks DIR` without installing them system-wide: each package is
# downloaded with apt-get download and unpacked, and its models and copyright file are copied.
# A pack is named as Debian names the package, without "tesseract-ocr-": deu, chi-sim,
# script-latn (whose model is Latin.traineddata). Packs already in DIR are not fetched again.
#   hack/langpacks.sh DIR PACK...
#   hack/langpacks.sh ~/.cache/readocr/langpacks deu fra jpn && bin/readocr --langpacks ~/.cache/readocr/langpacks
set -euo pipefail
source "$(dirname "$0")/lib.sh"
[ $# -ge 2 ] || die "usage: $0 DIR PACK..."
dir=$1
shift
mkdir -p "$dir/licenses"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
updated=""
# As root, apt downloads as its _apt user, which cannot write into a private directory.
sandbox=()
[ "$(id -u)" -eq 0 ] && sandbox=(-o APT::Sandbox::User=root)
for pack in "$@"; do
  [[ $pack =~ ^[a-z0-9-]+$ ]] || die "$pack: a pack is a Debian package name without tesseract-ocr- (deu, chi-sim, script-latn)"
  pkg=tesseract-ocr-$pack
  [ -f "$dir/licenses/$pkg.copyright" ] && continue
  if [ -z "$updated" ] && ! find /var/lib/apt/lists -maxdepth 1 -name '*_InRelease' -mmin -1440 2>/dev/null | grep -q .; then
    as_root apt-get update -qq -o DPkg::Lock::Timeout=600
  fi
  updated=1
  (cd "$tmp" && apt-get download -qq "${sandbox[@]}" "$pkg") || die "apt-get download $pkg failed (is it a Debian package? apt-cache search tesseract-ocr-)"
  dpkg-deb -x "$tmp/${pkg}_"*.deb "$tmp/$pack"
  models=$(find "$tmp/$pack" -name '*.traineddata')
  [ -n "$models" ] || die "$pkg has no .traineddata file"
  for m in $models; do install -m 0444 "$m" "$dir/"; done
  install -m 0444 "$tmp/$pack/usr/share/doc/$pkg/copyright" "$dir/licenses/$pkg.copyright"
  log "langpacks: $pack: $(for m in $models; do basename "$m"; done | tr '\n' ' ')"
done
