package workflows_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// script runs a hack/ci script from the repository root with extra environment.
func script(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("hack/ci/"+name, args...)
	cmd.Dir = "../.."
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var digest = "sha256:" + strings.Repeat("0123456789abcdef", 4)

// The CI scripts refuse what a tampered artifact or a wrong input would bring, before any
// registry, GitHub or cluster call (the calls themselves run on GitHub only).
func TestCIScriptsRefuseBadInput(t *testing.T) {
	name := "IMAGE_NAME=ghcr.io/readocr/readocr"
	good := "ghcr.io/readocr/readocr@" + digest
	cases := []struct {
		env    []string
		script string
		args   []string
		ok     bool
		says   string
	}{
		{[]string{name}, "image-ref.sh", []string{good}, true, good},
		{[]string{"IMAGE_NAME=", "GITHUB_REPOSITORY=ReadOCR/readocr"}, "image-ref.sh", []string{"ghcr.io/ReadOCR/readocr@" + digest}, true, good},
		{[]string{name}, "image-ref.sh", []string{"ghcr.io/someone/readocr@" + digest}, false, "refusing"},
		{[]string{name}, "image-ref.sh", []string{"ghcr.io/readocr/readocr:0.1.0"}, false, "refusing"},
		{[]string{name}, "image-ref.sh", []string{good + "$(id)"}, false, "refusing"},
		{[]string{name, "TAGS=ghcr.io/readocr/readocr:1.0.0\nghcr.io/someone/readocr:1.0.0"}, "promote.sh", []string{good}, false, "refusing tag"},
		{[]string{name, "TAGS=ghcr.io/readocr/readocr:1.0.0;id"}, "promote.sh", []string{good}, false, "refusing tag"},
		{[]string{name, "TAGS=ghcr.io/readocr/readocr:1.0.0"}, "promote.sh", []string{"ghcr.io/readocr/readocr:1.0.0"}, false, "refusing image"},
		{[]string{name, "GITHUB_REPOSITORY=readocr/readocr", "SOURCE_SHA=main"}, "verify-image.sh", []string{good}, false, "refusing SOURCE_SHA"},
		{[]string{name, "GITHUB_REPOSITORY=readocr/readocr", "SOURCE_SHA=" + strings.Repeat("a", 40)}, "verify-image.sh", []string{"ghcr.io/x/y@" + digest}, false, "refusing image"},
	}
	for _, c := range cases {
		out, err := script(t, c.env, c.script, c.args...)
		if (err == nil) != c.ok || !strings.Contains(out, c.says) {
			t.Errorf("%s %v (%v): %v %q, want ok=%v and %q", c.script, c.args, c.env, err, out, c.ok, c.says)
		}
	}
}

// pulumi-token.sh hands the secret to later steps through $GITHUB_ENV, one line, or nothing.
func TestPulumiTokenScript(t *testing.T) {
	for token, want := range map[string]string{
		"pul-0123abcd":               "PULUMI_ACCESS_TOKEN=pul-0123abcd\n",
		"":                           "",
		"pul-x\nPULUMI_BACKEND=evil": "",
	} {
		envFile := filepath.Join(t.TempDir(), "env")
		os.WriteFile(envFile, nil, 0o600)
		out, err := script(t, []string{"GITHUB_ENV=" + envFile, "PULUMI_TOKEN_SECRET=" + token}, "pulumi-token.sh")
		got, _ := os.ReadFile(envFile)
		if string(got) != want || (err != nil) != strings.Contains(token, "\n") {
			t.Errorf("token %q: GITHUB_ENV %q, %v %s; want %q", token, got, err, out, want)
		}
	}
}
