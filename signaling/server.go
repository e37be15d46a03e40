// Package signaling is the control plane: the REST API under /api/v1,
// health and metrics endpoints, and the minting of join tokens. It holds no
// media.
package signaling

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/token"
)

// Params configures a Server.
type Params struct {
	Pool   *pgxpool.Pool
	Audit  *audit.Log
	Minter *token.Minter // nil when this process does not run the api role
	// Node is the media node new visits are placed on (until the node
	// registry places them by load).
	Node      ids.NodeID
	PublicURL string // https origin for links
	Demo      bool   // serve the demo-link endpoint
	Logger    *slog.Logger
	Gatherer  prometheus.Gatherer
	// Ready reports extra readiness conditions (e.g. the SFU is open).
	Ready func(context.Context) error
	Now   func() time.Time
}

// Server is the control plane's HTTP surface. Lifecycle: New, then Register
// on a router; it owns no goroutines and needs no Close.
type Server struct {
	p   Params
	log *slog.Logger
}

// New returns a Server.
func New(p Params) *Server {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	return &Server{p: p, log: p.Logger.With("component", "signaling")}
}

// Register adds the control plane's routes to r.
func (s *Server) Register(r *gin.Engine) {
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	if s.p.Gatherer != nil {
		r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.p.Gatherer, promhttp.HandlerOpts{})))
	}
	api := r.Group("/api/v1")
	if s.p.Demo && s.p.Minter != nil {
		api.POST("/demo/redeem", s.redeemDemoLink)
	}
}

func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	if err := s.p.Pool.Ping(ctx); err != nil {
		s.log.Warn("not ready: database", "err", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "reason": "database"})
		return
	}
	if s.p.Ready != nil {
		if err := s.p.Ready(ctx); err != nil {
			s.log.Warn("not ready", "err", err)
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "reason": err.Error()})
			return
		}
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

func (s *Server) abort(c *gin.Context, err error) { httpx.Abort(c, s.log, err) }
