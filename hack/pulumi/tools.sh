# Sourced: puts the Pulumi CLI, the Go language host and the Kubernetes provider on PATH.
#  READOCR_PULUMI=system  use the `pulumi` on PATH, which downloads its plugins (GitHub runners,
#                         laptops);
#  otherwise              an isolated PULUMI_HOME that never downloads anything, with the CLI,
#                         a Go language host and the provider built from the Go module proxy into
#                         $HOME/.cache/pulumi-offline (cold ~15 min and ~5 GB RAM; warm: seconds).
_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ "${READOCR_PULUMI:-}" != system ]; then
  source "$_here/env.sh"
  [ -x "$WORK/bin/pulumi" ] || "$_here/build-cli.sh" >&2
  [ -x "$WORK/bin/pulumi-language-go" ] || "$_here/build-langhost.sh" >&2
  [ -x "$WORK/bin/pulumi-resource-kubernetes" ] || "$_here/build-k8s-provider.sh" >&2
fi
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE:-readocr-local}
export PULUMI_SKIP_UPDATE_CHECK=true
