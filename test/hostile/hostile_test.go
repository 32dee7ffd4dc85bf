// Package hostile_test runs the attacks of internal/testsupport/hostile against the real
// binary, started with a memory limit, and checks each answer, its time, and that the service
// (API process and workers) stayed under its memory limit throughout.
package hostile_test

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/hostile"
)

func TestHostileInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and attacks the binary")
	}
	root, _ := filepath.Abs("../..")
	bin := filepath.Join(t.TempDir(), "readocr")
	build := exec.Command("go", "build", "-o", bin, "./service/cmd/readocr")
	build.Dir, build.Stderr = root, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	target := hostile.Target{Workers: 2, MemoryLimit: 768 << 20, RequestTimeout: 10 * time.Second,
		WriteTimeout: 2 * time.Second, IdleTimeout: 3 * time.Second, MaxImageBytes: 20 << 20}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	cmd := exec.Command(bin, append(hostile.Flags(target), "--port", port, "--admin-port", "0")...)
	cmd.Env = append(os.Environ(), "OCR_DATA_DIR="+t.TempDir())
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	target.PID, target.Base = cmd.Process.Pid, "http://127.0.0.1:"+port
	// The service says how its memory was shared out, and so how large a page it admits.
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		var rec struct {
			Msg         string
			ColourMP    float64 `json:"largest_colour_page_mp"`
			GrayMP      float64 `json:"largest_gray_page_mp"`
			PageMiB     int     `json:"page_mib"`
			RequestsMiB int     `json:"requests_mib"`
		}
		json.Unmarshal(sc.Bytes(), &rec)
		if rec.Msg == "memory" {
			target.PageMemory = int64(rec.PageMiB) << 20
			t.Logf("memory limit %d MiB: %d MiB a page per worker, %d MiB for requests; pages up to %.1f MP colour, %.1f MP gray",
				target.MemoryLimit>>20, rec.PageMiB, rec.RequestsMiB, rec.ColourMP, rec.GrayMP)
		}
		if rec.Msg == "listening" {
			break
		}
	}
	go func() {
		for sc.Scan() { // keep the pipe drained
		}
	}()
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get(target.Base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready")
		}
	}

	for _, s := range hostile.All() {
		t.Run(s.Class+": "+s.Name, func(t *testing.T) {
			o := hostile.Run(target, s)
			t.Logf("%v %v in %v, peak %d MiB of %d MiB %s", o.Statuses, o.Codes, o.Took.Round(time.Millisecond),
				o.PeakKiB>>10, target.MemoryLimit>>20, o.Note)
			if problem := s.Check(target, o); problem != "" {
				t.Error(problem, o.Errors)
			}
			if o.PeakKiB<<10 > target.MemoryLimit {
				t.Errorf("the service used %d MiB, over its limit of %d MiB", o.PeakKiB>>10, target.MemoryLimit>>20)
			}
		})
	}
	if _, err := os.FindProcess(target.PID); err != nil || cmd.ProcessState != nil {
		t.Fatal("the service is gone")
	}
}
