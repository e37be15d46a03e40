package loadtest

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

// clientKeys learns a simulated participant's SRTP keys from its DTLS
// handshake, in which it is the client (the SFU is always the DTLS server).
// Pion shows the client only half of what the keys need: the NSS key log
// line (client random, master secret) through
// SettingEngine.SetDTLSKeyLogWriter. The other half — the server random,
// cipher suite and SRTP profile — is in the ServerHello, which arrives in
// the clear on the participant's own socket, where fastMedia.Handle reads it
// (sniff) before Pion does. sfu/srtpkeys does the same from the server's
// side, where the ServerHello is the SFU's own.
//
// The keys never leave the process and are never logged.
type clientKeys struct {
	mu           sync.Mutex
	clientRandom []byte
	master       []byte
	serverRandom []byte
	suite        uint16
	profile      srtp.ProtectionProfile
	log          bytes.Buffer
	complete     atomic.Bool // all of the above known
}

// Write implements io.Writer for the DTLS key log: lines of
// "CLIENT_RANDOM <client random> <master secret>" in hex.
func (k *clientKeys) Write(b []byte) (int, error) {
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
			break
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
	k.checkComplete()
	return len(b), nil
}

// sniff notes the ServerHello in datagram b, if it carries one (plain
// handshake records of epoch 0); anything else is ignored.
func (k *clientKeys) sniff(b []byte) {
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
		k.serverHello(&m)
	}
}

func (k *clientKeys) serverHello(m *handshake.MessageServerHello) {
	rnd := m.Random.MarshalFixed()
	k.mu.Lock()
	defer k.mu.Unlock()
	k.serverRandom = rnd[:]
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

// checkComplete sets complete once every part is known; under mu.
func (k *clientKeys) checkComplete() {
	if k.master != nil && k.serverRandom != nil && k.profile != 0 {
		k.complete.Store(true)
	}
}

// errNoKeys: the handshake did not (yet) show everything the keys need.
var errNoKeys = errors.New("loadtest: dtls keys unknown")

// contexts returns the SRTP contexts that encrypt what the participant
// sends (local) and decrypt what the SFU sends it (remote, with the
// replay window Pion's own session uses).
func (k *clientKeys) contexts() (local, remote *srtp.Context, err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.master == nil || k.serverRandom == nil || k.profile == 0 {
		return nil, nil, errNoKeys
	}
	cfg := srtp.Config{Profile: k.profile}
	// The DTLS-SRTP exporter (RFC 5764 §4.2, RFC 5705): the TLS 1.2 PRF
	// over the master secret, the label and both randoms.
	seedRandoms := append(append([]byte(nil), k.clientRandom...), k.serverRandom...)
	hash := prf.HashFunc(sha256.New)
	if k.suite == 0xc02c || k.suite == 0xc030 { // *_AES_256_GCM_SHA384
		hash = sha512.New384
	}
	exp := exporter(func(label string, _ []byte, n int) ([]byte, error) {
		return prf.PHash(k.master, append([]byte(label), seedRandoms...), n, hash)
	})
	if err := cfg.ExtractSessionKeysFromDTLS(exp, true); err != nil {
		return nil, nil, err
	}
	local, err = srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, k.profile)
	if err != nil {
		return nil, nil, err
	}
	remote, err = srtp.CreateContext(cfg.Keys.RemoteMasterKey, cfg.Keys.RemoteMasterSalt, k.profile,
		srtp.SRTPReplayProtection(64), srtp.Cryptex(srtp.CryptexModeEnabled))
	return local, remote, err
}

type exporter func(label string, context []byte, length int) ([]byte, error)

func (f exporter) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	return f(label, context, length)
}
