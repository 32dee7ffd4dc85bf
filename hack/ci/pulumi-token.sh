#!/usr/bin/env bash
# CD, where Pulumi Cloud is not reached through OIDC (variable PULUMI_ORG unset): hands the
# environment's secret PULUMI_ACCESS_TOKEN (in $PULUMI_TOKEN_SECRET) to the job's later steps
# through $GITHUB_ENV, the way pulumi/auth-actions hands its OIDC token. So the Pulumi step sets
# no PULUMI_ACCESS_TOKEN of its own: a step's env wins over $GITHUB_ENV, and the empty secret
# there used to overwrite the OIDC token (test/workflows fails on that again).
set -euo pipefail
token=${PULUMI_TOKEN_SECRET:-}
if [ -z "$token" ]; then
  echo "no PULUMI_ACCESS_TOKEN secret: the state backend must be PULUMI_BACKEND_URL" >&2
  exit 0
fi
# One line, a token's characters only: anything else could write other variables.
if [[ ! $token =~ ^[A-Za-z0-9_-]+$ ]]; then
  echo "refusing PULUMI_ACCESS_TOKEN: it has characters a Pulumi token does not have" >&2
  exit 1
fi
printf 'PULUMI_ACCESS_TOKEN=%s\n' "$token" >>"${GITHUB_ENV:?GITHUB_ENV is not set}"
echo "PULUMI_ACCESS_TOKEN set for the later steps (from the environment's secret)"
