package sfu

import (
	"fmt"
	"net"
	"runtime"
	"strconv"

	"github.com/pion/ice/v4"
	pionlogging "github.com/pion/logging"
	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/sfu/udp"
)

// The sharded media plane. A node runs N forwarding workers; each is one
// UDP socket (port P+i of sfu.udp_addr's P), its own Pion ICE UDP mux and
// the one goroutine that reads it, and its own receive fast path. A room
// is placed on one worker when its first participant arrives, and every
// participant of the room gets a PeerConnection whose ICE candidates name
// that worker's port (the SettingEngine's UDPMux is per connection). So
// all of a room's media arrives on one goroutine: the locks it takes
// (the layer's mutex, the socket's send queue) are the room's own and
// never contended, and rooms spread over the workers, least loaded first.
//
// Why a port per worker and not SO_REUSEPORT with a steering program: the
// kernel's reuseport hash spreads one room's peers over the sockets, and
// a cBPF/eBPF program that steers by room would have to find the room in
// each datagram (STUN ufrag, or a map from the peer's address filled in
// after ICE) — kernel code, privileges (eBPF) and a map to keep in step
// with joins. A port per worker needs none of that: the SFU hands out the
// candidates, so it decides the port. The cost is a port range to open
// (P..P+N-1) instead of one port.
//
// A room split over workers (a test forces it; in production a placement
// only changes when the room empties, so its participants share one) is
// still forwarded correctly: a publisher's worker forwards under the
// layer's mutex and writes to each subscriber's socket, whichever worker
// owns it; the socket's send queue is locked (sfu/udp). What the split
// costs is contention on those locks, not correctness. ICE-TCP and TURN
// connections and media.no_receive_fast_path take Pion's read goroutines
// as before, which forward the same way.
type worker struct {
	idx  int
	fast fastPath
	fwd  forwardCounters
	sock *udp.Conn // nil if the socket could not take the fast path
	mux  ice.UDPMux
	// rooms placed on this worker (SFU.mu).
	rooms int
}

// placement is a room's worker while any participant of the room holds it.
type placement struct {
	w    *worker
	refs int
}

// maxWorkers bounds Params.Workers: far beyond any core count, and a
// range of ports one can still open.
const maxWorkers = 1024

// workerCount resolves Params.Workers: 0 means one per core.
func workerCount(n int) (int, error) {
	if n == 0 {
		n = runtime.NumCPU()
	}
	if n < 1 || n > maxWorkers {
		return 0, fmt.Errorf("sfu: workers: %d not in 1..%d", n, maxWorkers)
	}
	return n, nil
}

// workerAddrs returns the listen addresses of n workers: addr's port and
// the n-1 after it, or n ephemeral ports when addr's port is 0.
func workerAddrs(addr string, n int) ([]string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("sfu: udp addr: %w", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return nil, fmt.Errorf("sfu: udp addr: bad port %q", port)
	}
	if p != 0 && p+n-1 > 65535 {
		return nil, fmt.Errorf("sfu: udp addr: ports %d..%d (one per worker) pass 65535", p, p+n-1)
	}
	out := make([]string, n)
	for i := range out {
		q := 0
		if p != 0 {
			q = p + i
		}
		out[i] = net.JoinHostPort(host, strconv.Itoa(q))
	}
	return out, nil
}

// openWorkers opens the workers' sockets and muxes.
func (s *SFU) openWorkers(addr string, n int, logs pionlogging.LoggerFactory) error {
	addrs, err := workerAddrs(addr, n)
	if err != nil {
		return err
	}
	for i, a := range addrs {
		w := &worker{idx: i}
		w.fast.fwd = &w.fwd
		pc, err := net.ListenPacket("udp", a)
		if err != nil {
			s.closeMuxes()
			return fmt.Errorf("sfu: listen udp: %w", err)
		}
		if uc, ok := pc.(*net.UDPConn); ok {
			// Room for bursts (keyframes of many publishers at once).
			// The kernel caps it at rmem_max/wmem_max.
			_ = uc.SetReadBuffer(socketBuffer)
			_ = uc.SetWriteBuffer(socketBuffer)
		}
		if sock, err := udp.New(pc, &w.fast); err == nil {
			w.sock, pc = sock, sock
		} else if i == 0 {
			s.log.Warn("receive fast path unavailable", "err", err)
		}
		w.mux = webrtc.NewICEUDPMux(logs.NewLogger("udpmux"), pc)
		s.workers = append(s.workers, w)
	}
	return nil
}

// place returns the worker of visit's room, placing the room on the
// least loaded worker when nobody holds it yet, and whether the caller
// now holds the placement (unplace releases it).
func (s *SFU) place(v ids.VisitID, pid ids.ParticipantID) (*worker, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.forceWorker != nil {
		if i, ok := s.forceWorker(v, pid); ok {
			return s.workers[i%len(s.workers)], false
		}
	}
	pl := s.placed[v]
	if pl == nil {
		best := s.workers[0]
		for _, w := range s.workers[1:] {
			if w.rooms < best.rooms {
				best = w
			}
		}
		best.rooms++
		pl = &placement{w: best}
		s.placed[v] = pl
	}
	pl.refs++
	return pl.w, true
}

// unplace releases a participant's hold on visit's placement.
func (s *SFU) unplace(v ids.VisitID, w *worker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pl := s.placed[v]
	if pl == nil || pl.w != w {
		return
	}
	if pl.refs--; pl.refs == 0 {
		pl.w.rooms--
		delete(s.placed, v)
	}
}

// Workers reports the forwarding workers' UDP addresses, in order.
func (s *SFU) Workers() []net.Addr {
	out := make([]net.Addr, 0, len(s.workers))
	for _, w := range s.workers {
		if addrs := w.mux.GetListenAddresses(); len(addrs) > 0 {
			out = append(out, addrs[0])
		}
	}
	return out
}
