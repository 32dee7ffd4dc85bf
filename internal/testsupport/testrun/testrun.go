// Package testrun holds what several test packages need to run: a re-exec of the test binary
// with variables that only work when set before the process starts, and a log buffer that
// goroutines can share.
package testrun

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"sync"
	"testing"
)

// MainWithEnv runs the tests in a child process whose environment has vars added
// ("KEY=value"), and exits with its status. libgomp reads OMP_THREAD_LIMIT and glibc reads
// GLIBC_TUNABLES once, when the process starts, so setting them from Go is too late.
func MainWithEnv(m *testing.M, vars ...string) {
	const marker = "READOCR_TEST_CHILD=1"
	if os.Getenv("READOCR_TEST_CHILD") == "1" {
		os.Exit(m.Run())
	}
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(append(os.Environ(), marker), vars...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.ExitCode())
		}
		panic(err)
	}
	os.Exit(0)
}

// Buffer is a bytes.Buffer safe for concurrent writers (log handlers of a running server).
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
