package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The files LocalCA keeps in its directory.
const (
	CAFile         = "ca.crt"
	caKeyFile      = "ca.key"
	ServerCertFile = "server.crt"
	ServerKeyFile  = "server.key"
)

const (
	caValidFor     = 10 * 365 * 24 * time.Hour
	serverValidFor = 365 * 24 * time.Hour
	renewBefore    = 30 * 24 * time.Hour
)

// LocalCA keeps a private certificate authority and one server certificate
// it issued for hosts (names or IPs) in dir: what the local PostgreSQL and
// MinIO serve (deploy/services.sh, the Compose file), so that clients
// verify them exactly as they verify production servers. It generates what
// is missing, expires within 30 days, was not issued by the CA, or does not
// cover hosts, and keeps the rest; changed reports whether the server
// certificate is new (the servers must then reload it). Keys are 0600.
func LocalCA(dir string, hosts []string, now time.Time) (changed bool, err error) {
	if len(hosts) == 0 {
		return false, errors.New("certs: local CA: no hosts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("certs: %w", err)
	}
	ca, caKey, err := loadPair(filepath.Join(dir, CAFile), filepath.Join(dir, caKeyFile))
	if err != nil || !ca.IsCA || now.Add(renewBefore).After(ca.NotAfter) {
		if ca, caKey, err = newCA(dir, now); err != nil {
			return false, err
		}
	}
	if leaf, _, err := loadPair(filepath.Join(dir, ServerCertFile), filepath.Join(dir, ServerKeyFile)); err == nil &&
		serverUsable(leaf, ca, hosts, now) {
		return false, nil
	}
	return true, newServer(dir, ca, caKey, hosts, now)
}

func serverUsable(leaf, ca *x509.Certificate, hosts []string, now time.Time) bool {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, h := range hosts {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: roots, CurrentTime: now.Add(renewBefore)})
		if err != nil {
			return false
		}
	}
	return true
}

// loadPair reads a PEM certificate and its key, checking they match.
func loadPair(certPath, keyPath string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, nil, err
	}
	key, ok := pair.PrivateKey.(*ecdsa.PrivateKey)
	if !ok {
		return nil, nil, errors.New("certs: not an ECDSA key")
	}
	return cert, key, nil
}

func newCA(dir string, now time.Time) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	tmpl := &x509.Certificate{
		Subject:               pkix.Name{Organization: []string{"OpenVisit local services"}, CommonName: "OpenVisit local CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caValidFor),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, key, err := issue(tmpl, nil, nil)
	if err != nil {
		return nil, nil, err
	}
	if err := writePair(dir, CAFile, caKeyFile, der, key); err != nil {
		return nil, nil, err
	}
	ca, err := x509.ParseCertificate(der)
	return ca, key, err
}

func newServer(dir string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, hosts []string, now time.Time) error {
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{Organization: []string{"OpenVisit local services"}, CommonName: hosts[0]},
		NotBefore:   now.Add(-time.Hour),
		NotAfter:    now.Add(serverValidFor),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, key, err := issue(tmpl, ca, caKey)
	if err != nil {
		return err
	}
	return writePair(dir, ServerCertFile, ServerKeyFile, der, key)
}

// issue makes a key and a certificate for tmpl, signed by parent (self-signed
// when parent is nil).
func issue(tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: %w", err)
	}
	return der, key, nil
}

// writePair writes the key (0600) before the certificate, each through a
// temporary file, so that a crash leaves no certificate without its key.
func writePair(dir, certName, keyName string, der []byte, key *ecdsa.PrivateKey) error {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := writeAtomic(filepath.Join(dir, keyName), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(dir, certName), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.Chmod(tmp, mode); err != nil { // WriteFile keeps an existing file's mode
		return fmt.Errorf("certs: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("certs: %w", err)
	}
	return nil
}
