#!/usr/bin/env bash
# make image: builds the container image, tagged readocr:<version> and with the name the release
# pipeline publishes (ghcr.io/readocr/readocr:<version>), which the manifests name.
#   hack/image.sh VERSION [docker build args...]
# With BuildKit (docker buildx) the Dockerfile is built as it is. With the classic builder
# (Debian's docker.io has no buildx), which knows neither --platform=$BUILDPLATFORM nor, where
# the registry cannot be reached, the pinned base image's digest, it builds from the Dockerfile
# with those two removed: the same steps, from the local golang:1.26-bookworm.
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:?usage: image.sh VERSION}
shift
tags=(-t "readocr:$version" -t "ghcr.io/readocr/readocr:$version")
args=(--build-arg "VERSION=$version" --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)")
hack/docker-engine.sh
if docker buildx version >/dev/null 2>&1; then
  docker build -q "${tags[@]}" "${args[@]}" "$@" .
else
  # shellcheck disable=SC2016 # the sed patterns name $BUILDPLATFORM literally
  base=$(sed -n 's/^FROM --platform=\$BUILDPLATFORM \([^ ]*\) AS build$/\1/p' Dockerfile)
  unpin=()
  if ! docker image inspect "$base" >/dev/null 2>&1 && ! timeout 120 docker pull -q "$base" >/dev/null 2>&1; then
    hack/offline/base-images.sh "${base%@*}"
    echo "image: the pinned ${base%@*} cannot be pulled here: building from the local one (without the digest)"
    unpin=(-e 's/^\(FROM [^@ ]*\)@sha256:[0-9a-f]* /\1 /')
  fi
  echo "image: classic builder (no buildx): the build stage runs on this machine's platform"
  # shellcheck disable=SC2016
  sed -e 's/^FROM --platform=\$BUILDPLATFORM /FROM /' "${unpin[@]}" Dockerfile |
    DOCKER_BUILDKIT=0 docker build -q -f - "${tags[@]}" "${args[@]}" "$@" .
fi
docker image inspect -f '{{.Size}}' "readocr:$version" | awk -v v="$version" '{printf "readocr:%s %.1f MB\n", v, $1/1e6}'
