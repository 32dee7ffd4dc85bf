// Command runjob runs one job of a GitHub workflow on this machine, as far as a machine without
// GitHub can: every `run:` step, in order, with the workflow's, job's and step's env, the
// ${{ }} expressions it can resolve here (env, vars, secrets from the environment, github.sha,
// github.repository, steps.<id>.outputs from $GITHUB_OUTPUT) and a $GITHUB_OUTPUT file per
// step. `uses:` steps are not run; each is listed with what stands in for it here.
//
//	go run ./test/workflows/runjob -workflow ci.yml -job lint
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

type workflow struct {
	Env  map[string]string
	Jobs map[string]struct {
		Env   map[string]string
		Steps []struct {
			ID   string
			Name string
			Uses string
			Run  string
			If   string
			Env  map[string]string
		}
	}
}

// standIns says what takes the place of an action on this machine.
var standIns = map[string]string{
	"actions/checkout":                "this checkout",
	"actions/setup-go":                "Go on PATH (go version printed below)",
	"pulumi/actions":                  "hack/offline/pulumi builds the CLI where it cannot be downloaded",
	"medyagh/setup-minikube":          "make e2e starts minikube (hack/offline/minikube) when none runs",
	"hadolint/hadolint-action":        "make lint: test/dockerfile applies hadolint's failing DL rules and its ShellCheck pass to every Dockerfile",
	"docker/setup-buildx-action":      "the local Docker engine (make image)",
	"docker/build-push-action":        "make image builds the same Dockerfile",
	"docker/metadata-action":          "not needed locally (tags)",
	"docker/login-action":             "no registry reachable here",
	"aquasecurity/trivy-action":       "no vulnerability database reachable here",
	"actions/attest-build-provenance": "needs GitHub's OIDC token",
	"actions/upload-artifact":         "the file stays in the work tree",
	"actions/download-artifact":       "the file from an earlier step stays in the work tree",
	"pulumi/auth-actions":             "needs GitHub's OIDC token",
}

var expr = regexp.MustCompile(`\$\{\{\s*([^}]*?)\s*\}\}`)

func main() {
	wf := flag.String("workflow", "ci.yml", "file under .github/workflows")
	jobName := flag.String("job", "lint", "job to run")
	flag.Parse()
	root, _ := filepath.Abs(".")
	b, err := os.ReadFile(filepath.Join(root, ".github/workflows", *wf))
	if err != nil {
		fail(err)
	}
	var w workflow
	if err := yaml.Unmarshal(b, &w); err != nil {
		fail(err)
	}
	job, ok := w.Jobs[*jobName]
	if !ok {
		fail(fmt.Errorf("no job %q in %s", *jobName, *wf))
	}
	sha, _ := exec.Command("git", "rev-parse", "HEAD").Output()
	outputs := map[string]map[string]string{}
	ctx := func(name string) (string, bool) {
		parts := strings.Split(name, ".")
		switch {
		case len(parts) == 2 && (parts[0] == "env" || parts[0] == "vars" || parts[0] == "secrets"):
			if v, ok := w.Env[parts[1]]; ok && parts[0] == "env" {
				return v, true
			}
			if v, ok := job.Env[parts[1]]; ok && parts[0] == "env" {
				return v, true
			}
			return os.Getenv(parts[1]), true
		case name == "github.sha":
			return strings.TrimSpace(string(sha)), true
		case name == "github.repository":
			return envOr("GITHUB_REPOSITORY", "readocr/readocr"), true
		case name == "github.actor":
			return envOr("GITHUB_ACTOR", "local"), true
		case len(parts) == 4 && parts[0] == "steps" && parts[2] == "outputs":
			v, ok := outputs[parts[1]][parts[3]]
			return v, ok
		}
		return "", false
	}
	resolve := func(s string) string {
		return expr.ReplaceAllStringFunc(s, func(m string) string {
			v, ok := ctx(expr.FindStringSubmatch(m)[1])
			if !ok {
				fmt.Fprintf(os.Stderr, "runjob: %s cannot be resolved here: empty\n", m)
			}
			return v
		})
	}

	fmt.Printf("%s / %s on this machine\n\n", *wf, *jobName)
	var summary []string
	failed := false
	for i, s := range job.Steps {
		title := s.Name
		if title == "" {
			title = s.Uses + s.Run
		}
		if s.Uses != "" {
			action := strings.Split(s.Uses, "@")[0]
			summary = append(summary, fmt.Sprintf("| %d | %s | not run: %s |", i+1, s.Uses, standIns[action]))
			continue
		}
		if failed {
			summary = append(summary, fmt.Sprintf("| %d | `%s` | not run: an earlier step failed |", i+1, s.Run))
			continue
		}
		if s.If != "" {
			fmt.Printf("note: step %d has `if: %s`; run regardless\n", i+1, s.If)
		}
		out, _ := os.CreateTemp("", "github-output-*")
		out.Close()
		cmd := exec.Command("bash", "-e", "-o", "pipefail", "-c", s.Run)
		cmd.Env = append(os.Environ(), "GITHUB_OUTPUT="+out.Name(), "GITHUB_ACTIONS=", "CI=true",
			"GITHUB_REPOSITORY="+envOr("GITHUB_REPOSITORY", "readocr/readocr"))
		for _, m := range []map[string]string{w.Env, job.Env, s.Env} {
			for k, v := range m {
				cmd.Env = append(cmd.Env, k+"="+resolve(v))
			}
		}
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		fmt.Printf("--- step %d: %s\n$ %s\n", i+1, title, s.Run)
		start := time.Now()
		err := cmd.Run()
		took := time.Since(start).Round(time.Second)
		if s.ID != "" {
			outputs[s.ID] = readOutputs(out.Name())
		}
		os.Remove(out.Name())
		result := "passed"
		if err != nil {
			result, failed = "FAILED: "+err.Error(), true
		}
		summary = append(summary, fmt.Sprintf("| %d | `%s` | %s in %v |", i+1, s.Run, result, took))
	}
	fmt.Printf("\n| step | what | here |\n|---:|---|---|\n%s\n", strings.Join(summary, "\n"))
	if failed {
		os.Exit(1)
	}
}

func readOutputs(path string) map[string]string {
	m := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			m[k] = v
		}
	}
	return m
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "runjob:", err)
	os.Exit(2)
}
