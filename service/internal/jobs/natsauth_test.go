package jobs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// natsWithConfig starts a real nats-server on loopback from a configuration file, as the
// cluster's is written (nats-server's own parser reads it).
func natsWithConfig(t *testing.T, conf string) *server.Server {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "nats.conf")
	conf = "listen: 127.0.0.1:-1\njetstream { store_dir: " + fmt.Sprintf("%q", dir) + " }\n" + conf
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("%v\n%s", err, conf)
	}
	opts.NoSigs, opts.NoLog = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	return ns
}

// A NATS server with authorization refuses a client without credentials, and the service
// with them gets its streams; a service with wrong ones fails at once (no --nats-wait).
func TestNATSCredentials(t *testing.T) {
	user, _ := nkeys.CreateUser()
	seed, _ := user.Seed()
	pub, _ := user.PublicKey()
	seedFile := filepath.Join(t.TempDir(), "readocr.nk")
	os.WriteFile(seedFile, seed, 0o600)
	ca, serverCert, clientCert := certificates(t)

	for _, c := range []struct {
		name, conf string
		auth       NATSAuth
		scheme     string
	}{
		{"user and password", `authorization { users: [{user: readocr, password: "s3cret-pw"}] }`,
			NATSAuth{User: "readocr", Password: "s3cret-pw"}, "nats"},
		{"NKey", `authorization { users: [{nkey: ` + pub + `}] }`, NATSAuth{NKey: seedFile}, "nats"},
		{"mutual TLS", `tls { cert_file: "` + serverCert[0] + `", key_file: "` + serverCert[1] + `", ca_file: "` + ca + `", verify: true }`,
			NATSAuth{CA: ca, Cert: clientCert[0], Key: clientCert[1]}, "tls"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns := natsWithConfig(t, c.conf)
			url := strings.Replace(ns.ClientURL(), "nats://", c.scheme+"://", 1)
			noCreds := []nats.Option{nats.MaxReconnects(0)}
			if c.scheme == "tls" {
				noCreds = append(noCreds, nats.RootCAs(ca)) // it trusts the server, but has no certificate of its own
			}
			if nc, err := nats.Connect(url, noCreds...); err == nil {
				nc.Close()
				t.Fatal("a client without credentials was let in")
			} else {
				t.Logf("without credentials: %v", err)
			}
			cfg := DefaultConfig()
			cfg.NATSURL, cfg.NATSWait, cfg.NATSAuth = url, time.Minute, c.auth
			log := slog.New(slog.NewJSONHandler(io.Discard, nil))
			b, err := Open(context.Background(), cfg, log)
			if err != nil {
				t.Fatalf("with credentials: %v", err)
			}
			if _, err := b.Queued(context.Background()); err != nil {
				t.Errorf("the stream: %v", err)
			}
			other, err := b.Connect()
			if err != nil {
				t.Errorf("Connect with the same credentials: %v", err)
			} else {
				other.Close()
			}
			b.Close()
			if c.auth.Password != "" {
				cfg.NATSAuth.Password = "wrong"
				start := time.Now()
				if _, err := Open(context.Background(), cfg, log); err == nil || !strings.Contains(err.Error(), "--nats-user") {
					t.Errorf("a wrong password: %v", err)
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("a refused password took %v: it waited for --nats-wait", d)
				}
			}
		})
	}
}

func TestNATSAuthOptionsRefuseHalves(t *testing.T) {
	for _, a := range []NATSAuth{{User: "u"}, {Password: "p"}, {Cert: "c"}, {Key: "k"}, {NKey: "/nonexistent"}} {
		if _, err := a.options(); err == nil {
			t.Errorf("%+v accepted", a)
		}
	}
}

// certificates writes a CA, a server certificate for 127.0.0.1 and a client certificate
// signed by it: the CA's file, and (certificate, key) files of each.
func certificates(t *testing.T) (string, [2]string, [2]string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
		return p
	}
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) [2]string {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalECPrivateKey(key)
		return [2]string{write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)}
	}
	return write("ca.pem", "CERTIFICATE", caDER), leaf("server", 2, x509.ExtKeyUsageServerAuth), leaf("client", 3, x509.ExtKeyUsageClientAuth)
}
