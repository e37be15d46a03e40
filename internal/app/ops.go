package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// opsListener is the operational endpoint: Prometheus metrics on
// http.ops_addr, plain HTTP, never on the public listener (the Ingress
// exposes that one whole). Bound by New so that a taken port fails the
// start; served from Serve; stopped by Shutdown (or closed by close when
// Serve never ran).
type opsListener struct {
	ln      net.Listener
	srv     *http.Server
	serving sync.WaitGroup
	once    sync.Once // serve at most once, never after close
	closed  sync.Once
}

// openOps binds http.ops_addr (nothing when it is empty).
func (a *App) openOps(g prometheus.Gatherer) error {
	addr := a.cfg.HTTP.OpsAddr
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("app: http.ops_addr: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	a.ops = &opsListener{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: a.cfg.HTTP.ReadHeaderTimeout,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}}
	a.log.Info("operational listener (metrics)", "addr", ln.Addr().String())
	return nil
}

// MetricNames lists the names of every metric this process registered,
// whether or not it has a sample yet (the Grafana dashboard's test checks
// its queries against them).
func (a *App) MetricNames() []string {
	ch := make(chan *prometheus.Desc)
	go func() {
		a.metrics.Describe(ch)
		close(ch)
	}()
	var names []string
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			names = append(names, m[1])
		}
	}
	sort.Strings(names)
	return slices.Compact(names)
}

// fqName finds a metric's name in its descriptor's text (Desc has no
// accessor for it).
var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

// serveOps starts serving the operational listener (once).
func (a *App) serveOps() {
	o := a.ops
	if o == nil {
		return
	}
	o.once.Do(func() {
		o.serving.Add(1)
		go func() {
			defer o.serving.Done()
			if err := o.srv.Serve(o.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("operational listener stopped", "err", err)
			}
		}()
	})
}

// shutdownOps stops the operational listener gracefully.
func (a *App) shutdownOps(ctx context.Context) error {
	if a.ops == nil {
		return nil
	}
	err := a.ops.srv.Shutdown(ctx)
	a.closeOps()
	return err
}

// closeOps closes the operational listener at once and waits for its
// goroutine.
func (a *App) closeOps() {
	o := a.ops
	if o == nil {
		return
	}
	o.closed.Do(func() {
		o.once.Do(func() {}) // never serve after this
		_ = o.srv.Close()
		_ = o.ln.Close()
		o.serving.Wait()
	})
}

// OpsAddr is the operational listener's address, or nil without one.
func (a *App) OpsAddr() net.Addr {
	if a.ops == nil {
		return nil
	}
	return a.ops.ln.Addr()
}
