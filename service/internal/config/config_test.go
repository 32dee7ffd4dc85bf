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
		{[]string{"--fetch-timeout", "0s"}, nil},
		{[]string{"extra"}, nil},
		{[]string{"--memory-limit", "lots"}, nil},
		{[]string{"--admin-port", "4000"}, nil},
		{[]string{"--write-timeout", "0s"}, nil},
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
