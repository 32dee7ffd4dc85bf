package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"gopkg.in/yaml.v3"
)

// Access control (README, Access control on Kubernetes; docs/access-k8s.md).
//
// API keys: with readocr:apiKeys, Pulumi makes the key file (service/internal/apikey: ids,
// SHA-256 of the keys, scopes, limits) as the Secret readocr-api-keys, mounted into the API and
// worker pods, and OCR_API_KEYS names it: every route but the probes then needs a key. The keys
// themselves are derived from the stack's secret readocr:secretSeed (HMAC-SHA256 of the key's id),
// so that each `pulumi up` declares the same keys without a store of its own (no random
// provider can be installed here), and are exported as the secret output apiKeys. An entry may
// instead give the sha256 of a key made elsewhere (readocr key new). The manifests have no
// keys: the service says at start, and on / and /readyz, that it is open.
//
// NATS: with readocr:natsAuth "generated", Pulumi makes the Secret readocr-nats-auth (user
// readocr, a password derived from the seed); with "existing", the Secret is the user's (kubectl
// create secret: manifests/nats-auth). The NATS servers read it from their environment
// (authorization in nats.conf names $OCR_NATS_USER and $OCR_NATS_PASSWORD), and readocr's pods
// take the same variables, which the service reads (--nats-user, --nats-password).
const (
	apiKeysSecret = name + "-api-keys"
	apiKeysDir    = "/etc/readocr/api-keys"
	apiKeysFile   = "keys.yaml"
	natsAuthName  = name + "-nats-auth"
	natsUser      = "readocr"
	keyPrefix     = "readocr_" // apikey.Prefix: scanners and people recognise a key
)

// APIKey is one entry of readocr:apiKeys.
type APIKey struct {
	ID     string   `json:"id" yaml:"id"`
	Scopes []string `json:"scopes" yaml:"scopes,flow"`
	Rate   float64  `json:"rate,omitempty" yaml:"rate,omitempty"`     // requests a second
	Burst  int      `json:"burst,omitempty" yaml:"burst,omitempty"`   // at once
	Pages  int      `json:"pages,omitempty" yaml:"pages,omitempty"`   // pages a period
	Period string   `json:"period,omitempty" yaml:"period,omitempty"` // 24h
	SHA256 string   `json:"sha256,omitempty" yaml:"sha256,omitempty"` // a key made elsewhere
}

// UnmarshalJSON reads an entry whose numbers may be strings: `pulumi config set --path
// 'readocr:apiKeys[0].pages' 10000` stores "10000".
func (k *APIKey) UnmarshalJSON(b []byte) error {
	type plain APIKey
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	for _, f := range []string{"rate", "burst", "pages"} {
		if s, ok := raw[f].(string); ok {
			n, err := strconv.ParseFloat(s, 64)
			if err != nil {
				return fmt.Errorf("%s: %q is not a number", f, s)
			}
			raw[f] = n
		}
	}
	fixed, _ := json.Marshal(raw)
	return json.Unmarshal(fixed, (*plain)(k))
}

var (
	keyID      = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	sha256Hex  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	periodRule = regexp.MustCompile(`^([0-9]+(ns|us|ms|s|m|h))+$`)
)

func validateAccess(c Config) error {
	ids := map[string]bool{}
	needSeed := c.NATSAuth == "generated" || c.NATSTLS == "generated"
	for _, k := range c.APIKeys {
		if !keyID.MatchString(k.ID) || ids[k.ID] {
			return fmt.Errorf("apiKeys: id %q: 1-64 characters of A-Z a-z 0-9 _ -, each id once", k.ID)
		}
		ids[k.ID] = true
		if len(k.Scopes) == 0 {
			return fmt.Errorf("apiKeys: %s: no scopes (ocr, jobs, admin)", k.ID)
		}
		for _, s := range k.Scopes {
			if !slices.Contains([]string{"ocr", "jobs", "admin"}, s) {
				return fmt.Errorf("apiKeys: %s: scope %q is not one of ocr, jobs, admin", k.ID, s)
			}
		}
		if k.Rate < 0 || k.Burst < 0 || k.Pages < 0 || (k.Period != "" && !periodRule.MatchString(k.Period)) {
			return fmt.Errorf("apiKeys: %s: rate, burst and pages not negative, period a duration (24h)", k.ID)
		}
		if k.SHA256 != "" && !sha256Hex.MatchString(k.SHA256) {
			return fmt.Errorf("apiKeys: %s: sha256 must be 64 lowercase hex digits (readocr key new prints it)", k.ID)
		}
		needSeed = needSeed || k.SHA256 == ""
	}
	switch c.NATSAuth {
	case "", "generated", "existing":
	default:
		return fmt.Errorf("natsAuth %q: want generated (a Secret from the seed), existing (kubectl create secret %s) or empty", c.NATSAuth, natsAuthName)
	}
	switch c.NATSTLS {
	case "", "generated", "existing":
	default:
		return fmt.Errorf("natsTLS %q: want generated (a CA and certificate from the seed), existing (a Secret %s with tls.crt, tls.key, ca.crt: cert-manager's) or empty", c.NATSTLS, natsTLSSecret)
	}
	if needSeed && len(c.SecretSeed) < 16 {
		return fmt.Errorf("apiKeys/natsAuth/natsTLS need readocr:secretSeed, a secret of at least 16 characters: " +
			"pulumi config set --secret readocr:secretSeed \"$(head -c 32 /dev/urandom | base64)\"")
	}
	return nil
}

// derive is the secret of purpose under the stack's seed: HMAC-SHA256, URL-safe base64.
func derive(seed, purpose string) string {
	m := hmac.New(sha256.New, []byte(seed))
	m.Write([]byte("readocr/" + purpose))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// natsPassword is the NATS user's password. nats-server reads $OCR_NATS_PASSWORD in nats.conf
// by parsing the variable's value as a configuration value, so a value that starts with a digit
// is taken for a number and the server does not start ("Expected a digit but got '_'", seen on
// minikube with a base64 password): a letter, then hex digits, always reads as a string.
func natsPassword(seed string) string {
	m := hmac.New(sha256.New, []byte(seed))
	m.Write([]byte("readocr/nats/" + natsUser))
	return "p" + hex.EncodeToString(m.Sum(nil))
}

// apiKey is the key of entry k (empty when the entry gives a hash of a key made elsewhere).
func apiKey(seed string, k APIKey) string {
	if k.SHA256 != "" {
		return ""
	}
	return keyPrefix + derive(seed, "api-key/"+k.ID)
}

// keyFile is the service's key file for the entries: hashes, never keys.
func keyFile(seed string, keys []APIKey) string {
	out := make([]APIKey, len(keys))
	for i, k := range keys {
		if k.SHA256 == "" {
			sum := sha256.Sum256([]byte(apiKey(seed, k)))
			k.SHA256 = hex.EncodeToString(sum[:])
		}
		out[i] = k
	}
	b, _ := yaml.Marshal(map[string]any{"keys": out})
	return "# Made by Pulumi (infra/access.go) from readocr:apiKeys: the keys' SHA-256, never the keys.\n" + string(b)
}

// accessResources declares the Secrets of the keys and of NATS's user, as the stack says.
func accessResources(ctx *pulumi.Context, cfg Config, labels pulumi.StringMap, opts ...pulumi.ResourceOption) (pulumi.StringMapOutput, error) {
	keys := pulumi.StringMap{}
	if len(cfg.APIKeys) > 0 {
		for _, k := range cfg.APIKeys {
			if key := apiKey(cfg.SecretSeed, k); key != "" {
				keys[k.ID] = pulumi.ToSecret(pulumi.String(key)).(pulumi.StringOutput)
			}
		}
		if _, err := corev1.NewSecret(ctx, apiKeysSecret, &corev1.SecretArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(apiKeysSecret), Labels: labels},
			Type:     pulumi.String("Opaque"),
			// The provider keeps a Secret's data secret in the state on its own.
			StringData: pulumi.StringMap{apiKeysFile: pulumi.String(keyFile(cfg.SecretSeed, cfg.APIKeys))},
		}, opts...); err != nil {
			return pulumi.StringMapOutput{}, err
		}
	}
	if cfg.NATSAuth == "generated" {
		if _, err := corev1.NewSecret(ctx, natsAuthName, &corev1.SecretArgs{
			Metadata: &metav1.ObjectMetaArgs{Name: pulumi.String(natsAuthName), Labels: labels},
			Type:     pulumi.String("Opaque"),
			StringData: pulumi.StringMap{
				"OCR_NATS_USER":     pulumi.String(natsUser),
				"OCR_NATS_PASSWORD": pulumi.String(natsPassword(cfg.SecretSeed)),
			},
		}, opts...); err != nil {
			return pulumi.StringMapOutput{}, err
		}
	}
	return keys.ToStringMapOutput(), nil
}

// natsAuthConfig is nats.conf's authorization, from the servers' environment (the Secret).
func natsAuthConfig(cfg Config) string {
	if cfg.NATSAuth == "" {
		return ""
	}
	return "authorization {\n  user: $OCR_NATS_USER\n  password: $OCR_NATS_PASSWORD\n}\n"
}

// natsAuthEnv gives a container the NATS user's Secret as its environment: NATS's servers need
// it with authorization on; readocr's pods take it whenever it exists (optional), so that a
// kubectl user turns authentication on by making the Secret and NATS's configuration only.
func natsAuthEnv(required bool) *corev1.EnvFromSourceArgs {
	return &corev1.EnvFromSourceArgs{SecretRef: &corev1.SecretEnvSourceArgs{
		Name: pulumi.String(natsAuthName), Optional: pulumi.Bool(!required),
	}}
}

// natsServerAuthEnv is the NATS servers' environment with authorization on: the user's Secret,
// required (the configuration names its variables).
func natsServerAuthEnv(cfg Config) corev1.EnvFromSourceArray {
	if cfg.NATSAuth == "" {
		return nil
	}
	return corev1.EnvFromSourceArray{natsAuthEnv(true)}
}

// apiKeysSettings are the ConfigMap's entries with keys on.
func apiKeysSettings(cfg Config, data map[string]string) {
	if len(cfg.APIKeys) > 0 {
		data["OCR_API_KEYS"] = apiKeysDir + "/" + apiKeysFile
	}
}

// apiKeysVolume mounts the key file's Secret; a Secret volume is updated in place, and the
// service reads the file again when it changes (a removed key is refused without a restart).
func apiKeysVolume(cfg Config) (*corev1.VolumeArgs, *corev1.VolumeMountArgs) {
	if len(cfg.APIKeys) == 0 {
		return nil, nil
	}
	return &corev1.VolumeArgs{Name: pulumi.String("api-keys"), Secret: &corev1.SecretVolumeSourceArgs{
			SecretName: pulumi.String(apiKeysSecret), DefaultMode: pulumi.Int(0o444),
		}},
		&corev1.VolumeMountArgs{Name: pulumi.String("api-keys"), MountPath: pulumi.String(apiKeysDir), ReadOnly: pulumi.Bool(true)}
}
