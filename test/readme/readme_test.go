// Package readme_test holds the README's tested shell blocks to what the tests run (make lint).
// A block marked `<!-- test: NAME -->` is run as written by the test or script that owns it,
// through hack/readme-block.sh, with only the substitutions of substitutions.sed. This fails
// when a marked block disappears or loses the command it is there for, when a marker names a
// block no test runs, when a runner stops running its block or runs its own copy of the
// commands instead, and when a substitution no longer changes any block.
package readme_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// block is a README block and who runs it.
type block struct {
	file, name string
	runner     string           // the test or script that runs it
	must       []string         // commands the block is there for, as users type them
	ownCopy    []*regexp.Regexp // in runner: running the commands itself instead of the block
}

var blocks = []block{
	{file: "README.md", name: "kubectl", runner: "test/e2e/e2e_test.go",
		must:    []string{"make image", "minikube image load ghcr.io/readocr/readocr:", "kubectl apply -f manifests", "kubectl rollout status", "kubectl port-forward svc/readocr"},
		ownCopy: []*regexp.Regexp{regexp.MustCompile(`"apply",\s*"-n",\s*\w+,\s*"-f",\s*"manifests"`)}},
	{file: "README.md", name: "pulumi", runner: "test/e2e/e2e_test.go",
		must:    []string{"pulumi login --local", "export PULUMI_CONFIG_PASSPHRASE=", "make image", "minikube image load ghcr.io/readocr/readocr:", "pulumi stack init minikube", "pulumi up"},
		ownCopy: []*regexp.Regexp{regexp.MustCompile(`pulumi\("up"`), regexp.MustCompile(`"stack",\s*"init"`)}},
	{file: "ansible/README.md", name: "ansible", runner: "hack/ansible-e2e.sh",
		must:    []string{"cd ansible", "ansible-playbook site.yml"},
		ownCopy: []*regexp.Regexp{regexp.MustCompile(`(?m)^[^#\n]*\bansible-playbook\b[^\n]*\bsite\.yml`)}},
	{file: "README.md", name: "langpacks", runner: "test/container/langpacks_test.go",
		must: []string{"make langpacks", "docker volume create readocr-langs"}},
}

const root = "../.."

var marker = regexp.MustCompile(`(?m)^<!-- test: ([a-z0-9-]+) -->$`)

// raw is the block as the Markdown has it (hack/readme-block.sh's rule: the fenced block right
// after the marker line), before any substitution.
func raw(t *testing.T, file, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, file))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	armed, inside := false, false
	var out []string
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "<!-- test: "+name+" -->":
			armed = true
		case armed && strings.HasPrefix(l, "```"):
			if inside {
				return strings.Join(out, "\n") + "\n"
			}
			inside = true
		case inside:
			out = append(out, l)
		case armed && strings.TrimSpace(l) != "":
			return ""
		}
	}
	return ""
}

func TestMarkedBlocksAreRunAsWritten(t *testing.T) {
	for _, b := range blocks {
		t.Run(b.name, func(t *testing.T) {
			if raw(t, b.file, b.name) == "" {
				t.Fatalf("%s: no shell block marked <!-- test: %s --> (run by %s)", b.file, b.name, b.runner)
			}
			out, err := exec.Command(filepath.Join(root, "hack", "readme-block.sh"), filepath.Join(root, b.file), b.name).Output()
			if err != nil {
				t.Fatalf("hack/readme-block.sh %s %s: %v", b.file, b.name, err)
			}
			got := string(out)
			for _, cmd := range b.must {
				if !strings.Contains(got, cmd) {
					t.Errorf("%s's %q block no longer has %q, which %s proves:\n%s", b.file, b.name, cmd, b.runner, got)
				}
			}
			if msg, err := exec.Command("bash", "-n", "-c", got).CombinedOutput(); err != nil {
				t.Errorf("%s's %q block is not valid shell: %s", b.file, b.name, msg)
			}
			src, err := os.ReadFile(filepath.Join(root, b.runner))
			if err != nil {
				t.Fatal(err)
			}
			calls := regexp.MustCompile(regexp.QuoteMeta(b.file) + `"?\)?,?\s+"?` + regexp.QuoteMeta(b.name) + `\b`)
			if !calls.Match(src) {
				t.Errorf("%s does not run %s's %q block (hack/readme-block.sh %s %s)", b.runner, b.file, b.name, b.file, b.name)
			}
			for _, re := range b.ownCopy {
				if loc := re.FindIndex(src); loc != nil {
					t.Errorf("%s runs %q itself instead of the README's %q block: it could drift from what users type", b.runner, src[loc[0]:loc[1]], b.name)
				}
			}
		})
	}
}

// Every marker names a block that a test runs: a marker is a claim that the block is proven.
func TestEveryMarkerIsRun(t *testing.T) {
	known := map[string]bool{}
	for _, b := range blocks {
		known[b.file+" "+b.name] = true
	}
	out, err := exec.Command("git", "-C", root, "ls-files", "*.md").Output()
	if err != nil {
		t.Skipf("git ls-files: %v", err)
	}
	for _, f := range strings.Fields(string(out)) {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue
		}
		for _, m := range marker.FindAllStringSubmatch(string(b), -1) {
			if !known[f+" "+m[1]] {
				t.Errorf("%s marks a block %q that no test runs (add it to blocks in test/readme with its runner)", f, m[1])
			}
		}
	}
}

// Each substitution still changes some block: one that matches nothing is stale, and a block
// edited around it would silently run unchanged.
func TestEverySubstitutionIsUsed(t *testing.T) {
	var all strings.Builder
	for _, b := range blocks {
		all.WriteString(raw(t, b.file, b.name))
	}
	b, err := os.ReadFile("substitutions.sed")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		cmd := exec.Command("sed", "-e", l)
		cmd.Stdin = strings.NewReader(all.String())
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sed -e %q: %v", l, err)
		}
		if string(out) == all.String() {
			t.Errorf("substitutions.sed: %q changes none of the tested blocks", l)
		}
	}
}

// The tested blocks name the image of this VERSION: a release that bumps VERSION without them
// would leave users loading an image that `make image` no longer tags.
func TestBlocksNameThisVersion(t *testing.T) {
	v, err := os.ReadFile(filepath.Join(root, "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSpace(string(v))
	image := regexp.MustCompile(`ghcr\.io/readocr/readocr:([0-9][0-9A-Za-z.+-]*)`)
	for _, b := range blocks {
		for _, m := range image.FindAllStringSubmatch(raw(t, b.file, b.name), -1) {
			if m[1] != version {
				t.Errorf("%s's %q block names %s, but VERSION is %s", b.file, b.name, m[0], version)
			}
		}
	}
}

// Every secret and variable the workflows read is in the README's table of what each is and the
// least it needs.
func TestEveryCISecretIsDocumented(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	start := strings.Index(string(readme), "### Secrets and variables")
	if start < 0 {
		t.Fatal("README.md has no \"Secrets and variables\" section")
	}
	section := string(readme[start:])
	if end := strings.Index(section[4:], "\n### "); end >= 0 {
		section = section[:end+4]
	}
	files, _ := filepath.Glob(filepath.Join(root, ".github", "workflows", "*.yml"))
	ref := regexp.MustCompile(`\b(secrets|vars)\.([A-Za-z_][A-Za-z0-9_]*)`)
	seen := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ref.FindAllStringSubmatch(string(b), -1) {
			if seen[m[2]] {
				continue
			}
			seen[m[2]] = true
			if !regexp.MustCompile("(?m)^\\| `" + m[2] + "` ").MatchString(section) {
				t.Errorf("%s reads %s.%s, which README.md's secrets table does not describe (what it is, the least privilege it needs)", filepath.Base(f), m[1], m[2])
			}
		}
	}
	if len(seen) == 0 {
		t.Fatal("no secrets or variables found in .github/workflows: the pattern is stale")
	}
	t.Logf("documented: %v", seen)
}
