# Sourced: puts the Pulumi CLI, the Go language host and the Kubernetes provider on PATH, in an
# isolated PULUMI_HOME that never downloads plugins. A machine with a working `pulumi` and its
# plugins uses those; otherwise they are built from the Go module proxy into $HOME/.cache
# (cold: ~15 min and 5 GB RAM for the provider; warm: seconds).
_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if ! { command -v pulumi >/dev/null 2>&1 && pulumi plugin ls 2>/dev/null | grep -q kubernetes; }; then
  source "$_here/env.sh"
  [ -x "$WORK/bin/pulumi" ] || "$_here/build-cli.sh" >&2
  [ -x "$WORK/bin/pulumi-language-go" ] || "$_here/build-langhost.sh" >&2
  [ -x "$WORK/bin/pulumi-resource-kubernetes" ] || "$_here/build-k8s-provider.sh" >&2
fi
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE:-readocr-local}
export PULUMI_SKIP_UPDATE_CHECK=true
