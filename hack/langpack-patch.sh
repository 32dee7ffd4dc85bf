#!/usr/bin/env bash
# Prints the patch that gives readocr's pods exactly these language packs, for a deployment made
# with `kubectl apply -f manifests` (the Pulumi program does the same with readocr:languages):
# one init container per pack, running the pack image (make langpacks), which copies its models
# into the pod's langpacks volume (manifests/ always has it, mounted read-only at /langpacks).
# A JSON merge patch replaces the whole list: packs left out are removed, and applying the same
# list again is "patched (no change)". No packs prints the patch that removes them all.
#   hack/langpack-patch.sh deu fra jpn >langpacks.yaml
#   for d in readocr readocr-worker; do kubectl patch deployment $d --type merge --patch-file langpacks.yaml; done
# The containers are the ones infra/langpacks.go declares (TestLangpackPatchMatchesPulumi).
# LANGPACK_IMAGE overrides the image name (%s: the pack).
set -euo pipefail
image=${LANGPACK_IMAGE:-ghcr.io/readocr/langpack-%s:4.1.0}
echo "spec:"
echo "  template:"
echo "    spec:"
if [ $# -eq 0 ]; then
  echo "      initContainers: null"
  exit 0
fi
echo "      initContainers:"
for p in "$@"; do
  if ! [[ $p =~ ^[a-z0-9]+(-[a-z0-9]+)*$ ]]; then
    echo "$0: $p: a pack is Debian's package name without tesseract-ocr- (deu, chi-sim, script-latn)" >&2
    exit 2
  fi
  # shellcheck disable=SC2059 # the image name is the format
  cat <<YAML
        - name: langpack-$p
          image: $(printf "$image" "$p")
          imagePullPolicy: IfNotPresent
          volumeMounts: [{name: langpacks, mountPath: /target}]
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: {drop: [ALL]}}
          resources:
            requests: {cpu: 10m, memory: 16Mi, ephemeral-storage: 1Mi}
            limits: {cpu: 200m, memory: 64Mi, ephemeral-storage: 16Mi}
YAML
done
