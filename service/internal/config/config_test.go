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
	if c.Port != 4000 || c.DefaultLang != "eng" || c.Workers < 1 || c.MaxClients != c.Workers+2 || c.AllowPrivate || !c.CaptureStderr {
		t.Fatalf("defaults %+v", c)
	}
}

func TestEnvAndFlags(t *testing.T) {
	c, err := Load([]string{"--workers", "3", "--allow-cidrs", "10.1.2.3/16, fd00::/8"},
		env(map[string]string{"PORT": "8080", "OCR_WORKERS": "7", "OCR_QUEUE_TIMEOUT": "3s", "OCR_ALLOW_PRIVATE_URLS": "true", "OCR_LOG_LEVEL": "debug"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.Workers != 3 || c.QueueTimeout != 3*time.Second || !c.AllowPrivate || c.LogLevel.String() != "DEBUG" {
		t.Fatalf("got %+v", c)
	}
	if len(c.AllowCIDRs) != 2 || c.AllowCIDRs[0].String() != "10.1.0.0/16" {
		t.Fatalf("cidrs %v", c.AllowCIDRs)
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
	for _, want := range []string{"-port", "$PORT", "-workers", "$OCR_WORKERS", "-max-pixels", "-allow-private-urls", "-log-level"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help lacks %q", want)
		}
	}
}
