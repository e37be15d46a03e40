// Package signaling is the control plane: the REST API under /api/v1,
// health and readiness endpoints, and the minting of join tokens. It holds
// no media. (Metrics are served by internal/app on the operational
// listener, never here.)
package signaling

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/accounts"
	"github.com/openvisit/openvisit/internal/alerts"
	"github.com/openvisit/openvisit/internal/auth/throttle"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/fhir"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/nodes"
	"github.com/openvisit/openvisit/internal/review"
	"github.com/openvisit/openvisit/internal/scim"
	"github.com/openvisit/openvisit/internal/signin"
	"github.com/openvisit/openvisit/internal/sso"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/token"
)

// Params configures a Server.
type Params struct {
	// DB is the database: store functions, transactions, and the audit
	// log (DB.Audit) for entries written outside a change.
	DB     *store.DB
	Sealer *keys.Sealer // seals TOTP secrets and webhook secrets, keys CSRF tokens
	// WebhooksAllowHTTP lets webhook subscriptions use http:// URLs
	// (development only; production requires https).
	WebhooksAllowHTTP bool
	Auth              config.Auth
	// OIDC configures sign-in through the clinic's identity providers.
	OIDC config.OIDC
	// Origin is the https origin state-changing requests must come from.
	Origin string
	// Mailer sends invites by email; nil when no SMTP server is configured.
	Mailer Mailer
	// Outbox keeps mail instead of sending it and serves /api/v1/dev/outbox
	// (outbox.go). Development only: nil in production. It is the Mailer
	// when Mailer is nil.
	Outbox *Outbox
	// Alerts raises alerts that no rule can see (a failed audit write).
	Alerts AlertRaiser
	// TURNSecret is the TURN relays' credential secret (media.turn.
	// secret_file): with it, a join grant carries credentials for the relay
	// its media node registered. Nil: grants carry no relay.
	TURNSecret []byte
	Minter     *token.Minter // nil when this process does not run the api role
	// Nodes places visits on the least-loaded live media node and moves a
	// visit off a dead one at join (placement.go). Nil: every visit goes on
	// Node, the media node of this process.
	Nodes     *nodes.Registry
	Node      ids.NodeID
	PublicURL string // https origin for links
	Demo      bool   // serve the demo-link endpoint
	Help      Help   // the clinic's help line, in join grants (help.go)

	// Zone is the clinic's time zone, in which invite emails state the
	// visit's time (nil: UTC).
	Zone *time.Location

	// Recordings decrypts stored recordings for retrieval and nudges the
	// recorder (recording.Library); nil when no object storage is
	// configured (playback and start answer 503).
	Recordings RecordingStore
	Logger     *slog.Logger
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
	// ipLimiter bounds sign-in attempts per client address; the rest of
	// sign-in (per account, and for addresses with no account) is signin's.
	ipLimiter *throttle.Limiter
	signin    *signin.Service
	sso       *sso.Service
	events    *hub

	// inviteLimiter bounds invite checks and redemptions per address.
	inviteLimiter *throttle.Limiter
	// bodies is requestBodies(): which routes read a JSON body.
	bodies map[string]func() any
	// scim serves /scim/v2 (internal/scim); nil if it could not be built.
	scim http.Handler
	// fhir reads and writes FHIR R4 (internal/fhir); nil if it could not
	// be built (FHIR routes answer 503).
	fhir *fhir.Codec
	// clientLimiter bounds each machine client's FHIR calls, and token
	// requests per address.
	clientLimiter *throttle.Limiter
}

// RecordingStore is what the control plane needs of the recordings'
// encrypted storage (recording.Library): a chunk's plaintext for playback,
// and a nudge to the recorder when a recording switch changed. Integrity
// failures of Open match recordings.IsIntegrityFailure.
type RecordingStore interface {
	Open(ctx context.Context, rec store.Recording, ch store.Chunk) (io.ReadSeekCloser, error)
	Sync()
}

// AlertRaiser raises an alert for admins.
type AlertRaiser interface {
	Raise(ctx context.Context, kind alerts.Kind, subject, detail string)
}

// New returns a Server.
func New(p Params) *Server {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Mailer == nil && p.Outbox != nil {
		p.Mailer = p.Outbox
	}
	s := &Server{
		p: p, log: p.Logger.With("component", "signaling"),
		ipLimiter:     throttle.NewLimiter(throttle.LimiterParams{Interval: 6 * time.Second, Burst: 20, MaxKeys: 100_000, Now: p.Now}),
		inviteLimiter: newInviteLimiter(p.Now),
		clientLimiter: throttle.NewLimiter(throttle.LimiterParams{Interval: 100 * time.Millisecond, Burst: 100, MaxKeys: 10_000, Now: p.Now}),
		events:        newHub(),
		bodies:        requestBodies(),
	}
	s.signin = signin.New(signin.Params{Env: s.env(), Sealer: p.Sealer, Staff: s.staffPolicy(), Patient: s.patientPolicy(),
		PasswordAllowed: passwordPolicy(p.OIDC), Record: s.record, Passkeys: passkeyParams(p.PublicURL, p.Origin, "OpenVisit"),
		Logger: p.Logger})
	s.sso = sso.New(sso.Params{Env: s.env(), Issuers: p.OIDC.IssuersWithDefaults(), PublicURL: p.PublicURL,
		Sealer: p.Sealer, Signin: s.signin, Accounts: accounts.New(s.env()), Record: s.record, Logger: p.Logger})
	var err error
	if s.scim, err = scim.New(scim.Params{Env: s.env(), BaseURL: scim.BaseURL(p.PublicURL), Logger: p.Logger}); err != nil {
		s.log.Error("scim unavailable", "err", err)
	}
	if s.fhir, err = fhir.NewCodec(); err != nil {
		s.log.Error("fhir unavailable", "err", err)
	}
	s.policy = routePolicy(s.areas())
	return s
}

// SSO is the sign-in through identity providers; the app runs its sweep.
func (s *Server) SSO() *sso.Service { return s.sso }

// passwordPolicy says who may sign in with a local password: everyone, or
// (oidc.local_passwords: break_glass) only the listed admins.
func passwordPolicy(o config.OIDC) func(store.User) bool {
	if o.LocalPasswords != config.LocalPasswordsBreakGlass {
		return nil
	}
	allowed := map[string]bool{}
	for _, e := range o.BreakGlassAdmins {
		allowed[store.NormalizeEmail(e)] = true
	}
	return func(u store.User) bool { return u.Role == store.RoleAdmin && allowed[store.NormalizeEmail(u.Email)] }
}

// env is what the domain services stand on: this server's database and
// clock.
func (s *Server) env() store.Env { return store.Env{DB: s.p.DB, Clock: s.p.Now} }

// Policy returns every route's rule, built from the route tables (for
// tests that walk every route).
func (s *Server) Policy() access.Policy { return s.policy }

// Register adds the control plane's routes (the tables of routes.go) to
// r. It installs authentication, authorization and the input check first,
// so every route registered on r afterwards (the SFU's too) passes through
// them.
func (s *Server) Register(r *gin.Engine) {
	r.Use(s.authenticate, s.authorize, s.checkInput)
	for _, a := range s.areas() {
		if !a.serve {
			continue
		}
		for _, rt := range a.routes {
			if rt.handler != nil {
				r.Handle(rt.method, rt.path, rt.handler)
			}
		}
	}
}

// healthz says the process is up, and nothing else.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz says whether this process can serve (its database answers). The
// reason goes to the log only: the endpoint is public.
func (s *Server) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	err := s.p.DB.Pool().Ping(ctx)
	if err == nil && s.p.Ready != nil {
		err = s.p.Ready(ctx)
	}
	if err != nil {
		s.log.Warn("not ready", "err", err)
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable"})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

// abort answers err. The store's "not found" is the one mapping kept here:
// every handler answers it as 404 (as another visit's objects do).
// A request refused for what it carries (httpx.ErrBadInput) is audited
// first (auditRefusedInput).
func (s *Server) abort(c *gin.Context, err error) {
	err = domainError(err) // errors.go
	switch {
	case errors.Is(err, store.ErrNotFound):
		err = errNotFound
	case errors.Is(err, review.ErrSelfReview):
		err = httpx.E(httpx.KindForbidden, "self_review",
			"This is about your own account, so another admin must do it (in a clinic with one admin, the operator does it with the openvisit command on the server).")
	}
	if errors.Is(err, httpx.ErrBadInput) {
		s.auditRefusedInput(c, err)
	}
	if isMachine(c) {
		var e *httpx.Error
		if !errors.As(err, &e) || e.Kind == httpx.KindInternal {
			e = httpx.Wrap(httpx.KindInternal, "internal", "internal error", err)
		}
		s.abortMachine(c, e)
		return
	}
	if isSCIM(c) {
		var e *httpx.Error
		if !errors.As(err, &e) || e.Kind == httpx.KindInternal {
			e = httpx.Wrap(httpx.KindInternal, "internal", "internal error", err)
		}
		s.abortSCIM(c, e)
		return
	}
	httpx.Abort(c, s.log, err)
}
