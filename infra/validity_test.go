package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/util/validation"
)

// renderStack runs the whole program (configuration included) with a stack's committed
// configuration, as `pulumi up --stack <stack>` would, against the mocks.
func renderStack(t *testing.T, stack string, extra map[string]string) *recorder {
	t.Helper()
	setStackConfig(t, stack, extra)
	rec := newRecorder()
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		cfg, err := loadConfig(ctx, version())
		if err != nil {
			return err
		}
		return program(ctx, cfg)
	}, pulumi.WithMocks("readocr", stack, rec))
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// setStackConfig gives the program a stack's committed configuration and extra: lists and
// maps as JSON, as `pulumi config` hands them over. The stacks with keys need their secret
// seed, which is never committed (pulumi config set --secret): a test one, unless extra
// leaves it out on purpose ("readocr:secretSeed": "").
func setStackConfig(t *testing.T, stack string, extra map[string]string) {
	t.Helper()
	conf := map[string]string{}
	if stack != "" {
		b, err := os.ReadFile(filepath.Join("..", "Pulumi."+stack+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var f struct{ Config map[string]any }
		if err := yaml.Unmarshal(b, &f); err != nil {
			t.Fatal(err)
		}
		for k, v := range f.Config {
			if s, ok := v.(string); ok {
				conf[k] = s
			} else if _, ok := v.([]any); ok {
				j, _ := json.Marshal(v)
				conf[k] = string(j)
			} else {
				conf[k] = fmt.Sprint(v)
			}
		}
		if _, ok := extra["readocr:secretSeed"]; !ok {
			conf["readocr:secretSeed"] = "a-seed-for-the-tests-only"
		}
	}
	for k, v := range extra {
		conf[k] = v
	}
	if conf["readocr:secretSeed"] == "" {
		delete(conf, "readocr:secretSeed")
	}
	b, _ := json.Marshal(conf)
	t.Setenv("PULUMI_CONFIG", string(b))
}

// Every committed stack, and the image reference CD passes (a digest), renders objects the API
// server accepts: names, labels, annotations and port names checked with apimachinery's own
// validation. (The version label was once the image's tag: with a digest, 71 characters.)
func TestEveryStackRendersValidObjects(t *testing.T) {
	digest := "ghcr.io/readocr/readocr@sha256:" + strings.Repeat("0123456789abcdef", 4)
	stacks, _ := filepath.Glob("../Pulumi.*.yaml")
	if len(stacks) < 3 {
		t.Fatalf("committed stacks: %v, want minikube, staging and production", stacks)
	}
	for _, file := range stacks {
		stack := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(file), "Pulumi."), ".yaml")
		for _, image := range []string{"", digest} {
			extra := map[string]string{}
			if image != "" {
				extra["readocr:image"] = image
			}
			t.Run(stack+"/"+map[bool]string{true: "default image", false: "digest"}[image == ""], func(t *testing.T) {
				rec := renderStack(t, stack, extra)
				n := 0
				for key, obj := range rec.resources {
					if strings.HasPrefix(key, "kubernetes:") {
						n++
						for _, problem := range invalid(obj) {
							t.Errorf("%s: %s", key, problem)
						}
					}
				}
				if n < 6 {
					t.Errorf("%d objects", n)
				}
				if image != "" {
					if got := at(t, rec.get(t, deployment), "spec.template.spec.containers.0.image"); got != image {
						t.Errorf("image %v, want %s", got, image)
					}
				}
			})
		}
	}
	// Staging and production are not minikube: no NodePort, a Gateway, their own sizing.
	for _, stack := range []string{"staging", "production"} {
		rec := renderStack(t, stack, nil)
		expect(t, rec.get(t, service), map[string]any{"spec.type": "ClusterIP"})
		route := rec.get(t, routeKey)
		if host := at(t, route, "spec.hostnames.0"); !strings.Contains(fmt.Sprint(host), "example.com") {
			t.Errorf("%s route host %v", stack, host)
		}
		lim := at(t, rec.get(t, deployment), "spec.template.spec.containers.0.resources.limits.memory")
		if lim == "768Mi" {
			t.Errorf("%s has minikube's sizing", stack)
		}
	}
}

// invalid returns what the API server would refuse in a rendered object: object and container
// names, port names, label keys and values (labels, selectors), annotation keys, host names.
func invalid(obj map[string]any) []string {
	var out []string
	check := func(what string, errs []string) {
		for _, e := range errs {
			out = append(out, what+": "+e)
		}
	}
	labels := func(path string, m map[string]any) {
		for k, v := range m {
			check(path+" key "+k, validation.IsQualifiedName(k))
			check(path+" value of "+k, validation.IsValidLabelValue(fmt.Sprint(v)))
		}
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch c := v.(type) {
		case map[string]any:
			for k, child := range c {
				p := path + "." + k
				m, isMap := child.(map[string]any)
				s, isString := child.(string)
				switch {
				case (k == "labels" || k == "matchLabels") && isMap, k == "selector" && isMap && flat(m):
					labels(p, m)
					continue
				case k == "annotations" && isMap:
					for ak := range m {
						check(p+" key "+ak, validation.IsQualifiedName(ak))
					}
					continue
				case k == "name" && isString && strings.HasSuffix(path, ".metadata"):
					check(p, validation.IsDNS1123Subdomain(s))
				case k == "name" && isString && strings.Contains(path, ".containers."):
					if strings.Contains(path, ".ports.") {
						check(p, validation.IsValidPortName(s))
					} else if !strings.Contains(path, ".env") {
						check(p, validation.IsDNS1123Label(s))
					}
				case k == "name" && isString && strings.Contains(path, ".ports."):
					check(p, validation.IsValidPortName(s))
				case (k == "host" || k == "hostname") && isString:
					check(p, validation.IsDNS1123Subdomain(s))
				case k == "hostnames":
					for _, h := range child.([]any) {
						check(p, validation.IsDNS1123Subdomain(fmt.Sprint(h)))
					}
				}
				walk(p, child)
			}
		case []any:
			for i, child := range c {
				walk(fmt.Sprintf("%s.%d", path, i), child)
			}
		}
	}
	walk("", obj)
	return out
}

// flat reports whether m holds only strings (a Service's selector, not a LabelSelector).
func flat(m map[string]any) bool {
	for _, x := range m {
		if _, ok := x.(string); !ok {
			return false
		}
	}
	return true
}
