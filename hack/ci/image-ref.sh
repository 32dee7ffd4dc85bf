#!/usr/bin/env bash
# Checks an image reference before it is deployed or recorded: it must be the image the
# manifests name, by digest: $IMAGE_NAME@sha256:<64 hex> (the workflows set IMAGE_NAME to
# ghcr.io/readocr/readocr; without it, ghcr.io/<owner>/<repo> as $GITHUB_REPOSITORY names it,
# lower-cased as GHCR stores it). Anything else (a tag, another registry, another repository, a
# shell metacharacter from a tampered artifact) stops the job.
#   hack/ci/image-ref.sh REF                   prints the reference
#   hack/ci/image-ref.sh REF --github-output   also writes image= and name= to $GITHUB_OUTPUT
set -euo pipefail
ref=${1:?usage: image-ref.sh REF [--github-output]}
if [ -n "${IMAGE_NAME:-}" ]; then
  name=$IMAGE_NAME
else
  repo=${GITHUB_REPOSITORY:?neither IMAGE_NAME nor GITHUB_REPOSITORY is set}
  name="ghcr.io/$(printf '%s' "$repo" | tr '[:upper:]' '[:lower:]')"
fi
[[ $name =~ ^[a-z0-9.-]+/[a-z0-9._/-]+$ ]] || { echo "refusing image name '${name:0:200}'" >&2; exit 1; }
# The repository part of the reference may come in GitHub's spelling; compare lower-cased.
ref="$(printf '%s' "${ref%%@*}" | tr '[:upper:]' '[:lower:]')@${ref#*@}"
if [[ ! $ref =~ ^${name//./\\.}@sha256:[0-9a-f]{64}$ ]]; then
  echo "refusing image reference '${1:0:200}': want $name@sha256:<64 hex digits>" >&2
  exit 1
fi
printf '%s\n' "$ref"
if [ "${2:-}" = --github-output ]; then
  { echo "image=$ref"; echo "name=$name"; } >>"${GITHUB_OUTPUT:?GITHUB_OUTPUT is not set}"
fi
