package dockerfile_test

// hadolint's other pass: ShellCheck over every RUN instruction. hadolint-action (v3.3.0, hadolint
// v2.14.0) fails at level info and above, so an unquoted $(...) in a RUN turns GitHub's lint job
// red while the DL rules above stay green. This builds the script the way hadolint does
// (src/Hadolint/Shell.hs and Rule/Shellcheck.hs at v2.14.0) and runs the shellcheck on PATH:
//
//	#!<first word of the SHELL in force>
//	export <every ARG and ENV name of the stage, and the proxy variables>=1   (sorted)
//	<the RUN's text, its escaped line breaks joined as language-docker joins them>
//
// with SC2187, SC1090 and SC1091 excluded, as hadolint does, and .hadolint.yaml's ignores.
// Every Dockerfile of the repository is checked (git ls-files), not only the one the action lints.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"gopkg.in/yaml.v3"
)

// hadolint's fixed ShellCheck exclusions and the variables it always declares.
var (
	hadolintExcludes = []string{"2187", "1090", "1091"}
	hadolintVars     = []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy"}
	severityRank     = map[string]int{"style": 0, "info": 1, "warning": 2, "error": 3}
)

// A finding as hadolint reports it: the instruction's line, the rule, ShellCheck's level.
type finding struct {
	File  string
	Line  int
	Code  string
	Level string
	Msg   string
}

func (f finding) String() string {
	return fmt.Sprintf("%s:%d %s (%s) %s", f.File, f.Line, f.Code, f.Level, f.Msg)
}

// script is one RUN instruction as hadolint hands it to ShellCheck.
type script struct {
	line   int
	shell  string // the SHELL in force, its words joined
	vars   []string
	text   string
	ignore []string // `# hadolint ignore=...` on the line above the instruction
}

// runScripts walks a Dockerfile as hadolint v2.14.0's ShellCheck rule does: each FROM starts
// over with /bin/sh -c and the proxy variables; ARG and ENV add names; SHELL replaces the shell.
func runScripts(t *testing.T, path string) []script {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := parser.Parse(bytes.NewReader(src))
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	lines := strings.Split(string(src), "\n")
	shell, vars := "/bin/sh -c", map[string]bool{}
	reset := func() {
		shell, vars = "/bin/sh -c", map[string]bool{}
		for _, v := range hadolintVars {
			vars[v] = true
		}
	}
	reset()
	defaultShell := shell
	var out []script
	for i, n := range res.AST.Children {
		// `# hadolint shell=...` sets the shell from here on; before the first FROM, for every stage.
		for _, c := range n.PrevComment {
			if m := shellPragma.FindStringSubmatch(c); m != nil {
				shell = m[1]
				if i == 0 || !slices.ContainsFunc(res.AST.Children[:i], func(p *parser.Node) bool { return strings.EqualFold(p.Value, "from") }) {
					defaultShell = shell
				}
			}
		}
		switch strings.ToLower(n.Value) {
		case "from":
			reset()
			shell = defaultShell
		case "arg":
			for a := n.Next; a != nil; a = a.Next {
				name, _, _ := strings.Cut(a.Value, "=")
				vars[name] = true
			}
		case "env":
			// BuildKit's parser gives each pair as three nodes: name, value, separator.
			i := 0
			for kv := n.Next; kv != nil; kv = kv.Next {
				if i%3 == 0 {
					vars[kv.Value] = true
				}
				i++
			}
		case "shell":
			var words []string
			for w := n.Next; w != nil; w = w.Next {
				words = append(words, w.Value)
			}
			shell = strings.Join(words, " ")
		case "run", "onbuild":
			if len(n.Heredocs) > 0 {
				t.Fatalf("%s:%d: a heredoc RUN; this check does not build hadolint's script for it yet", path, n.StartLine)
			}
			if strings.ToLower(n.Value) == "onbuild" && (n.Next == nil || len(n.Next.Children) == 0 ||
				strings.ToLower(n.Next.Children[0].Value) != "run") {
				continue
			}
			text := joinContinuations(lines[n.StartLine-1:n.EndLine], res.EscapeToken)
			text = instructionArgs.ReplaceAllString(text, "")
			if strings.ToLower(n.Value) == "onbuild" {
				text = instructionArgs.ReplaceAllString(text, "")
			}
			if strings.HasPrefix(text, "[") { // exec form: hadolint v2.14.0 checks its words joined
				var words []string
				if json.Unmarshal([]byte(text), &words) == nil {
					text = strings.Join(words, " ")
				}
			}
			names := make([]string, 0, len(vars))
			for v := range vars {
				names = append(names, v)
			}
			slices.Sort(names)
			out = append(out, script{line: n.StartLine, shell: shell, vars: names, text: text, ignore: pragmaIgnores(n.PrevComment)})
		}
	}
	return out
}

var shellPragma = regexp.MustCompile(`hadolint\s+shell\s*=\s*(\S+)`)

// The keyword and the flags (--mount=..., --network=...) before a RUN's command.
var instructionArgs = regexp.MustCompile(`^\s*[A-Za-z]+(\s+--\S+)*\s+`)

// joinContinuations joins an instruction's lines as language-docker does: an escape character
// at the end of a line, the line break(s) and comment lines after it become one space when the
// next line starts with blanks, nothing otherwise (Parser/Prelude.hs, escapedLineBreaks).
func joinContinuations(lines []string, esc rune) string {
	e := regexp.QuoteMeta(string(esc))
	re := regexp.MustCompile(e + `[ \t]*\n+(?:[ \t]*#[^\n]*\n+)*([ \t]+)?`)
	return re.ReplaceAllStringFunc(strings.Join(lines, "\n"), func(m string) string {
		if sub := re.FindStringSubmatch(m); sub[1] != "" {
			return " "
		}
		return ""
	})
}

// pragmaIgnores reads `# hadolint ignore=SC2086,DL3008` from the comments just above an instruction.
func pragmaIgnores(comments []string) []string {
	var out []string
	for _, c := range comments {
		if m := regexp.MustCompile(`hadolint\s+ignore=([A-Z0-9, ]+)`).FindStringSubmatch(c); m != nil {
			for _, code := range strings.Split(m[1], ",") {
				out = append(out, strings.TrimSpace(code))
			}
		}
	}
	return out
}

// shellcheckRun runs ShellCheck on one script as hadolint's Shell.shellcheck does.
func shellcheckRun(t *testing.T, file string, s script) []finding {
	t.Helper()
	sh := strings.Fields(s.shell)[0]
	for _, nonPosix := range []string{"pwsh", "powershell", "cmd"} {
		if strings.Contains(s.shell, nonPosix) {
			return nil
		}
	}
	if strings.HasPrefix(s.text, "#!") && !slices.ContainsFunc([]string{"#!/bin/sh", "#!/bin/bash", "#!/bin/ksh",
		"#!/usr/bin/env sh", "#!/usr/bin/env bash", "#!/usr/bin/env ksh"}, func(p string) bool { return strings.HasPrefix(s.text, p) }) {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "#!%s\n", sh)
	for _, v := range s.vars {
		fmt.Fprintf(&b, "export %s=1\n", v)
	}
	b.WriteString(s.text)
	cmd := exec.Command("shellcheck", "--format=json1", "--severity=style", "--norc",
		"--exclude="+strings.Join(hadolintExcludes, ","), "-")
	cmd.Stdin = strings.NewReader(b.String())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok || stderr.Len() > 0 {
		t.Fatalf("shellcheck: %v %s", err, stderr.String())
	}
	var res struct {
		Comments []struct {
			Code    int
			Level   string
			Message string
		}
	}
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("shellcheck output: %v: %s", err, stdout.String())
	}
	var out []finding
	for _, c := range res.Comments {
		out = append(out, finding{File: file, Line: s.line, Code: fmt.Sprintf("SC%d", c.Code), Level: c.Level, Msg: c.Message})
	}
	return out
}

// failingShellcheck returns what would fail hadolint-action on a Dockerfile: ShellCheck's
// findings at or above the threshold, less .hadolint.yaml's and the pragmas' ignores.
func failingShellcheck(t *testing.T, path, name, threshold string, ignore map[string]bool) []finding {
	var out []finding
	for _, s := range runScripts(t, path) {
		for _, f := range shellcheckRun(t, name, s) {
			if severityRank[f.Level] >= severityRank[threshold] && !ignore[f.Code] && !slices.Contains(s.ignore, f.Code) {
				out = append(out, f)
			}
		}
	}
	return out
}

// dockerfiles lists the repository's Dockerfiles (Dockerfile, Dockerfile.*, *.Dockerfile).
func dockerfiles(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command("git", "-C", "../..", "ls-files").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	var files []string
	for _, f := range strings.Fields(string(out)) {
		base := strings.ToLower(filepath.Base(f))
		if base == "dockerfile" || strings.HasPrefix(base, "dockerfile.") || strings.HasSuffix(base, ".dockerfile") {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		t.Fatal("no Dockerfile in git ls-files")
	}
	return files
}

// failureThreshold is the hadolint-action step's failure-threshold in ci.yml (the action's
// default, info, when unset).
func failureThreshold(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../.github/workflows/ci.yml")
	if err != nil {
		t.Fatal(err)
	}
	var wf struct {
		Jobs map[string]struct {
			Steps []struct {
				Uses string
				With map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(b, &wf); err != nil {
		t.Fatal(err)
	}
	for _, j := range wf.Jobs {
		for _, s := range j.Steps {
			if strings.HasPrefix(s.Uses, "hadolint/hadolint-action@") {
				if th := s.With["failure-threshold"]; th != "" {
					return th
				}
				return "info"
			}
		}
	}
	t.Fatal("ci.yml runs no hadolint-action: this test mirrors it")
	return ""
}

func requireShellcheck(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Fatal("shellcheck is not installed (make deps installs it; Debian: apt-get install shellcheck)")
	}
}

func TestRunInstructionsPassHadolintsShellcheck(t *testing.T) {
	requireShellcheck(t)
	threshold, ignore := failureThreshold(t), ignored(t)
	for _, f := range dockerfiles(t) {
		for _, bad := range failingShellcheck(t, "../../"+f, f, threshold, ignore) {
			t.Errorf("%s (https://www.shellcheck.net/wiki/%s)", bad, bad.Code)
		}
	}
}

// The pass finds what hadolint finds: the first RUN of the Dockerfile as it was before the
// fix gave SC2086 (info) on ${cross:-} and SC2046 (warning) on each unquoted $(for ...) list,
// and nothing once quoted; ARG names are declared (no SC2154 on $TARGETARCH), SHELL's bash is
// used (no SC3xxx for [[ ]]), a new stage forgets both, and the pragma and threshold apply.
func TestTheShellcheckPassCatchesTheMistakes(t *testing.T) {
	requireShellcheck(t)
	dir := t.TempDir()
	check := func(dockerfile, threshold string) []string {
		path := filepath.Join(dir, "Dockerfile")
		if err := os.WriteFile(path, []byte(dockerfile), 0o644); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range failingShellcheck(t, path, "Dockerfile", threshold, map[string]bool{}) {
			got = append(got, fmt.Sprintf("%d:%s:%s", f.Line, f.Code, f.Level))
		}
		return got
	}
	head := "FROM golang:1.26-bookworm AS build\nARG TARGETARCH\nARG LANGS=eng\nARG pkgs\nSHELL [\"/bin/bash\", \"-o\", \"pipefail\", \"-c\"]\n"
	was := head + `RUN arch=${TARGETARCH:-$(dpkg --print-architecture)}; \
    if [ "$arch" != "$(dpkg --print-architecture)" ]; then dpkg --add-architecture "$arch"; cross="crossbuild-essential-$arch"; fi; \
    apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ pkg-config binutils ${cross:-} \
      $(for p in libtesseract-dev libleptonica-dev libpng-dev libjpeg-dev libtiff-dev libwebp-dev libgif-dev \
                 libopenjp2-7-dev zlib1g-dev; do echo "$p:$arch"; done) \
      tesseract-ocr-osd $(for l in ${LANGS}; do echo "tesseract-ocr-$l"; done) \
 && rm -rf /var/lib/apt/lists/*
`
	want := []string{"6:SC2086:info", "6:SC2046:warning", "6:SC2046:warning"}
	if got := check(was, "info"); !slices.Equal(got, want) {
		t.Errorf("the Dockerfile's first RUN as it was: %v, want %v (hadolint-action's report)", got, want)
	}
	if got := check(was, "warning"); len(got) != 2 {
		t.Errorf("at threshold warning: %v, want the two SC2046", got)
	}
	cases := []struct {
		dockerfile string
		want       []string
	}{
		{head + "RUN echo \"$pkgs $LANGS\" && [[ -d /x ]]\n", nil},                                                        // declared, bash
		{head + "FROM debian\nRUN echo \"$pkgs\"\n", []string{"7:SC2154:warning"}},                                        // a new stage forgets ARGs
		{"FROM debian\nRUN [[ -d /x ]]\n", []string{"2:SC3010:warning"}},                                                  // /bin/sh by default
		{"FROM debian\n# hadolint ignore=SC2046\nRUN echo $(ls)\n", nil},                                                  // the pragma
		{"FROM debian\nRUN --mount=type=cache,target=/x \\\n  # a comment\n  echo $(ls)\n", []string{"2:SC2046:warning"}}, // flags, comments between lines
	}
	for _, c := range cases {
		if got := check(c.dockerfile, "info"); !slices.Equal(got, c.want) {
			t.Errorf("%q: %v, want %v", c.dockerfile, got, c.want)
		}
	}
	// hadolint's own specification of this rule (test/Hadolint/Rule/ShellcheckSpec.hs, v2.14.0):
	// the same Dockerfiles pass or fail here.
	spec := []struct {
		dockerfile string
		passes     bool
	}{
		{"RUN echo $MISSING_QUOTES\n", false},
		{"RUN echo foo\n", true},
		{"RUN echo \"$HTTP_PROXY\"\nRUN echo \"$http_proxy\"\nRUN echo \"$HTTPS_PROXY\"\nRUN echo \"$https_proxy\"\n" +
			"RUN echo \"$FTP_PROXY\"\nRUN echo \"$ftp_proxy\"\nRUN echo \"$NO_PROXY\"\nRUN echo \"$no_proxy\"\n", true},
		{"RUN echo \"$RTTP_PROXY\"\n", false},
		{"ARG foo=bar\nARG another_foo\nENV bar=10 baz=20\nRUN echo \"$foo\"\nRUN echo \"$another_foo\"\nRUN echo \"$bar\"\nRUN echo \"$baz\"\n", true},
		{"ARG foo=bar\nARG another_foo\nENV bar=10 baz=20\nFROM debian\nRUN echo \"$foo\"\n", false},
		{"RUN echo $RANDOM\n", false},
		{"SHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]\nRUN echo $RANDOM\n", true},
		{"SHELL [\"/bin/bash\", \"-eo\", \"pipefail\", \"-c\"]\nFROM debian\nRUN echo $RANDOM\n", false},
		{"SHELL [\"/bin/ash\", \"-o\", \"pipefail\", \"-c\"]\nRUN echo hello\n", true},
		{"SHELL [\"pwsh\", \"-c\"]\nRUN Get-Variable PSVersionTable | Select-Object -ExpandProperty Value\n", true},
		{"SHELL [\"cmd.exe\", \"/c\"]\nRUN Get-Variable PSVersionTable | Select-Object -ExpandProperty Value\n", true},
		{"FROM mcr.microsoft.com/foo/bar/windows:10\n# hadolint shell = powershell.exe\nRUN Get-Variable PSVersionTable | Select-Object -ExpandProperty Value\n", true},
		{"# hadolint shell=powershell.exe\nFROM mcr.microsoft.com/foo/bar/windows:10\nRUN Get-Variable PSVersionTable | Select-Object -ExpandProperty Value\n" +
			"FROM mcr.microsoft.com/foo/bar/windows:10\nRUN Get-Variable PSVersionTable | Select-Object -ExpandProperty Value\n", true},
	}
	for _, c := range spec {
		if got := check(c.dockerfile, "style"); (len(got) == 0) != c.passes {
			t.Errorf("hadolint's spec: %q gives %v here, want passes=%v", c.dockerfile, got, c.passes)
		}
	}
}
