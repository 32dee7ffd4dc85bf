package main

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// TLS between readocr and NATS (readocr:natsTLS). "generated": a CA and the servers'
// certificate derived from the stack's secret seed, so that every `pulumi up` renders the same
// Secret (no churn, no restart) without a TLS provider plugin or cert-manager; "existing": a
// Secret the user made (cert-manager's Certificate writes tls.crt, tls.key and ca.crt). The
// servers present tls.crt on the client port; readocr's pods get ca.crt only and verify the
// server's name, readocr-nats. Routes between NATS servers and the monitoring port (probes,
// Prometheus, KEDA) stay plain.
const (
	natsTLSSecret    = "readocr-nats-tls"
	natsTLSServerDir = "/etc/nats-tls"         // the servers' mount: tls.crt, tls.key
	natsTLSClientDir = "/etc/readocr/nats-tls" // readocr's mount: ca.crt
)

// The generated certificates' validity: fixed, so that they are the same on every run. Ten
// years from 2026; rotate by moving to natsTLS "existing" (cert-manager renews) or a new seed.
var (
	natsTLSNotBefore = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	natsTLSNotAfter  = natsTLSNotBefore.AddDate(10, 0, 0)
)

// natsTLSNames are the names the servers' certificate holds: the Service's short name (the one
// readocr's pods dial) and, when the stack names its namespace, the longer forms.
func natsTLSNames(namespace string) []string {
	names := []string{natsName}
	if namespace != "" {
		for _, suffix := range []string{"", ".svc", ".svc.cluster.local"} {
			names = append(names, natsName+"."+namespace+suffix)
		}
	}
	return names
}

// natsTLSFiles are the generated CA certificate, server certificate and server key (PEM), from
// the seed alone: Ed25519 keys from derived seeds, and Ed25519 signatures, which are
// deterministic (ECDSA's are not).
func natsTLSFiles(seed, namespace string) (ca, cert, key string, err error) {
	derived := func(purpose string) []byte {
		m := hmac.New(sha256.New, []byte(seed))
		m.Write([]byte("readocr/nats-tls/" + purpose))
		return m.Sum(nil)
	}
	serial := func(purpose string) *big.Int { return new(big.Int).SetBytes(derived("serial/" + purpose)[:16]) }
	caKey := ed25519.NewKeyFromSeed(derived("ca-key"))
	srvKey := ed25519.NewKeyFromSeed(derived("server-key"))
	caTmpl := &x509.Certificate{
		SerialNumber: serial("ca"), Subject: pkix.Name{CommonName: "readocr NATS CA"},
		NotBefore: natsTLSNotBefore, NotAfter: natsTLSNotAfter,
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(nil, caTmpl, caTmpl, caKey.Public(), caKey)
	if err != nil {
		return "", "", "", fmt.Errorf("NATS TLS: the CA: %w", err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvTmpl := &x509.Certificate{
		SerialNumber: serial("server"), Subject: pkix.Name{CommonName: natsName},
		DNSNames: natsTLSNames(namespace), NotBefore: natsTLSNotBefore, NotAfter: natsTLSNotAfter,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(nil, srvTmpl, caCert, srvKey.Public(), caKey)
	if err != nil {
		return "", "", "", fmt.Errorf("NATS TLS: the servers' certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		return "", "", "", err
	}
	enc := func(kind string, der []byte) string {
		return string(pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}))
	}
	return enc("CERTIFICATE", caDER), enc("CERTIFICATE", srvDER), enc("PRIVATE KEY", keyDER), nil
}

// natsTLSConfig is nats.conf's TLS for client connections (none without natsTLS). A loaded
// node can take more than nats-server's default half second for a handshake.
func natsTLSConfig(cfg Config) string {
	if cfg.NATSTLS == "" {
		return ""
	}
	return fmt.Sprintf("tls {\n  cert_file: %q\n  key_file: %q\n  timeout: 2\n}\n",
		natsTLSServerDir+"/tls.crt", natsTLSServerDir+"/tls.key")
}

// natsTLSSecretResource declares the generated Secret (natsTLS "generated").
func natsTLSSecretResource(ctx *pulumi.Context, cfg Config, labels pulumi.StringMap, opts ...pulumi.ResourceOption) error {
	if cfg.NATSTLS != "generated" {
		return nil
	}
	ca, cert, key, err := natsTLSFiles(cfg.SecretSeed, cfg.Namespace)
	if err != nil {
		return err
	}
	_, err = corev1.NewSecret(ctx, natsTLSSecret, &corev1.SecretArgs{
		Metadata:   &metav1.ObjectMetaArgs{Name: pulumi.String(natsTLSSecret), Labels: labels},
		Type:       pulumi.String("kubernetes.io/tls"),
		StringData: pulumi.StringMap{"ca.crt": pulumi.String(ca), "tls.crt": pulumi.String(cert), "tls.key": pulumi.String(key)},
	}, opts...)
	return err
}

// natsTLSServerVolume mounts the Secret's certificate and key in the NATS servers.
func natsTLSServerVolume(cfg Config) (*corev1.VolumeArgs, *corev1.VolumeMountArgs) {
	if cfg.NATSTLS == "" {
		return nil, nil
	}
	return &corev1.VolumeArgs{Name: pulumi.String("tls"), Secret: &corev1.SecretVolumeSourceArgs{
			SecretName: pulumi.String(natsTLSSecret), DefaultMode: pulumi.Int(0o440),
			Items: corev1.KeyToPathArray{
				corev1.KeyToPathArgs{Key: pulumi.String("tls.crt"), Path: pulumi.String("tls.crt")},
				corev1.KeyToPathArgs{Key: pulumi.String("tls.key"), Path: pulumi.String("tls.key")},
			},
		}},
		&corev1.VolumeMountArgs{Name: pulumi.String("tls"), MountPath: pulumi.String(natsTLSServerDir), ReadOnly: pulumi.Bool(true)}
}

// natsTLSClientVolume mounts only the CA certificate in readocr's pods.
func natsTLSClientVolume(cfg Config) (*corev1.VolumeArgs, *corev1.VolumeMountArgs) {
	if cfg.NATSTLS == "" {
		return nil, nil
	}
	return &corev1.VolumeArgs{Name: pulumi.String("nats-tls"), Secret: &corev1.SecretVolumeSourceArgs{
			SecretName: pulumi.String(natsTLSSecret), DefaultMode: pulumi.Int(0o444),
			Items: corev1.KeyToPathArray{corev1.KeyToPathArgs{Key: pulumi.String("ca.crt"), Path: pulumi.String("ca.crt")}},
		}},
		&corev1.VolumeMountArgs{Name: pulumi.String("nats-tls"), MountPath: pulumi.String(natsTLSClientDir), ReadOnly: pulumi.Bool(true)}
}

// natsTLSSettings are the ConfigMap's entries with TLS on: the CA that turns TLS on in the
// service (--nats-ca), and the URL's scheme that says so.
func natsTLSSettings(cfg Config, data map[string]string) {
	if cfg.NATSTLS != "" {
		data["OCR_NATS_CA"] = natsTLSClientDir + "/ca.crt"
		data["OCR_NATS_URL"] = fmt.Sprintf("tls://%s:%d", natsName, natsClientPort)
	}
}
