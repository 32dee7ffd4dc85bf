package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// manifests/ holds the objects the program declares, field for field (make manifests-check
// compares the files with a fresh render, but needs the Pulumi CLI and the provider; this runs
// with the mocks, in make test): the top level with the defaults, manifests/nats-auth with
// readocr:natsAuth existing.
func TestManifestsMatchProgram(t *testing.T) {
	normal := func(v any) any {
		b, _ := json.Marshal(plain(v))
		var out any
		json.Unmarshal(b, &out)
		return out
	}
	for dir, mutate := range map[string]func(*Config){
		"manifests":           func(*Config) {},
		"manifests/nats-auth": func(c *Config) { c.NATSAuth = "existing" },
	} {
		cfg := DefaultConfig(version())
		mutate(&cfg)
		declared := map[string]any{}
		for key, obj := range render(t, cfg).resources {
			if strings.HasPrefix(key, "kubernetes:") {
				declared[fmtKindName(t, obj)] = normal(obj)
			}
		}
		files, _ := filepath.Glob(filepath.Join("..", dir, "*.yaml"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := yaml.Unmarshal(b, &doc); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			key := fmtKindName(t, doc)
			if !reflect.DeepEqual(normal(doc), declared[key]) {
				t.Errorf("%s is not what the program declares for %s: make manifests", f, key)
			}
			delete(declared, key)
		}
		if dir == "manifests" {
			for key := range declared {
				t.Errorf("%s is declared but not in manifests/: make manifests", key)
			}
		}
	}
}

func fmtKindName(t *testing.T, obj map[string]any) string {
	t.Helper()
	return obj["kind"].(string) + "/" + at(t, obj, "metadata.name").(string)
}
