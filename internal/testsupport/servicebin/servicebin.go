// Package servicebin builds the readocr binary and runs it as a user would, on a loopback
// port, for tests that drive it from outside (a browser, a terminal).
package servicebin

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/readocr/readocr/internal/testsupport/syncbuffer"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// Build builds ./service/cmd/readocr once per test process into dir and returns its path.
func Build(dir string) (string, error) {
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..", "..")
		binPath = filepath.Join(dir, "readocr")
		cmd := exec.Command("go", "build", "-o", binPath, "./service/cmd/readocr")
		cmd.Dir, cmd.Stderr = root, os.Stderr
		buildErr = cmd.Run()
	})
	return binPath, buildErr
}

// Service is a running readocr.
type Service struct {
	URL string
	Log *syncbuffer.Buffer // its JSON log
	cmd *exec.Cmd
}

// Start runs bin with args (after a free port, no admin port and a fresh data directory) and
// returns once /readyz answers 200.
func Start(bin, dataDir string, args ...string) (*Service, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	s := &Service{URL: "http://127.0.0.1:" + port, Log: &syncbuffer.Buffer{}}
	s.cmd = exec.Command(bin, append([]string{"--port", port, "--admin-port", "0", "--data-dir", dataDir}, args...)...)
	s.cmd.Env = append(os.Environ(), "OMP_THREAD_LIMIT=1")
	out, _ := s.cmd.StdoutPipe()
	s.cmd.Stderr = s.Log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fmt.Fprintln(s.Log, sc.Text())
		}
	}()
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(s.URL + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
	}
	s.Stop()
	return nil, fmt.Errorf("readocr not ready after 90 s: %s", s.Log.String())
}

// Stop stops it as a SIGTERM would, and waits.
func (s *Service) Stop() {
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// Artifacts returns the folder where tests leave what people look at (screenshots, terminal
// screens): $READOCR_ARTIFACTS/sub, else readocr-artifacts/sub under the temporary directory.
// It outlives the test.
func Artifacts(sub string) (string, error) {
	root := os.Getenv("READOCR_ARTIFACTS")
	if root == "" {
		root = filepath.Join(os.TempDir(), "readocr-artifacts")
	}
	dir := filepath.Join(root, sub)
	return dir, os.MkdirAll(dir, 0o755)
}
