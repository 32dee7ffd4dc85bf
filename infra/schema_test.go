package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

// The schemas the rendered objects are held to: the API server's own OpenAPI v3 documents
// (k8s.io/kubernetes at hack/versions.sh's KUBERNETES_VERSION, the one minikube runs here) and
// the CRDs of the releases used with them (KEDA at KEDA_VERSION; Traefik v3.6.12, which the
// e2e builds, its Middleware and the Gateway API release it implements). The modules come from
// the Go module proxy, as the rest of the build does.
const (
	gatewayModule = "sigs.k8s.io/gateway-api@v1.4.0"
	traefikModule = "github.com/traefik/traefik/v3@v3.6.12"
)

var (
	kubernetesModule = "k8s.io/kubernetes@" + pinned("KUBERNETES_VERSION")
	kedaModule       = "github.com/kedacore/keda/v2@" + pinned("KEDA_VERSION")
)

// pinned is a version hack/versions.sh sets.
func pinned(name string) string {
	b, _ := os.ReadFile("../hack/versions.sh")
	m := regexp.MustCompile(`(?m)^` + name + `=(\S+)`).FindSubmatch(b)
	if m == nil {
		return "(" + name + " is not in hack/versions.sh)"
	}
	return string(m[1])
}

// crds are the CRD files of the custom kinds the program renders.
var crds = map[string]string{
	"keda.sh/v1alpha1/ScaledObject":          kedaModule + ":config/crd/bases/keda.sh_scaledobjects.yaml",
	"gateway.networking.k8s.io/v1/Gateway":   gatewayModule + ":config/crd/standard/gateway.networking.k8s.io_gateways.yaml",
	"gateway.networking.k8s.io/v1/HTTPRoute": gatewayModule + ":config/crd/standard/gateway.networking.k8s.io_httproutes.yaml",
	"traefik.io/v1alpha1/Middleware":         traefikModule + ":docs/content/reference/dynamic-configuration/traefik.io_middlewares.yaml",
}

var (
	moduleDirs sync.Map // module@version -> its directory in the module cache
	docs       sync.Map // file -> decoded OpenAPI document
)

// moduleDir downloads module@version (outside this module: go.mod is not touched).
func moduleDir(t *testing.T, mod string) string {
	if d, ok := moduleDirs.Load(mod); ok {
		return d.(string)
	}
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	out, err := cmd.Output()
	var info struct{ Dir, Error string }
	json.Unmarshal(out, &info)
	if err != nil || info.Dir == "" {
		t.Fatalf("go mod download %s: %v %s", mod, err, info.Error)
	}
	moduleDirs.Store(mod, info.Dir)
	return info.Dir
}

// schemaFor returns the schema of an object's kind and the document its references resolve in.
func schemaFor(t *testing.T, obj map[string]any) (schema, doc map[string]any) {
	t.Helper()
	apiVersion, kind := fmt.Sprint(obj["apiVersion"]), fmt.Sprint(obj["kind"])
	if crd, ok := crds[apiVersion+"/"+kind]; ok {
		mod, file, _ := strings.Cut(crd, ":")
		path := filepath.Join(moduleDir(t, mod), file)
		var c struct {
			Spec struct {
				Versions []struct {
					Name   string
					Schema struct {
						OpenAPIV3Schema map[string]any `yaml:"openAPIV3Schema"`
					}
				}
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, &c); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		_, version, _ := strings.Cut(apiVersion, "/")
		for _, v := range c.Spec.Versions {
			if v.Name == version {
				return v.Schema.OpenAPIV3Schema, nil
			}
		}
		t.Fatalf("%s has no version %s", path, version)
	}
	group, version, found := strings.Cut(apiVersion, "/")
	file := "api__v1_openapi.json"
	if found {
		file = fmt.Sprintf("apis__%s__%s_openapi.json", group, version)
	} else {
		group, version = "", apiVersion
	}
	path := filepath.Join(moduleDir(t, kubernetesModule), "api", "openapi-spec", "v3", file)
	d, ok := docs.Load(path)
	if !ok {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("no API document for %s: %v", apiVersion, err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		docs.Store(path, m)
		d = m
	}
	doc = d.(map[string]any)
	for _, s := range doc["components"].(map[string]any)["schemas"].(map[string]any) {
		s := s.(map[string]any)
		for _, gvk := range asSlice(s["x-kubernetes-group-version-kind"]) {
			g := gvk.(map[string]any)
			if g["group"] == group && g["version"] == version && g["kind"] == kind {
				return s, doc
			}
		}
	}
	t.Fatalf("no schema for %s %s", apiVersion, kind)
	return nil, nil
}

// schemaErrors checks v against an OpenAPI v3 schema as a structural schema is checked: types,
// unknown fields, required fields, enums, bounds, lengths and patterns. (Not checked: CEL
// rules, formats, and ObjectMeta, which validity_test.go checks with apimachinery.)
func schemaErrors(path string, v any, s, doc map[string]any) []string {
	if ref, ok := s["$ref"].(string); ok {
		name := strings.TrimPrefix(ref, "#/components/schemas/")
		return schemaErrors(path, v, doc["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any), doc)
	}
	var errs []string
	for _, sub := range asSlice(s["allOf"]) {
		errs = append(errs, schemaErrors(path, v, sub.(map[string]any), doc)...)
	}
	if alts := asSlice(s["oneOf"]); len(alts) > 0 {
		ok := false
		for _, alt := range alts {
			ok = ok || len(schemaErrors(path, v, alt.(map[string]any), doc)) == 0
		}
		if !ok {
			errs = append(errs, fmt.Sprintf("%s: %v matches none of %d forms", path, v, len(alts)))
		}
	}
	if s["x-kubernetes-int-or-string"] == true {
		return append(errs, scalarErrors(path, v, map[string]any{}, "int-or-string")...)
	}
	switch typ, _ := s["type"].(string); typ {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: %T, want an object", path, v))
		}
		props, _ := s["properties"].(map[string]any)
		extra, _ := s["additionalProperties"].(map[string]any)
		for k, child := range m {
			switch p := path + "." + k; {
			case path == "" && k == "metadata":
			case props[k] != nil:
				errs = append(errs, schemaErrors(p, child, props[k].(map[string]any), doc)...)
			case extra != nil:
				errs = append(errs, schemaErrors(p, child, extra, doc)...)
			case props != nil && s["x-kubernetes-preserve-unknown-fields"] != true:
				errs = append(errs, p+": unknown field")
			}
		}
		for _, r := range asSlice(s["required"]) {
			if _, ok := m[r.(string)]; !ok {
				errs = append(errs, fmt.Sprintf("%s: %s is required", path, r))
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: %T, want an array", path, v))
		}
		if lim, ok := s["maxItems"].(float64); ok && float64(len(a)) > lim {
			errs = append(errs, fmt.Sprintf("%s: %d items, at most %v", path, len(a), lim))
		}
		if lim, ok := s["minItems"].(float64); ok && float64(len(a)) < lim {
			errs = append(errs, fmt.Sprintf("%s: %d items, at least %v", path, len(a), lim))
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, x := range a {
				errs = append(errs, schemaErrors(fmt.Sprintf("%s.%d", path, i), x, items, doc)...)
			}
		}
	case "string", "integer", "number", "boolean":
		errs = append(errs, scalarErrors(path, v, s, typ)...)
	}
	return errs
}

func scalarErrors(path string, v any, s map[string]any, typ string) []string {
	n, isNum := toFloat(v)
	str, isStr := v.(string)
	_, isBool := v.(bool)
	var ok bool
	switch typ {
	case "string":
		ok = isStr
	case "integer":
		ok = isNum && n == float64(int64(n))
	case "number":
		ok = isNum
	case "boolean":
		ok = isBool
	case "int-or-string":
		ok = isStr || (isNum && n == float64(int64(n)))
	}
	if !ok {
		return []string{fmt.Sprintf("%s: %v (%T), want %s", path, v, v, typ)}
	}
	var errs []string
	if enum := asSlice(s["enum"]); len(enum) > 0 {
		found := false
		for _, e := range enum {
			found = found || fmt.Sprint(e) == fmt.Sprint(v)
		}
		if !found {
			errs = append(errs, fmt.Sprintf("%s: %v not one of %v", path, v, enum))
		}
	}
	if lim, ok := toFloat(s["minimum"]); ok && isNum && n < lim {
		errs = append(errs, fmt.Sprintf("%s: %v below %v", path, v, lim))
	}
	if lim, ok := toFloat(s["maximum"]); ok && isNum && n > lim {
		errs = append(errs, fmt.Sprintf("%s: %v above %v", path, v, lim))
	}
	if lim, ok := toFloat(s["maxLength"]); ok && isStr && float64(len([]rune(str))) > lim {
		errs = append(errs, fmt.Sprintf("%s: %q longer than %v", path, str, lim))
	}
	if lim, ok := toFloat(s["minLength"]); ok && isStr && float64(len([]rune(str))) < lim {
		errs = append(errs, fmt.Sprintf("%s: %q shorter than %v", path, str, lim))
	}
	if p, ok := s["pattern"].(string); ok && isStr {
		if re, err := regexp.Compile(p); err == nil && !re.MatchString(str) {
			errs = append(errs, fmt.Sprintf("%s: %q does not match %s", path, str, p))
		}
	}
	return errs
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

// Every object of every committed stack, and of the variants no stack commits (KEDA, a route
// on an existing Gateway), is what the API server's schema for its kind, or its CRD's, admits.
func TestObjectsMatchAPISchemas(t *testing.T) {
	variants := map[string]map[string]string{
		"minikube": nil, "staging": nil, "production": nil,
		"minikube+keda":        {"readocr:keda": "true"},
		"staging+shared-route": {"readocr:gatewayName": "shared", "readocr:gatewayNamespace": "edge"},
	}
	kinds := map[string]bool{}
	for variant, extra := range variants {
		stack, _, _ := strings.Cut(variant, "+")
		rec := renderStack(t, stack, extra)
		for key, obj := range rec.resources {
			if !strings.HasPrefix(key, "kubernetes:") || strings.HasPrefix(key, "pulumi:") {
				continue
			}
			if obj["apiVersion"] == nil || obj["kind"] == nil {
				t.Fatalf("%s: no apiVersion or kind in %v", key, obj)
			}
			kinds[fmt.Sprint(obj["apiVersion"], "/", obj["kind"])] = true
			obj = plain(obj).(map[string]any) // a Secret's data, which the SDK marks secret
			s, doc := schemaFor(t, obj)
			for _, e := range schemaErrors("", obj, s, doc) {
				t.Errorf("%s %s: %s", variant, key, e)
			}
		}
	}
	for kind := range crds {
		if !kinds[kind] {
			t.Errorf("no variant renders %s", kind)
		}
	}
	t.Logf("checked kinds: %v", kinds)
}
