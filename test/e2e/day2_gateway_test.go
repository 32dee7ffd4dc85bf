package e2e

// Day 2, scenario 4: the service through Gateway API with Traefik (built from the Go module
// proxy, installed by hack/offline/addons/traefik): manifests/gateway (a Gateway with an HTTPS
// listener for readocr.localhost, its certificate a Secret; an HTTPRoute to the Service with
// Traefik's Buffering Middleware at the service's own body limit) over TLS on Traefik's
// NodePort. A page of 20 MiB (JSON, 27 MiB in base64) is read; an image over 20 MiB whose body
// is within the gateway's limit gets the service's own JSON 413; a body over the gateway's limit
// gets Traefik's 413 (plain text).

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/readocr/readocr/internal/testsupport/testimages"
)

const (
	gatewayHost     = "readocr.localhost" // manifests/gateway's
	gatewayNodePort = "30443"             // Traefik's websecure (hack/offline/addons/traefik/traefik.yaml)
)

// selfSigned writes a certificate and key for host and returns their paths and a pool that
// trusts the certificate.
func selfSigned(t *testing.T, host string) (string, string, *x509.CertPool) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	crt, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return crt, keyFile, pool
}

// pgmPage is a width x height grayscale PGM (one byte a pixel, after a short header) with
// phototest.tif's text at the top.
func pgmPage(t *testing.T, width, height int) []byte {
	t.Helper()
	src, err := png.Decode(bytes.NewReader(testimages.Tiled(t, testimages.Must("phototest.tif"), 1)))
	if err != nil {
		t.Fatal(err)
	}
	page := image.NewGray(image.Rect(0, 0, width, height))
	for i := range page.Pix {
		page.Pix[i] = 0xff
	}
	draw.Draw(page, src.Bounds(), src, image.Point{}, draw.Src)
	return append([]byte(fmt.Sprintf("P5\n%d %d\n255\n", width, height)), page.Pix...)
}

func TestDay2Gateway(t *testing.T) {
	getDay2(t)
	addonBuilt(t, "traefik")
	install := `source hack/offline/addons/lib.sh && hack/offline/addons/traefik/build.sh >/dev/null && load_images traefik &&
hack/offline/addons/traefik/manifest.sh crds | kubectl apply --server-side --force-conflicts -f - >/dev/null &&
kubectl wait --for=condition=Established --timeout=60s crd/gatewayclasses.gateway.networking.k8s.io crd/gateways.gateway.networking.k8s.io crd/httproutes.gateway.networking.k8s.io crd/middlewares.traefik.io >/dev/null &&
hack/offline/addons/traefik/manifest.sh controller | kubectl apply --server-side --force-conflicts -f - >/dev/null &&
kubectl -n traefik rollout status deploy/traefik --timeout=180s`
	if out, err := runEnv(nil, "bash", "-c", install); err != nil {
		t.Fatalf("installing Traefik: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		removeAddon(t, "traefik")
	})
	ns := namespace(t, "readocr-gateway")
	crt, key, pool := selfSigned(t, gatewayHost)
	kubectl(t, "create", "secret", "tls", "readocr-tls", "-n", ns, "--cert="+crt, "--key="+key)
	kubectl(t, "apply", "-n", ns, "-f", "manifests")
	t.Logf("kubectl apply -f manifests/gateway:\n%s", kubectl(t, "apply", "-n", ns, "-f", "manifests/gateway"))
	kubectl(t, "rollout", "status", "deploy/readocr", "-n", ns, "--timeout=300s")
	waitReady(t, ns, 2, 3*time.Minute)
	kubectl(t, "wait", "-n", ns, "--for=condition=Programmed", "gateway/readocr", "--timeout=120s")
	t.Logf("HTTPRoute: %s", kubectl(t, "get", "httproute", "readocr", "-n", ns, "-o",
		`jsonpath={range .status.parents[*].conditions[*]}{.type}={.status} {end}`))

	nodeIP := run(t, "minikube", "ip")
	client := &http.Client{Timeout: 3 * time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: gatewayHost, MinVersion: tls.VersionTLS12},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, net.JoinHostPort(nodeIP, gatewayNodePort))
		},
	}}
	base := "https://" + gatewayHost + ":" + gatewayNodePort
	post := func(img []byte) (int, string, string, time.Duration) {
		body := []byte(`{"image":"` + base64.StdEncoding.EncodeToString(img) + `","lang":"eng"}`)
		began := time.Now()
		resp, err := client.Post(base+"/read_ocr", "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err.Error(), "", time.Since(began)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), resp.Header.Get("Content-Type"), time.Since(began)
	}
	// The route answers over TLS with the Secret's certificate (the client trusts nothing else).
	var status int
	var text string
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(2 * time.Second) {
		if status, text, _, _ = post(testimages.Must("gos_001-helloworld.png").Bytes); status == 200 {
			break
		}
	}
	if status != 200 || !strings.Contains(strings.ToLower(text), "hello") {
		t.Fatalf("a page through the Gateway over TLS: %d %.200s", status, text)
	}

	// 20 MiB less 4 KiB: a 4096 x 5119 grayscale page; its JSON body is 27 MB.
	img := pgmPage(t, 4096, 5119)
	status, text, ctype, took := post(img)
	t.Logf("a %d-byte image (%.2f MiB; JSON body %d bytes) through the Gateway over TLS: %d %s in %v: %.80q",
		len(img), float64(len(img))/(1<<20), base64.StdEncoding.EncodedLen(len(img))+30, status, ctype, took.Round(100*time.Millisecond), text)
	if status != 200 || !strings.Contains(text, "quick brown") {
		t.Errorf("the 20 MiB page: %d %.300s", status, text)
	}

	// Over 20 MiB, body within the gateway's limit: the service's own JSON error.
	img = pgmPage(t, 4096, 5124) // 20 MiB + 16 KiB
	status, text, ctype, _ = post(img)
	t.Logf("a %d-byte image (JSON body %d bytes, under the gateway's limit): %d %s %.200s", len(img), base64.StdEncoding.EncodedLen(len(img))+30, status, ctype, text)
	if status != 413 || !strings.Contains(ctype, "json") || !strings.Contains(text, `"payload_too_large"`) {
		t.Errorf("an image over 20 MiB: %d %s %.300s, want the service's 413 payload_too_large (bytes: README, Errors)", status, ctype, text)
	}

	// A body over the gateway's limit: Traefik answers before the service sees it.
	img = pgmPage(t, 4096, 5400) // 21.1 MiB: a 28.1 MB body
	status, text, ctype, _ = post(img)
	t.Logf("a %d-byte body (over the Middleware's 28,027,562): %d %q %q", base64.StdEncoding.EncodedLen(len(img))+30, status, ctype, strings.TrimSpace(text))
	if status != 413 {
		t.Errorf("a body over the gateway's limit: %d %.300s, want 413", status, text)
	}
}
