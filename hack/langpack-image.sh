#!/usr/bin/env bash
# make langpacks: builds readocr's language-pack images from Debian's tesseract-ocr-<pack>
# packages (images/langpacks/Dockerfile), one image per pack, each tagged
# ghcr.io/readocr/langpack-<pack>:<tessdata version>; with --set NAME, one image holding all
# the packs, ghcr.io/readocr/langpack-NAME:<version>. A pack is Debian's package name without
# "tesseract-ocr-": deu, chi-sim, script-latn. The service image is not touched.
#   hack/langpack-image.sh [--set NAME] PACK...
# Like hack/image.sh: BuildKit builds the Dockerfile as it is; the classic builder (Debian's
# docker.io) builds it without the --platform pin, and without the base image's digest where
# the pinned image cannot be pulled (then made locally by hack/offline/base-images.sh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
# The tessdata_fast release Debian's tesseract-ocr-* packages carry (bookworm: 1:4.1.0-2); the
# build checks each package against it.
TESSDATA_VERSION=4.1.0
registry=${LANGPACK_REGISTRY:-ghcr.io/readocr}
set_name=""
if [ "${1:-}" = --set ]; then
  set_name=${2:?--set needs a name}
  shift 2
fi
[ $# -gt 0 ] || die "usage: $0 [--set NAME] PACK... (e.g. deu fra jpn chi-sim script-latn)"
for p in "$@" $set_name; do
  [[ $p =~ ^[a-z0-9]+(-[a-z0-9]+)*$ ]] || die "$p: a pack is a Debian package name without tesseract-ocr- (deu, chi-sim, script-latn)"
done
hack/docker-engine.sh

# A small build context: the Dockerfile, the copier and the module files it builds with.
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp go.mod go.sum "$ctx/"
cp -r images/langpacks/copy "$ctx/copy"
dockerfile=images/langpacks/Dockerfile
if docker buildx version >/dev/null 2>&1; then
  cp "$dockerfile" "$ctx/Dockerfile"
else
  # shellcheck disable=SC2016 # the sed patterns name $BUILDPLATFORM literally
  base=$(sed -n 's/^FROM --platform=\$BUILDPLATFORM \([^ ]*\) AS build$/\1/p' "$dockerfile")
  unpin=()
  if ! docker image inspect "$base" >/dev/null 2>&1 && ! timeout 120 docker pull -q "$base" >/dev/null 2>&1; then
    hack/offline/base-images.sh "${base%@*}"
    log "langpacks: the pinned ${base%@*} cannot be pulled here: building from the local one (without the digest)"
    unpin=(-e 's/^\(FROM [^@ ]*\)@sha256:[0-9a-f]* /\1 /')
  fi
  # shellcheck disable=SC2016
  sed -e 's/^FROM --platform=\$BUILDPLATFORM /FROM /' "${unpin[@]}" "$dockerfile" >"$ctx/Dockerfile"
  export DOCKER_BUILDKIT=0
fi

args=(--build-arg "PACKS=$*" --build-arg "SET=$set_name" --build-arg "TESSDATA_VERSION=$TESSDATA_VERSION"
  --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)")
build() { # build PACK: the image of one pack, or of the set
  local image="$registry/langpack-$1:$TESSDATA_VERSION"
  docker build -q -t "$image" "${args[@]}" --build-arg "PACK=$1" "$ctx" >/dev/null
  docker image inspect -f '{{.Size}}' "$image" | awk -v i="$image" '{printf "%s %.1f MB\n", i, $1/1e6}'
}
if [ -n "$set_name" ]; then
  build "$set_name"
else
  for p in "$@"; do build "$p"; done
fi
