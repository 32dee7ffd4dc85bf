package ocr

import (
	"bufio"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is one worker process, seen from the engine.
type process struct {
	id       int
	cmd      *exec.Cmd
	jobs     *gob.Encoder
	stops    *gob.Encoder
	pipes    []io.Closer   // the engine's ends of jobs and stops
	outcomes chan outcome  // from the worker, in order
	exited   chan struct{} // closed once the process is gone
	exitErr  error         // set before exited is closed
	log      *slog.Logger

	// What the worker last reported; guarded by the engine's mutex once the engine has it.
	langs []string
	cheap uint64
	doc   uint64 // the document it keeps

	mu     sync.Mutex
	killed string // why the engine killed it ("" when it did not)
}

// startProcess starts a worker and waits until it has loaded its default language.
func startProcess(id int, w workerConfig, cfg Config, log *slog.Logger) (*process, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	wcfg, err := json.Marshal(w)
	if err != nil {
		return nil, err
	}
	jobsR, jobsW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	stopsR, stopsW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	logR, logW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe)
	// OpenMP reads OMP_THREAD_LIMIT once, at process start: set here, it always holds.
	cmd.Env = append(os.Environ(), workerEnv+"=1", envConfig+"="+string(wcfg), "OMP_THREAD_LIMIT=1")
	cmd.Env = append(cmd.Env, cfg.WorkerEnv...)
	cmd.ExtraFiles = []*os.File{jobsR, outW, stopsR} // fds 3, 4, 5
	cmd.Stdout, cmd.Stderr = logW, logW
	// A worker must not outlive the engine's process, however that ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Dir = w.TempDir // nothing else there: Leptonica opens files by the image's name
	err = cmd.Start()
	for _, f := range []*os.File{jobsR, outW, stopsR, logW} {
		f.Close() // the worker's ends
	}
	if err != nil {
		jobsW.Close()
		outR.Close()
		stopsW.Close()
		logR.Close()
		return nil, fmt.Errorf("starting an OCR worker: %w", err)
	}
	log = log.With("worker", id, "pid", cmd.Process.Pid)
	p := &process{id: id, cmd: cmd, jobs: gob.NewEncoder(jobsW), stops: gob.NewEncoder(stopsW),
		pipes: []io.Closer{jobsW, stopsW}, outcomes: make(chan outcome, 1), exited: make(chan struct{}), log: log}
	if cfg.Output != nil {
		go func() {
			io.Copy(cfg.Output, logR)
			logR.Close()
		}()
	} else {
		go forwardOutput(logR, log)
	}
	go func() {
		defer close(p.outcomes)
		defer outR.Close()
		dec := gob.NewDecoder(outR)
		for {
			var o outcome
			if err := dec.Decode(&o); err != nil {
				return
			}
			p.outcomes <- o
		}
	}()
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()

	select {
	case o, ok := <-p.outcomes:
		if ok && o.Fail == failNone {
			p.langs, p.cheap = o.Langs, o.CHeap
			return p, nil
		}
		p.kill("failed to start")
		if ok {
			return nil, fmt.Errorf("OCR worker: %s", o.Message)
		}
		<-p.exited
		return nil, fmt.Errorf("OCR worker exited at start: %v", p.exitErr)
	case <-time.After(2 * time.Minute):
		p.kill("slow start")
		return nil, errors.New("OCR worker did not start within 2 minutes")
	}
}

// forwardOutput logs what the worker prints (Tesseract's and Leptonica's messages, such as
// "Estimating resolution as 304") as debug records.
func forwardOutput(r io.ReadCloser, log *slog.Logger) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			log.Debug(line, "component", "tesseract")
		}
	}
}

// send gives the worker a job.
func (p *process) send(j job) error { return p.jobs.Encode(j) }

// stop asks the worker to stop page seq between words.
func (p *process) stop(seq uint64) { p.stops.Encode(seq) }

// kill ends the worker at once (SIGKILL: whatever Tesseract is doing, even in code that never
// looks at the stop flag) and records why.
func (p *process) kill(why string) {
	p.mu.Lock()
	if p.killed == "" {
		p.killed = why
	}
	p.mu.Unlock()
	p.cmd.Process.Kill()
	p.closePipes()
}

func (p *process) killedFor() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killed
}

func (p *process) closePipes() {
	for _, c := range p.pipes {
		c.Close()
	}
}

// shutdown closes the jobs pipe, which the worker takes as the order to exit, and kills it if
// it has not within grace.
func (p *process) shutdown(grace time.Duration) {
	p.closePipes()
	select {
	case <-p.exited:
	case <-time.After(grace):
		p.kill("shutdown")
		<-p.exited
	}
}

// rss returns the worker's resident memory in bytes (0 once it is gone).
func (p *process) rss() int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
