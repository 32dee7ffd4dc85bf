#!/usr/bin/env bash
# CI: tags an image digest that was pushed untagged and then scanned and attested. Each tag in
# $TAGS (docker/metadata-action's list, one a line) must be $IMAGE_NAME:<tag>. `docker buildx
# imagetools create` with one source that is an index makes a carbon copy, so every tag names
# exactly that digest; each is read back and compared.
#   TAGS=... hack/ci/promote.sh ghcr.io/readocr/readocr@sha256:<digest>
set -euo pipefail
src=$("$(dirname "$0")/image-ref.sh" "${1:?usage: promote.sh NAME@sha256:DIGEST}")
name=${src%@*}
digest=${src#*@}
tags=()
while IFS= read -r tag; do
  [ -n "$tag" ] || continue
  # A Docker tag: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}, after exactly this image's name.
  if [[ ! $tag =~ ^${name//./\\.}:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]]; then
    echo "refusing tag '${tag:0:200}': want $name:<tag>" >&2
    exit 1
  fi
  tags+=("$tag")
done <<<"${TAGS:?TAGS is not set}"
[ ${#tags[@]} -gt 0 ] || { echo "no tag to set" >&2; exit 1; }
args=()
for tag in "${tags[@]}"; do args+=(-t "$tag"); done
docker buildx imagetools create "${args[@]}" "$src"
for tag in "${tags[@]}"; do
  got=$(docker buildx imagetools inspect "$tag" --format '{{.Manifest.Digest}}')
  [ "$got" = "$digest" ] || { echo "$tag names $got, not $digest" >&2; exit 1; }
  echo "$tag -> $digest"
done
