# Helpers of the add-on builds (sourced by addons/*/build.sh): what a cluster user would install
# from a registry or a Helm chart, built here from the Go module proxy into $CACHE/<name> and
# packed as images under their official names.
# shellcheck shell=bash
# shellcheck disable=SC2034 # OUT and ADDONS are read by the scripts that source this file
ADDONS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/lib.sh
source "$ADDONS/../../lib.sh"
export GOFLAGS="${GOFLAGS:+$GOFLAGS }-buildvcs=false" CGO_ENABLED=0

# addon_init NAME: $OUT=$CACHE/NAME (binaries, stamps, image archives); builds run at low priority.
addon_init() {
  OUT=$CACHE/$1
  mkdir -p "$OUT/images"
  renice -n 10 $$ >/dev/null
}

# built STAMP: true when a build wrote $OUT/.STAMP (the binary's name and version) and its binary.
built() { [ -f "$OUT/.$1" ]; }

# dockerfile DIR LINE...: writes DIR/Dockerfile with these lines, leaving it untouched (and its
# image cached) when they are the same.
dockerfile() {
  local dir=$1
  shift
  printf '%s\n' "$@" >"$dir/Dockerfile.new"
  if cmp -s "$dir/Dockerfile.new" "$dir/Dockerfile"; then rm "$dir/Dockerfile.new"; else mv "$dir/Dockerfile.new" "$dir/Dockerfile"; fi
}

# image REF DIR: builds REF from DIR (the binaries and the Dockerfile the caller wrote there),
# saves it as $OUT/images/<ref>.tar for `ctr images import` / `minikube image load`, and prints
# REF. Skipped when the archive is newer than everything in DIR and the engine has REF.
image() {
  local ref=$1 dir=$2 tar out
  tar=$OUT/images/$(echo "$ref" | tr '/:' '__').tar
  if [ -s "$tar" ] && [ -z "$(find "$dir" -newer "$tar" -type f)" ] && docker image inspect "$ref" >/dev/null 2>&1; then
    echo "$ref"
    return
  fi
  "$REPO_ROOT/hack/docker-engine.sh" >/dev/null
  # The legacy builder (no BuildKit here, as in hack/offline/minikube/images.sh) warns on stderr:
  # its output is shown only when it fails.
  out=$(DOCKER_BUILDKIT=0 docker build -q -t "$ref" "$dir" 2>&1) || die "docker build $ref: $out"
  docker save -o "$tar" "$ref"
  log "made $ref ($(du -h "$tar" | cut -f1))"
  echo "$ref"
}

# load_images NAME: imports the image archives of $CACHE/NAME into the containerd of the
# offline minikube (none driver: the host's), as hack/offline/minikube/host.sh does for the node's.
load_images() {
  local t
  for t in "$CACHE/$1"/images/*.tar; do ctr -n k8s.io images import "$t" >/dev/null; done
}

# k: the kubectl of the offline minikube, on its cluster.
k() { KUBECONFIG=${KUBECONFIG:-$HOME/.kube/config} "$CACHE/minikube/bin/kubectl" "$@"; }
