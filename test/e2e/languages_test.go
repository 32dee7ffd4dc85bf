package e2e

// Language packs on a running deployment (issue 25): the plain manifests first, then packs
// added by configuration only (the README's hack/langpack-patch.sh, or readocr:languages with
// Pulumi), pages in those languages read through the Service and by a worker, the service
// image unchanged, and ten languages at once within the pod's memory limit.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// langPage is one of testdata/ocr/langs' pages, read with lang, at least min of its
// characters right (white space ignored: Tesseract spaces Japanese characters).
type langPage struct {
	file, lang string
	min        float64
}

var langPages = []langPage{
	{"deu_grundgesetz.png", "deu", 1}, {"fra_ddhc.png", "fra", 1},
	{"jpn_neko.png", "jpn", 0.95}, // 55 of 57 characters (service/internal/ocr's figure)
}

// tenPacks are the nine packs that make ten languages with the image's eng
// (internal/testsupport/langpacks.Ten, in Debian's names).
var tenPacks = []string{"deu", "fra", "jpn", "chi-sim", "rus", "spa", "ita", "por", "nld"}

// loadedPacks are the pack images hack/e2e.sh built and loaded (E2E_LANGPACKS).
func loadedPacks(t *testing.T, want ...string) {
	t.Helper()
	have := strings.Fields(os.Getenv("E2E_LANGPACKS"))
	for _, p := range want {
		if !slices.Contains(have, p) {
			t.Skipf("pack %s not loaded (E2E_LANGPACKS=%q: hack/e2e.sh builds and loads them)", p, have)
		}
	}
}

// patchPacks gives both Deployments exactly packs, as the README says, and waits for the
// rollouts.
func patchPacks(t *testing.T, ns string, packs ...string) {
	t.Helper()
	file := writePatch(t, packs...)
	for _, d := range []string{"readocr", "readocr-worker"} {
		kubectl(t, "patch", "deployment", d, "-n", ns, "--type", "merge", "--patch-file", file)
	}
	for _, d := range []string{"readocr", "readocr-worker"} {
		kubectl(t, "rollout", "status", "deploy/"+d, "-n", ns, "--timeout=300s")
	}
	waitReady(t, ns, 2, 3*time.Minute)
}

// writePatch is hack/langpack-patch.sh's patch for packs, in a file.
func writePatch(t *testing.T, packs ...string) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "packs.yaml")
	if err := os.WriteFile(file, []byte(run(t, filepath.Join(root(), "hack", "langpack-patch.sh"), packs...)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// imageIDs are the image IDs (digests) the readocr containers of ns run, sorted and unique.
func imageIDs(t *testing.T, ns string) []string {
	t.Helper()
	out := kubectl(t, "get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=readocr", "-o",
		`jsonpath={range .items[*]}{.status.containerStatuses[?(@.name=="readocr")].imageID}{"\n"}{end}`)
	ids := strings.Fields(out)
	sort.Strings(ids)
	return slices.Compact(ids)
}

type languages struct {
	Languages []string
	Models    []struct{ Name, Source string }
	Unusable  []struct{ Name, Problem string }
}

// packDiagnostics logs what a pod of ns shows of its packs when a test misses one: the first
// init container's log (what it copied), the readocr container's lines about languages, and
// the pods' init containers, so that a failure says where the packs stopped.
func packDiagnostics(t *testing.T, ns, pack string, l languages) {
	t.Helper()
	t.Logf("GET /languages: languages %v, unusable %+v", l.Languages, l.Unusable)
	pods := strings.Fields(kubectl(t, "get", "pods", "-n", ns, "-l", "app.kubernetes.io/component=api", "-o", "jsonpath={.items[*].metadata.name}"))
	for _, pod := range pods {
		out, _ := exec.Command("kubectl", "logs", "-n", ns, pod, "-c", "langpack-"+pack).CombinedOutput()
		t.Logf("pod %s, init container langpack-%s:\n%s", pod, pack, tail(string(out), 10))
		out, _ = exec.Command("kubectl", "logs", "-n", ns, pod, "-c", "readocr").CombinedOutput()
		var lines []string
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "language") || strings.Contains(l, "pack") || strings.Contains(l, `"msg":"memory"`) {
				lines = append(lines, l)
			}
		}
		t.Logf("pod %s, readocr's lines about languages:\n%s", pod, strings.Join(lines, "\n"))
	}
	t.Logf("pods:\n%s", kubectl(t, "get", "pods", "-n", ns, "-o", "custom-columns=NAME:.metadata.name,PHASE:.status.phase,INIT:.spec.initContainers[*].name,START:.metadata.creationTimestamp"))
}

func getLanguages(t *testing.T, base string) languages {
	t.Helper()
	var l languages
	for range 30 { // endpoints catch up with a rollout
		resp, err := http.Get(base + "/languages")
		if err == nil {
			err = json.NewDecoder(resp.Body).Decode(&l)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 {
				return l
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatal("GET /languages keeps failing")
	return l
}

// waitLanguages waits until GET /languages through the Service lists want three times in a row,
// for 90 s at most, and returns the last answer. `kubectl rollout status` returns once the new
// pods are available, while the old ones may still answer through the NodePort for a few
// seconds (their pre-stop sleep and drain, kube-proxy's next sync): what a user sees too.
func waitLanguages(t *testing.T, base string, want ...string) languages {
	t.Helper()
	start := time.Now()
	var l languages
	for streak := 0; streak < 3 && time.Since(start) < 90*time.Second; time.Sleep(time.Second) {
		l = getLanguages(t, base)
		if streak++; !hasAll(l.Languages, want) {
			streak = 0
		}
	}
	t.Logf("GET /languages listed %v after %v", l.Languages, time.Since(start).Round(100*time.Millisecond))
	return l
}

func hasAll(have, want []string) bool {
	for _, w := range want {
		if !slices.Contains(have, w) {
			return false
		}
	}
	return true
}

// readLang posts page with lang; it retries what a busy pod answers (429 and 503 say when).
func readLang(base string, page []byte, lang string) (int, string) {
	body, _ := json.Marshal(map[string]string{"image": base64.StdEncoding.EncodeToString(page), "lang": lang})
	for attempt := 0; ; attempt++ {
		resp, err := (&http.Client{Timeout: 120 * time.Second}).Post(base+"/read_ocr", "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err.Error()
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if (resp.StatusCode == 429 || resp.StatusCode == 503) && attempt < 20 {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			time.Sleep(time.Duration(max(wait, 1)) * time.Second)
			continue
		}
		return resp.StatusCode, string(b)
	}
}

func pageText(body string) string {
	var out struct{ Text string }
	json.Unmarshal([]byte(body), &out)
	return out.Text
}

func accuracy(got, want string) float64 {
	noSpace := func(s string) string { return strings.Join(strings.Fields(s), "") }
	return testimages.Accuracy(noSpace(got), noSpace(want))
}

// checkLangPages reads the German, French and Japanese pages through base with their
// languages, and sends each of them as a job too (the workers need the packs as well).
func checkLangPages(t *testing.T, base string) {
	t.Helper()
	pages := map[string]testimages.Image{}
	for _, img := range testimages.All(t, "langs/") {
		pages[img.Name] = img
	}
	for _, p := range langPages {
		img := pages[p.file]
		status, body := readLang(base, img.Bytes, p.lang)
		acc := accuracy(pageText(body), img.Expected)
		t.Logf("%s with lang=%s through the Service: %d, accuracy %.3f", p.file, p.lang, status, acc)
		if status != 200 || acc < p.min {
			t.Errorf("%s with lang=%s: %d, accuracy %.3f < %.2f: %.300s", p.file, p.lang, status, acc, p.min, body)
		}
		// And as a job: a worker pod reads it.
		jb, _ := json.Marshal(map[string]string{"image": base64.StdEncoding.EncodeToString(img.Bytes), "lang": p.lang})
		resp, err := http.Post(base+"/jobs", "application/json", bytes.NewReader(jb))
		if err != nil {
			t.Fatal(err)
		}
		var queued job
		json.NewDecoder(resp.Body).Decode(&queued)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("POST /jobs lang=%s: %d", p.lang, resp.StatusCode)
		}
		awaitJob(t, base, queued.ID, "the job's end", 3*time.Minute, func(j job) bool { return j.Status == "succeeded" })
		resp, err = http.Get(base + "/jobs/" + queued.ID + "/result")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if acc := accuracy(pageText(string(b)), img.Expected); acc < p.min {
			t.Errorf("job %s lang=%s: accuracy %.3f: %.300s", queued.ID, p.lang, acc, b)
		}
	}
}

func TestLanguagesKubectl(t *testing.T) {
	getEnv(t)
	loadedPacks(t, "deu", "fra", "jpn")
	began := time.Now()
	ns := namespace(t, "readocr-langs")
	kubectl(t, "apply", "-n", ns, "-f", "manifests")
	for _, d := range []string{"readocr", "readocr-worker"} {
		kubectl(t, "rollout", "status", "deploy/"+d, "-n", ns, "--timeout=300s")
	}
	waitReady(t, ns, 2, 3*time.Minute)
	url := serviceURL(t, ns)
	before := imageIDs(t, ns)
	if l := getLanguages(t, url); slices.Contains(l.Languages, "deu") {
		t.Fatalf("the plain manifests already have deu: %v", l.Languages)
	}

	t.Run("deu, fra and jpn added by configuration", func(t *testing.T) {
		start := time.Now()
		patchPacks(t, ns, "deu", "fra", "jpn")
		t.Logf("patched and rolled out in %v", time.Since(start).Round(100*time.Millisecond))
		l := waitLanguages(t, url, "deu", "fra", "jpn")
		for _, want := range []string{"deu", "eng", "fra", "jpn"} {
			if !slices.Contains(l.Languages, want) {
				t.Errorf("GET /languages: %v, want %s", l.Languages, want)
			}
		}
		if !slices.Contains(l.Languages, "deu") {
			packDiagnostics(t, ns, "deu", l)
		}
		for _, m := range l.Models {
			if m.Name == "deu" && m.Source != "pack" {
				t.Errorf("deu's source %q, want pack", m.Source)
			}
		}
		checkLangPages(t, url)
		page := testimages.Must("tjs_simple.pbm")
		if status, body := readLang(url, page.Bytes, "spa"); status != 422 || !strings.Contains(body, "installed: deu, eng, fra, jpn") {
			t.Errorf("lang=spa: %d %s, want 422 naming what is installed", status, body)
		}
		after := imageIDs(t, ns)
		t.Logf("readocr containers' image before %v, after %v", before, after)
		if len(before) != 1 || !slices.Equal(before, after) {
			t.Errorf("the service image changed: %v, then %v", before, after)
		}
		// The same patch again changes nothing: no rollout.
		if out := kubectl(t, "patch", "deployment", "readocr", "-n", ns, "--type", "merge", "--patch-file", writePatch(t, "deu", "fra", "jpn")); !strings.Contains(out, "(no change)") {
			t.Errorf("the same packs again: %s", out)
		}
	})

	t.Run("ten languages at once within the pod's limit", func(t *testing.T) {
		loadedPacks(t, tenPacks...)
		tenLanguages(t, ns, url)
	})
	t.Logf("languages with kubectl: %v", time.Since(began).Round(100*time.Millisecond))
}

// tenLanguages installs nine packs (ten languages with eng), then reads a page in each of the
// ten at once beside one naming all ten, twice: every answer 200, no container restarted or
// OOM-killed, and each API pod's resident memory (its cgroup, sampled; the test runs on the
// node with the none driver) within the memory limit the service shares out.
func tenLanguages(t *testing.T, ns, url string) {
	patchPacks(t, ns, tenPacks...)
	waitLanguages(t, url, "chi_sim", "nld") // the new pods answer, not the old ones

	const limit = 768 << 20 // manifests/' memory limit
	pods := strings.Fields(kubectl(t, "get", "pods", "-n", ns, "-l", apiPods, "--field-selector=status.phase=Running",
		"-o", "jsonpath={range .items[*]}{.metadata.name}={.metadata.uid} {end}"))
	for _, p := range pods {
		name, _, _ := strings.Cut(p, "=")
		for _, line := range strings.Split(kubectl(t, "logs", "-n", ns, name, "-c", "readocr"), "\n") {
			if strings.Contains(line, `"msg":"memory"`) {
				t.Logf("%s: %s", name, line)
			}
		}
	}
	samplers := map[string]func() int64{}
	for _, p := range pods {
		name, uid, _ := strings.Cut(p, "=")
		if rss := podRSS(uid); rss != nil {
			samplers[name] = rss
		}
	}
	peaks := map[string]int64{}
	var mu sync.Mutex
	stop, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			for name, rss := range samplers {
				v := rss()
				mu.Lock()
				peaks[name] = max(peaks[name], v)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	langs := []string{"eng", "deu", "fra", "jpn", "chi_sim", "rus", "spa", "ita", "por", "nld"}
	page := testimages.Must("tjs_simple.pbm").Bytes
	var failed []string
	start := time.Now()
	for range 2 {
		var wg sync.WaitGroup
		for _, lang := range append(slices.Clone(langs), strings.Join(langs, "+")) {
			wg.Go(func() {
				if status, body := readLang(url, page, lang); status != 200 {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%s: %d %.200s", lang, status, body))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	close(stop)
	<-sampled
	t.Logf("22 requests (ten languages and all ten at once, twice) in %v", time.Since(start).Round(100*time.Millisecond))
	for _, f := range failed {
		t.Errorf("request failed: %s", f)
	}
	if len(samplers) == 0 {
		t.Log("no pod cgroup on this machine (not the none driver): resident memory not sampled")
	}
	for name, peak := range peaks {
		t.Logf("%s: peak resident memory %d MiB of the %d MiB limit", name, peak>>20, limit>>20)
		if peak > limit*9/10 {
			t.Errorf("%s: peak resident memory %d MiB, over the 90 %% of %d MiB the service shares out", name, peak>>20, limit>>20)
		}
	}
	restarts := kubectl(t, "get", "pods", "-n", ns, "-l", "app.kubernetes.io/name=readocr",
		"-o", `jsonpath={range .items[*]}{.metadata.name} {.status.containerStatuses[0].restartCount} {.status.containerStatuses[0].lastState.terminated.reason}{"\n"}{end}`)
	for _, l := range strings.Split(restarts, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] != "0" {
			t.Errorf("a pod restarted: %q", l)
		}
	}
}

// podRSS reads a pod's resident memory (anonymous memory of its cgroup, all containers) on this
// node, for cgroup v1 and v2 and either cgroup driver; nil when the pod's cgroup is not here.
func podRSS(uid string) func() int64 {
	under := strings.ReplaceAll(uid, "-", "_")
	var patterns []string
	for _, qos := range []string{"", "burstable/", "besteffort/"} {
		patterns = append(patterns, "/sys/fs/cgroup/memory/kubepods/"+qos+"pod"+uid, "/sys/fs/cgroup/kubepods/"+qos+"pod"+uid)
	}
	patterns = append(patterns, "/sys/fs/cgroup/memory/kubepods.slice/*/*pod"+under+".slice", "/sys/fs/cgroup/memory/kubepods.slice/*pod"+under+".slice",
		"/sys/fs/cgroup/kubepods.slice/*/*pod"+under+".slice", "/sys/fs/cgroup/kubepods.slice/*pod"+under+".slice")
	for _, p := range patterns {
		dirs, _ := filepath.Glob(p)
		for _, dir := range dirs {
			key := "anon"
			if strings.HasPrefix(dir, "/sys/fs/cgroup/memory/") {
				key = "total_rss"
			}
			if _, err := os.Stat(filepath.Join(dir, "memory.stat")); err != nil {
				continue
			}
			return func() int64 {
				b, _ := os.ReadFile(filepath.Join(dir, "memory.stat"))
				for _, line := range strings.Split(string(b), "\n") {
					if k, v, ok := strings.Cut(line, " "); ok && k == key {
						n, _ := strconv.ParseInt(v, 10, 64)
						return n
					}
				}
				return 0
			}
		}
	}
	return nil
}

// With Pulumi: readocr:languages set on a stack that is up, and `pulumi up` again.
func TestLanguagesPulumi(t *testing.T) {
	e := getEnv(t)
	if !e.pulumi {
		t.Skip("E2E_PULUMI is not set")
	}
	loadedPacks(t, "deu", "fra", "jpn")
	ns := namespace(t, "readocr-langs-pulumi")
	pulumi := pulumiStack(t, ns)
	pulumi("up", "--yes", "--skip-preview", "--suppress-progress")
	waitReady(t, ns, 2, 3*time.Minute)
	url := serviceURL(t, ns)
	before := imageIDs(t, ns)
	for i, p := range []string{"deu", "fra", "jpn"} {
		pulumi("config", "set", "--path", fmt.Sprintf("readocr:languages[%d]", i), p)
	}
	start := time.Now()
	out := pulumi("up", "--yes", "--skip-preview", "--suppress-progress")
	t.Logf("pulumi up with readocr:languages [deu, fra, jpn]: %v\n%s", time.Since(start).Round(100*time.Millisecond), tail(out, 8))
	for _, d := range []string{"readocr", "readocr-worker"} {
		kubectl(t, "rollout", "status", "deploy/"+d, "-n", ns, "--timeout=300s")
	}
	waitReady(t, ns, 2, 3*time.Minute)
	if l := waitLanguages(t, url, "deu", "fra", "jpn"); !hasAll(l.Languages, []string{"deu", "fra", "jpn"}) {
		packDiagnostics(t, ns, "deu", l)
	}
	checkLangPages(t, url)
	if after := imageIDs(t, ns); len(before) != 1 || !slices.Equal(before, after) {
		t.Errorf("the service image changed: %v, then %v", before, after)
	}
	pulumi("destroy", "--yes", "--skip-preview", "--suppress-progress")
}

// pulumiStack makes a stack of the committed minikube configuration in a state of the test's
// own, deploying into ns, and returns how to run pulumi on it.
func pulumiStack(t *testing.T, ns string) func(args ...string) string {
	t.Helper()
	work := t.TempDir()
	stack := "e2e-" + strings.ReplaceAll(ns, "readocr-", "")
	stackCfg := filepath.Join(work, "Pulumi."+stack+".yaml")
	b, err := os.ReadFile(filepath.Join(root(), "Pulumi.minikube.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(stackCfg, b, 0o644)
	t.Setenv("PULUMI_BACKEND_URL", "file://"+work)
	pulumi := func(args ...string) string {
		t.Helper()
		args = append(args, "--stack", stack, "--non-interactive")
		if args[0] != "stack" { // `pulumi stack output` reads the state and has no --config-file
			args = append(args, "--config-file", stackCfg)
		}
		return run(t, "pulumi", args...)
	}
	run(t, "pulumi", "stack", "init", stack, "--non-interactive")
	t.Cleanup(func() { os.Remove(filepath.Join(root(), "Pulumi."+stack+".yaml")) })
	pulumi("config", "set", "readocr:namespace", ns)
	return pulumi
}
