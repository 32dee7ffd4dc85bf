package e2e

// CD's preview job runs a pull request's code with the kubeconfig of the readocr-preview
// ServiceAccount (hack/ci/preview-rbac.yaml). On minikube: that account's kubeconfig is made
// with hack/ci/preview-kubeconfig.sh, as the README says; the account cannot delete a
// Deployment, read a Secret or act outside its namespace. With Pulumi: `pulumi preview` of the
// minikube stack as that account, for a new stack (dry-run applies that create) and for a
// deployed one whose config changed (a get, then dry-run patches), changes nothing. As
// pulumi-kubernetes previews client-side, and passes, when a dry run is forbidden (a viewer's
// preview is green too), each verb is shown needed by the provider's trace: without it, the API
// server dry-runs none of the objects of one of the two previews.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
	t.Cleanup(func() { os.Remove(filepath.Join(root(), "Pulumi.preview-e2e.yaml")) }) // stack init writes it there
	t.Cleanup(func() {
		pulumi(nil, "destroy", "--yes", "--skip-preview", "--suppress-progress")
		runEnv(nil, "pulumi", "stack", "rm", "preview-e2e", "--yes", "--force", "--non-interactive")
	})
	must(pulumi(nil, "config", "set", "readocr:namespace", ns))
	// pulumi-kubernetes previews client-side, and passes, when a dry run is forbidden: what the
	// verbs buy is the API server's dry run. Its trace shows it: a server-assigned uid in the
	// object the provider's Create or Update returns.
	preview := func() (string, error) {
		return pulumi(asPreview, "preview", "--diff", "--suppress-progress", "--logtostderr", "--logflow", "-v=9")
	}
	serverSeen := func(op, out string) int {
		re := regexp.MustCompile(`Provider\[kubernetes\]\.` + op + `\(([^)]*)\)\.inputsAndComputed\]: uid=`)
		seen := map[string]bool{}
		for _, m := range re.FindAllStringSubmatch(out, -1) {
			seen[m[1]] = true
		}
		return len(seen)
	}
	must(pulumi(nil, "config", "set", "readocr:nodePort", "30401")) // the other e2e tests' 30400 may still be allocated
	verbs := []string{"get", "create", "patch"}
	needs := map[string][]string{} // verb -> the previews the API server no longer sees without it
	tryWithout := func(scenario, op string, full int) {
		for _, verb := range verbs {
			weaker := filepath.Join(work, "role-without-"+verb+".yaml")
			os.WriteFile(weaker, []byte(roleWithout(t, verb)), 0o644)
			apply(weaker)
			out := must(preview())
			n := serverSeen(op, out)
			t.Logf("%s, Role without %s: preview passes; %d of %d objects dry-run by the API server", scenario, verb, n, full)
			if n == 0 {
				needs[verb] = append(needs[verb], scenario)
			}
			apply("hack/ci/preview-rbac.yaml")
		}
	}

	// A new stack: every resource a dry-run apply that creates.
	out := must(preview())
	full := serverSeen("Create", out)
	t.Logf("new stack, the Role: preview passes; %d objects dry-run by the API server (%v)", full, time.Since(began).Round(time.Second))
	if full < 10 {
		t.Errorf("new stack: %d objects dry-run by the API server with the Role, want every one", full)
	}
	if left := kubectl(t, "get", "deploy,sts,svc,cm,pdb,hpa,networkpolicy", "-n", ns, "-l", "app.kubernetes.io/part-of=readocr", "-o", "name"); left != "" {
		t.Errorf("the preview created:\n%s", left)
	}
	tryWithout("new stack", "Create", full)
	// What a viewer's kubeconfig gives: a green preview the API server never saw.
	viewer := filepath.Join(work, "viewer.yaml")
	os.WriteFile(viewer, []byte(strings.ReplaceAll(readFile(t, "hack/ci/preview-rbac.yaml"), "[get, create, patch]", "[get, list, watch]")), 0o644)
	apply(viewer)
	out = must(preview())
	t.Logf("new stack, a viewer's verbs (get, list, watch): preview passes; %d objects dry-run by the API server", serverSeen("Create", out))
	apply("hack/ci/preview-rbac.yaml")

	// A deployed stack whose config changed: a get and a dry-run patch of each changed object.
	// The change is one Pulumi updates in place (the API's autoscaler's maximum): a changed
	// ConfigMap is replaced, not updated (pulumi-kubernetes treats ConfigMaps as immutable), and
	// its preview is a Create, which would leave no Update to count.
	must(pulumi(nil, "up", "--yes", "--skip-preview", "--suppress-progress"))
	must(pulumi(nil, "config", "set", "readocr:maxReplicas", "3"))
	out = must(preview())
	if !strings.Contains(out, "~ ") {
		t.Errorf("preview after a config change shows no update:\n%s", tail(out, 20))
	}
	full = serverSeen("Update", out)
	t.Logf("deployed stack, the Role: preview passes; %d changed objects dry-run by the API server", full)
	if full == 0 {
		// Seen on minikube (2026-12-06): the provider's trace shows no dry-run of an update
		// (a changed autoscaler), with the Role or without; what the deployed stack's preview
		// needs is then not shown here, get's need included (README, CI/CD).
		t.Log("deployed stack: the provider's trace shows no update dry-run: what its preview needs is unproven here")
	}
	if got := kubectl(t, "get", "hpa", "readocr", "-n", ns, "-o", "jsonpath={.spec.maxReplicas}"); got != "4" {
		t.Errorf("after the preview the API's autoscaler has maxReplicas %q, want 4 (unchanged)", got)
	}
	if full > 0 {
		tryWithout("deployed stack", "Update", full)
	}
	// Every verb of the Role is needed by one of the two previews: none is there for nothing.
	// get is the deployed stack's (its live objects read): checked only where the trace shows
	// that stack's dry runs.
	for _, verb := range verbs {
		if len(needs[verb]) == 0 && (verb != "get" || full > 0) {
			t.Errorf("the API server sees every preview without %q: take it out of hack/ci/preview-rbac.yaml", verb)
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
