// Package loadtest drives an OpenVisit media node with simulated visits:
// Pion clients (no browser) that join visits of two participants each
// through the real signaling protocol and SFU, publish recorded 720p VP8
// and Opus in real time, and measure what they receive from each other —
// forwarded packets and bits per second, loss, jitter, and the latency the
// SFU added (from a send timestamp carried in the abs-capture-time header
// extension, which the SFU forwards) — together with the server process's
// CPU and memory. `openvisit loadtest` is its command line.
package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// Params configures a run.
type Params struct {
	// WSURL is the media node's signaling endpoint (wss://host/sfu/ws).
	WSURL string
	// NewVisit creates a visit and returns its ID; Mint a single-use join
	// token for a new participant of that visit, valid on the node behind
	// WSURL. Both record what they make where the node checks joins (the
	// database): a token for a visit or participant it does not know is
	// refused as removed.
	NewVisit func() (string, error)
	Mint     func(visit string) (string, error)
	// Visits is how many visits of two participants to hold.
	Visits int
	// Warmup is the time after the last join (for the last DTLS
	// handshakes and first keyframes), excluded from the final figures
	// like the joins themselves; Duration is the measured window after it.
	// Counting it from the last join, not the first, keeps the window
	// whole however long many joins take.
	Warmup, Duration time.Duration
	// JoinSpacing spaces the joins so that DTLS handshakes do not pile up
	// (default 50 ms).
	JoinSpacing time.Duration
	// ServerPID is the server process whose CPU and memory are reported
	// (0: none; the caller's own PID when the server runs in-process,
	// which then includes the clients' work).
	ServerPID int
	// InsecureTLS accepts the development server's self-signed certificate.
	InsecureTLS bool
	// ConfigureWebRTC adjusts the clients' Pion settings (loopback only).
	ConfigureWebRTC func(*webrtc.SettingEngine)
	// OnSample, when set, gets each one-second sample as it is taken.
	OnSample func(Sample)
	// PionMedia sends and receives media through Pion's tracks (the way
	// a browser-like client does, and how the load generator did before
	// its fast path), for comparison; by default media goes around Pion
	// (fastpeer.go).
	PionMedia bool
	// BindIP is the local address of the clients' sockets on the fast
	// path (default 127.0.0.1; an address the media node can reach when
	// it is another machine).
	BindIP net.IP
}

// Sample is one second of the run.
type Sample struct {
	T              float64 `json:"t"`                // seconds since the first join
	Visits         int     `json:"visits"`           // visits with media flowing both ways
	SentPPS        float64 `json:"sent_pps"`         // RTP packets/s the clients sent
	ForwardedPPS   float64 `json:"forwarded_pps"`    // RTP packets/s the clients received
	ForwardedBPS   float64 `json:"forwarded_bps"`    // bits/s the clients received
	Loss           float64 `json:"loss"`             // fraction of expected packets missing
	JitterMS       float64 `json:"jitter_ms"`        // mean RFC 3550 jitter over streams
	LatencyP50MS   float64 `json:"latency_p50_ms"`   // added latency, send → receive
	LatencyP99MS   float64 `json:"latency_p99_ms"`   //
	ServerCPU      float64 `json:"server_cpu_cores"` // utime+stime per second
	ServerRSSBytes int64   `json:"server_rss_bytes"`
}

// Report is the whole run; the figures cover the window after warmup.
type Report struct {
	Visits          int     `json:"visits"`
	VisitsUp        int     `json:"visits_up"`
	WindowSeconds   float64 `json:"window_s"`
	SentPackets     uint64  `json:"sent_packets"`
	ReceivedPackets uint64  `json:"received_packets"`
	LostPackets     uint64  `json:"lost_packets"`
	Loss            float64 `json:"loss"`
	ForwardedPPS    float64 `json:"forwarded_pps"`
	ForwardedBPS    float64 `json:"forwarded_bps"`
	JitterMS        float64 `json:"jitter_ms"`
	LatencyP50MS    float64 `json:"latency_p50_ms"`
	LatencyP99MS    float64 `json:"latency_p99_ms"`
	ServerCPUSec    float64 `json:"server_cpu_s"`
	CPUPerPacketUS  float64 `json:"server_cpu_us_per_packet"` // ÷ packets sent
	// CPUPerForwardedUS is the server's CPU ÷ packets the clients received.
	CPUPerForwardedUS float64 `json:"server_cpu_us_per_forwarded_packet"`
	// The clients' own CPU (this process; with the server in-process it
	// includes the server), and per packet sent or received.
	ClientCPUSec         float64 `json:"client_cpu_s"`
	ClientCPUPerPacketUS float64 `json:"client_cpu_us_per_packet"`
	MediaPath            string  `json:"media_path"` // "fast" or "pion"
	// FastReceived is how many packets of the window the fast path
	// received (the rest went through Pion).
	FastReceived uint64 `json:"fast_received_packets"`
	// Join → first decodable frame: from a participant's join request to
	// the first whole VP8 keyframe it received, over every participant
	// that received one (JoinsMeasured), warmup included.
	JoinsMeasured  int      `json:"joins_measured"`
	JoinFrameP50MS float64  `json:"join_first_frame_p50_ms"`
	JoinFrameP95MS float64  `json:"join_first_frame_p95_ms"`
	JoinFrameP99MS float64  `json:"join_first_frame_p99_ms"`
	ServerRSSBytes int64    `json:"server_rss_bytes"`
	Samples        []Sample `json:"samples"`
	Errors         []string `json:"errors,omitempty"`
}

// runner is one run's shared state.
type runner struct {
	p            Params
	api          *webrtc.API
	video, audio clip
	offset       atomic.Int64 // staggers where each publisher starts its clip
	sent         atomic.Uint64
	fastRecv     atomic.Uint64 // packets the fast path received

	preVideo, preAudio []preFrame
	shards             []*senderShard
	nextShard          atomic.Uint32
	senderWG           sync.WaitGroup

	mu      sync.Mutex
	streams []*stream
	lat     *histogram
	errs    []string
	joins   []time.Duration // join → first frame
}

func (r *runner) addJoin(d time.Duration) {
	r.mu.Lock()
	r.joins = append(r.joins, d)
	r.mu.Unlock()
}

func (r *runner) newStream() *stream {
	s := &stream{run: r}
	r.mu.Lock()
	r.streams = append(r.streams, s)
	r.mu.Unlock()
	return s
}

// addLatency counts one packet's added latency; lock-free, as every
// receiving goroutine calls it per packet.
func (r *runner) addLatency(d time.Duration) { r.lat.add(d) }

func (r *runner) errorf(format string, a ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.errs) < 20 {
		r.errs = append(r.errs, fmt.Sprintf(format, a...))
	}
}

// totals is a snapshot of every counter, for differences.
type totals struct {
	at                         time.Time
	sent, expected, recv, bits uint64
	fastRecv                   uint64
	jitter                     float64
	cpuTicks, selfTicks        int64
	lat                        *histogram
}

func (r *runner) snapshot() totals {
	t := totals{at: time.Now(), sent: r.sent.Load(), fastRecv: r.fastRecv.Load(), lat: &histogram{}}
	r.mu.Lock()
	streams := append([]*stream(nil), r.streams...)
	t.lat.copyFrom(r.lat)
	r.mu.Unlock()
	n := 0
	for _, s := range streams {
		e, rc, b, j := s.snapshot()
		if e == 0 {
			continue
		}
		t.expected += e
		t.recv += rc
		t.bits += b * 8
		t.jitter += j
		n++
	}
	if n > 0 {
		t.jitter /= float64(n)
	}
	if r.p.ServerPID != 0 {
		t.cpuTicks, _ = procCPU(r.p.ServerPID)
	}
	t.selfTicks, _ = procCPU(os.Getpid())
	return t
}

// Run holds p.Visits visits for p.Warmup + p.Duration and reports.
func Run(ctx context.Context, p Params) (Report, error) {
	r, err := newRunner(p)
	if err != nil {
		return Report{}, err
	}
	done := make(chan struct{})
	r.startSenders(runtime.GOMAXPROCS(0), done)
	defer func() { close(done); r.senderWG.Wait() }()
	visits, err := r.joinVisits(ctx)
	defer leaveAll(visits)
	if err != nil {
		return Report{}, err
	}
	return r.measure(ctx, visits, time.Now())
}

// newRunner checks p, fills its defaults, and loads the media and the
// WebRTC API every peer shares.
func newRunner(p Params) (*runner, error) {
	if p.Visits <= 0 || p.Duration <= 0 || p.WSURL == "" || p.Mint == nil || p.NewVisit == nil {
		return nil, errors.New("loadtest: WSURL, NewVisit, Mint, Visits and Duration are required")
	}
	if p.JoinSpacing == 0 {
		p.JoinSpacing = 50 * time.Millisecond
	}
	if p.BindIP == nil {
		p.BindIP = net.IPv4(127, 0, 0, 1)
	}
	r := &runner{p: p, lat: &histogram{}}
	var err error
	if r.video, err = loadVideo(); err != nil {
		return nil, err
	}
	if r.audio, err = loadAudio(); err != nil {
		return nil, err
	}
	if r.api, err = newAPI(p.ConfigureWebRTC); err != nil {
		return nil, err
	}
	r.preEncode()
	return r, nil
}

// visit is one simulated visit's two peers (nil where the join failed).
type visit struct{ a, b *peer }

// up reports whether both peers of v have media flowing.
func (v visit) up() bool { return v.a != nil && v.b != nil && v.a.up() && v.b.up() }

// joinVisits creates the visits and joins their two peers, p.JoinSpacing
// apart. A peer that cannot join is counted as an error, not fatal; the
// visits joined so far are returned with any error, for leaveAll.
func (r *runner) joinVisits(ctx context.Context) ([]visit, error) {
	var visits []visit
	for range r.p.Visits {
		id, err := r.p.NewVisit()
		if err != nil {
			return visits, fmt.Errorf("loadtest: new visit: %w", err)
		}
		var v visit
		for _, pe := range []**peer{&v.a, &v.b} {
			tok, err := r.p.Mint(id)
			if err != nil {
				return visits, fmt.Errorf("loadtest: mint: %w", err)
			}
			if *pe, err = r.dial(ctx, id, tok); err != nil {
				r.errorf("%v", err)
			}
		}
		visits = append(visits, v)
		select {
		case <-ctx.Done():
			return visits, ctx.Err()
		case <-time.After(r.p.JoinSpacing):
		}
	}
	return visits, nil
}

// leaveAll leaves every peer of visits at once.
func leaveAll(visits []visit) {
	var wg sync.WaitGroup
	for _, v := range visits {
		for _, pe := range []*peer{v.a, v.b} {
			if pe != nil {
				wg.Add(1)
				go func() { defer wg.Done(); pe.leave() }()
			}
		}
	}
	wg.Wait()
}

// measure samples every second from start (the last join), and reports
// the window from start+Warmup to start+Warmup+Duration.
func (r *runner) measure(ctx context.Context, visits []visit, start time.Time) (Report, error) {
	p := r.p
	rep := Report{Visits: p.Visits}
	prev := r.snapshot()
	var base totals
	warmEnd := start.Add(p.Warmup)
	end := warmEnd.Add(p.Duration)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	measuring := false
	if p.Warmup <= 0 {
		base, measuring = prev, true
	}
	for {
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-tick.C:
		}
		cur := r.snapshot()
		s := r.sampleAt(prev, cur, start, visits)
		rep.Samples = append(rep.Samples, s)
		prev = cur
		if !measuring && !cur.at.Before(warmEnd) {
			base, measuring = cur, true
		}
		if measuring && !cur.at.Before(end) {
			return r.finish(rep, base, cur, s)
		}
	}
}

// sampleAt is the second from prev to cur, with the visits up and the
// server's memory, handed to OnSample.
func (r *runner) sampleAt(prev, cur totals, start time.Time, visits []visit) Sample {
	s := sample(prev, cur, start)
	for _, v := range visits {
		if v.up() {
			s.Visits++
		}
	}
	if r.p.ServerPID != 0 {
		s.ServerRSSBytes, _ = procRSS(r.p.ServerPID)
	}
	if r.p.OnSample != nil {
		r.p.OnSample(s)
	}
	return s
}

// finish fills the report of the window from base to cur, last the final
// sample; no visit with media both ways is an error.
func (r *runner) finish(rep Report, base, cur totals, last Sample) (Report, error) {
	fillReport(&rep, base, cur, r.p.ServerPID)
	rep.MediaPath = "fast"
	if r.p.PionMedia {
		rep.MediaPath = "pion"
	}
	rep.VisitsUp = last.Visits
	rep.ServerRSSBytes = last.ServerRSSBytes
	r.mu.Lock()
	rep.Errors = append(rep.Errors, r.errs...)
	joins := append([]time.Duration(nil), r.joins...)
	r.mu.Unlock()
	rep.JoinsMeasured = len(joins)
	rep.JoinFrameP50MS = ms(percentile(joins, 0.50))
	rep.JoinFrameP95MS = ms(percentile(joins, 0.95))
	rep.JoinFrameP99MS = ms(percentile(joins, 0.99))
	if rep.VisitsUp == 0 {
		return rep, errNoVisits
	}
	return rep, nil
}

// clockTicks is the kernel's USER_HZ (100 on every Linux this runs on).
const clockTicks = 100

func sample(a, b totals, start time.Time) Sample {
	dt := b.at.Sub(a.at).Seconds()
	s := Sample{T: b.at.Sub(start).Seconds(), JitterMS: b.jitter * 1000}
	if dt <= 0 {
		return s
	}
	s.SentPPS = float64(b.sent-a.sent) / dt
	s.ForwardedPPS = float64(b.recv-a.recv) / dt
	s.ForwardedBPS = float64(b.bits-a.bits) / dt
	s.Loss = lossOf(b.expected-a.expected, b.recv-a.recv)
	p50, n := b.lat.quantile(a.lat, 0.50)
	p99, _ := b.lat.quantile(a.lat, 0.99)
	if n > 0 {
		s.LatencyP50MS, s.LatencyP99MS = ms(p50), ms(p99)
	}
	s.ServerCPU = float64(b.cpuTicks-a.cpuTicks) / clockTicks / dt
	return s
}

func fillReport(rep *Report, a, b totals, pid int) {
	dt := b.at.Sub(a.at).Seconds()
	rep.WindowSeconds = dt
	rep.SentPackets = b.sent - a.sent
	rep.ReceivedPackets = b.recv - a.recv
	rep.FastReceived = b.fastRecv - a.fastRecv
	exp := b.expected - a.expected
	if exp > rep.ReceivedPackets {
		rep.LostPackets = exp - rep.ReceivedPackets
	}
	rep.Loss = lossOf(exp, rep.ReceivedPackets)
	rep.ForwardedPPS = float64(rep.ReceivedPackets) / dt
	rep.ForwardedBPS = float64(b.bits-a.bits) / dt
	rep.JitterMS = b.jitter * 1000
	p50, _ := b.lat.quantile(a.lat, 0.50)
	p99, _ := b.lat.quantile(a.lat, 0.99)
	rep.LatencyP50MS, rep.LatencyP99MS = ms(p50), ms(p99)
	if pid != 0 {
		rep.ServerCPUSec = float64(b.cpuTicks-a.cpuTicks) / clockTicks
		if rep.SentPackets > 0 {
			rep.CPUPerPacketUS = rep.ServerCPUSec * 1e6 / float64(rep.SentPackets)
		}
		if rep.ReceivedPackets > 0 {
			rep.CPUPerForwardedUS = rep.ServerCPUSec * 1e6 / float64(rep.ReceivedPackets)
		}
	}
	rep.ClientCPUSec = float64(b.selfTicks-a.selfTicks) / clockTicks
	if n := rep.SentPackets + rep.ReceivedPackets; n > 0 {
		rep.ClientCPUPerPacketUS = rep.ClientCPUSec * 1e6 / float64(n)
	}
}

func lossOf(expected, received uint64) float64 {
	if expected == 0 || received >= expected {
		return 0
	}
	return float64(expected-received) / float64(expected)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// procCPU returns utime+stime of pid in clock ticks (/proc/PID/stat).
func procCPU(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may
	// hold spaces: state is field 3, utime 14, stime 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("loadtest: bad /proc stat")
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, errors.New("loadtest: short /proc stat")
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("loadtest: bad /proc stat times")
	}
	return u + st, nil
}

// procRSS returns the resident set of pid in bytes (/proc/PID/status).
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb * 1024, err
			}
		}
	}
	return 0, errors.New("loadtest: no VmRSS")
}

// WriteSampleHeader and WriteSample print the per-second table.
func WriteSampleHeader(w io.Writer) {
	fmt.Fprintf(w, "%6s %6s %9s %9s %9s %7s %8s %8s %8s %8s %8s\n",
		"t(s)", "visits", "sent/s", "fwd/s", "fwd Mb/s", "loss%", "jitter", "p50 ms", "p99 ms", "cpu", "rss MB")
}

// WriteSample prints one line of the per-second table.
func WriteSample(w io.Writer, s Sample) {
	fmt.Fprintf(w, "%6.0f %6d %9.0f %9.0f %9.2f %7.3f %8.2f %8.2f %8.2f %8.2f %8.1f\n",
		s.T, s.Visits, s.SentPPS, s.ForwardedPPS, s.ForwardedBPS/1e6, s.Loss*100, s.JitterMS,
		s.LatencyP50MS, s.LatencyP99MS, s.ServerCPU, float64(s.ServerRSSBytes)/(1<<20))
}

// WriteReport prints the final figures.
func WriteReport(w io.Writer, r Report) {
	fmt.Fprintf(w, "\nvisits %d (media both ways: %d), window %.1f s\n", r.Visits, r.VisitsUp, r.WindowSeconds)
	fmt.Fprintf(w, "packets sent %d, received %d, lost %d (%.3f%%)\n", r.SentPackets, r.ReceivedPackets, r.LostPackets, r.Loss*100)
	fmt.Fprintf(w, "forwarded %.0f packets/s, %.2f Mbit/s\n", r.ForwardedPPS, r.ForwardedBPS/1e6)
	fmt.Fprintf(w, "jitter %.2f ms, added latency p50 %.2f ms, p99 %.2f ms\n", r.JitterMS, r.LatencyP50MS, r.LatencyP99MS)
	fmt.Fprintf(w, "join → first decodable frame (%d participants): p50 %.0f ms, p95 %.0f ms, p99 %.0f ms\n",
		r.JoinsMeasured, r.JoinFrameP50MS, r.JoinFrameP95MS, r.JoinFrameP99MS)
	if r.ServerCPUSec > 0 {
		fmt.Fprintf(w, "server CPU %.2f s (%.1f%% of one core), %.1f µs per packet sent, %.1f µs per packet forwarded, RSS %.1f MB\n",
			r.ServerCPUSec, 100*r.ServerCPUSec/r.WindowSeconds, r.CPUPerPacketUS, r.CPUPerForwardedUS, float64(r.ServerRSSBytes)/(1<<20))
	}
	fmt.Fprintf(w, "client CPU (%s media path) %.2f s (%.1f%% of one core), %.1f µs per packet sent or received\n",
		r.MediaPath, r.ClientCPUSec, 100*r.ClientCPUSec/r.WindowSeconds, r.ClientCPUPerPacketUS)
	for _, e := range r.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
}
