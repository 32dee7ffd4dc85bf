#!/usr/bin/env bash
# CI, on a release tag: the tag must be v<VERSION>, so that the image it publishes,
# $IMAGE_NAME:<VERSION>, is the one the manifests name (test/workflows holds VERSION, the
# manifests, infra/ and the workflows' IMAGE_NAME together).
set -euo pipefail
cd "$(dirname "$0")/../.."
tag=${GITHUB_REF_NAME:?GITHUB_REF_NAME is not set}
want=v$(cat VERSION)
if [ "$tag" != "$want" ]; then
  echo "tag '${tag:0:100}' is not v<VERSION> ($want): bump VERSION, make manifests, merge, then tag $want" >&2
  exit 1
fi
echo "release $want: publishes ${IMAGE_NAME:-ghcr.io/readocr/readocr}:${want#v}"
