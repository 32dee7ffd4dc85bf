package workflows_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// exportingActions lists, per action, the variables it writes to $GITHUB_ENV for the job's later
// steps (read from each action's source). A later step that sets one of them in its own env:
// replaces the exported value for that step (a step's env wins over $GITHUB_ENV).
var exportingActions = map[string][]string{
	// src/main.ts: core.exportVariable('PULUMI_ACCESS_TOKEN', ...) unless export-environment-variables is false
	"pulumi/auth-actions": {"PULUMI_ACCESS_TOKEN"},
	// The cloud logins the README suggests for a short-lived kubeconfig.
	"aws-actions/configure-aws-credentials": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION", "AWS_DEFAULT_REGION"},
	"google-github-actions/auth":            {"GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_AUTH_CREDENTIAL_FILE_OVERRIDE", "GOOGLE_GHA_CREDS_PATH"},
}

// githubEnvWrite finds NAME=... written to $GITHUB_ENV in a script (echo/printf ... >> "$GITHUB_ENV").
var githubEnvWrite = regexp.MustCompile(`(?m)^.*\b([A-Za-z_][A-Za-z0-9_]*)=[^\n]*>>\s*"?\$\{?GITHUB_ENV`)

// exports returns the variables a step makes visible to the job's later steps: those of a known
// exporting action, or those its script (the run: line and the hack/ script it runs) writes to
// $GITHUB_ENV.
func exports(s step, repoRoot string) []string {
	if s.Uses != "" {
		action := strings.Split(s.Uses, "@")[0]
		if v, _ := s.With["export-environment-variables"].(string); v == "false" {
			return nil
		}
		if b, ok := s.With["export-environment-variables"].(bool); ok && !b {
			return nil
		}
		return exportingActions[action]
	}
	text := s.Run
	if f := strings.Fields(s.Run); len(f) > 0 && strings.HasPrefix(f[0], "hack/") {
		if b, err := os.ReadFile(repoRoot + f[0]); err == nil {
			text += "\n" + string(b)
		}
	}
	var out []string
	for _, m := range githubEnvWrite.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// overridden lists "step N sets X, exported by step M" for one job.
func overridden(j job, repoRoot string) []string {
	var bad []string
	exportedBy := map[string]string{}
	for i, s := range j.Steps {
		title := s.Name
		if title == "" {
			title = s.Uses + s.Run
		}
		for name := range s.Env {
			if by, ok := exportedBy[name]; ok {
				bad = append(bad, "step "+title+" sets "+name+" in its env, which replaces what "+by+" exported")
			}
		}
		for _, name := range exports(s, repoRoot) {
			exportedBy[name] = "step " + strconv.Itoa(i+1) + " (" + title + ")"
		}
	}
	return bad
}

// A step's env: replaces, for that step, what an earlier step exported through $GITHUB_ENV:
// cd.yml's Pulumi steps set PULUMI_ACCESS_TOKEN from a secret that is empty when OIDC is used,
// so the token pulumi/auth-actions had just exported never reached Pulumi.
func TestStepEnvKeepsWhatEarlierStepsExport(t *testing.T) {
	for file, w := range load(t) {
		for name, j := range w.Jobs {
			for _, bad := range overridden(j, "../../") {
				t.Errorf("%s/%s: %s", file, name, bad)
			}
		}
	}
}

// The rule catches the mistake: the preview job as it was, and a run step that exports.
func TestTheEnvRuleCatchesTheMistake(t *testing.T) {
	was := `
steps:
  - name: Pulumi token from GitHub's OIDC token
    uses: pulumi/auth-actions@141415910c3beb54e03b48e9057c204c97b956f2
    with: {organization: x, requested-token-type: "urn:pulumi:token-type:access_token:organization"}
  - uses: pulumi/actions@8e5e406f4007fca908480587cb9893c07090f58d
    env:
      PULUMI_ACCESS_TOKEN: ${{ secrets.PULUMI_ACCESS_TOKEN }}
  - run: echo "FOO=bar" >> "$GITHUB_ENV"
  - run: make lint
    env: {FOO: baz}
  - run: hack/ci/pulumi-token.sh
  - run: make test
    env: {PULUMI_ACCESS_TOKEN: x}
`
	var j job
	if err := yaml.Unmarshal([]byte(was), &j); err != nil {
		t.Fatal(err)
	}
	got := overridden(j, "../../")
	if len(got) != 3 || !strings.Contains(got[0], "PULUMI_ACCESS_TOKEN") || !strings.Contains(got[1], "FOO") ||
		!strings.Contains(got[2], "hack/ci/pulumi-token.sh") {
		t.Errorf("found %q, want PULUMI_ACCESS_TOKEN after auth-actions, FOO after the echo, PULUMI_ACCESS_TOKEN after pulumi-token.sh", got)
	}
}
