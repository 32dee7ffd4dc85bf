package e2e

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readmeBlock is the README's shell block marked `<!-- test: name -->`, with only the
// substitutions of test/readme/substitutions.sed (hack/readme-block.sh).
func readmeBlock(t *testing.T, file, name string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(root(), "hack", "readme-block.sh"), filepath.Join(root(), file), name).Output()
	if err != nil {
		t.Fatalf("hack/readme-block.sh %s %s: %v", file, name, err)
	}
	return string(out)
}

// runBlock runs a README block as a user's shell would, from the repository's root, stopping at
// the first failing line; what it left running in the background (kubectl port-forward) ends
// with it. env is added to this process's environment, minus the names in drop.
func runBlock(t *testing.T, file, name string, env map[string]string, drop ...string) string {
	t.Helper()
	block := readmeBlock(t, file, name)
	cmd := exec.Command("bash", "-c", "set -euxo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n"+block)
	cmd.Dir = root()
	cmd.Env = blockEnv(env, drop...)
	cmd.WaitDelay = 10 * time.Second
	began := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("the README's %q block (%s), as written:\n%s\n--- its output (%v):\n%s", name, file, block, time.Since(began).Round(100*time.Millisecond), tail(string(out), 40))
	if err != nil {
		t.Fatalf("the README's %q block failed: %v", name, err)
	}
	return string(out)
}

// blockEnv is the environment runBlock gives a block: this process's, less drop and the keys of
// env, plus env. A test's own commands after a block run in it too (what the README's shell has).
func blockEnv(env map[string]string, drop ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); !contains(drop, k) && env[k] == "" {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// kubeconfigIn is a copy of the tests' kubeconfig whose current context names namespace ns:
// the README's blocks, written for a user's default namespace, then run in the test's.
func kubeconfigIn(t *testing.T, ns string) string {
	t.Helper()
	src := os.Getenv("KUBECONFIG")
	if src == "" {
		home, _ := os.UserHomeDir()
		src = filepath.Join(home, ".kube", "config")
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "config")
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, "kubectl", "config", "set-context", "--current", "--namespace="+ns, "--kubeconfig", dst)
	return dst
}

// freePort is a loopback port nothing listens on now (port 4000 may be taken on a test machine).
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}
