package certs

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestLocalCAIssuesKeepsAndRenews(t *testing.T) {
	dir := t.TempDir()
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	now := time.Now()
	changed, err := LocalCA(dir, hosts, now)
	if err != nil || !changed {
		t.Fatalf("first LocalCA = %v, %v; want a new certificate", changed, err)
	}
	ca, leaf := readCert(t, dir, CAFile), readCert(t, dir, ServerCertFile)
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	for _, h := range hosts {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: roots}); err != nil {
			t.Errorf("server certificate does not verify for %s against the CA: %v", h, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "db.example"}); err == nil {
		t.Error("server certificate verifies against the system roots")
	}
	for _, k := range []string{caKeyFile, ServerKeyFile} {
		if fi, err := os.Stat(filepath.Join(dir, k)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, %v; want 0600", k, fi.Mode().Perm(), err)
		}
	}

	if changed, err := LocalCA(dir, hosts, now); err != nil || changed {
		t.Fatalf("second LocalCA = %v, %v; want the certificate kept", changed, err)
	}
	if changed, _ := LocalCA(dir, append(hosts, "minio"), now); !changed {
		t.Error("a host the certificate lacks did not renew it")
	}
	if l := readCert(t, dir, ServerCertFile); l.VerifyHostname("minio") != nil {
		t.Error("renewed certificate does not cover the new host")
	}
	later := now.Add(serverValidFor - 10*24*time.Hour)
	if changed, _ := LocalCA(dir, hosts, later); !changed {
		t.Error("a certificate expiring within 30 days was not renewed")
	}
	if readCert(t, dir, CAFile).SerialNumber.Cmp(ca.SerialNumber) != 0 {
		t.Error("renewing the server certificate replaced a valid CA")
	}
	// A CA replaced under the server certificate: it is re-issued.
	if err := os.Remove(filepath.Join(dir, CAFile)); err != nil {
		t.Fatal(err)
	}
	if changed, _ := LocalCA(dir, hosts, now); !changed {
		t.Error("a server certificate from another CA was kept")
	}
}

func readCert(t *testing.T, dir, name string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM", name)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
