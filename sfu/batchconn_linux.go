//go:build linux && (amd64 || arm64)

package sfu

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSize is how many datagrams one sendmmsg carries at most.
const batchSize = 64

// mmsghdr is struct mmsghdr (64-bit layout).
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
	_   [4]byte
}

// batch is one set of queued datagrams with their kernel headers, all
// preallocated: queueing copies and allocates nothing.
type batch struct {
	n    int
	hdrs [batchSize]mmsghdr
	iovs [batchSize]unix.Iovec
	sa4  [batchSize]unix.RawSockaddrInet4
	sa6  [batchSize]unix.RawSockaddrInet6
	bufs [batchSize][rtpBufSize + 64]byte
}

// batchConn is the ICE UDP mux's socket with batched writes: WriteToAddrPort
// copies the datagram into a batch, and a flusher sends the batch with one
// sendmmsg(2) after at most interval (or at once when it is full). Reads go
// straight to the socket. It trades up to interval of delay for one system
// call per batch instead of one per packet.
//
// Lifecycle: newBatchConn → used by the mux → Close (flushes, stops the
// flusher, closes the socket).
type batchConn struct {
	*net.UDPConn
	raw      syscall.RawConn
	v6       bool
	interval time.Duration

	mu   sync.Mutex // guards cur
	cur  *batch
	free chan *batch // the other batch, when not being sent
	kick chan struct{}
	done chan struct{}
	wg   sync.WaitGroup

	// send state for writeFn, used under sendMu only.
	sendMu  sync.Mutex
	sending *batch
	sent    int
	sendErr error
	writeFn func(fd uintptr) bool
}

func newBatchConn(c *net.UDPConn, interval time.Duration) (*batchConn, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	la, _ := c.LocalAddr().(*net.UDPAddr)
	b := &batchConn{
		UDPConn:  c,
		raw:      raw,
		v6:       la != nil && la.IP.To4() == nil,
		interval: interval,
		cur:      &batch{},
		free:     make(chan *batch, 1),
		kick:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	b.free <- &batch{}
	b.writeFn = b.sendSome
	b.wg.Add(1)
	go b.flusher()
	return b, nil
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter (reads unbatched).
func (b *batchConn) ReadFromAddrPort(p []byte) (int, netip.AddrPort, error) {
	return b.UDPConn.ReadFromUDPAddrPort(p)
}

// WriteTo implements net.PacketConn through the batch.
func (b *batchConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		return 0, errors.New("sfu: not a UDP address")
	}
	return b.WriteToAddrPort(p, ua.AddrPort())
}

// WriteToAddrPort implements ice.AddrPortReaderWriter: it queues a copy of
// p for addr.
func (b *batchConn) WriteToAddrPort(p []byte, addr netip.AddrPort) (int, error) {
	if len(p) > len(b.cur.bufs[0]) {
		return b.UDPConn.WriteToUDPAddrPort(p, addr)
	}
	b.mu.Lock()
	if b.cur.n == batchSize {
		full := b.cur
		b.cur = <-b.free // the flusher returns it after its send
		b.mu.Unlock()
		b.send(full)
		b.mu.Lock()
	}
	bt := b.cur
	i := bt.n
	if !b.fill(bt, i, p, addr) {
		b.mu.Unlock()
		return 0, errors.New("sfu: address family mismatch")
	}
	bt.n++
	first := bt.n == 1
	b.mu.Unlock()
	if first {
		select {
		case b.kick <- struct{}{}:
		default:
		}
	}
	return len(p), nil
}

// fill writes datagram i of bt: payload copy, address, headers.
func (b *batchConn) fill(bt *batch, i int, p []byte, addr netip.AddrPort) bool {
	n := copy(bt.bufs[i][:], p)
	bt.iovs[i].Base = &bt.bufs[i][0]
	bt.iovs[i].SetLen(n)
	h := &bt.hdrs[i].hdr
	*h = unix.Msghdr{Iov: &bt.iovs[i]}
	h.SetIovlen(1)
	ip := addr.Addr()
	if b.v6 {
		sa := &bt.sa6[i]
		*sa = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: ip.As16()}
		putPort(&sa.Port, addr.Port())
		h.Name = (*byte)(unsafe.Pointer(sa))
		h.Namelen = unix.SizeofSockaddrInet6
		return true
	}
	if !ip.Unmap().Is4() {
		return false
	}
	sa := &bt.sa4[i]
	*sa = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: ip.Unmap().As4()}
	putPort(&sa.Port, addr.Port())
	h.Name = (*byte)(unsafe.Pointer(sa))
	h.Namelen = unix.SizeofSockaddrInet4
	return true
}

// putPort stores port in network byte order.
func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}

// flusher sends the current batch interval after its first datagram.
func (b *batchConn) flusher() {
	defer b.wg.Done()
	for {
		select {
		case <-b.kick:
		case <-b.done:
			b.flush()
			return
		}
		time.Sleep(b.interval)
		b.flush()
	}
}

// flush sends what is queued now.
func (b *batchConn) flush() {
	b.mu.Lock()
	if b.cur.n == 0 {
		b.mu.Unlock()
		return
	}
	full := b.cur
	b.cur = <-b.free
	b.mu.Unlock()
	b.send(full)
}

// send writes bt with sendmmsg until done (a datagram the kernel refuses
// is dropped, as a lost packet), then returns bt to the free list.
func (b *batchConn) send(bt *batch) {
	b.sendMu.Lock()
	b.sending, b.sent, b.sendErr = bt, 0, nil
	_ = b.raw.Write(b.writeFn)
	b.sending = nil
	b.sendMu.Unlock()
	bt.n = 0
	b.free <- bt
}

// sendSome is the RawConn.Write callback: false asks to wait until the
// socket is writable.
func (b *batchConn) sendSome(fd uintptr) bool {
	bt := b.sending
	for b.sent < bt.n {
		r, _, errno := unix.Syscall6(unix.SYS_SENDMMSG, fd,
			uintptr(unsafe.Pointer(&bt.hdrs[b.sent])), uintptr(bt.n-b.sent), 0, 0, 0)
		switch {
		case errno == unix.EAGAIN:
			return false
		case errno == unix.EINTR:
			continue
		case errno != 0:
			b.sent++ // this datagram failed (e.g. an ICMP error); go on
		default:
			b.sent += int(r)
		}
	}
	return true
}

// Close flushes, stops the flusher and closes the socket.
func (b *batchConn) Close() error {
	select {
	case <-b.done:
	default:
		close(b.done)
	}
	b.wg.Wait()
	return b.UDPConn.Close()
}
