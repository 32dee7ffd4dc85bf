package workflows_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

func action(s step) string { return strings.Split(s.Uses, "@")[0] }

func with(s step, key string) string {
	switch v := s.With[key].(type) {
	case string:
		return v
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return ""
}

// pushes: a build step that writes the image to a registry.
func pushes(s step) bool {
	out := with(s, "outputs")
	return action(s) == "docker/build-push-action" &&
		(with(s, "push") == "true" || strings.Contains(out, "push=true") || strings.Contains(out, "type=registry"))
}

// names: a step that gives a pushed image a tag (a build that pushes tags, or a promotion).
func names(s step) bool {
	if pushes(s) {
		return strings.TrimSpace(with(s, "tags")) != "" || !strings.Contains(with(s, "outputs"), "push-by-digest=true")
	}
	return strings.Contains(s.Run, "hack/ci/promote.sh") || strings.Contains(s.Run, "imagetools create") || strings.Contains(s.Run, "docker push")
}

// supplyChainFindings checks one job's image steps: an image is scanned (every platform it is
// built for) and attested before anything names it or hands it to CD; a push before the scan
// is by digest only, with no tag (quarantine).
func supplyChainFindings(j job) []string {
	var bad []string
	for b, build := range j.Steps {
		if action(build) != "docker/build-push-action" {
			continue
		}
		platforms := strings.Split(strings.ReplaceAll(with(build, "platforms"), " ", ""), ",")
		if platforms[0] == "" {
			platforms = []string{"linux/amd64"}
		}
		scanned := map[string]int{} // platform -> index of its scan
		attested, named, handed := -1, -1, -1
		for i := b + 1; i < len(j.Steps); i++ {
			s := j.Steps[i]
			switch {
			case action(s) == "aquasecurity/trivy-action":
				p := s.Env["TRIVY_PLATFORM"]
				if p == "" && len(platforms) == 1 {
					p = platforms[0]
				}
				if _, ok := scanned[p]; !ok {
					scanned[p] = i
				}
			case action(s) == "actions/attest-build-provenance" && attested < 0:
				attested = i
			case names(s) && named < 0:
				named = i
			case action(s) == "actions/upload-artifact" && handed < 0:
				handed = i
			}
		}
		if names(build) {
			bad = append(bad, "step "+build.Name+" tags the image as it pushes it, before any scan (push by digest only: push-by-digest=true, no tags)")
		}
		for _, p := range platforms {
			at, ok := scanned[p]
			switch {
			case !ok:
				bad = append(bad, "the "+p+" image of step "+build.Name+" is never scanned (trivy-action with TRIVY_PLATFORM="+p+")")
			case named >= 0 && at > named:
				bad = append(bad, "the "+p+" image is tagged (step "+j.Steps[named].Name+") before it is scanned")
			case handed >= 0 && at > handed:
				bad = append(bad, "the "+p+" image is handed to CD before it is scanned")
			}
		}
		if pushes(build) {
			if attested < 0 {
				bad = append(bad, "the pushed image is never attested")
			} else if named >= 0 && attested > named || handed >= 0 && attested > handed {
				bad = append(bad, "the pushed image is tagged or handed to CD before it is attested")
			}
			if named < 0 {
				bad = append(bad, "the pushed image is never tagged (hack/ci/promote.sh): a release would publish no version")
			}
		}
	}
	return bad
}

func TestImagesAreScannedAndAttestedBeforeTheyAreNamed(t *testing.T) {
	w := load(t)["ci.yml"]
	pushed := false
	for name, j := range w.Jobs {
		for _, s := range j.Steps {
			pushed = pushed || pushes(s)
		}
		for _, bad := range supplyChainFindings(j) {
			t.Errorf("ci.yml/%s: %s", name, bad)
		}
	}
	if !pushed {
		t.Error("ci.yml pushes no image: the release publishes nothing")
	}
}

// The rule catches the mistake: the publish job as it was (pushed with its tags, then scanned).
func TestTheScanRuleCatchesThePushBeforeTheScan(t *testing.T) {
	was := job{Steps: []step{
		{Name: "Build and push", Uses: "docker/build-push-action@x", With: map[string]any{"platforms": "linux/amd64,linux/arm64", "push": true, "tags": "ghcr.io/readocr/readocr:1.0.0"}},
		{Name: "ref", Run: "hack/ci/image-ref.sh x --github-output > image-ref.txt"},
		{Name: "scan", Uses: "aquasecurity/trivy-action@x"},
		{Name: "attest", Uses: "actions/attest-build-provenance@x"},
		{Name: "upload", Uses: "actions/upload-artifact@x"},
	}}
	got := strings.Join(supplyChainFindings(was), "\n")
	for _, want := range []string{"tags the image as it pushes it", "linux/arm64 image of step Build and push is never scanned", "never tagged"} {
		if !strings.Contains(got, want) {
			t.Errorf("findings %q lack %q", got, want)
		}
	}
}

// verifyFindings checks one job: every pulumi up deploys an image whose provenance an earlier
// step verified (hack/ci/verify-image.sh), the same reference, for the commit checked out.
func verifyFindings(j job) []string {
	var bad []string
	ref := regexp.MustCompile(`steps\.[A-Za-z0-9_-]+\.outputs\.image`)
	for u, up := range j.Steps {
		if action(up) != "pulumi/actions" || with(up, "command") != "up" {
			continue
		}
		deployed := ref.FindString(with(up, "config-map"))
		if deployed == "" {
			bad = append(bad, "pulumi up deploys no image reference from a checked step")
			continue
		}
		verified := slices.IndexFunc(j.Steps[:u], func(s step) bool {
			return strings.HasPrefix(strings.TrimSpace(s.Run), "hack/ci/verify-image.sh") && ref.FindString(s.Env["IMAGE"]) == deployed &&
				s.Env["SOURCE_SHA"] != "" && s.If == ""
		})
		if verified < 0 {
			bad = append(bad, "pulumi up of "+deployed+" without an earlier, unconditional hack/ci/verify-image.sh of it")
		}
	}
	return bad
}

func TestDeploysVerifyTheImageFirst(t *testing.T) {
	ups := 0
	for name, j := range load(t)["cd.yml"].Jobs {
		for _, s := range j.Steps {
			if action(s) == "pulumi/actions" && with(s, "command") == "up" {
				ups++
			}
		}
		for _, bad := range verifyFindings(j) {
			t.Errorf("cd.yml/%s: %s", name, bad)
		}
	}
	if ups < 2 {
		t.Errorf("cd.yml has %d pulumi up steps, want staging and production", ups)
	}
	was := job{Steps: []step{
		{ID: "ref", Run: "hack/ci/image-ref.sh x --github-output"},
		{Uses: "pulumi/actions@x", With: map[string]any{"command": "up", "config-map": "{readocr:image: {value: '${{ steps.ref.outputs.image }}'}}"}},
	}}
	if len(verifyFindings(was)) != 1 {
		t.Error("the rule does not catch a pulumi up without verification (cd.yml as it was)")
	}
}

// The preview runs a pull request's code: a team token (the read-only team), never the
// organization's, and an environment of its own (a kubeconfig that cannot change the cluster).
func TestPreviewHasLeastPrivilege(t *testing.T) {
	w := load(t)["cd.yml"]
	deployEnvs := map[string]bool{}
	for _, j := range w.Jobs {
		for _, s := range j.Steps {
			if action(s) == "pulumi/actions" && with(s, "command") != "preview" {
				env, _ := j.Environment.(string)
				deployEnvs[env] = true
			}
		}
	}
	previews := 0
	for name, j := range w.Jobs {
		preview := slices.ContainsFunc(j.Steps, func(s step) bool { return action(s) == "pulumi/actions" && with(s, "command") == "preview" })
		if !preview {
			continue
		}
		previews++
		if env, _ := j.Environment.(string); env == "" || deployEnvs[env] {
			t.Errorf("cd.yml/%s: preview in environment %q, want one of its own (not a deploying job's)", name, env)
		}
		for _, s := range j.Steps {
			if action(s) == "pulumi/auth-actions" && (with(s, "requested-token-type") != "urn:pulumi:token-type:access_token:team" ||
				!strings.HasPrefix(with(s, "scope"), "team:${{ vars.")) {
				t.Errorf("cd.yml/%s: Pulumi token %q scope %q, want a team token of the team a variable names", name, with(s, "requested-token-type"), with(s, "scope"))
			}
			if action(s) == "pulumi/actions" && with(s, "command") != "preview" {
				t.Errorf("cd.yml/%s: %s in the preview job", name, with(s, "command"))
			}
		}
	}
	if previews == 0 {
		t.Error("cd.yml has no preview job")
	}
}
