package password

import (
	"errors"
	"strings"
	"testing"
)

func TestArgon2idPHC(t *testing.T) {
	const pw = "correct horse battery staple"
	phc, err := Hash(pw, DefaultParams)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(phc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("unexpected PHC prefix: %s", phc)
	}
	parts := strings.Split(phc, "$")
	if len(parts[4]) != 22 || len(parts[5]) != 43 { // 16 and 32 bytes, unpadded
		t.Fatalf("salt/key lengths %d/%d, want 22/43", len(parts[4]), len(parts[5]))
	}

	t.Run("round trip", func(t *testing.T) {
		ok, rehash, err := Verify(phc, pw)
		if !ok || rehash || err != nil {
			t.Fatalf("Verify = %v, %v, %v; want true, false, nil", ok, rehash, err)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		ok, rehash, err := Verify(phc, pw+"!")
		if ok || rehash || err != nil {
			t.Fatalf("Verify = %v, %v, %v; want false, false, nil", ok, rehash, err)
		}
	})
	t.Run("NFC and NFD forms verify alike", func(t *testing.T) {
		nfc, err := Hash("caf\u00e9 au lait s'il vous pla\u00eet", Params{Memory: minMemory, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
		if err != nil {
			t.Fatal(err)
		}
		ok, _, err := Verify(nfc, "cafe\u0301 au lait s'il vous plai\u0302t")
		if !ok || err != nil {
			t.Fatalf("NFD form did not verify: %v, %v", ok, err)
		}
	})
	t.Run("rehash flag on weaker params", func(t *testing.T) {
		weak := Params{Memory: minMemory, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
		old, err := Hash(pw, weak)
		if err != nil {
			t.Fatal(err)
		}
		ok, rehash, err := Verify(old, pw)
		if !ok || !rehash || err != nil {
			t.Fatalf("Verify = %v, %v, %v; want true, true, nil", ok, rehash, err)
		}
		// The flag is only raised on success.
		ok, rehash, _ = Verify(old, "not it at all")
		if ok || rehash {
			t.Fatalf("wrong password: ok=%v rehash=%v", ok, rehash)
		}
	})
	t.Run("bad params refused", func(t *testing.T) { badParamsRefused(t, pw) })

	for _, tc := range malformedPHCs(phc) {
		t.Run("malformed/"+tc.name, func(t *testing.T) {
			ok, rehash, err := Verify(tc.phc, pw)
			if ok || rehash || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Verify = %v, %v, %v; want false, false, ErrMalformed", ok, rehash, err)
			}
		})
	}
}

// badParamsRefused: Hash refuses parameters out of bounds: none at all, too
// little or too much memory, no passes or lanes, a short salt or key.
func badParamsRefused(t *testing.T, pw string) {
	t.Helper()
	for _, p := range []Params{
		{},
		{Memory: 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 1 << 22, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 19456, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32},
		{Memory: 19456, Time: 2, Threads: 0, SaltLen: 16, KeyLen: 32},
		{Memory: 19456, Time: 2, Threads: 1, SaltLen: 4, KeyLen: 32},
		{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 8},
	} {
		if _, err := Hash(pw, p); !errors.Is(err, ErrParams) {
			t.Errorf("Hash(%+v) err = %v, want ErrParams", p, err)
		}
	}
}

// malformedPHC is a hash string Verify must refuse as ErrMalformed.
type malformedPHC struct{ name, phc string }

// malformedPHCs are malformed variants of phc, a valid DefaultParams hash.
func malformedPHCs(phc string) []malformedPHC {
	parts := strings.Split(phc, "$")
	salt, key := parts[4], parts[5]
	return []malformedPHC{
		{"empty", ""},
		{"dollar only", "$"},
		{"argon2i", "$argon2i$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"argon2d", "$argon2d$v=19$m=19456,t=2,p=1$" + salt + "$" + key},
		{"bcrypt", "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234"},
		{"old version", "$argon2id$v=16$m=19456,t=2,p=1$" + salt + "$" + key},
		{"missing version", "$argon2id$m=19456,t=2,p=1$" + salt + "$" + key},
		{"params reordered", "$argon2id$v=19$t=2,m=19456,p=1$" + salt + "$" + key},
		{"extra param", "$argon2id$v=19$m=19456,t=2,p=1,keyid=x$" + salt + "$" + key},
		{"leading zero", "$argon2id$v=19$m=019456,t=2,p=1$" + salt + "$" + key},
		{"signed", "$argon2id$v=19$m=+19456,t=2,p=1$" + salt + "$" + key},
		{"overflow", "$argon2id$v=19$m=99999999999,t=2,p=1$" + salt + "$" + key},
		{"memory too large", "$argon2id$v=19$m=4194304,t=2,p=1$" + salt + "$" + key},
		{"zero time", "$argon2id$v=19$m=19456,t=0,p=1$" + salt + "$" + key},
		{"zero lanes", "$argon2id$v=19$m=19456,t=2,p=0$" + salt + "$" + key},
		{"too many lanes", "$argon2id$v=19$m=19456,t=2,p=300$" + salt + "$" + key},
		{"padded salt", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "==$" + key},
		{"newline in salt", "$argon2id$v=19$m=19456,t=2,p=1$" + salt[:5] + "\n" + salt[5:] + "$" + key},
		{"url alphabet", "$argon2id$v=19$m=19456,t=2,p=1$" + strings.Repeat("_", 22) + "$" + key},
		{"short salt", "$argon2id$v=19$m=19456,t=2,p=1$AAAA$" + key},
		{"short key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt + "$AAAAAAAA"},
		{"missing key", "$argon2id$v=19$m=19456,t=2,p=1$" + salt},
		{"trailing field", phc + "$"},
		{"no leading dollar", phc[1:]},
		{"huge", phc + strings.Repeat("A", 1000)},
	}
}

func TestDummyVerifyRuns(t *testing.T) {
	DummyVerify() // must not panic; its cost is that of a DefaultParams Verify
}

func FuzzParsePHC(f *testing.F) {
	f.Add("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U")
	f.Add("$argon2id$v=19$m=8192,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA")
	f.Add("$argon2i$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG")
	f.Add("$$$$$")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		p, salt, key, err := parsePHC(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if !p.valid() || int(p.SaltLen) != len(salt) || int(p.KeyLen) != len(key) {
			t.Fatalf("accepted invalid params %+v", p)
		}
		// Whatever is accepted must be canonical: re-encoding gives it back.
		if got := encodePHC(p, salt, key); got != s {
			t.Fatalf("non-canonical accept: %q re-encodes as %q", s, got)
		}
	})
}
