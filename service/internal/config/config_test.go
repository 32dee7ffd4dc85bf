package config

import (
	"bytes"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(nil, env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Port != 4000 || c.Server.AdminPort != 9090 || c.OCR.DefaultLang != "eng" || c.OCR.Workers < 1 ||
		c.OCR.MaxClients != c.OCR.Workers+2 || c.Fetch.AllowPrivate || !c.Server.CaptureStderr || c.Server.MemoryLimit != 0 ||
		c.Fetch.MaxBytes != c.HTTP.MaxImageBytes {
		t.Fatalf("defaults %+v", c)
	}
}

func TestEnvAndFlags(t *testing.T) {
	c, err := Load([]string{"--workers", "3", "--allow-cidrs", "10.1.2.3/16, fd00::/8"},
		env(map[string]string{"PORT": "8080", "OCR_WORKERS": "7", "OCR_QUEUE_TIMEOUT": "3s", "OCR_ALLOW_PRIVATE_URLS": "true", "OCR_LOG_LEVEL": "debug"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Port != 8080 || c.OCR.Workers != 3 || c.OCR.QueueTimeout != 3*time.Second || !c.Fetch.AllowPrivate ||
		c.Server.LogLevel.String() != "DEBUG" {
		t.Fatalf("got %+v", c)
	}
	if len(c.Fetch.AllowCIDRs) != 2 || c.Fetch.AllowCIDRs[0].String() != "10.1.0.0/16" {
		t.Fatalf("cidrs %v", c.Fetch.AllowCIDRs)
	}
	c, err = Load([]string{"--memory-limit", "1536Mi"}, env(map[string]string{"OCR_MAX_IMAGE_BYTES": "1000"}), &bytes.Buffer{})
	if err != nil || c.Server.MemoryLimit != 1536<<20 || c.Fetch.MaxBytes != 1000 {
		t.Fatalf("memory %d, fetch bytes %d, %v", c.Server.MemoryLimit, c.Fetch.MaxBytes, err)
	}
}

// Language packs and the languages a request may name, from the environment or flags.
func TestLanguages(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"OCR_LANGPACKS": "/srv/packs", "OCR_MAX_LANGUAGES": "3"}), &bytes.Buffer{})
	if err != nil || c.OCR.LangpackDir != "/srv/packs" || c.OCR.MaxLanguages != 3 {
		t.Fatalf("from the environment: %q %d %v", c.OCR.LangpackDir, c.OCR.MaxLanguages, err)
	}
	c, err = Load([]string{"--langpacks", "packs", "--max-languages", "10"}, env(nil), &bytes.Buffer{})
	if err != nil || c.OCR.LangpackDir != "packs" || c.OCR.MaxLanguages != 10 {
		t.Fatalf("from flags: %q %d %v", c.OCR.LangpackDir, c.OCR.MaxLanguages, err)
	}
	if c, _ := Load(nil, env(nil), &bytes.Buffer{}); c.OCR.LangpackDir != "" || c.OCR.MaxLanguages != 10 {
		t.Fatalf("defaults: %q %d", c.OCR.LangpackDir, c.OCR.MaxLanguages)
	}
}

// Pages as tasks: where a document is split, and the window, from flags or the environment.
func TestPageTasks(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"OCR_JOB_SPLIT_PAGES": "0", "OCR_JOB_PAGE_WINDOW": "32"}), &bytes.Buffer{})
	if err != nil || c.Jobs.SplitPages != 0 || c.Jobs.PageWindow != 32 {
		t.Fatalf("from the environment: %d %d %v", c.Jobs.SplitPages, c.Jobs.PageWindow, err)
	}
	c, err = Load([]string{"--job-split-pages", "10"}, env(nil), &bytes.Buffer{})
	if err != nil || c.Jobs.SplitPages != 10 || c.Jobs.PageWindow != 8 {
		t.Fatalf("from flags, and the default window: %d %d %v", c.Jobs.SplitPages, c.Jobs.PageWindow, err)
	}
}

func TestBadValues(t *testing.T) {
	for _, tt := range []struct {
		args []string
		env  map[string]string
	}{
		{nil, map[string]string{"PORT": "http"}},
		{nil, map[string]string{"OCR_QUEUE_TIMEOUT": "soon"}},
		{[]string{"--workers", "0"}, nil},
		{[]string{"--port", "70000"}, nil},
		{[]string{"--log-level", "loud"}, nil},
		{[]string{"--allow-cidrs", "10.0.0.0/99"}, nil},
		{[]string{"--max-clients", "1", "--workers", "2"}, nil},
		{[]string{"--max-languages", "0"}, nil},
		{[]string{"--max-languages", "11"}, nil},
		{nil, map[string]string{"OCR_MAX_LANGUAGES": "many"}},
		{[]string{"--fetch-timeout", "0s"}, nil},
		{[]string{"extra"}, nil},
		{[]string{"--memory-limit", "lots"}, nil},
		{[]string{"--admin-port", "4000"}, nil},
		{[]string{"--write-timeout", "0s"}, nil},
		{[]string{"--job-page-window", "0"}, nil},
		{[]string{"--job-split-pages", "-1"}, nil},
	} {
		if _, err := Load(tt.args, env(tt.env), &bytes.Buffer{}); err == nil {
			t.Errorf("Load(%q, %v) accepted", tt.args, tt.env)
		}
	}
}

func TestHelpListsEveryFlagWithItsVariable(t *testing.T) {
	var out bytes.Buffer
	_, err := Load([]string{"--help"}, env(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err %v", err)
	}
	for _, want := range []string{"-port", "$PORT", "-workers", "$OCR_WORKERS", "-max-pixels", "-allow-private-urls", "-log-level", "-admin-port", "$OCR_ADMIN_PORT", "-memory-limit", "$OCR_MEMORY_LIMIT", "-write-timeout", "-memory-wait"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]int64{"1024": 1024, "1Ki": 1024, "512Mi": 512 << 20, "2Gi": 2 << 30, "256MiB": 256 << 20} {
		if got, err := ParseBytes(in); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1G", "-1", "Mi", "1.5Gi", "99999999999Ti"} {
		if _, err := ParseBytes(in); err == nil {
			t.Errorf("ParseBytes(%q) accepted", in)
		}
	}
}

// Access control: the key file, the callbacks' schedule, the broker's credentials.
func TestAccessSettings(t *testing.T) {
	c, err := Load([]string{"--webhook-retry-schedule", "1s, 1m", "--nats-url", "tls://nats:4222", "--nats-ca", "/ca.pem"},
		env(map[string]string{"OCR_API_KEYS": "/keys/keys.yaml", "OCR_NATS_USER": "readocr", "OCR_NATS_PASSWORD": "pw",
			"OCR_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw,old-secret"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Access.KeyFile != "/keys/keys.yaml" || c.Access.KeyReload != 5*time.Second || len(c.Jobs.WebhookSchedule) != 2 ||
		c.Jobs.WebhookSchedule[1] != time.Minute || c.Jobs.NATSAuth.User != "readocr" || c.Jobs.NATSAuth.CA != "/ca.pem" {
		t.Fatalf("got %+v %+v", c.Access, c.Jobs)
	}
	d, _ := Load(nil, env(nil), &bytes.Buffer{})
	if d.Access.KeyFile != "" || len(d.Jobs.WebhookSchedule) != 8 {
		t.Errorf("defaults: keys %q, schedule %v", d.Access.KeyFile, d.Jobs.WebhookSchedule)
	}
	var help bytes.Buffer
	Load([]string{"--help"}, env(nil), &help)
	if !strings.Contains(help.String(), `(default "5s,30s,2m,10m,30m,1h,2h,4h")`) {
		t.Errorf("the schedule's default in --help:\n%s", help.String())
	}
	for _, bad := range [][]string{
		{"--webhook-retry-schedule", "1s,soon"},
		{"--webhook-retry-schedule", "-1s"},
		{"--webhook-secret", "whsec_!!!"},
		{"--nats-user", "readocr"}, // credentials without --nats-url
		{"--api-keys-reload", "0s"},
		{"--webhook-timeout", "0s"},
	} {
		if _, err := Load(bad, env(nil), &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
