package e2e

// CD's preview job runs a pull request's code with the kubeconfig of the readocr-preview
// ServiceAccount (hack/ci/preview-rbac.yaml). On minikube: that account's kubeconfig is made
// with hack/ci/preview-kubeconfig.sh, as the README says; the account cannot delete a
// Deployment, read a Secret or act outside its namespace. With Pulumi: `pulumi preview` of the
// minikube stack passes with it, for a new stack (dry-run applies that create) and for a
// deployed one whose config changed (a get, then dry-run patches), and changes nothing. As
// pulumi-kubernetes previews client-side when a dry run is forbidden (and passes), each verb is
// shown needed by what it catches: a NodePort the API server refuses fails the preview with the
// Role, and passes it without that verb, as it passes a viewer's.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// runEnv runs a command from the repository root with extra environment and returns its output
// and error (no t.Fatal: failures are what some calls here expect).
func runEnv(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Dir = root()
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// roleWithout returns hack/ci/preview-rbac.yaml with verb removed from every rule of the Role.
func roleWithout(t *testing.T, verb string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(), "hack/ci/preview-rbac.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var docs []string
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	for {
		var doc map[string]any
		if dec.Decode(&doc) != nil {
			break
		}
		if doc["kind"] == "Role" {
			for _, r := range doc["rules"].([]any) {
				rule := r.(map[string]any)
				var verbs []any
				for _, v := range rule["verbs"].([]any) {
					if v != verb {
						verbs = append(verbs, v)
					}
				}
				rule["verbs"] = verbs
			}
		}
		out, _ := yaml.Marshal(doc)
		docs = append(docs, string(out))
	}
	return strings.Join(docs, "---\n")
}

func TestPreviewRBAC(t *testing.T) {
	e := getEnv(t)
	began := time.Now()
	ns := namespace(t, "readocr-preview")
	apply := func(file string) { kubectl(t, "apply", "-n", ns, "-f", file) }
	apply("hack/ci/preview-rbac.yaml")
	work := t.TempDir()
	saConfig := filepath.Join(work, "preview.kubeconfig")
	kc, err := runEnv(nil, "hack/ci/preview-kubeconfig.sh", ns, "1h")
	if err != nil {
		t.Fatalf("preview-kubeconfig.sh: %v\n%s", err, kc)
	}
	os.WriteFile(saConfig, []byte(kc+"\n"), 0o600)
	asPreview := []string{"KUBECONFIG=" + saConfig}

	// What the account cannot do, whatever preview needs.
	kubectl(t, "create", "secret", "generic", "readocr-webhook", "-n", ns, "--from-literal=OCR_WEBHOOK_SECRET=not-for-previews")
	kubectl(t, "create", "deployment", "victim", "-n", ns, "--image="+e.image)
	for _, denied := range [][]string{
		{"get", "secret", "readocr-webhook", "-n", ns},
		{"get", "secrets", "-n", ns},
		{"delete", "deployment", "victim", "-n", ns},
		{"delete", "deployment", "victim", "-n", ns, "--dry-run=server"},
		{"get", "deployments", "-n", "default"},
		{"create", "namespace", "preview-escape", "--dry-run=server"},
	} {
		out, err := runEnv(asPreview, "kubectl", denied...)
		if err == nil || !strings.Contains(out, "forbidden") {
			t.Errorf("as readocr-preview, kubectl %s: %v %s, want forbidden", strings.Join(denied, " "), err, out)
		}
	}
	if out, _ := runEnv(asPreview, "kubectl", "auth", "can-i", "--list", "-n", ns); strings.Contains(out, "delete") || strings.Contains(out, "secrets") {
		t.Errorf("readocr-preview may:\n%s", out)
	} else {
		t.Logf("readocr-preview may (kubectl auth can-i --list):\n%s", out)
	}
	kubectl(t, "get", "deployment", "victim", "-n", ns) // still there

	if !e.pulumi {
		t.Skip("E2E_PULUMI is not set: the previews need Pulumi")
	}
	stackCfg := filepath.Join(work, "Pulumi.preview-e2e.yaml")
	b, err := os.ReadFile(filepath.Join(root(), "Pulumi.minikube.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(stackCfg, b, 0o644)
	t.Setenv("PULUMI_BACKEND_URL", "file://"+work)
	pulumi := func(env []string, args ...string) (string, error) {
		return runEnv(env, "pulumi", append(args, "--stack", "preview-e2e", "--non-interactive", "--config-file", stackCfg)...)
	}
	must := func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("%v\n%s", err, tail(out, 30))
		}
		return out
	}
	must(runEnv(nil, "pulumi", "stack", "init", "preview-e2e", "--non-interactive"))
	t.Cleanup(func() {
		pulumi(nil, "destroy", "--yes", "--skip-preview", "--suppress-progress")
		runEnv(nil, "pulumi", "stack", "rm", "preview-e2e", "--yes", "--force", "--non-interactive")
	})
	must(pulumi(nil, "config", "set", "readocr:namespace", ns))
	preview := func() (string, error) { return pulumi(asPreview, "preview", "--diff", "--suppress-progress") }
	setPort := func(port string) { must(pulumi(nil, "config", "set", "readocr:nodePort", port)) }
	// Not the minikube stack's 30400: the other e2e tests' Services may still hold it.
	const port = "30401"
	setPort(port)
	// pulumi-kubernetes falls back to a client-side preview when a dry run is forbidden, and
	// passes: the verbs are what makes the preview the API server's. A NodePort outside the
	// cluster's range is refused by the API server only (infra/ and the provider accept it), so a
	// server-side preview fails on it and a client-side one does not.
	const refused = "provided port is not in the valid range"
	caught := func(what string) bool {
		t.Helper()
		setPort("29000")
		defer setPort(port)
		out, err := preview()
		if err != nil && !strings.Contains(out, refused) {
			t.Fatalf("%s: preview failed, but not on the NodePort:\n%s", what, tail(out, 20))
		}
		t.Logf("%s: NodePort 29000 %s", what, map[bool]string{true: "refused by the API server (server-side dry run)", false: "passed (client-side fallback)"}[err != nil])
		return err != nil
	}
	verbs := []string{"get", "create", "patch"}
	needs := map[string][]string{} // verb -> the previews that miss the refusal without it
	tryWithout := func(scenario string) {
		for _, verb := range verbs {
			weaker := filepath.Join(work, "role-without-"+verb+".yaml")
			os.WriteFile(weaker, []byte(roleWithout(t, verb)), 0o644)
			apply(weaker)
			if !caught(scenario + ", Role without " + verb) {
				needs[verb] = append(needs[verb], scenario)
			}
			apply("hack/ci/preview-rbac.yaml")
		}
	}

	// A new stack: every resource is a dry-run apply that creates.
	out := must(preview())
	t.Logf("preview of a new stack as readocr-preview (%v):\n%s", time.Since(began).Round(time.Second), tail(out, 8))
	if left := kubectl(t, "get", "deploy,sts,svc,cm,pdb,hpa,networkpolicy", "-n", ns, "-l", "app.kubernetes.io/part-of=readocr", "-o", "name"); left != "" {
		t.Errorf("the preview created:\n%s", left)
	}
	if !caught("new stack, the Role") {
		t.Error("new stack: the preview with the Role did not ask the API server")
	}
	tryWithout("new stack")
	// What a viewer's kubeconfig gives: a green preview that never asked the API server.
	viewer := filepath.Join(work, "viewer.yaml")
	os.WriteFile(viewer, []byte(strings.NewReplacer("[get, create, patch]", "[get, list, watch]").Replace(readFile(t, "hack/ci/preview-rbac.yaml"))), 0o644)
	apply(viewer)
	if caught("new stack, a viewer's verbs (get, list, watch)") {
		t.Error("a viewer's preview asked the API server: the Role may need less")
	}
	apply("hack/ci/preview-rbac.yaml")

	// A deployed stack: a changed config previews as dry-run patches of the live objects.
	must(pulumi(nil, "up", "--yes", "--skip-preview", "--suppress-progress"))
	must(pulumi(nil, "config", "set", "readocr:logLevel", "debug"))
	out = must(preview())
	if !strings.Contains(out, "~ ") {
		t.Errorf("preview after a config change shows no update:\n%s", tail(out, 20))
	}
	t.Logf("preview of a changed stack as readocr-preview:\n%s", tail(out, 8))
	if level := kubectl(t, "get", "configmap", "readocr", "-n", ns, "-o", "jsonpath={.data.OCR_LOG_LEVEL}"); level == "debug" {
		t.Error("the preview changed the ConfigMap")
	}
	if !caught("deployed stack, the Role") {
		t.Error("deployed stack: the preview with the Role did not ask the API server")
	}
	tryWithout("deployed stack")
	// Every verb of the Role is needed by one of the two previews: none is there for nothing.
	for _, verb := range verbs {
		if len(needs[verb]) == 0 {
			t.Errorf("every preview asks the API server without %q: take it out of hack/ci/preview-rbac.yaml", verb)
		}
	}
	t.Logf("needed: %v", needs)
	t.Logf("preview RBAC total: %v", time.Since(began).Round(time.Second))
}

func readFile(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(), rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
