// Package container tests the container image on a real Docker engine: built from the
// repository, run the way a cluster runs it (read-only root filesystem, no capabilities, no
// privilege escalation), and used through its published port.
//
// It runs when a Docker engine answers (make test, .ci/run starts one); READOCR_IMAGE names an
// image built beforehand (make image), otherwise the test builds one.
package container

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	goimage "image"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// maxImageBytes is the size budget of the image with the eng model (80 MB; 42 MB before PDF
// support added PDFium's WebAssembly module, 5.8 MB, and pdfcpu; 56 MB before jobs added
// the embedded JetStream server, 10 MB; 66 MB before tracing added OpenTelemetry's autoexport,
// whose trace, metric and log exporters over HTTP and gRPC come to about 12 MB: trimming it to
// the OTLP trace exporters is the next saving).
const maxImageBytes = 80_000_000

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

func image(t *testing.T) string {
	t.Helper()
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("no Docker engine answers (run hack/docker-engine.sh, or make test-image)")
	}
	if img := os.Getenv("READOCR_IMAGE"); img != "" {
		return img
	}
	img := "readocr:test-" + strconv.Itoa(os.Getpid())
	cmd := exec.Command("make", "-C", repoRoot(), "image", "TAG="+strings.TrimPrefix(img, "readocr:"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("docker", "rmi", img).Run() })
	return img
}

type container struct {
	id, base string
}

// start runs img with the restrictions of the Kubernetes restricted profile and waits for
// /readyz. It returns how long that took.
func start(t *testing.T, img string, extra ...string) (container, time.Duration) {
	t.Helper()
	// A read-only root and one writable /tmp, as the Deployment has (its emptyDir).
	args := append([]string{"run", "-d", "--read-only", "--tmpfs", "/tmp:mode=1777", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"-p", "127.0.0.1::4000", "--add-host", "host.docker.internal:host-gateway"}, extra...)
	began := time.Now()
	id := docker(t, append(args, img)...)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := exec.Command("docker", "logs", id).CombinedOutput()
			t.Logf("container log:\n%s", out)
		}
		exec.Command("docker", "rm", "-f", id).Run()
	})
	port := docker(t, "port", id, "4000/tcp")
	c := container{id: id, base: "http://" + strings.Split(port, "\n")[0]}
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get(c.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return c, time.Since(began)
			}
		}
	}
	t.Fatal("container not ready after 60s")
	return c, 0
}

// readText posts body to /read_ocr and returns the text of a 200 answer.
func readText(t *testing.T, base, contentType string, body io.Reader) string {
	t.Helper()
	resp, err := http.Post(base+"/read_ocr", contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, answer)
	}
	var out struct{ Text string }
	if err := json.Unmarshal(answer, &out); err != nil {
		t.Fatal(err)
	}
	return out.Text
}

func TestImage(t *testing.T) {
	img := image(t)

	size, _ := strconv.ParseInt(docker(t, "image", "inspect", "-f", "{{.Size}}", img), 10, 64)
	t.Logf("image size %.1f MB", float64(size)/1e6)
	if size > maxImageBytes {
		t.Errorf("image is %d bytes, budget %d", size, maxImageBytes)
	}
	if user := docker(t, "image", "inspect", "-f", "{{.Config.User}}", img); user != "65532:65532" {
		t.Errorf("image user %q, want a numeric non-root user", user)
	}
	if ports := docker(t, "image", "inspect", "-f", "{{json .Config.ExposedPorts}}", img); !strings.Contains(ports, "4000/tcp") {
		t.Errorf("exposed ports %s", ports)
	}
	// No shell: nothing to exec into but the service.
	if out, err := exec.Command("docker", "run", "--rm", "--entrypoint", "/bin/sh", img, "-c", "true").CombinedOutput(); err == nil {
		t.Errorf("the image has a shell: %s", out)
	}

	c, ready := start(t, img, "-e", "OCR_ALLOW_PRIVATE_URLS=true")
	t.Logf("docker run to /readyz 200: %v", ready)

	page := testimages.Get(t, "phototest.tif")
	want := testimages.Normalize(page.Expected)
	check := func(kind, got string) {
		t.Helper()
		if testimages.Normalize(got) != want {
			t.Errorf("%s: %q", kind, got)
		}
	}

	// base64 JSON
	body := `{"image":"` + base64.StdEncoding.EncodeToString(page.Bytes) + `","lang":"eng","config":""}`
	check("base64", readText(t, c.base, "application/json", strings.NewReader(body)))

	// multipart
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("image", "page.tif")
	fw.Write(page.Bytes)
	mw.Close()
	check("multipart", readText(t, c.base, mw.FormDataContentType(), &buf))

	// a URL served from the host, reached through the Docker bridge
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(page.Bytes) })}
	go srv.Serve(ln)
	defer srv.Close()
	url := fmt.Sprintf("http://host.docker.internal:%d/page.tif", ln.Addr().(*net.TCPAddr).Port)
	check("url", readText(t, c.base, "application/json", strings.NewReader(`{"image":"`+url+`"}`)))

	// a scanned PDF: rendered by PDFium in the image, and a searchable PDF back
	imgDecoded, err := testdocs.Decode(page.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pdf := testdocs.ScannedPDF([]goimage.Image{imgDecoded, imgDecoded}, 300)
	body = `{"image":"` + base64.StdEncoding.EncodeToString(pdf) + `"}`
	if got := readText(t, c.base, "application/json", strings.NewReader(body)); testimages.Normalize(got) != want+" "+want {
		t.Errorf("scanned PDF: %q", got)
	}
	resp, err := http.Post(c.base+"/read_ocr", "application/json", strings.NewReader(`{"image":"`+base64.StdEncoding.EncodeToString(pdf)+`","format":"pdf"}`))
	if err != nil {
		t.Fatal(err)
	}
	searchable, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.HasPrefix(searchable, []byte("%PDF-")) {
		t.Errorf("format pdf: %d %.100q", resp.StatusCode, searchable)
	}

	// other languages are not in the eng image: a clear 422, not a crash
	resp, err = http.Post(c.base+"/read_ocr", "application/json", strings.NewReader(`{"image":"`+base64.StdEncoding.EncodeToString(page.Bytes)+`","lang":"deu"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 422 {
		t.Errorf("lang=deu in the eng image: %d", resp.StatusCode)
	}

	// runs as non-root, with OMP_THREAD_LIMIT=1
	pid := docker(t, "inspect", "-f", "{{.State.Pid}}", c.id)
	status, _ := os.ReadFile("/proc/" + pid + "/status")
	if !strings.Contains(string(status), "Uid:\t65532\t65532\t65532\t65532") {
		t.Errorf("container process is not uid 65532:\n%s", status)
	}

	// the health check (a shell-free subcommand) reports healthy
	deadline := time.Now().Add(30 * time.Second)
	for docker(t, "inspect", "-f", "{{.State.Health.Status}}", c.id) != "healthy" {
		if time.Now().After(deadline) {
			t.Fatalf("health status %q after 30s", docker(t, "inspect", "-f", "{{.State.Health.Status}}", c.id))
		}
		time.Sleep(500 * time.Millisecond)
	}

	// SIGTERM: clean and fast
	began := time.Now()
	docker(t, "stop", "-t", "10", c.id)
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("docker stop took %v", d)
	}
	if code := docker(t, "inspect", "-f", "{{.State.ExitCode}}", c.id); code != "0" {
		t.Errorf("exit code %s after SIGTERM", code)
	}
	logs := docker(t, "logs", c.id)
	if !strings.Contains(logs, `"msg":"stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", logs)
	}

	// Jobs on a volume at /data (OCR_DATA_DIR), as the README says: a job queued and done in
	// one container is still there in the next, which the non-root user can write.
	vol := "readocr-test-jobs-" + strconv.Itoa(os.Getpid())
	t.Cleanup(func() { exec.Command("docker", "volume", "rm", "-f", vol).Run() })
	withVol := []string{"-v", vol + ":/data", "-e", "OCR_DATA_DIR=/data"}
	c1, _ := start(t, img, withVol...)
	resp, err = http.Post(c1.base+"/jobs", "application/json", strings.NewReader(`{"image":"`+base64.StdEncoding.EncodeToString(page.Bytes)+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var job struct{ ID, Status string }
	json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("POST /jobs: %d", resp.StatusCode)
	}
	jobStatus := func(base string) string {
		r, err := http.Get(base + "/jobs/" + job.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Body.Close()
		json.NewDecoder(r.Body).Decode(&job)
		return job.Status
	}
	for deadline := time.Now().Add(time.Minute); jobStatus(c1.base) != "succeeded"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("job %s: %s", job.ID, job.Status)
		}
	}
	docker(t, "rm", "-f", c1.id)
	c2, _ := start(t, img, withVol...)
	if st := jobStatus(c2.base); st != "succeeded" {
		t.Fatalf("after a new container on the same volume, job %s: %q", job.ID, st)
	}
	r, err := http.Get(c2.base + "/jobs/" + job.ID + "/result")
	if err != nil {
		t.Fatal(err)
	}
	var res struct{ Text string }
	json.NewDecoder(r.Body).Decode(&res)
	r.Body.Close()
	if testimages.Normalize(res.Text) != want {
		t.Errorf("the job's result in the next container: %q", res.Text)
	}
}
