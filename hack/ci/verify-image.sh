#!/usr/bin/env bash
# CD, before pulumi up: the image must carry a provenance attestation signed for this
# repository's CI workflow (ci.yml), run on a GitHub-hosted runner for a push to main, of the
# very commit being deployed. `gh attestation verify` checks the Sigstore signature and
# certificate (the workflow's OIDC identity) and that the attestation's subject is this digest.
#   SOURCE_SHA=<commit> GH_TOKEN=... hack/ci/verify-image.sh ghcr.io/readocr/readocr@sha256:<digest>
set -euo pipefail
ref=$("$(dirname "$0")/image-ref.sh" "${1:?usage: verify-image.sh NAME@sha256:DIGEST}")
repo=${GITHUB_REPOSITORY:?GITHUB_REPOSITORY is not set}
sha=${SOURCE_SHA:?SOURCE_SHA (the commit CI built) is not set}
if [[ ! $sha =~ ^[0-9a-f]{40}$ ]]; then
  echo "refusing SOURCE_SHA '${sha:0:100}': want 40 hex digits" >&2
  exit 1
fi
gh attestation verify "oci://$ref" --repo "$repo" \
  --signer-workflow "$repo/.github/workflows/ci.yml" --source-ref refs/heads/main \
  --source-digest "$sha" --deny-self-hosted-runners
echo "verified: $ref was built and attested by $repo's ci.yml at $sha on main"
