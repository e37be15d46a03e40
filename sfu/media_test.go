package sfu

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/transport/v5/test"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
	sfuclient "github.com/openvisit/openvisit/sfu/client"
	"github.com/openvisit/openvisit/sfu/protocol"
)

// client is a Pion peer joined through package sfu/client, as a browser
// page would: it offers once, then answers the server's offers.
type client struct {
	t    *testing.T
	id   ids.ParticipantID
	conn *sfuclient.Conn
	pc   *webrtc.PeerConnection
	msgs chan sfuclient.Message // messages other than SDP and candidates

	mu      sync.Mutex
	streams map[string]map[string]*atomic.Int64 // stream ID → kind → packets
	stop    chan struct{}
	done    sync.WaitGroup // the client's own goroutines (publishers)
	// onPacket, when set, sees every RTP packet received.
	onPacket atomic.Pointer[func(*webrtc.TrackRemote, *rtp.Packet)]
}

func newClient(t *testing.T, env *testEnv, visit ids.VisitID) *client {
	t.Helper()
	return newClientWith(t, env, visit, webrtc.Configuration{}, nil)
}

// newClientWith is newClient with a PeerConnection configuration (ICE
// servers, transport policy) and extra settings applied after loopbackOnly.
func newClientWith(t *testing.T, env *testEnv, visit ids.VisitID, cfg webrtc.Configuration, configure func(*webrtc.SettingEngine), apiOpts ...func(*webrtc.API)) *client {
	t.Helper()
	c := joinedClient(t, env, visit, cfg, configure, apiOpts...)
	pc := c.pc
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		n := &atomic.Int64{}
		c.mu.Lock()
		if c.streams[tr.StreamID()] == nil {
			c.streams[tr.StreamID()] = make(map[string]*atomic.Int64)
		}
		c.streams[tr.StreamID()][tr.Kind().String()] = n
		c.mu.Unlock()
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			n.Add(1)
			if f := c.onPacket.Load(); f != nil {
				(*f)(tr, pkt)
			}
		}
	})

	// Publish a camera and a microphone with synthetic samples.
	video, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8}, "video", "cam")
	audio, _ := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus}, "audio", "cam")
	for _, tr := range []webrtc.TrackLocal{video, audio} {
		if _, err := pc.AddTrack(tr); err != nil {
			t.Fatal(err)
		}
	}
	c.offer()

	c.start()
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		frame := make([]byte, 800)
		for {
			select {
			case <-c.stop:
				return
			case <-tick.C:
				_ = video.WriteSample(media.Sample{Data: frame, Duration: 20 * time.Millisecond})
				_ = audio.WriteSample(media.Sample{Data: frame[:80], Duration: 20 * time.Millisecond})
			}
		}
	}()
	return c
}

// joinedClient joins visit with a new Pion PeerConnection (loopback only,
// then configure and apiOpts applied) that sends its ICE candidates; the
// caller adds tracks, then calls offer, then start (or reads c.conn itself).
func joinedClient(t *testing.T, env *testEnv, visit ids.VisitID, cfg webrtc.Configuration, configure func(*webrtc.SettingEngine), apiOpts ...func(*webrtc.API)) *client {
	t.Helper()
	tok, claims := env.mint(t, visit, token.RolePatient)
	var se webrtc.SettingEngine
	loopbackOnly(&se)
	if configure != nil {
		configure(&se)
	}
	c := &client{
		t: t, id: claims.Participant,
		msgs:    make(chan sfuclient.Message, 64),
		streams: make(map[string]map[string]*atomic.Int64),
		stop:    make(chan struct{}),
	}
	conn, err := sfuclient.Join(context.Background(), sfuclient.Params{
		URL: env.wsURL, Token: tok, Visit: visit, Config: cfg,
		API: webrtc.NewAPI(append([]func(*webrtc.API){webrtc.WithSettingEngine(se)}, apiOpts...)...),
		Handlers: sfuclient.Handlers{
			OnMessage: func(m sfuclient.Message) { c.msgs <- m },
			OnError:   func(err error) { c.fail("%v", err) },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Abort)
	c.conn, c.pc = conn, conn.PC()
	return c
}

// offer sends c's first offer.
func (c *client) offer() {
	c.t.Helper()
	if err := c.conn.Offer(); err != nil {
		c.t.Fatal(err)
	}
}

// start runs the client's reader: it applies SDP and candidates from the
// server and passes the rest on to msgs, which it closes when the socket
// ends.
func (c *client) start() {
	c.conn.Start()
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		<-c.conn.Done()
		close(c.msgs)
	}()
}

// fail reports a client-side error, unless the client is closing (its
// PeerConnection is closed while the last server offer may be in flight)
// or its PeerConnection is closed already: Pion closes it when the server
// ends the DTLS session, and a server offer can still be on its way then.
// Tests assert on the media, which a connection closed too early fails.
func (c *client) fail(format string, args ...any) {
	select {
	case <-c.stop:
	default:
		if c.pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
			c.t.Logf("after the connection closed: "+format, args...)
			return
		}
		c.t.Errorf(format, args...)
	}
}

// send sends m; a failure shows in what the test asserts.
func (c *client) send(m protocol.ClientMessage) { _ = c.conn.Send(m) }

// expectClose reads until the server closes c's socket (c not started)
// and returns the close code.
func (c *client) expectClose(t *testing.T) int {
	t.Helper()
	for {
		_, err := c.conn.Read()
		if err == nil {
			continue
		}
		if code := sfuclient.CloseCodeOf(err); code != 0 {
			return code
		}
		t.Fatalf("socket ended without a close frame: %v", err)
	}
}

// received returns how many packets of kind arrived in stream.
func (c *client) received(stream ids.ParticipantID, kind string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.streams[string(stream)][kind]; n != nil {
		return n.Load()
	}
	return 0
}

// leave sends leave and waits for the server's close.
func (c *client) leave() {
	_ = c.conn.Leave()
	c.close()
}

func (c *client) close() {
	select {
	case <-c.stop:
		return
	default:
	}
	close(c.stop)
	_ = c.pc.Close()
	c.done.Wait() // the reader returns when the server closes the socket
	c.conn.Close()
}

// waitFor polls cond; the deadline is generous because it only bounds a
// failure, never a pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestMediaLoopback(t *testing.T) {
	defer test.CheckRoutines(t)()
	env := newTestEnv(t)
	visit := ids.NewVisitID()

	a := newClient(t, env, visit)
	defer a.close()
	// b joins second: a is told, and each must get the other's tracks
	// through the server's renegotiation.
	b := newClient(t, env, visit)
	defer b.close()

	select {
	case m := <-a.msgs:
		if m.Type != "participant_joined" || m.Participant == nil || m.Participant.ID != b.id {
			t.Fatalf("a got %v, want participant_joined of b", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no participant_joined")
	}
	for _, kind := range []string{"video", "audio"} {
		waitFor(t, "a receives b's "+kind, func() bool { return a.received(b.id, kind) > 10 })
		waitFor(t, "b receives a's "+kind, func() bool { return b.received(a.id, kind) > 10 })
	}
	if st := env.sfu.Stats(); st.Rooms != 1 || st.Participants != 2 || st.ForwardedPackets == 0 || st.ForwardedBytes == 0 {
		t.Fatalf("stats %+v", st)
	}
	// The publishers' media took the receive fast path, not Pion's
	// goroutines: all but the first few packets of each stream.
	fast := env.sfu.Stats().FastPathPackets
	for _, kind := range []string{"video", "audio"} {
		before := a.received(b.id, kind) + b.received(a.id, kind)
		waitFor(t, "more "+kind, func() bool { return a.received(b.id, kind)+b.received(a.id, kind) > before+20 })
	}
	if got := env.sfu.Stats().FastPathPackets - fast; got < 40 {
		t.Fatalf("%d packets took the fast path while 40 or more were forwarded", got)
	}

	b.leave()
	waitFor(t, "participant_left", func() bool {
		select {
		case m := <-a.msgs:
			return m.Type == "participant_left" && m.Participant != nil && m.Participant.ID == b.id
		default:
			return false
		}
	})
	waitFor(t, "one participant", func() bool { return env.sfu.Stats().Participants == 1 })
	a.leave()
	waitFor(t, "no rooms", func() bool { st := env.sfu.Stats(); return st.Rooms == 0 && st.Participants == 0 })
	env.close()
}
