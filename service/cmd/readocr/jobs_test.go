package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"image"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/readocr/readocr/internal/testsupport/syncbuffer"
	"github.com/readocr/readocr/internal/testsupport/testdocs"
	"github.com/readocr/readocr/internal/testsupport/testimages"
)

// process is the real binary, running.
type process struct {
	cmd  *exec.Cmd
	out  *syncbuffer.Buffer
	base string
}

func startBinary(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--port", "0", "--admin-port", "0", "--pdf=false"}, args...)...)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	p := &process{cmd: cmd, out: &syncbuffer.Buffer{}}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.out.Write(append(sc.Bytes(), '\n'))
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
			}
		}
	}()
	select {
	case a := <-addr:
		p.base = "http://127.0.0.1" + a[strings.LastIndex(a, ":"):]
	case <-time.After(30 * time.Second):
		t.Fatalf("no listening line: %s", p.out.String())
	}
	waitReady(t, p.base)
	return p
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		json.Unmarshal(b, v)
	}
	return resp.StatusCode
}

// Two real processes share an external JetStream server (loopback). The one running a job is
// stopped in the middle of its document, either as Kubernetes deletes a pod (SIGTERM: it gives
// the job back when its shutdown time is up) or killed outright (SIGKILL: JetStream redelivers
// after the ack wait). The other finishes the job, once, with the text /read_ocr gives.
func TestStoppedProcessJobIsRedelivered(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "readocr")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	t.Run("SIGKILL", func(t *testing.T) { jobRedelivered(t, bin, syscall.SIGKILL) })
	t.Run("SIGTERM", func(t *testing.T) { jobRedelivered(t, bin, syscall.SIGTERM) })
}

func jobRedelivered(t *testing.T, bin string, sig syscall.Signal) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true})
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	// The ack wait is longer than the whole test's wait for the given-back job: after SIGTERM
	// the job must come back at once, not when JetStream gives up on the process.
	// The whole-job path (a document read in one process: --job-split-pages 0); pages as tasks
	// are pages_test.go's.
	args := []string{"--workers", "2", "--nats-url", ns.ClientURL(), "--job-ack-wait", "2s", "--job-concurrency", "1",
		"--shutdown-timeout", "100ms", "--job-split-pages", "0"}
	if sig == syscall.SIGTERM {
		args[5] = "2m"
	}
	procs := []*process{startBinary(t, bin, args...), startBinary(t, bin, args...)}

	img, err := testdocs.Decode(testimages.Get(t, "phototest.tif").Bytes)
	if err != nil {
		t.Fatal(err)
	}
	pages := make([]image.Image, 16)
	for i := range pages {
		pages[i] = img
	}
	doc := testdocs.TIFF(pages, 300)
	body := `{"image":"` + base64.StdEncoding.EncodeToString(doc) + `"}`
	resp, err := http.Post(procs[0].base+"/jobs", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var job struct {
		ID       string
		Status   string
		Attempts int
		Progress struct {
			PagesDone  int `json:"pages_done"`
			PagesTotal int `json:"pages_total"`
		}
	}
	json.NewDecoder(resp.Body).Decode(&job)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /jobs: %s", resp.Status)
	}

	// Wait for a few pages done, then kill the process running it.
	deadline := time.Now().Add(time.Minute)
	for job.Progress.PagesDone < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the job never got going: %+v", job)
		}
		time.Sleep(20 * time.Millisecond)
		getJSON(t, procs[1].base+"/jobs/"+job.ID, &job)
	}
	victim, survivor := procs[0], procs[1]
	if !strings.Contains(victim.out.String(), `"msg":"job started","job":"`+job.ID) {
		victim, survivor = survivor, victim
	}
	signalled := time.Now()
	victim.cmd.Process.Signal(sig)
	victim.cmd.Wait()
	t.Logf("%v: the process running the job at page %d of %d exited in %v", sig, job.Progress.PagesDone, job.Progress.PagesTotal,
		time.Since(signalled).Round(time.Millisecond))
	if sig == syscall.SIGTERM {
		if !strings.Contains(victim.out.String(), `"msg":"job given back","job":"`+job.ID) {
			t.Errorf("no job given back in the stopped process's log:\n%s", tail(victim.out.String(), 5))
		}
		deadline = time.Now().Add(time.Minute) // well inside the 2-minute ack wait
	} else {
		deadline = time.Now().Add(2 * time.Minute)
	}

	for ; job.Status != "succeeded"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) || job.Status == "failed" {
			t.Fatalf("after the kill: %+v", job)
		}
		getJSON(t, survivor.base+"/jobs/"+job.ID, &job)
	}
	if job.Attempts != 2 || job.Progress.PagesDone != 16 {
		t.Errorf("the job: %+v", job)
	}
	resp, err = http.Get(survivor.base + "/jobs/" + job.ID + "/result")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	status, want := postImage(t, survivor.base, doc)
	if status != 200 || !bytes.Equal(got, []byte(want)) {
		t.Errorf("result %q, /read_ocr %d %q", got, status, want)
	}
	if n := strings.Count(survivor.out.String(), `"msg":"job finished","job":"`+job.ID); n != 1 {
		t.Errorf("the survivor finished the job %d times", n)
	}
	if strings.Contains(victim.out.String(), `"msg":"job finished"`) {
		t.Error("the stopped process finished the job")
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
