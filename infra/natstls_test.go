package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

const natsTLSSecretKey = "kubernetes:core/v1:Secret/readocr-nats-tls"

// The generated CA and certificate: the same for the same seed on every run (no churn on
// `pulumi up`), another for another seed; the chain holds for the name readocr's pods dial.
func TestNATSTLSFilesFollowTheSeed(t *testing.T) {
	const seed = "a-test-seed-of-enough-characters"
	ca, cert, key, err := natsTLSFiles(seed, "ocr")
	if err != nil {
		t.Fatal(err)
	}
	ca2, cert2, key2, _ := natsTLSFiles(seed, "ocr")
	if ca != ca2 || cert != cert2 || key != key2 {
		t.Error("the same seed gave other files")
	}
	if other, _, otherKey, _ := natsTLSFiles(seed+"x", "ocr"); other == ca || otherKey == key {
		t.Error("another seed gave the same CA or key")
	}
	if _, err := tls.X509KeyPair([]byte(cert), []byte(key)); err != nil {
		t.Fatalf("certificate and key do not pair: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(ca)) {
		t.Fatal("ca.crt holds no certificate")
	}
	block, _ := pem.Decode([]byte(cert))
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)
	for _, name := range []string{"readocr-nats", "readocr-nats.ocr", "readocr-nats.ocr.svc", "readocr-nats.ocr.svc.cluster.local"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: at}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "readocr", Roots: pool, CurrentTime: at}); err == nil {
		t.Error("the certificate holds a name it should not (readocr)")
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "readocr-nats", Roots: x509.NewCertPool(), CurrentTime: at}); err == nil {
		t.Error("verified without the CA")
	}
}

// withoutNATSTLS is conf without its TLS block, for tests of other things on plain loopback.
func withoutNATSTLS(conf string) string {
	return strings.Replace(conf, natsTLSConfig(Config{NATSTLS: "generated"}), "", 1)
}

// tlsFilesFor writes the rendered Secret's tls.crt and tls.key to a directory of this machine
// and returns conf with its paths there, and the Secret's ca.crt.
func tlsFilesFor(t *testing.T, rec *recorder, conf string) (string, string) {
	t.Helper()
	data := unsecret(rec.get(t, natsTLSSecretKey)["stringData"]).(map[string]any)
	dir := t.TempDir()
	for _, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
		os.WriteFile(filepath.Join(dir, f), []byte(fmt.Sprint(unsecret(data[f]))), 0o600)
	}
	return strings.ReplaceAll(conf, natsTLSServerDir, dir), filepath.Join(dir, "ca.crt")
}

// Production's NATS with TLS on, on a real nats-server with the rendered configuration and
// Secret: a client without TLS is refused, one that does not trust the CA fails to verify,
// readocr's way (the Secret's ca.crt, the Service's name, the user's password) connects; and
// readocr's pods are given the CA and a tls:// URL, NATS's servers the certificate.
func TestNATSTLSOnAServer(t *testing.T) {
	rec := renderStack(t, "production", map[string]string{"readocr:secretSeed": "a-test-seed-of-enough-characters"})
	auth := unsecret(rec.get(t, natsSecret)["stringData"]).(map[string]any)
	user, password := fmt.Sprint(auth["OCR_NATS_USER"]), fmt.Sprint(unsecret(auth["OCR_NATS_PASSWORD"]))
	t.Setenv("OCR_NATS_USER", user)
	t.Setenv("OCR_NATS_PASSWORD", password)
	t.Setenv("POD_NAME", "readocr-nats-0")
	conf, caFile := tlsFilesFor(t, rec, natsConf(t, rec))
	if !strings.Contains(conf, "tls {") {
		t.Fatalf("no tls in nats.conf:\n%s", conf)
	}
	file := filepath.Join(t.TempDir(), "nats.conf")
	os.WriteFile(file, []byte(conf), 0o644)
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		t.Fatal(err)
	}
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
	url := fmt.Sprintf("nats://127.0.0.1:%d", s.Addr().(*net.TCPAddr).Port)
	if nc, err := nats.Connect(url, nats.UserInfo(user, password), nats.MaxReconnects(0)); err == nil {
		nc.Close()
		t.Error("a client without TLS was let in")
	}
	if nc, err := nats.Connect(url, nats.UserInfo(user, password), nats.MaxReconnects(0),
		nats.Secure(&tls.Config{ServerName: natsName, MinVersion: tls.VersionTLS12})); err == nil {
		nc.Close()
		t.Error("a client that does not trust the CA connected")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client that does not trust the CA: %v, want a certificate error", err)
	}
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(caFile)
	pool.AppendCertsFromPEM(b)
	nc, err := nats.Connect(url, nats.UserInfo(user, password),
		nats.Secure(&tls.Config{ServerName: natsName, RootCAs: pool, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatalf("readocr's way (its CA, the Service's name): %v", err)
	}
	if !nc.TLSRequired() {
		t.Error("the connection is not TLS")
	}
	nc.Close()

	expect(t, rec.get(t, configMap), map[string]any{
		"data.OCR_NATS_CA": natsTLSClientDir + "/ca.crt", "data.OCR_NATS_URL": "tls://readocr-nats:4222",
	})
	for _, d := range []string{deployment, workerDeployment} {
		pod := at(t, rec.get(t, d), "spec.template.spec").(map[string]any)
		expect(t, pod, map[string]any{
			"volumes.3.secret.secretName": natsTLSSecret, "volumes.3.secret.items.0.key": "ca.crt",
			"containers.0.volumeMounts.3.mountPath": natsTLSClientDir,
		})
		if items := at(t, pod, "volumes.3.secret.items").([]any); len(items) != 1 {
			t.Errorf("%s: readocr's pods get %d files of the TLS Secret, want ca.crt only", d, len(items))
		}
	}
	expect(t, rec.get(t, natsStatefulSet), map[string]any{
		"spec.template.spec.volumes.2.secret.secretName":           natsTLSSecret,
		"spec.template.spec.containers.0.volumeMounts.3.mountPath": natsTLSServerDir,
		"spec.template.spec.containers.0.volumeMounts.3.readOnly":  true,
		"spec.template.spec.volumes.2.secret.items.1.key":          "tls.key",
	})
	// The plain manifests (minikube) stay without TLS.
	mk := renderStack(t, "minikube", nil)
	if _, ok := mk.resources[natsTLSSecretKey]; ok || strings.Contains(natsConf(t, mk), "tls") {
		t.Error("minikube's stack has NATS TLS")
	}
}
