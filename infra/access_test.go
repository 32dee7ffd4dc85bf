package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/conf"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"gopkg.in/yaml.v3"
)

const (
	apiPolicy    = "kubernetes:networking.k8s.io/v1:NetworkPolicy/readocr"
	workerPolicy = "kubernetes:networking.k8s.io/v1:NetworkPolicy/readocr-worker"
	keysSecret   = "kubernetes:core/v1:Secret/readocr-api-keys"
	natsSecret   = "kubernetes:core/v1:Secret/readocr-nats-auth"
)

// The API's and the workers' policies: their own pods; ingress to the service port from
// anywhere and to the admin port from the monitoring namespace only; egress to the cluster's
// DNS, NATS's client port, and public addresses only.
func TestNetworkPolicies(t *testing.T) {
	rec := render(t, DefaultConfig("0.1.0"))
	for key, dep := range map[string]string{apiPolicy: deployment, workerPolicy: workerDeployment} {
		p := rec.get(t, key)
		expect(t, p, map[string]any{
			"spec.podSelector.matchLabels": at(t, rec.get(t, dep), "spec.selector.matchLabels"),
			"spec.policyTypes":             []any{"Ingress", "Egress"},
			"spec.ingress.0.ports.0.port":  4000,
			"spec.ingress.1.ports.0.port":  9090,
		})
		if from := at(t, p, "spec.ingress.0").(map[string]any)["from"]; from != nil {
			t.Errorf("%s: the service port only from %v", key, from)
		}
		if ns := at(t, p, "spec.ingress.1.from.0.namespaceSelector.matchLabels").(map[string]any)["kubernetes.io/metadata.name"]; ns != "monitoring" {
			t.Errorf("%s: the admin port from namespace %v, want monitoring", key, ns)
		}
		expect(t, p, map[string]any{
			"spec.egress.0.to.0.podSelector.matchLabels.k8s-app": "kube-dns",
			"spec.egress.0.ports.0.protocol":                     "UDP",
			"spec.egress.0.ports.0.port":                         53,
			"spec.egress.1.ports.0.port":                         4222,
			"spec.egress.1.to.0.podSelector.matchLabels":         at(t, rec.get(t, natsStatefulSet), "spec.selector.matchLabels"),
			"spec.egress.2.to.0.ipBlock.cidr":                    "0.0.0.0/0",
			"spec.egress.2.to.1.ipBlock.cidr":                    "::/0",
		})
		except := fmt.Sprint(at(t, p, "spec.egress.2.to.0.ipBlock.except"))
		for _, private := range []string{"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10"} {
			if !strings.Contains(except, private) {
				t.Errorf("%s: egress to %s allowed (except %s)", key, private, except)
			}
		}
		if len(asSlice(at(t, p, "spec.egress"))) != 3 {
			t.Errorf("%s: egress rules %v", key, at(t, p, "spec.egress"))
		}
	}
	// NATS's monitoring port: KEDA's namespace and the monitoring namespace only.
	mon := at(t, rec.get(t, natsPolicy), "spec.ingress.1")
	if got := fmt.Sprint(mon); !strings.Contains(got, "keda") || !strings.Contains(got, "monitoring") || !strings.Contains(got, "8222") {
		t.Errorf("NATS's monitoring port open to %s", got)
	}
	cfg := DefaultConfig("0.1.0")
	cfg.NetworkPolicies = false
	if _, ok := render(t, cfg).resources[apiPolicy]; ok {
		t.Error("networkPolicies false still declares the API's policy")
	}
}

// The minikube stack (and so manifests/) has no keys: the service is open and says so.
func TestOpenByDefault(t *testing.T) {
	rec := renderStack(t, "minikube", nil)
	if _, ok := rec.resources[keysSecret]; ok {
		t.Error("the minikube stack declares a key Secret")
	}
	if v := at(t, rec.get(t, configMap), "data").(map[string]any)["OCR_API_KEYS"]; v != nil {
		t.Errorf("OCR_API_KEYS %v in the minikube stack", v)
	}
}

// unsecret is a value as the program gave it: the mocks record a secret as a marked map.
func unsecret(v any) any {
	if s, ok := v.(*resource.Secret); ok {
		return s.Element.Mappable()
	}
	return v
}

// plain is v with every secret replaced by its value.
func plain(v any) any {
	switch c := unsecret(v).(type) {
	case map[string]any:
		out := make(map[string]any, len(c))
		for k, e := range c {
			out[k] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(c))
		for i, e := range c {
			out[i] = plain(e)
		}
		return out
	default:
		return c
	}
}

// staging and production: keys on, made by Pulumi from the stack's seed, and NATS with its
// generated user. The key file holds the keys' hashes only, each the hash of the key the seed
// gives, and the service's pods read it where OCR_API_KEYS says.
func TestKeysForStagingAndProduction(t *testing.T) {
	const seed = "a-test-seed-of-enough-characters"
	for _, stack := range []string{"staging", "production"} {
		rec := renderStack(t, stack, map[string]string{"readocr:secretSeed": seed})
		cfg := stackConfig(t, stack, seed)
		if len(cfg.APIKeys) == 0 || cfg.NATSAuth != "generated" {
			t.Fatalf("%s: keys %v, natsAuth %q: want keys on and NATS's user generated", stack, cfg.APIKeys, cfg.NATSAuth)
		}
		file, _ := unsecret(unsecret(rec.get(t, keysSecret)["stringData"]).(map[string]any)["keys.yaml"]).(string)
		var f struct{ Keys []map[string]any }
		if err := yaml.Unmarshal([]byte(file), &f); err != nil || len(f.Keys) != len(cfg.APIKeys) {
			t.Fatalf("%s: key file %v:\n%s", stack, err, file)
		}
		for i, k := range f.Keys {
			for field := range k {
				if !slices.Contains([]string{"id", "sha256", "scopes", "rate", "burst", "pages", "period"}, field) {
					t.Errorf("%s: key file field %q, which the service refuses", stack, field)
				}
			}
			key := apiKey(seed, cfg.APIKeys[i])
			sum := sha256.Sum256([]byte(key))
			if k["id"] != cfg.APIKeys[i].ID || k["sha256"] != hex.EncodeToString(sum[:]) || !strings.HasPrefix(key, "readocr_") || len(key) != 51 {
				t.Errorf("%s: entry %v for key %s...", stack, k, key[:12])
			}
			if strings.Contains(file, key) {
				t.Errorf("%s: the key file holds a key", stack)
			}
		}
		// The same seed, the same key file on another run; another seed or id, another key.
		again := unsecret(unsecret(renderStack(t, stack, map[string]string{"readocr:secretSeed": seed}).get(t, keysSecret)["stringData"]).(map[string]any)["keys.yaml"])
		other := cfg.APIKeys[0]
		other.ID += "2"
		if again != file || apiKey(seed+"x", cfg.APIKeys[0]) == apiKey(seed, cfg.APIKeys[0]) || apiKey(seed, other) == apiKey(seed, cfg.APIKeys[0]) {
			t.Error("keys do not follow the seed and the id alone")
		}
		for _, d := range []string{deployment, workerDeployment} {
			pod := at(t, rec.get(t, d), "spec.template.spec")
			expect(t, pod.(map[string]any), map[string]any{
				"volumes.2.secret.secretName":           "readocr-api-keys",
				"containers.0.volumeMounts.2.mountPath": "/etc/readocr/api-keys",
				"containers.0.envFrom.2.secretRef.name": "readocr-nats-auth",
			})
		}
		expect(t, rec.get(t, configMap), map[string]any{"data.OCR_API_KEYS": "/etc/readocr/api-keys/keys.yaml"})
		expect(t, rec.get(t, natsStatefulSet), map[string]any{
			"spec.template.spec.containers.0.envFrom.0.secretRef.name":     "readocr-nats-auth",
			"spec.template.spec.containers.0.envFrom.0.secretRef.optional": false,
		})
		data := unsecret(rec.get(t, natsSecret)["stringData"]).(map[string]any)
		if data["OCR_NATS_USER"] != "readocr" || len(fmt.Sprint(unsecret(data["OCR_NATS_PASSWORD"]))) != len(natsPassword("any seed")) {
			t.Errorf("%s: NATS's Secret %v", stack, data)
		}
	}
	if _, err := loadStack(t, "staging", map[string]string{"readocr:secretSeed": ""}); err == nil || !strings.Contains(err.Error(), "secretSeed") {
		t.Errorf("staging without a seed: %v, want an error naming readocr:secretSeed", err)
	}
}

// stackConfig is a stack's configuration as the program reads it.
func stackConfig(t *testing.T, stack, seed string) Config {
	t.Helper()
	c, err := loadStack(t, stack, map[string]string{"readocr:secretSeed": seed})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func loadStack(t *testing.T, stack string, extra map[string]string) (Config, error) {
	t.Helper()
	setStackConfig(t, stack, extra)
	var c Config
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		var err error
		c, err = loadConfig(ctx, "0.1.0")
		return err
	}, pulumi.WithMocks("readocr", stack, newRecorder()))
	return c, err
}

// readocr:apiKeys as `pulumi config set --path` writes it (numbers as strings) and as JSON.
func TestAPIKeysConfig(t *testing.T) {
	c, err := loadStack(t, "minikube", map[string]string{
		"readocr:apiKeys": `[{"id":"a","scopes":["ocr"],"pages":"3","period":"1h"},{"id":"b","scopes":["ocr","jobs"],"rate":2.5}]`,
	})
	if err != nil || len(c.APIKeys) != 2 || c.APIKeys[0].Pages != 3 || c.APIKeys[1].Rate != 2.5 || c.APIKeys[0].Period != "1h" {
		t.Errorf("%v %+v", err, c.APIKeys)
	}
	if _, err := loadStack(t, "minikube", map[string]string{"readocr:apiKeys": `[{"id":"a","scopes":["ocr"],"pages":"many"}]`}); err == nil {
		t.Error("pages: many accepted")
	}
}

// Bad entries are refused with what to do.
func TestAccessValidation(t *testing.T) {
	for _, mutate := range []func(*Config){
		func(c *Config) { c.APIKeys = []APIKey{{ID: "a", Scopes: []string{"ocr"}}} }, // no seed
		func(c *Config) { c.SecretSeed = "short"; c.NATSAuth = "generated" },
		func(c *Config) { c.NATSAuth = "yes" },
		func(c *Config) {
			c.APIKeys = []APIKey{{ID: "a b", Scopes: []string{"ocr"}, SHA256: strings.Repeat("a", 64)}}
		},
		func(c *Config) { c.APIKeys = []APIKey{{ID: "a", SHA256: strings.Repeat("a", 64)}} },
		func(c *Config) {
			c.APIKeys = []APIKey{{ID: "a", Scopes: []string{"root"}, SHA256: strings.Repeat("a", 64)}}
		},
		func(c *Config) { c.APIKeys = []APIKey{{ID: "a", Scopes: []string{"ocr"}, SHA256: "abc"}} },
		func(c *Config) {
			c.APIKeys = []APIKey{{ID: "a", Scopes: []string{"ocr"}, Period: "a day", SHA256: strings.Repeat("a", 64)}}
		},
	} {
		c := DefaultConfig("0.1.0")
		mutate(&c)
		if err := c.validate(); err == nil {
			t.Errorf("accepted %+v %q", c.APIKeys, c.NATSAuth)
		}
	}
	// A key made elsewhere needs no seed.
	c := DefaultConfig("0.1.0")
	c.APIKeys = []APIKey{{ID: "a", Scopes: []string{"ocr"}, SHA256: strings.Repeat("a", 64)}}
	if err := c.validate(); err != nil {
		t.Error(err)
	}
}

// nats-server itself, on the rendered configuration with the generated Secret in its
// environment (as the pod has it): a client without the user is refused, the service's
// credentials are accepted.
// nats-server parses $OCR_NATS_PASSWORD's value as a configuration value: every generated
// password must come back from its parser as the same string (a base64 one starting with a
// digit kept NATS from starting on minikube).
func TestNATSPasswordParsesAsAString(t *testing.T) {
	for i := range 500 {
		password := natsPassword(fmt.Sprintf("seed-%d", i))
		t.Setenv("OCR_NATS_PASSWORD", password)
		m, err := conf.Parse("password: $OCR_NATS_PASSWORD\n")
		if err != nil || m["password"] != password {
			t.Fatalf("seed-%d: password %q parsed as %#v (%v)", i, password, m["password"], err)
		}
	}
}

func TestNATSAuthRefusesAnonymousClients(t *testing.T) {
	rec := renderStack(t, "production", map[string]string{"readocr:secretSeed": "a-test-seed-of-enough-characters"})
	data := unsecret(rec.get(t, natsSecret)["stringData"]).(map[string]any)
	user, password := fmt.Sprint(data["OCR_NATS_USER"]), fmt.Sprint(unsecret(data["OCR_NATS_PASSWORD"]))
	t.Setenv("OCR_NATS_USER", user)
	t.Setenv("OCR_NATS_PASSWORD", password)
	t.Setenv("POD_NAME", "readocr-nats-0")
	conf := withoutNATSTLS(natsConf(t, rec)) // TLS: TestNATSTLSOnAServer
	if !strings.Contains(conf, "authorization") {
		t.Fatalf("no authorization in nats.conf:\n%s", conf)
	}
	file := filepath.Join(t.TempDir(), "nats.conf")
	os.WriteFile(file, []byte(conf), 0o644)
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// This machine's ports and paths; one server (the routes would wait for the others).
	opts.Port, opts.HTTPPort, opts.StoreDir, opts.PidFile = -1, 0, t.TempDir(), ""
	opts.Routes, opts.Cluster = nil, server.ClusterOpts{}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	if nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(0)); err == nil || !strings.Contains(err.Error(), "Authorization Violation") {
		t.Errorf("a client without credentials: %v, want Authorization Violation", err)
		if nc != nil {
			nc.Close()
		}
	}
	if _, err := nats.Connect(s.ClientURL(), nats.UserInfo(user, "wrong"), nats.MaxReconnects(0)); err == nil {
		t.Error("a wrong password was accepted")
	}
	nc, err := nats.Connect(s.ClientURL(), nats.UserInfo(user, password))
	if err != nil {
		t.Fatalf("the service's credentials: %v", err)
	}
	nc.Close()
}
