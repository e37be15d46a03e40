package turncred

import (
	"strings"
	"testing"
	"time"
)

func TestCredentials(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	exp := time.Unix(1900000000, 0)
	user, pass := Credentials(secret, "p-1", exp)
	if user != "1900000000:p-1" || pass == "" || strings.Contains(pass, "p-1") {
		t.Fatalf("credentials %q %q", user, pass)
	}
	if pass != Password(secret, user) {
		t.Fatal("the relay's check (Password) disagrees with the minted password")
	}
	if _, p2 := Credentials([]byte("another secret, also 32 bytes.."), "p-1", exp); p2 == pass {
		t.Fatal("the password does not depend on the secret")
	}
}
