#!/usr/bin/env bash
# Makes sure the base images the Dockerfiles name exist locally. An image already present is
# used; otherwise it is pulled. Only when the pull fails (a machine that reaches no registry) is
# it made here from Debian's packages with debootstrap + `docker import`, under the registry's
# name, so the Dockerfiles build unchanged:
#   golang:1.26-bookworm   minbase + compilers + this machine's Go (and CA bundle: a proxy in
#                          front of the module proxy may present its own CA)
#   debian:bookworm-slim   minbase trimmed like the official slim image
# Usage: hack/offline/base-images.sh [image ...]   (default: golang:1.26-bookworm)
set -euo pipefail
images=("$@")
[ ${#images[@]} -gt 0 ] || images=(golang:1.26-bookworm)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

present() { docker image inspect "$1" >/dev/null 2>&1; }

trim() { # what the official slim images leave out
  local r=$1
  rm -rf "$r"/usr/share/doc/* "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/locale/* \
    "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb "$r"/var/log/*.log
  cat >"$r/etc/apt/sources.list" <<SRC
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SRC
}

need_debootstrap() {
  command -v debootstrap >/dev/null 2>&1 && return
  [ "$(id -u)" -eq 0 ] || { echo "cannot pull $1 and debootstrap is missing (needs root to install)" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
}

seed() {
  local image=$1 work
  work=$(mktemp -d /tmp/base-image.XXXXXX)
  trap 'rm -rf "$work"' RETURN
  need_debootstrap "$image"
  case "$image" in
    debian:bookworm-slim)
      debootstrap --variant=minbase bookworm "$work/root" "$mirror" >"$work/log" 2>&1 || { tail -20 "$work/log"; exit 1; }
      trim "$work/root"
      tar -C "$work/root" -c . | docker import --change 'CMD ["bash"]' - "$image" >/dev/null
      ;;
    golang:*-bookworm)
      local want have goroot
      want=${image#golang:}; want=${want%-bookworm}
      have=$(go env GOVERSION | sed 's/^go//; s/\.[0-9]*$//')
      [ "$want" = "$have" ] || { echo "cannot make $image from this machine's Go $have" >&2; exit 1; }
      goroot=$(go env GOROOT)
      debootstrap --variant=minbase --include=ca-certificates,curl,git,gcc,g++,libc6-dev,make,pkg-config \
        bookworm "$work/root" "$mirror" >"$work/log" 2>&1 || { tail -20 "$work/log"; exit 1; }
      trim "$work/root"
      cp /etc/ssl/certs/ca-certificates.crt "$work/root/etc/ssl/certs/ca-certificates.crt"
      mkdir -p "$work/root/usr/local" "$work/root/go"
      cp -a "$goroot" "$work/root/usr/local/go"
      tar -C "$work/root" -c . | docker import \
        --change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV GOPATH=/go' --change 'ENV GOTOOLCHAIN=local' --change 'WORKDIR /go' --change 'CMD ["bash"]' \
        - "$image" >/dev/null
      ;;
    *) echo "do not know how to make $image locally" >&2; exit 1 ;;
  esac
  echo "made $image locally from Debian packages"
}

for image in "${images[@]}"; do
  present "$image" && continue
  echo "pulling $image"
  if timeout 120 docker pull -q "$image" >/dev/null 2>&1; then continue; fi
  echo "cannot pull $image: making it locally"
  seed "$image"
done
