package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/printer"
	"go/token"
	"go/types"
	"strings"
	"testing"
)

const (
	gatewayKey   = "kubernetes:gateway.networking.k8s.io/v1:Gateway/readocr"
	routeKey     = "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute/readocr"
	bodyLimitKey = "kubernetes:traefik.io/v1alpha1:Middleware/readocr-body-limit"
)

// Staging and production reach the Service through the Gateway API: an HTTPS listener of their
// own Gateway with a certificate cert-manager issues, a route for the host to the API's
// Service, and Traefik's body limit set to the service's own.
func TestGateway(t *testing.T) {
	for _, stack := range []string{"staging", "production"} {
		rec := renderStack(t, stack, nil)
		expect(t, rec.get(t, gatewayKey), map[string]any{
			"spec.gatewayClassName":                     "traefik",
			"spec.listeners.0.protocol":                 "HTTPS",
			"spec.listeners.0.port":                     8443,
			"spec.listeners.0.tls.mode":                 "Terminate",
			"spec.listeners.0.tls.certificateRefs.0":    "map[kind:Secret name:readocr-tls]",
			"spec.listeners.0.allowedRoutes.namespaces": "map[from:Same]",
		})
		gw := rec.get(t, gatewayKey)
		if at(t, gw, "metadata.annotations").(map[string]any)["cert-manager.io/cluster-issuer"] != "letsencrypt" {
			t.Errorf("%s: no cert-manager issuer on the Gateway", stack)
		}
		host := at(t, gw, "spec.listeners.0.hostname")
		route := rec.get(t, routeKey)
		expect(t, route, map[string]any{
			"spec.parentRefs.0":                   "map[name:readocr sectionName:https]",
			"spec.hostnames.0":                    host,
			"spec.rules.0.matches.0.path":         "map[type:PathPrefix value:/]",
			"spec.rules.0.backendRefs.0":          "map[name:readocr port:4000]",
			"spec.rules.0.filters.0.type":         "ExtensionRef",
			"spec.rules.0.filters.0.extensionRef": "map[group:traefik.io kind:Middleware name:readocr-body-limit]",
		})
		expect(t, rec.get(t, bodyLimitKey), map[string]any{"spec.buffering.maxRequestBodyBytes": float64(maxBodyBytes)})
		for key := range rec.resources {
			if strings.Contains(key, ":Ingress/") {
				t.Errorf("%s: %s", stack, key)
			}
		}
	}
	// minikube: the NodePort, no Gateway.
	for key := range render(t, DefaultConfig("0.1.0")).resources {
		if strings.Contains(key, "gateway.networking.k8s.io") || strings.Contains(key, "traefik.io") {
			t.Errorf("minikube renders %s", key)
		}
	}
}

// A route can join a Gateway someone else runs (by name, in its namespace), and leave the body
// limit to a controller that is not Traefik.
func TestGatewayAttachAndOptions(t *testing.T) {
	rec := renderStack(t, "staging", map[string]string{
		"readocr:gatewayName": "shared", "readocr:gatewayNamespace": "edge", "readocr:gatewayBodyLimit": "none",
	})
	if _, ok := rec.resources[gatewayKey]; ok {
		t.Error("a Gateway of ours beside the existing one")
	}
	if _, ok := rec.resources[bodyLimitKey]; ok {
		t.Error("a Traefik Middleware with gatewayBodyLimit none")
	}
	route := rec.get(t, routeKey)
	expect(t, route, map[string]any{"spec.parentRefs.0": "map[name:shared namespace:edge]"})
	if _, ok := at(t, route, "spec.rules.0").(map[string]any)["filters"]; ok {
		t.Error("the route names a Middleware that was not made")
	}
	for _, bad := range []func(*Config){
		func(c *Config) { c.Gateway.Host = "ocr.example.com"; c.Gateway.Class = "" },
		func(c *Config) { c.Gateway.Host = "ocr.example.com"; c.Gateway.Port = 0 },
		func(c *Config) { c.Gateway.Host = "ocr.example.com"; c.Gateway.BodyLimit = "nginx" },
	} {
		c := DefaultConfig("0.1.0")
		bad(&c)
		if c.validate() == nil {
			t.Errorf("accepted %+v", c.Gateway)
		}
	}
}

// The body limit at the Gateway is the largest body the service reads (service/internal/httpapi:
// the JSON and multipart limits, evaluated from its source at its default image size), and
// that default is the one the ConfigMap sets.
func TestBodyLimitMatchesService(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "../service/internal/httpapi/server.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	eval := func(src string) int64 {
		tv, err := types.Eval(token.NewFileSet(), nil, token.NoPos, src)
		if err != nil || tv.Value == nil {
			t.Fatalf("%s: %v", src, err)
		}
		n, _ := constant.Int64Val(tv.Value)
		return n
	}
	print := func(e ast.Expr) string {
		var b bytes.Buffer
		printer.Fprint(&b, fset, e)
		return b.String()
	}
	funcs := map[string]*ast.FuncDecl{}
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok {
			funcs[fn.Name.Name] = fn
		}
	}
	var imageBytes int64
	if fn := funcs["DefaultConfig"]; fn != nil {
		ast.Inspect(fn, func(n ast.Node) bool {
			if kv, ok := n.(*ast.KeyValueExpr); ok && print(kv.Key) == "MaxImageBytes" {
				imageBytes = eval(print(kv.Value))
			}
			return true
		})
	}
	limits := map[string]int64{}
	for _, limit := range []string{"maxJSONBody", "maxMultipartBody"} {
		if fn := funcs[limit]; fn != nil && imageBytes > 0 {
			recv := fn.Recv.List[0].Names[0].Name
			ret := print(fn.Body.List[0].(*ast.ReturnStmt).Results[0])
			limits[limit] = eval(strings.ReplaceAll(ret, recv+".MaxImageBytes", fmt.Sprintf("(%d)", imageBytes)))
		}
	}
	if imageBytes != maxImageBytes {
		t.Errorf("the service's default image limit is %d, infra's %d", imageBytes, maxImageBytes)
	}
	if len(limits) != 2 {
		t.Fatalf("service/internal/httpapi/server.go: body limits %v, want maxJSONBody and maxMultipartBody", limits)
	}
	if want := max(limits["maxJSONBody"], limits["maxMultipartBody"]); maxBodyBytes != want {
		t.Errorf("Gateway body limit %d, the service reads up to %d (%v)", maxBodyBytes, want, limits)
	}
	if got := settings(DefaultConfig("0.1.0"))["OCR_MAX_IMAGE_BYTES"]; got != "20971520" || maxImageBytes != 20971520 {
		t.Errorf("OCR_MAX_IMAGE_BYTES %s", got)
	}
}
