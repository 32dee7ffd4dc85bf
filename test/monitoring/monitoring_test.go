// Package monitoring_test tests manifests/monitoring with the real tools against the real
// service: promtool checks the PrometheusRule's groups and runs their unit tests
// (rules_test.yaml); Debian's Prometheus scrapes a running readocr on loopback and the test
// queries a metric and a recorded rule back; every metric the Grafana dashboard names is one
// the service exports (or a rule records).
package monitoring_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/readocr/readocr/internal/testsupport/servicebin"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

const (
	ruleFile      = "../../manifests/monitoring/prometheusrule.yaml"
	podMonitor    = "../../manifests/monitoring/podmonitor.yaml"
	dashboardFile = "../../manifests/monitoring/dashboards/readocr.json"
)

// tool is the path of Debian's prometheus package's name (promtool, prometheus). Without it
// the test is skipped, unless READOCR_REQUIRE_PROMETHEUS says it must run (make test does).
func tool(t *testing.T, name string) string {
	t.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := name + " is not installed (hack/install-deps.sh --test installs Debian's prometheus package)"
	if os.Getenv("READOCR_REQUIRE_PROMETHEUS") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// ruleGroups writes the PrometheusRule's spec (its groups: what promtool and Prometheus read)
// to dir/rules.yaml, and returns the names the rules record.
func ruleGroups(t *testing.T, dir string) []string {
	t.Helper()
	b, err := os.ReadFile(ruleFile)
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		Kind string
		Spec struct {
			Groups []struct {
				Rules []map[string]any `yaml:"rules"`
			} `yaml:"groups"`
		} `yaml:"spec"`
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &obj); err != nil || obj.Kind != "PrometheusRule" {
		t.Fatalf("%s: %v (kind %q)", ruleFile, err, obj.Kind)
	}
	yaml.Unmarshal(b, &raw)
	out, _ := yaml.Marshal(raw["spec"])
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), out, 0o644); err != nil {
		t.Fatal(err)
	}
	var recorded []string
	for _, g := range obj.Spec.Groups {
		for _, r := range g.Rules {
			if name, ok := r["record"].(string); ok {
				recorded = append(recorded, name)
			}
		}
	}
	return recorded
}

// promtool check rules, then promtool test rules with the unit tests.
func TestRules(t *testing.T) {
	promtool := tool(t, "promtool")
	dir := t.TempDir()
	ruleGroups(t, dir)
	tests, err := os.ReadFile("rules_test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "rules_test.yaml"), tests, 0o644)
	for _, args := range [][]string{{"check", "rules", "rules.yaml"}, {"test", "rules", "rules_test.yaml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		t.Logf("promtool %s:\n%s", strings.Join(args, " "), out)
		if err != nil {
			t.Errorf("promtool %s: %v", strings.Join(args, " "), err)
		}
	}
}

// service is one readocr (jobs on, embedded NATS) with its admin port, that has read one image.
type service struct {
	*servicebin.Service
	admin string // host:port
}

var (
	tmp     string   // the package's temporary directory: the binary, the service's data
	running *service // started by the first test that needs it, stopped by TestMain
)

func TestMain(m *testing.M) {
	tmp, _ = os.MkdirTemp("", "readocr-monitoring-")
	code := m.Run()
	if running != nil {
		running.Stop()
	}
	os.RemoveAll(tmp)
	os.Exit(code)
}

func startService(t *testing.T) service {
	t.Helper()
	if running != nil {
		return *running
	}
	bin, err := servicebin.Build(tmp)
	if err != nil {
		t.Fatal(err)
	}
	admin := freePort(t)
	svc, err := servicebin.Start(bin, filepath.Join(tmp, "data"), "--workers", "1", "--admin-port", admin)
	if err != nil {
		t.Fatal(err)
	}
	running = &service{svc, "127.0.0.1:" + admin}
	img := testimages.Get(t, "phototest.tif")
	body, _ := json.Marshal(map[string]string{"image": base64(img.Bytes)})
	resp, err := http.Post(svc.URL+"/read_ocr", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST /read_ocr: %s", resp.Status)
	}
	// And one error: errors by code are series only once a code has been answered.
	if resp, err = http.Get(svc.URL + "/nope"); err == nil {
		resp.Body.Close()
	}
	return *running
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// A real Prometheus (Debian's) scrapes the service on loopback with the rules loaded; the test
// queries the request it made back, the target's health and a recorded rule.
func TestPrometheusScrapes(t *testing.T) {
	prom := tool(t, "prometheus")
	svc := startService(t)
	dir := t.TempDir()
	ruleGroups(t, dir)
	cfg := fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules.yaml]
scrape_configs:
  - job_name: readocr
    static_configs: [{targets: [%q]}]
`, svc.admin)
	os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644)
	web := "127.0.0.1:" + freePort(t)
	var log bytes.Buffer
	cmd := exec.Command(prom, "--config.file=prometheus.yml", "--storage.tsdb.path=data", "--web.listen-address="+web,
		"--enable-feature=exemplar-storage")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	query := func(q string) []any {
		resp, err := http.Get("http://" + web + "/api/v1/query?query=" + urlEscape(q))
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var r struct {
			Data struct{ Result []any }
		}
		json.NewDecoder(resp.Body).Decode(&r)
		return r.Data.Result
	}
	wait := func(q, want string) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			if res := query(q); len(res) > 0 {
				b, _ := json.Marshal(res[0])
				if strings.Contains(string(b), want) {
					t.Logf("%s -> %s", q, b)
					return
				}
			}
		}
		t.Fatalf("Prometheus never answered %q with %s; its log:\n%s", q, want, log.String())
	}
	wait(`up{job="readocr"}`, `"1"]`)
	wait(`readocr_http_requests_total{route="/read_ocr",status="200"}`, `"1"]`)
	wait(`readocr_documents_total{path="sync",outcome="ok"}`, `"1"]`)
	wait(`readocr_jobs_queued`, `"0"]`)
	// Recorded (NaN until requests are counted over two scrapes): the rules load and evaluate.
	wait(`readocr:slo_errors:ratio_rate5m`, `"__name__":"readocr:slo_errors:ratio_rate5m"`)
}

// metricName finds the names in a PromQL expression that are readocr's: its metrics, and the
// series its rules record.
var metricName = regexp.MustCompile(`\breadocr[a-zA-Z0-9_:]*`)

// missing returns the readocr names the dashboard's queries use that are neither exported nor
// recorded.
func missing(dashboard []byte, exported, recorded []string) ([]string, int, error) {
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(dashboard, &d); err != nil {
		return nil, 0, err
	}
	var out []string
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, name := range metricName.FindAllString(tg.Expr, -1) {
				n++
				if !slices.Contains(exported, name) && !slices.Contains(recorded, name) {
					out = append(out, fmt.Sprintf("%s (panel %q)", name, p.Title))
				}
			}
		}
	}
	return out, n, nil
}

// Every metric a dashboard panel names is one the running service exports (jobs on, after one
// request: histograms by their _bucket series) or one the rules record.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	svc := startService(t)
	resp, err := http.Get("http://" + svc.admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var exported []string
	for _, l := range strings.Split(string(text), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		exported = append(exported, strings.FieldsFunc(l, func(r rune) bool { return r == '{' || r == ' ' })[0])
	}
	recorded := ruleGroups(t, t.TempDir())
	dashboard, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	bad, n, err := missing(dashboard, exported, recorded)
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("only %d metric names found in the dashboard's queries", n)
	}
	for _, b := range bad {
		t.Errorf("the dashboard names %s, which the service does not export", b)
	}
	// The check itself: a panel naming a metric that does not exist is caught.
	fake := []byte(`{"panels":[{"title":"x","targets":[{"expr":"rate(readocr_pages_totl[5m])"}]}]}`)
	if bad, _, _ := missing(fake, exported, recorded); len(bad) != 1 {
		t.Errorf("a misspelt metric was not caught: %v", bad)
	}
}

// The PodMonitor selects both deployments' pods and scrapes a port each of them names.
func TestPodMonitorSelectsThePods(t *testing.T) {
	var pm struct {
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			}
			PodMetricsEndpoints []struct{ Port, Path string } `yaml:"podMetricsEndpoints"`
		}
	}
	b, _ := os.ReadFile(podMonitor)
	if err := yaml.Unmarshal(b, &pm); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"50-deployment-readocr.yaml", "50-deployment-readocr-worker.yaml"} {
		var dep struct {
			Spec struct {
				Template struct {
					Metadata struct{ Labels map[string]string }
					Spec     struct {
						Containers []struct {
							Ports []struct{ Name string }
						}
					}
				}
			}
		}
		b, _ := os.ReadFile(filepath.Join("../../manifests", f))
		if err := yaml.Unmarshal(b, &dep); err != nil {
			t.Fatal(err)
		}
		for k, v := range pm.Spec.Selector.MatchLabels {
			if dep.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("%s: its pods lack %s=%s", f, k, v)
			}
		}
		for _, ep := range pm.Spec.PodMetricsEndpoints {
			if !slices.ContainsFunc(dep.Spec.Template.Spec.Containers[0].Ports, func(p struct{ Name string }) bool { return p.Name == ep.Port }) {
				t.Errorf("%s: no port named %s", f, ep.Port)
			}
		}
	}
}
