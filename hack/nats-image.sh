#!/usr/bin/env bash
# The NATS server image the manifests name (infra/nats.go: NATSImage, the nats-server version
# go.mod embeds), in the local Docker engine: pulled from Docker Hub when it can be, otherwise
# (machines without a registry) built from the Go module proxy under the official name, laid out
# as the official image is: FROM scratch, /nats-server, /nats-server.conf, ports 4222 6222 8222.
# Prints the image name.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$REPO_ROOT"
version=$(go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)
image=nats:${version#v}
grep -q "NATSImage = \"$image\"" infra/nats.go || die "infra/nats.go does not name $image (go.mod's nats-server)"
hack/docker-engine.sh
if docker image inspect "$image" >/dev/null 2>&1 || timeout 60 docker pull -q "$image" >/dev/null 2>&1; then
  echo "$image"
  exit 0
fi
log "$image cannot be pulled here: building it from the Go module proxy (nats-server $version)"
ctx=$(mktemp -d /tmp/nats-image.XXXXXX)
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ctx/nats-server" github.com/nats-io/nats-server/v2
printf 'port: 4222\nmonitor_port: 8222\n' >"$ctx/nats-server.conf"
cat >"$ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY nats-server /nats-server
COPY nats-server.conf /nats-server.conf
EXPOSE 4222 6222 8222
ENTRYPOINT ["/nats-server"]
CMD ["--config", "nats-server.conf"]
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q -t "$image" --label "org.opencontainers.image.source=https://github.com/nats-io/nats-server" \
  --label "org.opencontainers.image.version=$version" "$ctx" >/dev/null
echo "$image"
