package workflows_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The release publishes the image the manifests name: ghcr.io/readocr/readocr:<VERSION>, pushed
// by CI's tag path for the tag v<VERSION>. The name lives in the workflows (IMAGE_NAME), infra/
// (Registry) and the scripts; the version in VERSION and the rendered manifests. Any drift is a
// deployment of an image that does not exist.
func TestReleaseNamesHoldTogether(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile("../../" + p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	version := strings.TrimSpace(read("VERSION"))
	wfs := load(t)
	ci, cd := wfs["ci.yml"], wfs["cd.yml"]
	name := ci.Env["IMAGE_NAME"]
	if name == "" || cd.Env["IMAGE_NAME"] != name {
		t.Fatalf("IMAGE_NAME: ci.yml %q, cd.yml %q: want one name in both", name, cd.Env["IMAGE_NAME"])
	}
	if m := regexp.MustCompile(`const Registry = "([^"]+)"`).FindStringSubmatch(read("infra/config.go")); m == nil || m[1] != name {
		t.Errorf("infra.Registry %v, want %s", m, name)
	}
	// Every image reference in the manifests that is ours names VERSION.
	files, _ := filepath.Glob("../../manifests/*.yaml")
	ours := 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, m := range regexp.MustCompile(`(?m)^\s*image:\s*"?([^"\s]+)`).FindAllStringSubmatch(string(b), -1) {
			repo, tag, _ := strings.Cut(m[1], ":")
			if strings.HasPrefix(repo, "ghcr.io/") {
				ours++
				if repo != name || tag != version {
					t.Errorf("%s: image %s, want %s:%s (IMAGE_NAME:VERSION)", filepath.Base(f), m[1], name, version)
				}
			}
		}
	}
	if ours < 2 {
		t.Errorf("%d images of ours in manifests/, want the API's and the worker's", ours)
	}
	// Every name of this image anywhere in the repository (tests' counter-examples aside) is that one.
	out, err := exec.Command("git", "-C", "../..", "grep", "-h", "-o", "-i", "-E", `ghcr\.io/[A-Za-z0-9_.-]+/readocr\b`, "--", ":!*_test.go").Output()
	if err != nil {
		t.Fatalf("git grep: %v", err)
	}
	for _, n := range strings.Fields(string(out)) {
		if n != name {
			t.Errorf("%s in the repository, want only %s", n, name)
		}
	}
	// CI's tag path: tags v*, checked against VERSION, the semver tag from the tag, the
	// repository that owns the name.
	var tagsOn []string
	for i := 0; i+1 < len(ci.On.Content); i += 2 {
		if ci.On.Content[i].Value == "push" {
			push := ci.On.Content[i+1]
			for k := 0; k+1 < len(push.Content); k += 2 {
				if push.Content[k].Value == "tags" {
					for _, n := range push.Content[k+1].Content {
						tagsOn = append(tagsOn, n.Value)
					}
				}
			}
		}
	}
	if ok, _ := filepath.Match(strings.Join(tagsOn, ""), "v"+version); len(tagsOn) != 1 || !ok {
		t.Errorf("ci.yml runs on tags %v, want one pattern that matches v%s", tagsOn, version)
	}
	publish := ci.Jobs["publish"]
	if !strings.Contains(publish.If, "github.repository == '"+strings.TrimPrefix(name, "ghcr.io/")+"'") {
		t.Errorf("publish runs if %q: want it only in the repository that owns %s", publish.If, name)
	}
	checked := slices.IndexFunc(publish.Steps, func(s step) bool {
		return s.Run == "hack/ci/release-version.sh" && strings.Contains(s.If, "refs/tags/")
	})
	built := slices.IndexFunc(publish.Steps, pushes)
	if checked < 0 || built < 0 || checked > built {
		t.Error("publish: hack/ci/release-version.sh (on tags) must run before the image is built")
	}
	meta := slices.IndexFunc(publish.Steps, func(s step) bool { return action(s) == "docker/metadata-action" })
	if meta < 0 || with(publish.Steps[meta], "images") != "${{ env.IMAGE_NAME }}" ||
		!strings.Contains(with(publish.Steps[meta], "tags"), "type=semver,pattern={{version}}") {
		t.Error("publish: docker/metadata-action must name ${{ env.IMAGE_NAME }} and tag {{version}} (X.Y.Z from vX.Y.Z)")
	}
	if built >= 0 && with(publish.Steps[built], "platforms") != "linux/amd64,linux/arm64" {
		t.Errorf("publish builds %q, want linux/amd64,linux/arm64", with(publish.Steps[built], "platforms"))
	}
	// The script itself: the tag of this VERSION passes, another fails.
	for tag, ok := range map[string]bool{"v" + version: true, "v" + version + "1": false, version: false} {
		cmd := exec.Command("hack/ci/release-version.sh")
		cmd.Dir, cmd.Env = "../..", append(os.Environ(), "GITHUB_REF_NAME="+tag, "IMAGE_NAME="+name)
		out, err := cmd.CombinedOutput()
		if (err == nil) != ok {
			t.Errorf("release-version.sh with tag %s: %v %s", tag, err, out)
		}
	}
}
