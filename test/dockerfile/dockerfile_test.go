// Package dockerfile_test checks the Dockerfile against the hadolint rules that would fail the
// lint job on GitHub (hadolint-action fails on warnings), so that `make test` catches them here,
// where hadolint itself cannot be installed. The rules are hadolint's, by their codes; the
// Dockerfile is read with BuildKit's own parser. .hadolint.yaml's ignores apply.
package dockerfile_test

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"gopkg.in/yaml.v3"
)

type instruction struct {
	cmd  string // lower case
	args string // the rest, as written (flags included)
	line int
}

func load(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	for _, n := range res.AST.Children {
		orig := n.Original
		_, rest, _ := strings.Cut(orig, " ")
		out = append(out, instruction{cmd: strings.ToLower(n.Value), args: strings.TrimSpace(rest), line: n.StartLine})
	}
	return out
}

// violations returns hadolint's complaints about a Dockerfile, by rule code.
func violations(ins []instruction) map[string][]int {
	found := map[string][]int{}
	add := func(code string, line int) { found[code] = append(found[code], line) }
	stages := map[string]bool{}
	pipefail := false
	lastUser := ""
	for _, in := range ins {
		switch in.cmd {
		case "from":
			words := strings.Fields(in.args)
			var image string
			for _, w := range words {
				if !strings.HasPrefix(w, "--") {
					image = w
					break
				}
			}
			if i := slices.Index(words, "AS"); i >= 0 && i+1 < len(words) {
				stages[strings.ToLower(words[i+1])] = true
			} else if i := slices.Index(words, "as"); i >= 0 && i+1 < len(words) {
				stages[strings.ToLower(words[i+1])] = true
			}
			name := image
			if at := strings.Index(name, "@"); at >= 0 {
				name = name[:at]
			}
			switch {
			case image == "scratch" || stages[strings.ToLower(image)] || strings.Contains(image, "$"):
			case strings.HasSuffix(name, ":latest"):
				add("DL3007", in.line)
			case !strings.Contains(name[strings.LastIndex(name, "/")+1:], ":") && !strings.Contains(image, "@"):
				add("DL3006", in.line)
			}
			pipefail = false // SHELL is per stage
		case "shell":
			pipefail = strings.Contains(in.args, `"-o", "pipefail"`) || strings.Contains(in.args, `"-o","pipefail"`)
		case "run":
			script := in.args
			if regexp.MustCompile(`[^|]\|[^|]`).MatchString(script) && !pipefail {
				add("DL4006", in.line)
			}
			if strings.Contains(script, "apt-get install") {
				if !strings.Contains(script, "--no-install-recommends") {
					add("DL3015", in.line)
				}
				if !strings.Contains(script, "rm -rf /var/lib/apt/lists") {
					add("DL3009", in.line)
				}
				if pkgs := aptPackages(script); len(pkgs) > 0 {
					for _, p := range pkgs {
						if !strings.Contains(p, "=") {
							add("DL3008", in.line)
							break
						}
					}
				}
			}
			if regexp.MustCompile(`(^|[;&|]\s*)cd\s`).MatchString(script) {
				add("DL3003", in.line)
			}
		case "cmd", "entrypoint":
			if !strings.HasPrefix(in.args, "[") {
				add("DL3025", in.line)
			}
		case "add":
			if !strings.Contains(in.args, "http") && !strings.Contains(in.args, ".tar") {
				add("DL3020", in.line)
			}
		case "user":
			lastUser = in.args
		}
	}
	if lastUser == "root" || lastUser == "0" || strings.HasPrefix(lastUser, "0:") {
		add("DL3002", 0)
	}
	return found
}

// aptPackages lists the package words of apt-get install commands (options left out).
func aptPackages(script string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`apt-get install([^&;]*)`).FindAllStringSubmatch(script, -1) {
		for _, w := range strings.Fields(m[1]) {
			if !strings.HasPrefix(w, "-") && !strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "\\") {
				out = append(out, w)
			}
		}
	}
	return out
}

func ignored(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../.hadolint.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct{ Ignored []string }
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, c := range cfg.Ignored {
		m[c] = true
	}
	return m
}

func TestDockerfileFollowsHadolintsRules(t *testing.T) {
	skip := ignored(t)
	for _, f := range dockerfiles(t) {
		for code, lines := range violations(load(t, "../../"+f)) {
			if !skip[code] {
				t.Errorf("%s: %s at lines %v (https://github.com/hadolint/hadolint/wiki/%s)", f, code, lines, code)
			}
		}
	}
}

// The checks catch what they are for: a Dockerfile with each mistake.
func TestTheChecksCatchTheMistakes(t *testing.T) {
	bad := "FROM golang AS build\nRUN apt-get update && apt-get install -y g++\nRUN ldd /x | grep so\nRUN cd /src && make\n" +
		"FROM debian:latest\nADD x.txt /\nUSER root\nCMD readocr\n"
	path := t.TempDir() + "/Dockerfile"
	os.WriteFile(path, []byte(bad), 0o644)
	got := violations(load(t, path))
	for _, code := range []string{"DL3006", "DL3007", "DL3008", "DL3009", "DL3015", "DL4006", "DL3003", "DL3020", "DL3002", "DL3025"} {
		if len(got[code]) == 0 {
			t.Errorf("%s not found in %q", code, bad)
		}
	}
}
