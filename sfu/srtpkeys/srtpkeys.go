// Package srtpkeys learns the SRTP keys of a DTLS-SRTP connection from
// what Pion shows of its handshake, so that the SFU's receive fast path
// (sfu/fastpath.go) can decrypt what a peer sends without Pion's receive
// goroutines in between.
package srtpkeys

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"sync"

	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
)

// Handshake collects what one PeerConnection's DTLS handshake tells about
// its SRTP keys. Pion exposes
// the keys only this way: the NSS key log line (client random, master
// secret) and the ServerHello the SFU sends (server random, cipher suite,
// SRTP profile). The SFU is always the DTLS server (sfu.newPeerConnection),
// which is what makes the ServerHello ours to see. Set it up with
// SettingEngine.SetDTLSKeyLogWriter(h) and
// SettingEngine.SetDTLSServerHelloMessageHook(h.ServerHello); once the
// handshake is done, RemoteContext decrypts what the peer sends.
//
// The keys never leave the process and are never logged; a wrong
// derivation cannot let anything through, because a packet the fast path
// cannot authenticate goes to Pion as before.
type Handshake struct {
	mu           sync.Mutex
	clientRandom []byte
	master       []byte
	serverRandom []byte
	suite        uint16
	profile      srtp.ProtectionProfile
	log          bytes.Buffer // a partial key log line
}

// Write implements io.Writer for SettingEngine.SetDTLSKeyLogWriter: lines
// of "CLIENT_RANDOM <client random> <master secret>" in hex.
func (k *Handshake) Write(b []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.log.Len()+len(b) > 4096 {
		k.log.Reset() // not a key log line we know
	}
	k.log.Write(b)
	for {
		line, err := k.log.ReadBytes('\n')
		if err != nil {
			k.log.Write(line) // incomplete: keep for the next write
			return len(b), nil
		}
		f := bytes.Fields(line)
		if len(f) != 3 || string(f[0]) != "CLIENT_RANDOM" {
			continue
		}
		cr, err1 := hex.DecodeString(string(f[1]))
		ms, err2 := hex.DecodeString(string(f[2]))
		if err1 == nil && err2 == nil && len(cr) == handshake.RandomLength {
			k.clientRandom, k.master = cr, ms
		}
	}
}

// ServerHello is the SettingEngine's ServerHello hook: it notes the
// message's random, suite and SRTP profile and sends it unchanged.
func (k *Handshake) ServerHello(m handshake.MessageServerHello) handshake.Message {
	r := m.Random.MarshalFixed()
	k.mu.Lock()
	k.serverRandom = r[:]
	if m.CipherSuiteID != nil {
		k.suite = *m.CipherSuiteID
	}
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
			k.profile = srtp.ProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	k.mu.Unlock()
	return &m
}

// ErrNoKeys: the handshake did not (yet) show everything the keys need.
var ErrNoKeys = errors.New("srtpkeys: dtls keys unknown")

// RemoteContext returns an SRTP context that decrypts what the peer (the
// DTLS client) sends, with the replay window Pion's own session uses.
func (k *Handshake) RemoteContext() (*srtp.Context, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.master == nil || k.serverRandom == nil || k.profile == 0 {
		return nil, ErrNoKeys
	}
	cfg := srtp.Config{Profile: k.profile}
	// The DTLS-SRTP exporter (RFC 5764 §4.2, RFC 5705): the TLS 1.2 PRF
	// over the master secret, the label and both randoms.
	exp := exporterFunc(func(label string, _ []byte, n int) ([]byte, error) {
		seed := append(append([]byte(label), k.clientRandom...), k.serverRandom...)
		h := prf.HashFunc(sha256.New)
		if k.suite == 0xc02c || k.suite == 0xc030 { // *_AES_256_GCM_SHA384
			h = sha512.New384
		}
		return prf.PHash(k.master, seed, n, h)
	})
	if err := cfg.ExtractSessionKeysFromDTLS(exp, false); err != nil {
		return nil, err
	}
	// Cryptex (RFC 9335, encrypted header extensions) is accepted when a
	// peer uses it, as Pion does once it is negotiated; it changes what is
	// encrypted, not what is authenticated.
	return srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, k.profile,
		srtp.SRTPReplayProtection(srtpReplayWindow), srtp.Cryptex(srtp.CryptexModeEnabled))
}

// srtpReplayWindow is the replay window of Pion's SRTP session, kept so
// that the fast path accepts the same reordering.
const srtpReplayWindow = 64

type exporterFunc func(label string, context []byte, length int) ([]byte, error)

func (f exporterFunc) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	return f(label, context, length)
}
