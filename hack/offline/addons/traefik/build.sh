#!/usr/bin/env bash
# Traefik (TRAEFIK_VERSION) from the Go module proxy, as the image traefik:<version> (the official
# image's name; upstream's is Alpine with the binary in /usr/local/bin: here FROM scratch, with
# the CA certificates). The web dashboard's assets are not in the module (npm builds them): the
# dashboard is empty, the API and everything else work. Prints the image name.
set -euo pipefail
source "$(dirname "$0")/../lib.sh"
addon_init traefik
v=$TRAEFIK_VERSION
if ! built "traefik-$v"; then
  src=$(module_dir "github.com/traefik/traefik/v3@$v")
  mkdir -p "$OUT/image"
  x="-X github.com/traefik/traefik/v3/pkg/version.Version=$v -X github.com/traefik/traefik/v3/pkg/version.Codename=goproxy"
  # In the module cache's read-only copy: its go.sum is complete, its replaces are module versions.
  (cd "$src" && go build -trimpath -ldflags "-s -w $x" -o "$OUT/image/traefik" ./cmd/traefik)
  touch "$OUT/.traefik-$v"
fi
cp -p /etc/ssl/certs/ca-certificates.crt "$OUT/image/"
dockerfile "$OUT/image" 'FROM scratch' 'COPY traefik /usr/local/bin/traefik' \
  'COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt' 'EXPOSE 80' 'ENTRYPOINT ["/usr/local/bin/traefik"]'
image "traefik:$v" "$OUT/image"
