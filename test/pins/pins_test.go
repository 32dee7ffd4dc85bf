// Package pins_test finds every pinned version in the repository and fails when no updater
// watches it: Dependabot (.github/dependabot.yml) for the ecosystems it has, Renovate's regex
// managers (.github/renovate.json, applied here with Go's regexp) for versions in scripts, YAML
// and Go. A pin is:
//
//   - a dependency file: every go.mod, package.json, requirements*.txt (pip) and Ansible
//     requirements.yml (collections);
//   - every FROM of a Dockerfile that names an image (not scratch, not a stage), which must also
//     carry a tag or digest;
//   - every action a workflow uses;
//   - every assignment in hack/versions.sh; every version literal (x.y.z) or *_version: value
//     in ansible/roles/*/defaults/main.yml;
//   - every image reference with a tag that is not ours: string constants in infra/*.go, image:
//     lines in manifests/ (ours, ghcr.io/readocr/readocr and readocr, follow VERSION: the
//     release, test/workflows).
package pins_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

const root = "../../"

// A pin: where it is and what kind.
type pin struct {
	file string
	line int // 0 for a whole dependency file
	kind string
	text string
}

func (p pin) String() string {
	if p.line == 0 {
		return fmt.Sprintf("%s (%s)", p.file, p.kind)
	}
	return fmt.Sprintf("%s:%d (%s) %s", p.file, p.line, p.kind, strings.TrimSpace(p.text))
}

// repo is the repository's tracked files, readable (a test may put other contents in place).
type repo struct {
	files    []string
	contents map[string]string
}

func (r repo) read(t *testing.T, f string) string {
	if c, ok := r.contents[f]; ok {
		return c
	}
	b, err := os.ReadFile(root + f)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func gitFiles(t *testing.T) repo {
	t.Helper()
	out, err := exec.Command("git", "-C", root, "ls-files").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	return repo{files: strings.Fields(string(out)), contents: map[string]string{}}
}

var (
	dockerfileName = regexp.MustCompile(`(?i)dockerfile|containerfile`) // Dependabot's docker file pattern
	fromLine       = regexp.MustCompile(`(?im)^FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?`)
	versionLiteral = regexp.MustCompile(`\bv?\d+\.\d+\.\d+`)
	versionKey     = regexp.MustCompile(`^\s*[a-z0-9_]*_version:\s*["']?v?\d`)
	assignment     = regexp.MustCompile(`^([A-Z][A-Z0-9_]*)=`)
	goImageConst   = regexp.MustCompile(`"([a-z0-9][a-z0-9./-]*:v?\d+\.\d+[^"]*)"`)
	manifestImage  = regexp.MustCompile(`^\s*image:\s*"?([^"\s]+)`)
	uses           = regexp.MustCompile(`^\s*(?:-\s+)?uses:\s*([^\s#]+)`)
)

// ours is an image this repository releases (its version is VERSION, not an update).
func ours(image string) bool {
	name, _, _ := strings.Cut(image, ":")
	return name == "ghcr.io/readocr/readocr" || name == "readocr"
}

// findPins lists the repository's pins.
func findPins(t *testing.T, r repo) []pin {
	var pins []pin
	for _, f := range r.files {
		base := path.Base(f)
		switch {
		case base == "go.mod":
			pins = append(pins, pin{file: f, kind: "gomod"})
		case base == "package.json":
			pins = append(pins, pin{file: f, kind: "npm"})
		case strings.HasPrefix(base, "requirements") && strings.HasSuffix(base, ".txt"):
			pins = append(pins, pin{file: f, kind: "pip"})
		case strings.HasPrefix(f, "ansible/") && base == "requirements.yml":
			pins = append(pins, pin{file: f, kind: "ansible-galaxy"})
		}
		lines := strings.Split(r.read(t, f), "\n")
		each := func(kind string, match func(string) bool) {
			for i, l := range lines {
				if match(l) {
					pins = append(pins, pin{file: f, line: i + 1, kind: kind, text: l})
				}
			}
		}
		switch {
		case dockerfileName.MatchString(base) && !strings.HasSuffix(f, ".go"):
			stages := map[string]bool{"scratch": true}
			for i, l := range lines {
				if m := fromLine.FindStringSubmatch(l); m != nil {
					if !stages[strings.ToLower(m[1])] {
						pins = append(pins, pin{file: f, line: i + 1, kind: "docker", text: l})
					}
					if m[2] != "" {
						stages[strings.ToLower(m[2])] = true
					}
				}
			}
		case strings.HasPrefix(f, ".github/workflows/"):
			each("github-actions", func(l string) bool { return uses.MatchString(l) && !strings.Contains(l, "./") })
		case f == "hack/versions.sh":
			each("line", assignment.MatchString)
		case strings.HasPrefix(f, "ansible/roles/") && strings.HasSuffix(f, "/defaults/main.yml"):
			each("line", func(l string) bool {
				return !strings.HasPrefix(strings.TrimSpace(l), "#") && (versionLiteral.MatchString(l) || versionKey.MatchString(l))
			})
		case strings.HasPrefix(f, "infra/") && strings.HasSuffix(f, ".go") && !strings.HasSuffix(f, "_test.go"):
			each("line", func(l string) bool {
				m := goImageConst.FindStringSubmatch(l)
				return m != nil && !ours(m[1]) && !strings.HasPrefix(strings.TrimSpace(l), "//")
			})
		case strings.HasPrefix(f, "manifests/") && strings.HasSuffix(f, ".yaml"):
			each("line", func(l string) bool { m := manifestImage.FindStringSubmatch(l); return m != nil && !ours(m[1]) })
		}
	}
	return pins
}

// dependabot is .github/dependabot.yml: directories by ecosystem, and what it ignores.
type dependabot struct {
	dirs    map[string][]string
	ignored []string
}

func loadDependabot(t *testing.T, r repo) dependabot {
	var cfg struct {
		Updates []struct {
			Ecosystem   string   `yaml:"package-ecosystem"`
			Directory   string   `yaml:"directory"`
			Directories []string `yaml:"directories"`
			Ignore      []struct {
				Name string `yaml:"dependency-name"`
			}
		}
	}
	if err := yaml.Unmarshal([]byte(r.read(t, ".github/dependabot.yml")), &cfg); err != nil {
		t.Fatal(err)
	}
	d := dependabot{dirs: map[string][]string{}}
	for _, u := range cfg.Updates {
		for _, dir := range append(u.Directories, u.Directory) {
			if dir != "" {
				d.dirs[u.Ecosystem] = append(d.dirs[u.Ecosystem], strings.TrimSuffix(strings.TrimPrefix(dir, "/"), "/"))
			}
		}
		for _, i := range u.Ignore {
			d.ignored = append(d.ignored, i.Name)
		}
	}
	return d
}

// watches: Dependabot has the file's ecosystem in the file's directory (or, for actions, "/").
func (d dependabot) watches(p pin) bool {
	dir := path.Dir(p.file)
	if dir == "." || p.kind == "github-actions" {
		dir = ""
	}
	return slices.Contains(d.dirs[p.kind], dir)
}

// renovate is .github/renovate.json as far as this test applies it.
type renovate struct {
	EnabledManagers []string `json:"enabledManagers"`
	CustomManagers  []struct {
		Description         string   `json:"description"`
		ManagerFilePatterns []string `json:"managerFilePatterns"`
		MatchStrings        []string `json:"matchStrings"`
		DatasourceTemplate  string   `json:"datasourceTemplate"`
		DepNameTemplate     string   `json:"depNameTemplate"`
	} `json:"customManagers"`
	PackageRules []struct {
		Description   string   `json:"description"`
		MatchDepNames []string `json:"matchDepNames"`
		Enabled       *bool    `json:"enabled"`
	} `json:"packageRules"`
}

func loadRenovate(t *testing.T, r repo) renovate {
	var cfg renovate
	if err := json.Unmarshal([]byte(r.read(t, ".github/renovate.json")), &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// pattern turns Renovate's "/regex/" file pattern into a Go regexp (a glob otherwise).
func pattern(t *testing.T, p string) func(string) bool {
	if strings.HasPrefix(p, "/") && strings.HasSuffix(p, "/") && len(p) > 1 {
		re := regexp.MustCompile(p[1 : len(p)-1])
		return re.MatchString
	}
	return func(f string) bool { ok, _ := path.Match(p, f); return ok }
}

// watchedLines returns, per file, the lines on which a Renovate regex manager finds a
// currentValue with a datasource and a depName.
func (rc renovate) watchedLines(t *testing.T, r repo) map[string]map[int]string {
	out := map[string]map[int]string{}
	for _, m := range rc.CustomManagers {
		for _, f := range r.files {
			if !slices.ContainsFunc(m.ManagerFilePatterns, func(p string) bool { return pattern(t, p)(f) }) {
				continue
			}
			content := r.read(t, f)
			for _, ms := range m.MatchStrings {
				re, err := regexp.Compile(ms)
				if err != nil {
					t.Fatalf("renovate.json: %q is not a regular expression Go reads alike: %v", ms, err)
				}
				for _, idx := range re.FindAllStringSubmatchIndex(content, -1) {
					group := func(name string) (string, int) {
						i := re.SubexpIndex(name)
						if i < 0 || idx[2*i] < 0 {
							return "", -1
						}
						return content[idx[2*i]:idx[2*i+1]], idx[2*i]
					}
					value, at := group("currentValue")
					ds, _ := group("datasource")
					dep, _ := group("depName")
					if ds == "" {
						ds = m.DatasourceTemplate
					}
					if dep == "" {
						dep = m.DepNameTemplate
					}
					if value == "" || ds == "" || dep == "" {
						t.Errorf("renovate.json: a match in %s has currentValue %q, datasource %q, depName %q", f, value, ds, dep)
						continue
					}
					if out[f] == nil {
						out[f] = map[int]string{}
					}
					out[f][strings.Count(content[:at], "\n")+1] = ds + " " + dep + " " + value
				}
			}
		}
	}
	return out
}

// unwatched returns the pins no updater watches, and the pins that are not pinned at all.
func unwatched(t *testing.T, r repo) (bad []string, watched int) {
	d, rc := loadDependabot(t, r), loadRenovate(t, r)
	lines := rc.watchedLines(t, r)
	for _, p := range findPins(t, r) {
		switch {
		case p.kind == "ansible-galaxy":
			if !slices.Contains(rc.EnabledManagers, "ansible-galaxy") {
				bad = append(bad, p.String()+": Renovate's ansible-galaxy manager is not enabled")
				continue
			}
		case p.kind == "line":
			if lines[p.file][p.line] == "" {
				bad = append(bad, p.String()+": no Renovate manager reads it (a '# renovate: datasource=... depName=...' comment on the line above)")
				continue
			}
		default:
			if !d.watches(p) {
				bad = append(bad, p.String()+": not in Dependabot's "+p.kind+" directories")
				continue
			}
		}
		if p.kind == "docker" {
			if m := fromLine.FindStringSubmatch(p.text); !strings.Contains(m[1], "@sha256:") && !strings.Contains(path.Base(m[1]), ":") {
				bad = append(bad, p.String()+": the image has no tag or digest")
				continue
			}
		}
		watched++
	}
	// What Dependabot ignores, Renovate must take up (enabled by a package rule).
	for _, name := range d.ignored {
		if !slices.ContainsFunc(rc.PackageRules, func(pr struct {
			Description   string   `json:"description"`
			MatchDepNames []string `json:"matchDepNames"`
			Enabled       *bool    `json:"enabled"`
		}) bool {
			return slices.Contains(pr.MatchDepNames, name) && pr.Enabled != nil && *pr.Enabled
		}) {
			bad = append(bad, name+": ignored by Dependabot and enabled by no Renovate package rule")
		}
	}
	return bad, watched
}

func TestEveryPinIsWatched(t *testing.T) {
	r := gitFiles(t)
	bad, watched := unwatched(t, r)
	for _, b := range bad {
		t.Error(b)
	}
	t.Logf("%d pins watched", watched)
	if watched < 40 {
		t.Errorf("only %d pins found: the finder is broken", watched)
	}
}

// An unwatched pin of each kind fails: a version added to hack/versions.sh without its comment,
// a go.mod and a Dockerfile in a new directory, a role default, an image constant in infra/, an
// untagged FROM.
func TestAnUnwatchedPinFails(t *testing.T) {
	r := gitFiles(t)
	add := map[string]string{
		"hack/versions.sh":                           r.read(t, "hack/versions.sh") + "FOO_VERSION=v1.2.3\n",
		"hack/offline/foo/go.mod":                    "module foo\n",
		"hack/offline/foo/Dockerfile":                "FROM debian:bookworm-slim\n",
		"ansible/roles/kube_tools/defaults/main.yml": r.read(t, "ansible/roles/kube_tools/defaults/main.yml") + "helm_version: v3.19.0\n",
		"infra/redis.go":                             "package main\n\nconst RedisImage = \"redis:8.2.1\"\n",
		"test/ansible/Dockerfile.target":             "FROM debian\n",
	}
	for f, c := range add {
		if !slices.Contains(r.files, f) {
			r.files = append(r.files, f)
		}
		r.contents[f] = c
	}
	bad, _ := unwatched(t, r)
	got := strings.Join(bad, "\n")
	for _, want := range []string{"FOO_VERSION=v1.2.3", "hack/offline/foo/go.mod (gomod)", "hack/offline/foo/Dockerfile:1 (docker)",
		"helm_version: v3.19.0", "redis:8.2.1", "test/ansible/Dockerfile.target:1 (docker) FROM debian: the image has no tag or digest"} {
		if !strings.Contains(got, want) {
			t.Errorf("not reported: %s\n(reported: %s)", want, got)
		}
	}
}
