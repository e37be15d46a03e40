package loadtest

import (
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu/sfutest"
)

// TestLoadtestSmoke runs a few visits for a few seconds against an
// in-process media node on loopback: every visit gets media both ways and
// nothing is lost.
func TestLoadtestSmoke(t *testing.T) {
	n := sfutest.NewNode(t)
	// The clients send and receive around Pion (fastpeer.go): the fast path
	// carries the media, and every participant sees its first keyframe.

	rep, err := Run(t.Context(), Params{
		WSURL:    n.URL,
		NewVisit: func() (string, error) { return string(ids.NewVisitID()), nil },
		Mint: func(visit string) (string, error) {
			return n.Mint(ids.VisitID(visit), token.RolePatient)
		},
		Visits:          3,
		Warmup:          3 * time.Second,
		Duration:        3 * time.Second,
		ConfigureWebRTC: sfutest.Loopback,
		OnSample:        func(s Sample) { t.Logf("%+v", s) },
	})
	if err != nil {
		t.Fatalf("run: %v (report %+v)", err, rep)
	}
	t.Logf("report: sent %d received %d lost %d p50 %.2f ms p99 %.2f ms jitter %.2f ms, %.0f pps",
		rep.SentPackets, rep.ReceivedPackets, rep.LostPackets, rep.LatencyP50MS, rep.LatencyP99MS, rep.JitterMS, rep.ForwardedPPS)
	if rep.VisitsUp != 3 {
		t.Errorf("%d of 3 visits have media both ways", rep.VisitsUp)
	}
	if rep.ReceivedPackets == 0 || rep.LostPackets != 0 {
		t.Errorf("received %d packets, lost %d: want some, and none lost", rep.ReceivedPackets, rep.LostPackets)
	}
	if rep.LatencyP50MS == 0 {
		t.Error("no latency samples: the send timestamp extension did not make it through the SFU")
	}
	if rep.MediaPath != "fast" || rep.FastReceived == 0 || rep.FastReceived*10 < rep.ReceivedPackets*9 {
		t.Errorf("media path %q received %d of %d packets: want most on the fast path", rep.MediaPath, rep.FastReceived, rep.ReceivedPackets)
	}
	if rep.JoinsMeasured != 6 || rep.JoinFrameP50MS <= 0 || rep.JoinFrameP99MS < rep.JoinFrameP50MS {
		t.Errorf("join → first frame measured for %d of 6 participants, p50 %.1f ms, p99 %.1f ms",
			rep.JoinsMeasured, rep.JoinFrameP50MS, rep.JoinFrameP99MS)
	}
	if st := n.SFU.Stats(); st.ForwardedPackets == 0 {
		t.Errorf("the SFU forwarded nothing: %+v", st)
	}
}
