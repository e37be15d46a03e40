package srtpkeys

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
)

// TestHandshakeKeys: the keys are known once both the key log line (which
// may come in pieces, after lines of other kinds) and the ServerHello were
// seen, and not before.
func TestHandshakeKeys(t *testing.T) {
	var h Handshake
	if _, err := h.RemoteContext(); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("before the handshake: %v, want ErrNoKeys", err)
	}
	line := "CLIENT_RANDOM " + hex.EncodeToString(make([]byte, handshake.RandomLength)) + " " +
		strings.Repeat("ab", 48) + "\n"
	for _, part := range []string{"SERVER_HANDSHAKE_TRAFFIC_SECRET x y\n", line[:20], line[20:]} {
		if n, err := h.Write([]byte(part)); err != nil || n != len(part) {
			t.Fatalf("write: %d, %v", n, err)
		}
	}
	if _, err := h.RemoteContext(); !errors.Is(err, ErrNoKeys) {
		t.Fatalf("without the ServerHello: %v, want ErrNoKeys", err)
	}
	suite := uint16(0xc02b) // TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
	h.ServerHello(handshake.MessageServerHello{
		CipherSuiteID: &suite,
		Extensions: []extension.Extension{&extension.UseSRTP{
			ProtectionProfiles: []extension.SRTPProtectionProfile{extension.SRTP_AEAD_AES_128_GCM},
		}},
	})
	if h.profile != srtp.ProtectionProfileAeadAes128Gcm {
		t.Fatalf("profile %v", h.profile)
	}
	if ctx, err := h.RemoteContext(); err != nil || ctx == nil {
		t.Fatalf("after the handshake: %v", err)
	}
}

// FuzzSniffServerHello feeds datagrams to the ServerHello sniffer, which
// reads whatever arrives on a load-test participant's socket, and to the
// key log writer.
func FuzzSniffServerHello(f *testing.F) {
	f.Add([]byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 2, 0, 0, 0})
	f.Add([]byte{22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var k Handshake
		k.Sniff(b)
		_, _ = k.Write(b)
	})
}
