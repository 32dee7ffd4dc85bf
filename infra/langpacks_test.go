package main

import (
	"encoding/json"
	"os/exec"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// With readocr:languages, both Deployments get one init container per pack, in order, which
// fills the langpacks volume the readocr container reads at /langpacks; the readocr container
// (its image above all) is the one a stack without languages has.
func TestLanguages(t *testing.T) {
	plain := render(t, DefaultConfig("0.1.0"))
	cfg := DefaultConfig("0.1.0")
	cfg.Languages = []string{"deu", "chi-sim"}
	rec := render(t, cfg)
	for _, d := range []string{deployment, workerDeployment} {
		pod := at(t, rec.get(t, d), "spec.template.spec").(map[string]any)
		inits := asSlice(pod["initContainers"])
		if len(inits) != 2 {
			t.Fatalf("%s: %d init containers, want 2", d, len(inits))
		}
		for i, p := range cfg.Languages {
			expect(t, inits[i].(map[string]any), map[string]any{
				"name":                                     "langpack-" + p,
				"image":                                    "ghcr.io/readocr/langpack-" + p + ":4.1.0",
				"imagePullPolicy":                          "IfNotPresent",
				"volumeMounts.0.name":                      "langpacks",
				"volumeMounts.0.mountPath":                 "/target",
				"securityContext.runAsNonRoot":             true,
				"securityContext.readOnlyRootFilesystem":   true,
				"securityContext.allowPrivilegeEscalation": false,
				"securityContext.capabilities.drop.0":      "ALL",
				"resources.limits.memory":                  "64Mi",
			})
			if _, ok := inits[i].(map[string]any)["command"]; ok {
				t.Errorf("%s: %s sets a command: the pack image's entrypoint is the copier", d, p)
			}
		}
		expect(t, pod, map[string]any{
			"volumes.1.name": "langpacks", "volumes.1.emptyDir.sizeLimit": "256Mi",
			"containers.0.volumeMounts.1.name": "langpacks", "containers.0.volumeMounts.1.mountPath": "/langpacks",
			"containers.0.volumeMounts.1.readOnly": true,
		})
		got, _ := json.Marshal(pod["containers"])
		want, _ := json.Marshal(at(t, plain.get(t, d), "spec.template.spec.containers"))
		if string(got) != string(want) {
			t.Errorf("%s: the readocr container changed with languages:\n%s\nwant\n%s", d, got, want)
		}
	}
	// Without languages: the volume and the mount, no init container (manifests/).
	if inits := at(t, plain.get(t, deployment), "spec.template.spec").(map[string]any)["initContainers"]; inits != nil {
		t.Errorf("init containers without languages: %v", inits)
	}
}

// readocr:languages is read from the stack as a list; what is not a pack is refused before
// anything is declared.
func TestLanguagesConfig(t *testing.T) {
	rec := renderStack(t, "minikube", map[string]string{"readocr:languages": `["deu","fra","jpn"]`})
	inits := asSlice(at(t, rec.get(t, workerDeployment), "spec.template.spec").(map[string]any)["initContainers"])
	if len(inits) != 3 || at(t, inits[2], "name") != "langpack-jpn" {
		t.Errorf("init containers from readocr:languages: %v", inits)
	}
	for _, bad := range [][]string{{"Deu"}, {"deu", "deu"}, {"chi_sim"}, {"../x"}, {"-deu"}, {strings.Repeat("a", 60)}} {
		c := DefaultConfig("0.1.0")
		c.Languages = bad
		if err := c.validate(); err == nil {
			t.Errorf("languages %q accepted", bad)
		}
	}
	c := DefaultConfig("0.1.0")
	c.Languages = []string{"deu"}
	c.LangpackImage = "registry.local/packs:latest"
	if err := c.validate(); err == nil {
		t.Error("a pack image without a tag (latest) accepted")
	}
}

// hack/langpack-patch.sh, the kubectl users' way, declares the init containers Pulumi does.
func TestLangpackPatchMatchesPulumi(t *testing.T) {
	cfg := DefaultConfig("0.1.0")
	cfg.Languages = []string{"deu", "fra", "script-latn"}
	rec := render(t, cfg)
	out, err := exec.Command("../hack/langpack-patch.sh", cfg.Languages...).Output()
	if err != nil {
		t.Fatal(err)
	}
	var patch map[string]any
	if err := yaml.Unmarshal(out, &patch); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	norm := func(v any) any {
		b, _ := json.Marshal(v)
		var out any
		json.Unmarshal(b, &out)
		return out
	}
	got := norm(at(t, patch, "spec.template.spec.initContainers"))
	want := norm(at(t, rec.get(t, deployment), "spec.template.spec.initContainers"))
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("hack/langpack-patch.sh:\n%s\nPulumi:\n%s", g, w)
	}
	// No packs: the patch removes the list.
	out, _ = exec.Command("../hack/langpack-patch.sh").Output()
	if !strings.Contains(string(out), "initContainers: null") {
		t.Errorf("no packs: %s", out)
	}
	if err := exec.Command("../hack/langpack-patch.sh", "chi_sim").Run(); err == nil {
		t.Error("hack/langpack-patch.sh accepted chi_sim")
	}
}
