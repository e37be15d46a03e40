package app

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/pion/webrtc/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/openvisit/openvisit/internal/alerts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/audit/anchor"
	"github.com/openvisit/openvisit/internal/certs"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/db"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/nodes"
	"github.com/openvisit/openvisit/internal/objstore"
	"github.com/openvisit/openvisit/internal/phi"
	"github.com/openvisit/openvisit/internal/reminders"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/internal/visits"
	"github.com/openvisit/openvisit/internal/webhooks"
	"github.com/openvisit/openvisit/recording"
	"github.com/openvisit/openvisit/sfu"
	"github.com/openvisit/openvisit/sfu/turn"
	"github.com/openvisit/openvisit/signaling"
	"github.com/openvisit/openvisit/web"
)

// Options are the wiring choices that are not configuration: what tests
// inject.
type Options struct {
	Logger *slog.Logger
	// ConfigureWebRTC adjusts the media node's Pion settings (loopback ICE
	// in tests).
	ConfigureWebRTC func(*webrtc.SettingEngine)
	// BeforeRecordingClaim runs before each recording claim of the
	// recorder (tests force two polls to interleave there).
	BeforeRecordingClaim func(ids.VisitID)
	// WebDir serves the web pages from disk instead of the embedded copy.
	WebDir string
	Now    func() time.Time
}

// App is one running OpenVisit process. Lifecycle: New → Serve → Shutdown;
// an App that was shut down cannot serve again.
type App struct {
	cfg config.Config
	log *slog.Logger
	db  *store.DB // owns the pool: closed in close
	// keyring wraps recordings' and PHI fields' data keys (nil on a
	// media-only node).
	keyring *keys.KeyringFile
	media   *sfu.SFU
	beat    *nodes.Heartbeat // the media node's registration, nil without media
	sig     *signaling.Server
	// stopRun ends the background loops; running waits for them.
	stopRun   func()
	running   sync.WaitGroup
	handler   http.Handler
	srv       *http.Server
	tlsConfig *tls.Config
	demoLinks []string
	recLib    *recording.Library
	recorder  *recording.Service
	turn      *turn.Server // nil unless the relay has a listen address
	turnKey   []byte
	ops       *opsListener // nil when http.ops_addr is empty
	metrics   *prometheus.Registry
}

// New builds the process described by cfg. It validates cfg, connects to
// PostgreSQL and migrates it, then builds each role in turn; on error
// everything opened so far is closed.
func New(ctx context.Context, cfg config.Config, opt Options) (_ *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	cfg.LogTransport(opt.Logger) // at every start: allow_plaintext_transport and its reason
	a := &App{cfg: cfg, log: opt.Logger}
	defer func() {
		// a, not the named result: every error return sets that to nil.
		if err != nil {
			a.close()
		}
	}()
	if err := a.openDB(ctx, opt.Now()); err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(context.Background())
	a.stopRun = stop
	if a.tlsConfig, err = a.loadTLS(opt.Now()); err != nil {
		return nil, err
	}
	if err := a.loadTURNSecret(); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(a.db.Audit().Collectors()...)
	a.metrics = reg
	minter, pub, err := a.loadTokenKeys(opt.Now)
	if err != nil {
		return nil, err
	}
	node := ids.NodeID(cfg.SFU.NodeID)
	registry := nodes.NewRegistry(a.db.Pool(), cfg.Cluster.DeadAfter)
	if cfg.Has(config.RoleMedia) {
		if err := a.startMedia(ctx, runCtx, opt, mediaDeps{pub: pub, node: node, registry: registry, metrics: reg}); err != nil {
			return nil, err
		}
	}
	// Recording: the library (retrieval) wherever object storage is
	// configured; the recorder service when this process has the role.
	if err := a.startRecording(ctx, minter, opt); err != nil {
		return nil, err
	}
	if a.recorder != nil {
		reg.MustRegister(recorderMetrics(a.recorder)...)
	}
	if err := a.startControlPlane(ctx, runCtx, opt.Now, controlDeps{minter: minter, registry: registry, node: node, metrics: reg, webDir: opt.WebDir}); err != nil {
		return nil, err
	}
	a.srv = &http.Server{
		Handler:           a.handler,
		TLSConfig:         a.tlsConfig,
		ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
	}
	return a, nil
}

// openDB connects to PostgreSQL and applies the migrations. A process that
// reads or writes PHI (api, recorder) opens the keyring that wraps the PHI
// data keys — the recordings' keyring (docs/DESIGN.md decision 13); a
// media-only node never reads PHI and has none.
func (a *App) openDB(ctx context.Context, now time.Time) error {
	pool, err := db.Open(ctx, a.cfg.Database.URL, a.cfg.Database.MaxConns)
	if err != nil {
		return err
	}
	var kr phi.KeyringSource
	if a.cfg.Has(config.RoleAPI) || a.cfg.Has(config.RoleRecorder) {
		if a.keyring, err = keys.OpenKeyringFile(KeyringPath(a.cfg), a.cfg.Environment == config.Development, now); err != nil {
			pool.Close()
			return err
		}
		kr = a.keyring
	}
	a.db = store.New(pool, kr)
	n, err := db.Migrate(ctx, pool)
	if err != nil {
		return err
	}
	a.log.Info("database ready", "migrations_applied", n)
	return nil
}

// loadTokenKeys loads the join-token signing key where this process mints
// tokens (the api role, or a configured or development key) and the public
// key media nodes verify them with.
func (a *App) loadTokenKeys(now func() time.Time) (*token.Minter, ed25519.PublicKey, error) {
	cfg := a.cfg
	var minter *token.Minter
	var pub ed25519.PublicKey
	if cfg.Has(config.RoleAPI) || cfg.Token.SigningKeyFile != "" || cfg.Environment == config.Development {
		key, err := token.LoadKey(a.signingKeyPath(), cfg.Environment == config.Development)
		if err != nil {
			return nil, nil, err
		}
		pub = key.Public().(ed25519.PublicKey)
		if minter, err = token.NewMinter(key, cfg.Token.TTL, now); err != nil {
			return nil, nil, err
		}
	}
	if cfg.Token.PublicKey != "" {
		var err error
		if pub, err = token.ParsePublicKey(cfg.Token.PublicKey); err != nil {
			return nil, nil, err
		}
	}
	return minter, pub, nil
}

// controlDeps is what the control plane needs from the rest of the process.
type controlDeps struct {
	minter   *token.Minter
	registry *nodes.Registry
	node     ids.NodeID
	metrics  *prometheus.Registry
	webDir   string
}

// startControlPlane builds the REST API and the router, the operational
// listener, and the api role's background loops; in demo mode it creates
// the demo visit.
func (a *App) startControlPlane(ctx, runCtx context.Context, now func() time.Time, d controlDeps) error {
	sealer, err := a.loadSealer()
	if err != nil {
		return err
	}
	mailer, outbox := a.mail()
	alertEngine, err := a.newAlertEngine(now)
	if err != nil {
		return err
	}
	cfg := a.cfg
	sp := signaling.Params{
		Alerts:            alertEngine,
		DB:                a.db,
		Sealer:            sealer,
		WebhooksAllowHTTP: cfg.Environment == config.Development,
		Auth:              cfg.Auth,
		OIDC:              cfg.OIDC,
		Origin:            cfg.Origin(),
		Mailer:            mailer,
		Outbox:            outbox,
		Minter:            d.minter,
		Nodes:             d.registry,
		Node:              d.node,
		PublicURL:         cfg.PublicURL,
		Demo:              cfg.Demo,
		Help:              signaling.Help{Text: cfg.Clinic.HelpText, Phone: cfg.Clinic.HelpPhone},
		Zone:              cfg.Clinic.Location(),
		TURNSecret:        a.turnKey,
		Logger:            a.log,
		Now:               now,
	}
	if a.recLib != nil { // a nil *Library must stay a nil interface
		sp.Recordings = a.recLib
	}
	sig := signaling.New(sp)
	a.sig = sig
	d.metrics.MustRegister(alertEngine.Collectors()...)
	routes := httpx.NewRouteMetrics()
	d.metrics.MustRegister(routes.Collectors()...)
	if a.handler, err = a.router(sig, d.webDir, outbox != nil, routes); err != nil {
		return err
	}
	if err := a.openOps(d.metrics); err != nil {
		return err
	}
	a.goRun(func() { sig.Run(runCtx) }) // visit change notices for the waiting room
	if cfg.Has(config.RoleAPI) {
		if err := a.startAuditLoops(ctx, runCtx, alertEngine); err != nil {
			return err
		}
		a.goRun(func() { a.expireVisits(runCtx, now) })
		a.goRun(func() { a.migratePHI(runCtx) })
		if err := a.startReminders(runCtx, mailer, now); err != nil {
			return err
		}
		a.startWebhooks(runCtx, sealer, now, d.metrics)
		if len(cfg.OIDC.Issuers) > 0 {
			// Deprovisioning: who the clinic's identity providers stopped vouching for.
			a.goRun(func() { sig.SSO().Run(runCtx, cfg.OIDC.SweepInterval) })
		}
	}
	if cfg.Demo {
		if a.demoLinks, err = sig.CreateDemoVisit(ctx); err != nil {
			return err
		}
	}
	return nil
}

// startWebhooks starts this API process's deliverer of visit events (one
// per process; the processes share the outbox through row locks).
func (a *App) startWebhooks(ctx context.Context, sealer *keys.Sealer, now func() time.Time, reg *prometheus.Registry) {
	d := webhooks.NewDeliverer(webhooks.DeliverParams{DB: a.db, Sealer: sealer, Now: now, Logger: a.log})
	reg.MustRegister(d.Collectors()...)
	a.goRun(func() { d.Run(ctx) })
}

// migratePHI seals the PHI that rows written before migration 0012 still
// hold in plaintext (store.MigratePHI), in the background: reads work
// meanwhile, and a process stopped halfway resumes at its next start.
func (a *App) migratePHI(ctx context.Context) {
	n, err := store.MigratePHI(ctx, a.db, store.MigrateBatch)
	switch {
	case err != nil && ctx.Err() == nil:
		a.log.Error("phi migration stopped; it resumes at the next start or with `openvisit phi migrate`", "sealed_rows", n, "err", err)
	case n > 0:
		a.log.Info("phi migration: plaintext PHI sealed", "rows", n)
	}
}

// loadSealer loads the secret that seals TOTP secrets and keys CSRF tokens.
func (a *App) loadSealer() (*keys.Sealer, error) {
	secret, err := keys.LoadSecret(KeyFilePaths(a.cfg)[KeyAuthSecret], a.cfg.Environment == config.Development)
	if err != nil {
		return nil, err
	}
	return keys.NewSealer(secret)
}

// mail is how invites leave: SMTP when configured, the development outbox
// in development, else nothing (nil, nil).
func (a *App) mail() (signaling.Mailer, *signaling.Outbox) {
	cfg := a.cfg
	switch {
	case cfg.SMTP.Host != "":
		return signaling.SMTPMailer{Host: cfg.SMTP.Host, Port: cfg.SMTP.Port, Username: cfg.SMTP.Username,
			Password: cfg.SMTP.Password, From: cfg.SMTP.From}, nil
	case cfg.Environment == config.Development && cfg.Has(config.RoleAPI):
		// Mail is kept for /outbox instead of sent; it holds PHI, which is
		// why this exists in development only.
		a.log.Warn("no smtp.host in development: mail is kept in the development outbox (/outbox), not sent")
		return nil, signaling.NewOutbox(a.db)
	}
	return nil, nil
}

func (a *App) signingKeyPath() string { return KeyFilePaths(a.cfg)[KeyTokenSigning] }

func (a *App) loadTLS(now time.Time) (*tls.Config, error) {
	var cert tls.Certificate
	var err error
	if a.cfg.TLS.CertFile != "" {
		cert, err = tls.LoadX509KeyPair(a.cfg.TLS.CertFile, a.cfg.TLS.KeyFile)
	} else {
		var hosts []string
		if u, perr := url.Parse(a.cfg.PublicURL); perr == nil {
			hosts = append(hosts, u.Hostname())
		}
		cert, err = certs.SelfSigned(a.cfg.DataDir, hosts, now)
	}
	if err != nil {
		return nil, fmt.Errorf("app: tls: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

func (a *App) router(sig *signaling.Server, webDir string, devPages bool, routes *httpx.RouteMetrics) (http.Handler, error) {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// The client is the TCP peer unless the peer is a configured proxy:
	// audit entries, sessions, sign-in throttling and alerts all read it.
	trusted, err := config.ParseTrustedProxies(a.cfg.HTTP.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("app: http.trusted_proxies: %w", err)
	}
	if err := httpx.TrustProxies(r, trusted); err != nil {
		return nil, fmt.Errorf("app: http.trusted_proxies: %w", err)
	}
	r.Use(routes.Middleware(), httpx.RequestIDs(), httpx.Recover(a.log), httpx.SecurityHeaders(a.cfg.Cluster.MediaConnectSrc...), httpx.AccessLog(a.log),
		httpx.LimitBody(a.cfg.HTTP.MaxBodyBytes))
	sig.Register(r)
	if a.media != nil {
		r.GET("/sfu/ws", gin.WrapH(a.media))
	}
	pages := web.Handler(webDir)
	if devPages {
		pages = web.DevHandler(webDir) // the development outbox's page
	}
	r.NoRoute(func(c *gin.Context) {
		if strings.HasPrefix(c.Request.URL.Path, "/api/") {
			httpx.Abort(c, a.log, httpx.E(httpx.KindNotFound, "not_found", "no such endpoint"))
			return
		}
		pages.ServeHTTP(c.Writer, c.Request)
	})
	r.NoMethod(func(c *gin.Context) {
		httpx.Abort(c, a.log, httpx.E(httpx.KindInvalid, "method_not_allowed", "method not allowed"))
	})
	return r, nil
}

func (a *App) goRun(fn func()) {
	a.running.Add(1)
	go func() {
		defer a.running.Done()
		fn()
	}()
}

// startReminders runs the visit reminders (internal/reminders) when mail
// can leave (SMTP or the development outbox) and offsets are configured.
func (a *App) startReminders(ctx context.Context, mailer signaling.Mailer, now func() time.Time) error {
	c := a.cfg.Reminders
	if mailer == nil || len(c.Offsets) == 0 {
		return nil
	}
	p := reminders.Params{Env: store.Env{DB: a.db, Clock: now}, Offsets: c.Offsets, Log: a.log,
		Mail: signaling.ReminderMailer{Mailer: mailer, PublicURL: a.cfg.PublicURL, Zone: a.cfg.Clinic.Location(), Now: now}}
	if c.SMSWebhookURL != "" {
		secret, err := keys.LoadSecret(c.SMSWebhookSecretFile, false)
		if err != nil {
			return fmt.Errorf("app: sms webhook secret: %w", err)
		}
		p.SMS = reminders.WebhookSender{URL: c.SMSWebhookURL, Secret: secret, Now: now}
	}
	svc := reminders.New(p)
	a.goRun(func() { svc.Run(ctx, c.Interval) })
	return nil
}

func (a *App) newAlertEngine(now func() time.Time) (*alerts.Engine, error) {
	c := a.cfg.Alerts
	var secret []byte
	if c.WebhookURL != "" {
		var err error
		if secret, err = keys.LoadSecret(c.WebhookSecretFile, false); err != nil {
			return nil, fmt.Errorf("app: alerts webhook secret: %w", err)
		}
	}
	return alerts.New(alerts.Params{
		Pool: a.db.Pool(), Every: c.EvalInterval, Logger: a.log, Now: now,
		WebhookURL: c.WebhookURL, WebhookSecret: secret,
		Rules: alerts.Rules{FailedSigninsAccount: c.FailedSigninsAccount, FailedSigninsIP: c.FailedSigninsIP,
			SigninWindow: c.SigninWindow, RecordingAccesses: c.RecordingAccesses, RecordingWindow: c.RecordingWindow},
	}), nil
}

// CheckpointKey loads the audit checkpoint signing key (generated in
// development).
func CheckpointKey(cfg config.Config) (ed25519.PrivateKey, error) {
	seed, err := keys.LoadSecret(KeyFilePaths(cfg)[KeyAuditCheckpoint], cfg.Environment == config.Development)
	if err != nil {
		return nil, fmt.Errorf("app: audit checkpoint key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// startAuditLoops starts the checkpointer (signed chain heads in Postgres
// and, with S3 configured, the write-once bucket) and the alert rules.
func (a *App) startAuditLoops(ctx, runCtx context.Context, engine *alerts.Engine) error {
	key, err := CheckpointKey(a.cfg)
	if err != nil {
		return err
	}
	var writer audit.AnchorWriter
	if a.cfg.S3.Endpoint != "" {
		client, err := objstore.New(a.cfg.S3)
		if err != nil {
			return err
		}
		b, err := anchor.New(anchor.Params{Client: client, Bucket: a.cfg.Audit.AnchorBucket, Retention: a.cfg.Audit.AnchorRetention})
		if err != nil {
			return err
		}
		if err := b.Ensure(ctx); err != nil {
			return fmt.Errorf("app: audit anchor bucket: %w", err)
		}
		writer = b
	} else {
		a.log.Warn("no s3.endpoint: audit checkpoints are kept in Postgres only (development)")
	}
	cp, err := audit.NewCheckpointer(audit.CheckpointerParams{
		Pool: a.db.Pool(), Key: key, Anchor: writer, Interval: a.cfg.Audit.CheckpointInterval,
		HeadInterval: a.cfg.Audit.HeadAnchorInterval, Logger: a.log,
		OnFailure: func(err error) {
			detail := "audit checkpoint not written"
			if errors.Is(err, audit.ErrTampered) {
				detail = "audit chain disagrees with its anchors: nothing is signed until it is resolved (openvisit audit verify)"
			}
			engine.Raise(context.Background(), alerts.KindCheckpointFailed, "", detail)
		},
	})
	if err != nil {
		return err
	}
	a.goRun(func() { cp.Run(runCtx) })
	a.goRun(func() { engine.Run(runCtx) })
	return nil
}

// expireVisits ends, every minute, the visits nobody ended (visits.ExpireDue):
// their calls, invites and recordings end with them.
func (a *App) expireVisits(ctx context.Context, now func() time.Time) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if n, err := visits.ExpireDue(ctx, a.db, now()); err != nil && ctx.Err() == nil {
			a.log.Warn("visit expiry", "err", err)
		} else if n > 0 {
			a.log.Info("visits expired", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// DB is the process's database handle (its PHI cipher included), for the
// test harnesses that set up data as the server would write it.
func (a *App) DB() *store.DB { return a.db }

// Signaling returns the control plane (tests walk its policy table).
func (a *App) Signaling() *signaling.Server { return a.sig }

// Media returns the media node, or nil when this process runs none.
func (a *App) Media() *sfu.SFU { return a.media }

// Handler returns the HTTP handler (for tests that bring their own server).
func (a *App) Handler() http.Handler { return a.handler }

// DemoLinks returns the one-time links to the demo visit (demo mode only).
func (a *App) DemoLinks() []string { return append([]string(nil), a.demoLinks...) }

// Serve serves HTTPS on ln until Shutdown. It returns nil after a clean
// shutdown.
func (a *App) Serve(ln net.Listener) error {
	a.serveOps()
	err := a.srv.Serve(tls.NewListener(ln, a.tlsConfig))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting requests, closes every call and waits (up to
// ctx) for requests in flight, then closes the pool.
func (a *App) Shutdown(ctx context.Context) error {
	var errs []error
	if a.srv != nil {
		// WebSockets are hijacked, so Shutdown does not wait for them: the
		// SFU closes them itself.
		errs = append(errs, a.srv.Shutdown(ctx))
	}
	errs = append(errs, a.shutdownOps(ctx))
	a.close()
	return errors.Join(errs...)
}

func (a *App) close() {
	a.closeOps()
	if a.stopRun != nil {
		a.stopRun()
		a.running.Wait()
		a.stopRun = nil
	}
	if a.recorder != nil {
		_ = a.recorder.Close(a.cfg.HTTP.ShutdownTimeout)
		a.recorder = nil
	}
	if a.beat != nil {
		a.beat.Stop()
		a.beat = nil
	}
	if a.media != nil {
		if err := a.media.Close(); err != nil {
			a.log.Warn("sfu close", "err", err)
		}
		a.media = nil
	}
	if a.turn != nil {
		_ = a.turn.Close()
		a.turn = nil
	}
	if a.db != nil {
		a.db.Pool().Close()
		a.db = nil
	}
}
