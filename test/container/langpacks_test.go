package container

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// langpackImage returns the pack's image (make langpacks), building the packs that are missing.
func langpackImages(t *testing.T, packs ...string) []string {
	t.Helper()
	var images, missing []string
	for _, p := range packs {
		img := "ghcr.io/readocr/langpack-" + p + ":4.1.0"
		images = append(images, img)
		if exec.Command("docker", "image", "inspect", img).Run() != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		cmd := exec.Command(filepath.Join(repoRoot(), "hack", "langpack-image.sh"), missing...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("hack/langpack-image.sh %s: %v\n%s", strings.Join(missing, " "), err, out)
		}
	}
	return images
}

// fillVolume makes a Docker volume and runs each pack image on it, as the README says:
//
//	docker run --rm -v readocr-langs:/target ghcr.io/readocr/langpack-deu:4.1.0
func fillVolume(t *testing.T, images []string) string {
	t.Helper()
	vol := "readocr-test-langs-" + strconv.Itoa(os.Getpid()) + "-" + strconv.Itoa(len(images))
	t.Cleanup(func() { exec.Command("docker", "volume", "rm", "-f", vol).Run() })
	docker(t, "volume", "create", vol)
	for _, img := range images {
		out := docker(t, "run", "--rm", "-v", vol+":/target", img)
		t.Logf("%s: %s", img, strings.ReplaceAll(out, "\n", "; "))
	}
	return vol
}

// readPage posts a page with lang and returns the status and the text or error.
func readPage(t *testing.T, base string, page []byte, lang string) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("lang", lang)
	fw, _ := mw.CreateFormFile("image", "page.png")
	fw.Write(page)
	mw.Close()
	resp, err := http.Post(base+"/read_ocr", mw.FormDataContentType(), &buf)
	if err != nil {
		t.Error(err)
		return 0, ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out struct{ Text string }
	if json.Unmarshal(body, &out); resp.StatusCode == 200 {
		return 200, out.Text
	}
	return resp.StatusCode, string(body)
}

func langPages(t *testing.T) map[string]testimages.Image {
	pages := map[string]testimages.Image{}
	for _, img := range testimages.All(t, "langs/") {
		pages[img.Lang] = img
	}
	return pages
}

func noSpace(s string) string { return strings.Join(strings.Fields(s), "") }

// The README's language packs with `docker run`: its block run as written (make langpacks, the
// pack images run on a volume; hack/readme-block.sh), then the service image run with the volume
// as `make run-image` runs it; German, French and Japanese pages read; a language not there
// refused with what is; the service image's digest the same before and after.
func TestLangpacksDockerRun(t *testing.T) {
	img := image(t)
	before := docker(t, "image", "inspect", "-f", "{{.Id}}", img)
	const vol = "readocr-langs-readme-test" // test/readme/substitutions.sed
	exec.Command("docker", "volume", "rm", "-f", vol).Run()
	t.Cleanup(func() { exec.Command("docker", "volume", "rm", "-f", vol).Run() })
	block, err := exec.Command(filepath.Join(repoRoot(), "hack", "readme-block.sh"), filepath.Join(repoRoot(), "README.md"), "langpacks").Output()
	if err != nil {
		t.Fatal(err)
	}
	run := exec.Command("bash", "-euo", "pipefail", "-c", string(block))
	run.Dir = repoRoot()
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("the README's block:\n%s\n%v\n%s", block, err, out)
	} else {
		t.Logf("the README's block:\n%s\n%s", block, out)
	}
	c, ready := start(t, img, "-v", vol+":/langpacks:ro")
	t.Logf("ready in %v", ready)

	resp, err := http.Get(c.base + "/languages")
	if err != nil {
		t.Fatal(err)
	}
	var langs struct {
		Languages []string
		Models    []struct{ Name, Source string }
	}
	json.NewDecoder(resp.Body).Decode(&langs)
	resp.Body.Close()
	if !slices.Equal(langs.Languages, []string{"deu", "eng", "fra", "jpn"}) {
		t.Errorf("languages %v", langs.Languages)
	}
	for _, m := range langs.Models {
		if (m.Source == "pack") == (m.Name == "eng") {
			t.Errorf("%s from %s", m.Name, m.Source)
		}
	}
	for lang, page := range langPages(t) {
		status, text := readPage(t, c.base, page.Bytes, lang)
		acc := testimages.Accuracy(noSpace(text), noSpace(page.Expected))
		t.Logf("%s with %s: %d, accuracy %.3f", page.Name, lang, status, acc)
		if status != 200 || acc < 0.95 {
			t.Errorf("%s with lang=%s: %d %.200s", page.Name, lang, status, text)
		}
	}
	status, body := readPage(t, c.base, langPages(t)["deu"].Bytes, "spa")
	if status != 422 || !strings.Contains(body, "spa not installed; installed: deu, eng, fra, jpn") {
		t.Errorf("lang=spa: %d %s", status, body)
	}
	if after := docker(t, "image", "inspect", "-f", "{{.Id}}", img); after != before {
		t.Errorf("the service image changed: %s, was %s", after, before)
	}
}

// cgroupRSS returns a sampler of the container's resident memory (anonymous memory, what the
// OOM killer counts; not the page cache), from its memory cgroup, v1 or v2.
func cgroupRSS(t *testing.T, id string) func() int64 {
	t.Helper()
	for _, c := range []struct{ dir, key string }{
		{"/sys/fs/cgroup/memory/docker/" + id, "total_rss"},
		{"/sys/fs/cgroup/system.slice/docker-" + id + ".scope", "anon"},
		{"/sys/fs/cgroup/docker/" + id, "anon"},
	} {
		if _, err := os.Stat(filepath.Join(c.dir, "memory.stat")); err != nil {
			continue
		}
		return func() int64 {
			b, _ := os.ReadFile(filepath.Join(c.dir, "memory.stat"))
			for _, line := range strings.Split(string(b), "\n") {
				if k, v, ok := strings.Cut(line, " "); ok && k == c.key {
					n, _ := strconv.ParseInt(v, 10, 64)
					return n
				}
			}
			return 0
		}
	}
	t.Fatalf("no memory cgroup found for container %s", id)
	return nil
}

// Ten languages in use at once in a container the size of a minikube pod (768 MiB, one worker):
// the ten languages' pages at once, twice, beside requests naming all ten. Every request is
// read, the container is not OOM-killed, and its resident memory stays within the 90 % the
// service shares out.
func TestTenLanguagesInContainer(t *testing.T) {
	img := image(t)
	packs := []string{"deu", "fra", "jpn", "chi-sim", "rus", "spa", "ita", "por", "nld"}
	vol := fillVolume(t, langpackImages(t, packs...))
	const limit = 768 << 20
	c, _ := start(t, img, "-v", vol+":/langpacks:ro", "--memory", "768m", "--memory-swap", "768m",
		"-e", "OCR_WORKERS=1", "-e", "OCR_QUEUE=16") // eleven requests at once wait, none refused
	id := docker(t, "inspect", "-f", "{{.Id}}", c.id)
	rss := cgroupRSS(t, id)
	for _, line := range strings.Split(docker(t, "logs", c.id), "\n") {
		if strings.Contains(line, `"msg":"memory"`) {
			t.Log(line)
		}
	}
	langs := []string{"eng", "deu", "fra", "jpn", "chi_sim", "rus", "spa", "ita", "por", "nld"}
	page := langPages(t)["deu"].Bytes
	var peak int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			peak = max(peak, rss())
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	var mu sync.Mutex
	var failed []string
	for range 2 {
		var wg sync.WaitGroup
		for _, lang := range append(langs, strings.Join(langs, "+")) {
			wg.Go(func() {
				if status, body := readPage(t, c.base, page, lang); status != 200 {
					mu.Lock()
					failed = append(failed, lang+": "+strconv.Itoa(status)+" "+body)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	close(stop)
	<-sampled
	t.Logf("peak resident memory %d MiB of %d MiB", peak>>20, limit>>20)
	for _, f := range failed {
		t.Errorf("request failed: %.300s", f)
	}
	if oom := docker(t, "inspect", "-f", "{{.State.OOMKilled}} {{.State.Running}}", c.id); oom != "false true" {
		t.Errorf("OOMKilled, Running: %s", oom)
	}
	if peak > limit*9/10 {
		t.Errorf("peak resident memory %d MiB, over the 90 %% of %d MiB the service shares out", peak>>20, limit>>20)
	}
}
