package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/readocr/readocr/internal/testsupport/syncbuffer"
)

// The rendered pod on a real nats-server (the module go.mod pins, built as the image's binary
// is): it starts on the rendered configuration and answers the three probes; its file store
// limit comes from the disk it finds; the pre-stop command puts it in lame duck mode through
// the pid file the configuration writes, it ignores the SIGTERM that follows, tells its
// clients, and exits within the pod's grace period. Only paths and ports are changed, for a
// shared test machine.
func TestNATSServerLifecycle(t *testing.T) {
	t.Parallel()
	rec := render(t, DefaultConfig("0.1.0"))
	sts := rec.get(t, natsStatefulSet)
	c := "spec.template.spec.containers.0"

	dir := t.TempDir()
	bin := filepath.Join(dir, "nats-server")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/nats-io/nats-server/v2").CombinedOutput(); err != nil {
		t.Fatalf("building nats-server: %v\n%s", err, out)
	}
	run := filepath.Join(dir, "run")
	srv := startNATS(t, bin, natsConf(t, rec), fmt.Sprint(at(t, sts, c+".args").([]any)[0]), dir, run)
	monitor, log := srv.monitor, srv.log
	store := filepath.Join(dir, "data")

	base := fmt.Sprintf("http://127.0.0.1:%d", monitor)
	for _, p := range []string{"startupProbe", "readinessProbe", "livenessProbe"} {
		path := fmt.Sprint(at(t, sts, c+"."+p+".httpGet.path"))
		if code := waitHTTP(t, base+path, 30*time.Second); code != http.StatusOK {
			t.Fatalf("%s %s: %d\n%s", p, path, code, log.String())
		}
	}

	// The store limit: 75 % of the disk the server found, never more than the disk.
	var varz struct {
		JetStream struct {
			Config struct {
				MaxStore int64 `json:"max_storage"`
			} `json:"config"`
		} `json:"jetstream"`
	}
	getJSON(t, base+"/varz", &varz)
	var fs syscall.Statfs_t
	if err := syscall.Statfs(store, &fs); err != nil {
		t.Fatal(err)
	}
	free, disk := int64(fs.Bavail)*fs.Bsize, int64(fs.Blocks)*fs.Bsize
	got := varz.JetStream.Config.MaxStore
	if got <= 0 || got > disk || got < free*3/4*95/100 || got > free*3/4*105/100 {
		t.Errorf("file store limit %d: want 75 %% of the %d bytes free (disk %d)", got, free, disk)
	}

	hook := at(t, sts, c+".lifecycle.preStop.exec.command").([]any)
	if hook[0] != "/nats-server" {
		t.Fatalf("pre-stop runs %v: the image has only /nats-server", hook[0])
	}
	// nats-server handles SIGUSR2 by starting its lame duck in a goroutine; a SIGTERM that
	// overtakes it (a loaded machine) shuts the server down at once, which its SIGTERM handler
	// meant to prevent. An upstream race the kubelet's own delay makes rarer still; a stop that
	// shows it in the log is tried again on a fresh server, anything else fails.
	for attempt := 1; ; attempt++ {
		if !stopsInLameDuck(t, bin, srv, hook, run) {
			return
		}
		if attempt == 3 {
			t.Fatalf("SIGTERM overtook the lame duck signal %d times in a row\n%s", attempt, srv.log.String())
		}
		t.Logf("attempt %d: SIGTERM overtook the lame duck signal (nats-server's race); again", attempt)
		dir = t.TempDir()
		run = filepath.Join(dir, "run")
		srv = startNATS(t, bin, natsConf(t, rec), fmt.Sprint(at(t, sts, c+".args").([]any)[0]), dir, run)
		if code := waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", srv.monitor), 30*time.Second); code != http.StatusOK {
			t.Fatalf("restart: /healthz %d\n%s", code, srv.log.String())
		}
	}
}

// stopsInLameDuck does what the kubelet does on deletion, the pre-stop hook then SIGTERM at
// once, and checks that the server tells its client, ignores the SIGTERM and exits within the
// grace period. It reports true when SIGTERM overtook the lame duck signal (see above).
func stopsInLameDuck(t *testing.T, bin string, srv *natsProcess, hook []any, run string) (raced bool) {
	t.Helper()
	ldm := make(chan struct{}, 1)
	nc, err := nats.Connect(fmt.Sprintf("nats://127.0.0.1:%d", srv.client), nats.NoReconnect(),
		nats.LameDuckModeHandler(func(*nats.Conn) { ldm <- struct{}{} }))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	stopping := time.Now()
	pre := exec.Command(bin, fmt.Sprint(hook[1]), strings.Replace(fmt.Sprint(hook[2]), natsPidDir, run, 1))
	if out, err := pre.CombinedOutput(); err != nil {
		t.Fatalf("pre-stop: %v\n%s", err, out)
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-ldm:
	case <-time.After(5 * time.Second):
		log := srv.log.String()
		if overtaken(log) {
			return true
		}
		t.Fatalf("the client was not told of the lame duck mode\n%s", log)
	}
	select {
	case err := <-srv.exited:
		t.Fatalf("the server stopped on SIGTERM during its lame duck mode (%v)\n%s", err, srv.log.String())
	case <-time.After(natsLameDuckGrace * time.Second / 2):
	}
	select {
	case err := <-srv.exited:
		if took := time.Since(stopping); err != nil || took > natsGraceSeconds*time.Second {
			t.Errorf("exit %v after %v; the grace period is %d s", err, took, natsGraceSeconds)
		}
	case <-time.After(natsGraceSeconds * time.Second):
		t.Fatalf("still running after the grace period\n%s", srv.log.String())
	}
	if !strings.Contains(srv.log.String(), "Entering lame duck mode") {
		t.Errorf("no lame duck in the server's log:\n%s", srv.log.String())
	}
	return false
}

// overtaken says whether a server's log shows both signals trapped, in order, and a shutdown
// without a lame duck mode: the race, and not a hook that sent nothing.
func overtaken(log string) bool {
	usr2 := strings.Index(log, `Trapped "user defined signal 2"`)
	term := strings.Index(log, `Trapped "terminated"`)
	return usr2 >= 0 && term > usr2 && !strings.Contains(log, "Entering lame duck mode") &&
		strings.Contains(log[term:], "Initiating Shutdown")
}

// natsProcess is a nats-server started on the rendered configuration.
type natsProcess struct {
	cmd             *exec.Cmd
	client, monitor int
	log             *syncbuffer.Buffer // the server writes while the test reads
	exited          chan error
}

// startNATS runs bin on conf with its store under dir and its pid file in run, on free ports.
func startNATS(t *testing.T, bin, conf, configFlag, dir, run string) *natsProcess {
	t.Helper()
	os.MkdirAll(run, 0o755)
	p := &natsProcess{client: freePort(t), monitor: freePort(t), log: &syncbuffer.Buffer{}, exited: make(chan error, 1)}
	conf = strings.NewReplacer("/data", filepath.Join(dir, "data"), natsPidDir, run,
		fmt.Sprintf("port: %d", natsClientPort), fmt.Sprintf("port: %d", p.client),
		fmt.Sprintf("http_port: %d", natsMonitor), fmt.Sprintf("http_port: %d", p.monitor)).Replace(conf)
	file := filepath.Join(dir, "nats.conf")
	os.WriteFile(file, []byte(conf), 0o644)
	p.cmd = exec.Command(bin, configFlag, file)
	p.cmd.Env = append(os.Environ(), "POD_NAME=readocr-nats-0")
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	t.Cleanup(func() { p.cmd.Process.Kill() })
	return p
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitHTTP polls url until it answers, and returns its status.
func waitHTTP(t *testing.T, url string, within time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || time.Now().After(deadline) {
				return resp.StatusCode
			}
		} else if time.Now().After(deadline) {
			t.Fatalf("%s: %v", url, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func getJSON(t *testing.T, url string, into any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatal(err)
	}
}
