# Sourced: puts the Pulumi CLI, its Go language host and the Kubernetes provider on PATH.
#  READOCR_PULUMI=system  the `pulumi` on PATH, which downloads its plugins (GitHub runners,
#                         laptops);
#  otherwise              an isolated PULUMI_HOME that never downloads anything, with the CLI, a
#                         Go language host and the provider built from the Go module proxy
#                         (hack/offline/pulumi; cold ~15 min and ~5 GB RAM; warm: seconds).
# shellcheck shell=bash
_pulumi_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ "${READOCR_PULUMI:-}" != system ]; then
  # shellcheck source=hack/offline/pulumi/env.sh
  source "$_pulumi_here/offline/pulumi/env.sh"
  [ -x "$WORK/bin/pulumi" ] || "$HERE/build-cli.sh" >&2
  [ -x "$WORK/bin/pulumi-language-go" ] || "$HERE/build-langhost.sh" >&2
  [ -x "$WORK/bin/pulumi-resource-kubernetes" ] || "$HERE/build-k8s-provider.sh" >&2
fi
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE:-readocr-local}
export PULUMI_SKIP_UPDATE_CHECK=true
