# Sourced: an isolated Pulumi environment that never reaches the internet, with what the
# scripts here build (from the Go module proxy) in $CACHE/pulumi.
# shellcheck shell=bash
# shellcheck disable=SC2034 # HERE and WORK are read by the scripts that source this file
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=hack/lib.sh
source "$HERE/../../lib.sh"
WORK=$CACHE/pulumi
mkdir -p "$WORK/bin" "$WORK/state" "$WORK/home"
export PATH=$WORK/bin:$PATH # ambient plugins: pulumi-language-go, pulumi-resource-kubernetes
export PULUMI_HOME=$WORK/home # instead of ~/.pulumi
export PULUMI_BACKEND_URL=${PULUMI_BACKEND_URL:-file://$WORK/state}
export PULUMI_CONFIG_PASSPHRASE=${PULUMI_CONFIG_PASSPHRASE:-readocr-local}
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true # never try to download plugins
export PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK=true
