package loadtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/pion/dtls/v3/pkg/protocol"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/dtls/v3/pkg/protocol/recordlayer"
	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"

	"github.com/openvisit/openvisit/sfu/srtpkeys"
)

// TestClientKeysMatchTheSFU: the keys the load generator derives as the
// DTLS client (key log + the ServerHello read off the wire) encrypt what
// the SFU's own derivation (sfu/srtpkeys, the DTLS server's side)
// decrypts, for each SRTP profile the SFU may choose.
func TestClientKeysMatchTheSFU(t *testing.T) {
	for _, profile := range []srtp.ProtectionProfile{srtp.ProtectionProfileAeadAes128Gcm, srtp.ProtectionProfileAes128CmHmacSha1_80} {
		t.Run(fmt.Sprint(profile), func(t *testing.T) {
			clientRandom, master := make([]byte, 32), make([]byte, 48)
			_, _ = rand.Read(clientRandom)
			_, _ = rand.Read(master)
			line := "CLIENT_RANDOM " + hex.EncodeToString(clientRandom) + " " + hex.EncodeToString(master) + "\n"
			suite := uint16(0xc02b) // ECDHE_ECDSA_AES_128_GCM_SHA256
			hello := handshake.MessageServerHello{
				Version: protocol.Version1_2, CipherSuiteID: &suite,
				CompressionMethod: &protocol.CompressionMethod{},
				Extensions: []extension.Extension{&extension.UseSRTP{
					ProtectionProfiles: []extension.SRTPProtectionProfile{extension.SRTPProtectionProfile(profile)}}},
			}
			if err := hello.Random.Populate(); err != nil {
				t.Fatal(err)
			}

			var client srtpkeys.Handshake
			_, _ = client.Write([]byte(line[:20])) // the key log may arrive in pieces
			_, _ = client.Write([]byte(line[20:]))
			if client.Complete() {
				t.Fatal("complete before the ServerHello")
			}
			client.Sniff(serverHelloDatagram(t, hello))
			if !client.Complete() {
				t.Fatal("the ServerHello on the wire did not complete the keys")
			}
			local, remote, err := client.ClientContexts()
			if err != nil {
				t.Fatal(err)
			}

			var server srtpkeys.Handshake
			_, _ = server.Write([]byte(line))
			server.ServerHello(hello)
			fromClient, err := server.RemoteContext()
			if err != nil {
				t.Fatal(err)
			}
			hdr := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: 7, Timestamp: 9, SSRC: 0x1234}
			plain, _ := (&rtp.Packet{Header: hdr, Payload: []byte("a frame")}).Marshal()
			enc, err := local.EncryptRTP(nil, plain, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := fromClient.DecryptRTP(nil, enc, nil)
			if err != nil || string(got) != string(plain) {
				t.Fatalf("the SFU cannot decrypt what the client sends: %v", err)
			}
			// The client's receive context is the other direction's: it must
			// not accept its own packets back.
			if _, err := remote.DecryptRTP(nil, enc, nil); err == nil {
				t.Fatal("the receive context decrypted the client's own packet")
			}
		})
	}
}

// serverHelloDatagram is m as a DTLS server sends it: a handshake record
// of epoch 0, after a record of another kind in the same datagram.
func serverHelloDatagram(t *testing.T, m handshake.MessageServerHello) []byte {
	t.Helper()
	ccs, err := (&recordlayer.RecordLayer{
		Header:  recordlayer.Header{Version: protocol.Version1_2},
		Content: &protocol.ChangeCipherSpec{},
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	hs, err := (&recordlayer.RecordLayer{
		Header:  recordlayer.Header{Version: protocol.Version1_2, SequenceNumber: 1},
		Content: &handshake.Handshake{Message: &m},
	}).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return append(ccs, hs...)
}
