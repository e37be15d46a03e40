package e2e

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// DBProxy is a TCP proxy between a server under test and PostgreSQL that
// the test can cut: a database outage exactly as the server sees one (new
// connections refused, connections in use dropped) without stopping the
// PostgreSQL that other tests share. Lifecycle: StartDBProxy → Cut /
// Restore any number of times; it closes when the test ends.
type DBProxy struct {
	t      testing.TB
	target string // host:port of PostgreSQL
	addr   string // the proxy's own host:port, kept across Cut/Restore

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// StartDBProxy starts a proxy to the database of dsn (a postgres:// URL)
// and returns it with the DSN that goes through it.
func StartDBProxy(t testing.TB, dsn string) (*DBProxy, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("e2e: db proxy: parse dsn: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("e2e: db proxy: %v", err)
	}
	p := &DBProxy{t: t, target: u.Host, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(p.Cut)
	u.Host = p.addr
	return p, u.String()
}

func (p *DBProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.pipe(c)
		}
	}()
}

// pipe copies bytes both ways between c and a new connection to the target.
func (p *DBProxy) pipe(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln == nil { // cut meanwhile
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	for _, pair := range [][2]net.Conn{{c, up}, {up, c}} {
		p.wg.Add(1)
		go func(dst, src net.Conn) {
			defer p.wg.Done()
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
		}(pair[0], pair[1])
	}
}

// Cut refuses new connections and drops every open one, then waits until
// nothing is copied any more.
func (p *DBProxy) Cut() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Restore accepts connections again, on the same address.
func (p *DBProxy) Restore() {
	p.t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("e2e: db proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}
