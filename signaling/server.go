// Package signaling is the control plane: the REST API under /api/v1,
// health and metrics endpoints, and the minting of join tokens. It holds no
// media.
package signaling

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/throttle"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/nodes"
	"github.com/openvisit/openvisit/internal/review"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/recording"
)

// Params configures a Server.
type Params struct {
	Pool   *pgxpool.Pool
	Store  *store.Store
	Audit  *audit.Log
	Sealer *keys.Sealer // seals TOTP secrets, keys CSRF tokens
	Auth   config.Auth
	// Origin is the https origin state-changing requests must come from.
	Origin string
	// Media ends live media (a disabled user, a removed patient, an ended
	// visit); nil when this process runs no media node.
	Media Media
	// Mailer sends invites by email; nil when no SMTP server is configured.
	Mailer Mailer
	// Alerts raises alerts that no rule can see (a failed audit write).
	Alerts AlertRaiser
	// TURN returns relay credentials for a participant, valid until expiry,
	// for the join grant's ice_servers; ok is false without a relay.
	TURN   func(participant string, expiry time.Time, host string) (url, user, pass string, ok bool)
	Minter *token.Minter // nil when this process does not run the api role
	// Nodes places visits on the least-loaded live media node and moves a
	// visit off a dead one at join (placement.go). Nil: every visit goes on
	// Node, the media node of this process.
	Nodes     *nodes.Registry
	Node      ids.NodeID
	PublicURL string // https origin for links
	Demo      bool   // serve the demo-link endpoint
	// Recordings decrypts stored recordings for retrieval and nudges the
	// recorder; nil when no object storage is configured (playback and
	// start answer 503).
	Recordings *recording.Library
	Logger     *slog.Logger
	Gatherer   prometheus.Gatherer
	// Ready reports extra readiness conditions (e.g. the SFU is open).
	Ready func(context.Context) error
	Now   func() time.Time
}

// Server is the control plane's HTTP surface. Lifecycle: New, then Register
// on a router; it owns no goroutines and needs no Close.
type Server struct {
	p      Params
	log    *slog.Logger
	policy access.Policy
	// ipLimiter bounds sign-in attempts per client address; unknownAccounts
	// throttles guesses at addresses with no account exactly like real
	// ones, so the answers do not tell them apart.
	ipLimiter       *throttle.Limiter
	unknownAccounts *throttleMemory
	hashSlots       chan struct{}
	events          *hub
}

// AlertRaiser raises an alert for admins.
type AlertRaiser interface {
	Raise(ctx context.Context, kind, severity, subject, detail string)
}

// Media is what the control plane asks of the media node in its process.
type Media interface {
	RemoveParticipant(v ids.VisitID, p ids.ParticipantID) bool
	RemoveSubject(subject string) int
	CloseRoom(v ids.VisitID) int
}

// New returns a Server.
func New(p Params) *Server {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Store == nil && p.Pool != nil {
		p.Store = store.New(p.Pool)
	}
	return &Server{
		p: p, log: p.Logger.With("component", "signaling"), policy: routePolicy(),
		ipLimiter:       throttle.NewLimiter(throttle.LimiterParams{Interval: 6 * time.Second, Burst: 20, MaxKeys: 100_000, Now: p.Now}),
		unknownAccounts: newThrottleMemory(100_000),
		hashSlots:       make(chan struct{}, 4),
		events:          newHub(),
	}
}

// Policy returns the route policy table (for tests that walk every route).
func (s *Server) Policy() access.Policy { return s.policy }

// Register adds the control plane's routes to r.
// It installs authentication and authorization first, so every route
// registered on r afterwards (the SFU's too) passes through the policy.
func (s *Server) Register(r *gin.Engine) {
	r.Use(s.authenticate, s.authorize)
	r.GET("/healthz", s.healthz)
	r.GET("/readyz", s.readyz)
	if s.p.Gatherer != nil {
		r.GET("/metrics", gin.WrapH(promhttp.HandlerFor(s.p.Gatherer, promhttp.HandlerOpts{})))
	}
	api := r.Group("/api/v1")
	if s.p.Demo && s.p.Minter != nil {
		api.POST("/demo/redeem", s.redeemDemoLink)
	}
	api.POST("/auth/login", s.login)
	api.GET("/auth/session", s.sessionInfo)
	api.POST("/auth/keepalive", s.sessionInfo)
	api.POST("/auth/logout", s.logout)
	api.POST("/auth/logout-all", s.logoutAll)
	api.POST("/setup/begin", s.setupBegin)
	api.POST("/setup/complete", s.setupComplete)

	admin := api.Group("/admin")
	admin.GET("/users", s.listUsers)
	admin.POST("/users", s.inviteUser)
	admin.POST("/users/:user_id/role", s.changeRole)
	admin.POST("/users/:user_id/disable", s.disableUser)
	admin.POST("/users/:user_id/enable", s.enableUser)
	admin.POST("/users/:user_id/unlock", s.unlockUser)
	admin.POST("/users/:user_id/reset-mfa", s.resetMFA)
	admin.GET("/alerts", s.listAlerts)
	admin.POST("/alerts/:alert_id/ack", s.ackAlert)
	admin.GET("/break-glass", s.listBreakGlass)
	admin.POST("/break-glass/:grant_id/review", s.reviewBreakGlass)
	admin.GET("/audit", s.searchAudit)
	admin.GET("/audit/export", s.exportAudit)
	admin.GET("/patients/:patient_id/access-report", s.patientAccessReport)
	admin.GET("/incidents", s.listIncidents)
	admin.POST("/incidents", s.createIncident)
	admin.GET("/incidents/:incident_id/scope", s.incidentScope)
	admin.POST("/incidents/:incident_id/status", s.setIncidentStatus)

	api.GET("/visits", s.listVisits)
	api.POST("/visits", s.createVisit)
	api.GET("/visits/:visit_id", s.getVisit)
	api.POST("/visits/:visit_id/join", s.joinVisit)
	api.POST("/visits/:visit_id/break-glass", s.breakGlass)
	api.POST("/visits/:visit_id/reschedule", s.rescheduleVisit)
	api.POST("/visits/:visit_id/cancel", s.cancelVisit)
	api.POST("/visits/:visit_id/no-show", s.noShowVisit)
	api.POST("/visits/:visit_id/end", s.endVisit)
	api.POST("/visits/:visit_id/leave", s.leaveVisit)
	api.POST("/visits/:visit_id/invite", s.createInvite)
	api.POST("/visits/:visit_id/invite/revoke", s.revokeInvite)
	api.GET("/visits/:visit_id/state", s.visitState)
	api.GET("/visits/:visit_id/events", s.visitEvents)
	api.POST("/visits/:visit_id/participants/:participant_id/admit", s.admitParticipant)
	api.POST("/visits/:visit_id/participants/:participant_id/turn-away", s.turnAwayParticipant)
	api.POST("/visits/:visit_id/participants/:participant_id/remove", s.removeParticipant)
	api.POST("/invites/redeem", s.redeemInvite)
	api.POST("/patients", s.createPatient)
	api.GET("/patients", s.findPatients)
	api.GET("/patients/:patient_id", s.getPatient)
	s.registerRecordings(api)
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

// abort answers err. The store's "not found" is the one mapping kept here:
// every handler answers it as 404 (as another visit's objects do).
func (s *Server) abort(c *gin.Context, err error) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = errNotFound
	case errors.Is(err, review.ErrSelfReview):
		err = httpx.E(httpx.KindForbidden, "self_review",
			"This is about your own account, so another admin must do it (in a clinic with one admin, the operator does it with the openvisit command on the server).")
	}
	httpx.Abort(c, s.log, err)
}
