// Package srtpkeys learns the SRTP keys of a DTLS-SRTP connection from
// what Pion shows of its handshake, so that the SFU's receive fast path
// (sfu/fastpath.go) can decrypt what a peer sends without Pion's receive
// goroutines in between, and the load generator's clients
// (internal/loadtest) can send and receive media around Pion.
package srtpkeys

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
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
//
// On the DTLS client's side Pion shows only the key log; the ServerHello
// arrives in the clear on the client's socket, where Sniff reads it before
// Pion does, and ClientContexts then gives both directions.
type Handshake struct {
	mu           sync.Mutex
	clientRandom []byte
	master       []byte
	serverRandom []byte
	suite        uint16
	profile      srtp.ProtectionProfile
	log          bytes.Buffer // a partial key log line
	complete     atomic.Bool  // all of the above known
}

// Complete reports whether the handshake has shown everything the keys
// need.
func (k *Handshake) Complete() bool { return k.complete.Load() }

// checkComplete sets complete once every part is known; under mu.
func (k *Handshake) checkComplete() {
	if k.master != nil && k.serverRandom != nil && k.profile != 0 {
		k.complete.Store(true)
	}
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
			k.checkComplete()
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
	k.hello(&m)
	return &m
}

// hello notes a ServerHello's random, suite and SRTP profile.
func (k *Handshake) hello(m *handshake.MessageServerHello) {
	r := m.Random.MarshalFixed()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.serverRandom = r[:]
	if m.CipherSuiteID != nil {
		k.suite = *m.CipherSuiteID
	}
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) == 1 {
			k.profile = srtp.ProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	k.checkComplete()
}

// Sniff notes the ServerHello in datagram b, as the DTLS client receives
// it, if b carries one (plain handshake records of epoch 0); anything else
// is ignored.
func (k *Handshake) Sniff(b []byte) {
	recs, err := recordlayer.UnpackDatagram(b)
	if err != nil {
		return
	}
	for _, r := range recs {
		var h recordlayer.Header
		if h.Unmarshal(r) != nil || h.ContentType != protocol.ContentTypeHandshake || h.Epoch != 0 {
			continue
		}
		body := r[recordlayer.FixedHeaderSize:]
		var hh handshake.Header
		if hh.Unmarshal(body) != nil || hh.Type != handshake.TypeServerHello ||
			hh.FragmentOffset != 0 || hh.FragmentLength != hh.Length ||
			len(body) < handshake.HeaderLength+int(hh.Length) {
			continue
		}
		var m handshake.MessageServerHello
		if m.Unmarshal(body[handshake.HeaderLength:handshake.HeaderLength+int(hh.Length)]) != nil {
			continue
		}
		k.hello(&m)
	}
}

// ErrNoKeys: the handshake did not (yet) show everything the keys need.
var ErrNoKeys = errors.New("srtpkeys: dtls keys unknown")

// RemoteContext returns an SRTP context that decrypts what the peer (the
// DTLS client) sends, with the replay window Pion's own session uses.
func (k *Handshake) RemoteContext() (*srtp.Context, error) {
	cfg, err := k.sessionKeys(false)
	if err != nil {
		return nil, err
	}
	return remoteContext(cfg)
}

// ClientContexts returns, for the DTLS client's side, the SRTP contexts
// that encrypt what it sends (local) and decrypt what the server sends it
// (remote).
func (k *Handshake) ClientContexts() (local, remote *srtp.Context, err error) {
	cfg, err := k.sessionKeys(true)
	if err != nil {
		return nil, nil, err
	}
	if local, err = srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, cfg.Profile); err != nil {
		return nil, nil, err
	}
	remote, err = remoteContext(cfg)
	return local, remote, err
}

// sessionKeys derives both directions' keys, as the client or the server
// sees them.
func (k *Handshake) sessionKeys(isClient bool) (srtp.Config, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.master == nil || k.serverRandom == nil || k.profile == 0 {
		return srtp.Config{}, ErrNoKeys
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
	err := cfg.ExtractSessionKeysFromDTLS(exp, isClient)
	return cfg, err
}

// remoteContext decrypts the other side's packets. Cryptex (RFC 9335,
// encrypted header extensions) is accepted when a peer uses it, as Pion
// does once it is negotiated; it changes what is encrypted, not what is
// authenticated.
func remoteContext(cfg srtp.Config) (*srtp.Context, error) {
	return srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, cfg.Profile,
		srtp.SRTPReplayProtection(srtpReplayWindow), srtp.Cryptex(srtp.CryptexModeEnabled))
}

// srtpReplayWindow is the replay window of Pion's SRTP session, kept so
// that the fast path accepts the same reordering.
const srtpReplayWindow = 64

type exporterFunc func(label string, context []byte, length int) ([]byte, error)

func (f exporterFunc) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	return f(label, context, length)
}
