// Package workflows_test holds the GitHub workflows to the rules a careful platform team would:
// the mistakes that only show on GitHub (or in an incident) fail here first.
package workflows_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type workflow struct {
	On          yaml.Node
	Permissions any
	Env         map[string]string
	Jobs        map[string]job
}

type job struct {
	If             string
	Needs          []string
	Permissions    any
	TimeoutMinutes any `yaml:"timeout-minutes"`
	Environment    any
	Steps          []step
}

type step struct {
	ID   string
	If   string
	Name string
	Uses string
	Run  string
	With map[string]any
	Env  map[string]string
}

func load(t *testing.T) map[string]workflow {
	t.Helper()
	files, _ := filepath.Glob("../../.github/workflows/*.yml")
	if len(files) == 0 {
		t.Fatal("no workflows")
	}
	out := map[string]workflow{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var w workflow
		if err := yaml.Unmarshal(b, &w); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = w
	}
	return out
}

var pinned = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$`)

// Third-party actions by full commit SHA (a tag can be moved to other code), checkouts without
// a persisted token, explicit least permissions and a timeout on every job.
func TestJobsArePinnedAndBounded(t *testing.T) {
	for file, w := range load(t) {
		if w.Permissions == nil {
			t.Errorf("%s: no workflow-level permissions (the default token can write)", file)
		}
		for name, j := range w.Jobs {
			where := file + "/" + name
			if j.TimeoutMinutes == nil {
				t.Errorf("%s: no timeout-minutes", where)
			}
			if j.Permissions == nil {
				t.Errorf("%s: no permissions of its own", where)
			}
			for _, s := range j.Steps {
				if s.Uses != "" && !strings.HasPrefix(s.Uses, "./") && !pinned.MatchString(s.Uses) {
					t.Errorf("%s: %s is not pinned by a commit SHA", where, s.Uses)
				}
				if strings.HasPrefix(s.Uses, "actions/checkout@") && s.With["persist-credentials"] != false {
					t.Errorf("%s: checkout keeps the token in .git/config (persist-credentials: false)", where)
				}
			}
			perms, _ := j.Permissions.(map[string]any)
			uses := ""
			for _, s := range j.Steps {
				uses += s.Uses + " "
			}
			// id-token and attestations only where a step uses them.
			if perms["id-token"] == "write" && !strings.Contains(uses, "attest-build-provenance") && !strings.Contains(uses, "pulumi/auth-actions") {
				t.Errorf("%s: id-token: write without a step that signs or exchanges it", where)
			}
			if perms["attestations"] == "write" && !strings.Contains(uses, "attest-build-provenance") {
				t.Errorf("%s: attestations: write without an attest step", where)
			}
		}
	}
}

// A workflow that runs on workflow_run or pull_request_target runs with this repository's
// secrets whoever started it (a fork's pull request from a branch named main triggers CI, and so
// workflow_run). A job there that checks out the triggering commit or takes the triggering run's
// artifacts must run only for a push to this repository, itself or through the jobs it needs.
func TestUntrustedCodeNeverMeetsSecrets(t *testing.T) {
	guarded := func(cond string) bool {
		return strings.Contains(cond, "github.event.workflow_run.event == 'push'") &&
			strings.Contains(cond, "github.event.workflow_run.head_repository.full_name == github.repository")
	}
	for file, w := range load(t) {
		var triggers []string
		for i := 0; w.On.Kind == yaml.MappingNode && i < len(w.On.Content); i += 2 {
			triggers = append(triggers, w.On.Content[i].Value)
		}
		on := strings.Join(triggers, " ")
		if !strings.Contains(on, "workflow_run") && !strings.Contains(on, "pull_request_target") {
			continue
		}
		var safe func(name string, seen int) bool
		safe = func(name string, seen int) bool {
			j := w.Jobs[name]
			if guarded(j.If) {
				return true
			}
			for _, n := range j.Needs {
				if seen < 10 && safe(n, seen+1) {
					return true
				}
			}
			return false
		}
		for name, j := range w.Jobs {
			risky := false
			for _, s := range j.Steps {
				ref, _ := s.With["ref"].(string)
				runID, _ := s.With["run-id"].(string)
				if strings.HasPrefix(s.Uses, "actions/checkout@") && (strings.Contains(ref, "workflow_run.head") || strings.Contains(ref, "pull_request.head")) ||
					strings.HasPrefix(s.Uses, "actions/download-artifact@") && strings.Contains(runID, "workflow_run") {
					risky = true
				}
			}
			if risky && !safe(name, 0) {
				t.Errorf("%s/%s takes the triggering run's code or artifacts with secrets in scope, and does not require a push to this repository", file, name)
			}
		}
	}
}

// Every run step is something the local checks also run: a Makefile target or a hack/ script,
// so that nothing in CI is untested until it runs on GitHub. Values reach scripts through env,
// never spliced into the script (${{ }} in run: is a script injection).
func TestRunStepsAreLocalCommands(t *testing.T) {
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for file, w := range load(t) {
		for name, j := range w.Jobs {
			for _, s := range j.Steps {
				if s.Run == "" {
					continue
				}
				where := file + "/" + name + ": " + s.Run
				if strings.Contains(s.Run, "${{") {
					t.Errorf("%s: an expression spliced into the script; pass it through env", where)
				}
				cmd := strings.Fields(strings.TrimSpace(s.Run))
				switch {
				case len(cmd) >= 2 && cmd[0] == "make":
					if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(cmd[1]) + `:`).Match(makefile) {
						t.Errorf("%s: no Makefile target %s", where, cmd[1])
					}
				case len(cmd) >= 1 && strings.HasPrefix(cmd[0], "hack/"):
					if st, err := os.Stat("../../" + cmd[0]); err != nil || st.Mode()&0o111 == 0 {
						t.Errorf("%s: %s is not an executable script of the repository", where, cmd[0])
					}
				default:
					t.Errorf("%s: neither a Makefile target nor a hack/ script", where)
				}
				if strings.Count(strings.TrimSpace(s.Run), "\n") > 0 {
					t.Errorf("%s: one command per step", where)
				}
			}
		}
	}
}
