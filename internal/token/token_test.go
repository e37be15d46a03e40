package token

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/db/dbtest"
	"github.com/openvisit/openvisit/internal/ids"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newPair(t *testing.T, c *clock) (*Minter, *Verifier) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMinter(priv, 2*time.Minute, c.now)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(pub, "node-a", c.now)
	if err != nil {
		t.Fatal(err)
	}
	return m, v
}

func grant() Grant {
	return Grant{Visit: ids.NewVisitID(), Participant: ids.NewParticipantID(), Role: RolePatient, Node: "node-a"}
}

func TestMintVerify(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	m, v := newPair(t, c)
	g := grant()
	tok, claims, err := m.Mint(g)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.Verify(tok, g.Visit)
	if err != nil {
		t.Fatal(err)
	}
	if got != claims || got.Participant != g.Participant || got.Role != RolePatient {
		t.Fatalf("Verify = %+v, want %+v", got, claims)
	}
	_, other, _ := m.Mint(g)
	if other.ID == claims.ID {
		t.Fatal("two tokens share a jti")
	}
}

func TestVerifyRefuses(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	m, v := newPair(t, c)
	g := grant()
	tok, _, err := m.Mint(g)
	if err != nil {
		t.Fatal(err)
	}
	forger, _ := newPair(t, c)
	forged, _, _ := forger.Mint(g)
	otherNode := g
	otherNode.Node = "node-b"
	wrongNode, _, _ := m.Mint(otherNode)

	payload, sig, _ := strings.Cut(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(payload)
	tampered := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(raw), `"patient"`, `"provider"`, 1))) + "." + sig

	tests := []struct {
		name    string
		tok     string
		visit   ids.VisitID
		advance time.Duration
		want    error
	}{
		{"empty", "", g.Visit, 0, ErrMalformed},
		{"garbage", "not-a-token", g.Visit, 0, ErrMalformed},
		{"three parts", tok + ".x", g.Visit, 0, ErrMalformed},
		{"too long", strings.Repeat("a", MaxLen+1), g.Visit, 0, ErrMalformed},
		{"forged", forged, g.Visit, 0, ErrBadSignature},
		{"tampered role", tampered, g.Visit, 0, ErrBadSignature},
		{"expired", tok, g.Visit, 3 * time.Minute, ErrExpired},
		{"from the future", tok, g.Visit, -5 * time.Minute, ErrNotYetValid},
		{"other visit", tok, ids.NewVisitID(), 0, ErrWrongVisit},
		{"other node", wrongNode, g.Visit, 0, ErrWrongNode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := c.t
			c.t = c.t.Add(tt.advance)
			defer func() { c.t = saved }()
			if _, err := v.Verify(tt.tok, tt.visit); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestMintRefusesBadGrants(t *testing.T) {
	c := &clock{time.Now()}
	m, _ := newPair(t, c)
	g := grant()
	g.Role = "admin"
	if _, _, err := m.Mint(g); err == nil {
		t.Error("minted a token with an unknown role")
	}
	if _, err := NewMinter(nil, time.Minute, nil); err == nil {
		t.Error("NewMinter accepted a nil key")
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	if _, err := NewMinter(priv, time.Hour, nil); err == nil {
		t.Error("NewMinter accepted a one-hour ttl")
	}
}

func TestMemoryBurnerSingleUse(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	m, _ := newPair(t, c)
	_, claims, _ := m.Mint(grant())
	b := NewMemoryBurner(100, c.now)
	ctx := context.Background()

	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if b.Burn(ctx, claims) == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d concurrent burns of one token succeeded, want 1", wins)
	}
}

func TestMemoryBurnerFailsClosedWhenFull(t *testing.T) {
	c := &clock{time.Unix(1_800_000_000, 0)}
	m, _ := newPair(t, c)
	b := NewMemoryBurner(2, c.now)
	ctx := context.Background()
	for range 2 {
		_, cl, _ := m.Mint(grant())
		if err := b.Burn(ctx, cl); err != nil {
			t.Fatal(err)
		}
	}
	_, third, _ := m.Mint(grant())
	if err := b.Burn(ctx, third); !errors.Is(err, ErrUsed) {
		t.Fatalf("burn beyond capacity = %v, want ErrUsed (fail closed)", err)
	}
	c.t = c.t.Add(10 * time.Minute) // the first two expired: room again
	if err := b.Burn(ctx, third); err != nil {
		t.Fatalf("burn after expiry sweep = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	m, _ := NewMinter(priv, time.Minute, nil)
	v, _ := NewVerifier(pub, "node-a", nil)
	tok, _, _ := m.Mint(grant())
	f.Add(tok)
	f.Add("a.b")
	f.Add("")
	f.Add("eyJ2IjoxfQ.AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := v.Parse(s)
		if err == nil && (c.ID == "" || !c.Role.Valid()) {
			t.Fatalf("Parse accepted an incomplete token: %+v", c)
		}
	})
}

func TestPGBurnerSingleUse(t *testing.T) {
	ctx := context.Background()
	pool := dbtest.Pool(t, 8)
	c := &clock{time.Now()}
	m, _ := newPair(t, c)
	_, claims, _ := m.Mint(grant())
	b := NewPGBurner(pool)

	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, used := 0, 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := b.Burn(ctx, claims)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ErrUsed):
				used++
			default:
				t.Errorf("Burn: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || used != 7 {
		t.Fatalf("wins=%d used=%d, want 1 and 7", wins, used)
	}
	// A token pre-registered unused by the control plane burns once too.
	_, pre, _ := m.Mint(grant())
	if _, err := pool.Exec(ctx, `INSERT INTO join_tokens (jti, visit_id, participant_id, role, expires_at)
		VALUES ($1, $2, $3, $4, now() + interval '1 minute')`, pre.ID, string(pre.Visit), string(pre.Participant), string(pre.Role)); err != nil {
		t.Fatal(err)
	}
	if err := b.Burn(ctx, pre); err != nil {
		t.Fatalf("first burn of a registered token: %v", err)
	}
	if err := b.Burn(ctx, pre); !errors.Is(err, ErrUsed) {
		t.Fatalf("second burn = %v, want ErrUsed", err)
	}
}
