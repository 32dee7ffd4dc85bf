#!/usr/bin/env bash
# Runs in the Dockerfile's build stage: assembles the runtime tree of the scratch image in $1 from
# the binary $2 (built for the target architecture, maybe not this one): the binary, the closure
# of the shared libraries it needs with their dynamic loader (read from the ELF headers with
# readelf, which works for any architecture, where ldd would have to run the binary), the
# Tesseract models, a CA bundle for https image URLs, a numeric non-root user, and /tmp (the
# engine's private directory for PDFium's compiled code and PDF pages; Kubernetes mounts an
# emptyDir there because the root file system is read-only).
#   hack/image-rootfs.sh ROOT BINARY TRIPLE "LANGS"
set -euo pipefail
root=$1 bin=$2 triple=$3 langs=$4
td=/usr/share/tesseract-ocr/5/tessdata
dirs=("/lib/$triple" "/usr/lib/$triple" /lib /usr/lib)
mkdir -p "$root/etc/ssl/certs" "$root$td"
cp "$bin" "$root/readocr"

declare -A seen
copy() { # copy file $1 into the tree, keeping its path and following links
  [ -n "${seen[$1]:-}" ] && return
  seen[$1]=1
  cp --parents -L "$1" "$root/"
  local lib dir found
  for lib in $(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
    found=""
    for dir in "${dirs[@]}"; do
      if [ -e "$dir/$lib" ]; then found="$dir/$lib"; break; fi
    done
    [ -n "$found" ] || { echo "image-rootfs: $lib (needed by $1) not found" >&2; exit 1; }
    copy "$found"
  done
}
for lib in $(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
  for dir in "${dirs[@]}"; do
    if [ -e "$dir/$lib" ]; then copy "$dir/$lib"; continue 2; fi
  done
  echo "image-rootfs: $lib not found" >&2
  exit 1
done
# The dynamic loader, at the path the binary names (/lib64/ld-linux-x86-64.so.2, /lib/ld-linux-aarch64.so.1).
interp=$(readelf -l "$bin" | sed -n 's/.*Requesting program interpreter: \(.*\)\]/\1/p')
cp --parents -L "$interp" "$root/"

for l in osd $langs; do cp "$td/$l.traineddata" "$root$td/"; done
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
mkdir -p "$root/tmp" && chmod 1777 "$root/tmp"
# /data: where a volume keeps jobs (OCR_DATA_DIR=/data); a new named volume takes this owner.
mkdir -p "$root/data" && chown 65532:65532 "$root/data" && chmod 0700 "$root/data"
echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' >"$root/etc/passwd"
echo 'nonroot:x:65532:' >"$root/etc/group"
echo "image-rootfs: $(find "$root" -type f | wc -l) files, $(du -sh "$root" | cut -f1)"
