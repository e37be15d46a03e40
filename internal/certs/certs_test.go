package certs

import (
	"crypto/x509"
	"testing"
	"time"
)

func TestSelfSignedKeptAndRenewed(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	c1, err := SelfSigned(dir, []string{"clinic.test"}, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(c1.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"localhost", "127.0.0.1", "clinic.test"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("certificate does not cover %s: %v", h, err)
		}
	}
	c2, err := SelfSigned(dir, []string{"clinic.test"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if string(c2.Certificate[0]) != string(c1.Certificate[0]) {
		t.Error("second start generated a new certificate instead of keeping the first")
	}
	c3, err := SelfSigned(dir, []string{"clinic.test"}, now.Add(360*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if string(c3.Certificate[0]) == string(c1.Certificate[0]) {
		t.Error("a certificate about to expire was not renewed")
	}
	c4, err := SelfSigned(dir, []string{"other.test"}, now)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := x509.ParseCertificate(c4.Certificate[0]); l.VerifyHostname("other.test") != nil {
		t.Error("a certificate missing a host was not regenerated")
	}
}
