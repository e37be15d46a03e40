// Package config holds OpenVisit's configuration: defaults, then a YAML file,
// then OPENVISIT_* environment variables. Unknown keys in either source are
// errors, Validate runs before anything starts, and Redacted gives a copy
// that is safe to log.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Roles a process can run.
const (
	RoleAPI      = "api"
	RoleMedia    = "media"
	RoleRecorder = "recorder"
)

// Environments.
const (
	Development = "development"
	Production  = "production"
)

// Config is the whole configuration. YAML keys are the `yaml` tags; the
// environment variable for a key is OPENVISIT_ followed by the upper-cased
// path joined with underscores (database.url → OPENVISIT_DATABASE_URL).
type Config struct {
	// Environment is "production" (the default) or "development".
	Environment string `yaml:"environment"`
	// Demo mints one-time links to a demo visit at start. Development only.
	Demo bool `yaml:"demo"`
	// ListenAddr is the HTTPS listen address.
	ListenAddr string `yaml:"listen_addr"`
	// PublicURL is the origin browsers use (scheme, host, port); WebSocket
	// Origin checks and links are derived from it.
	PublicURL string `yaml:"public_url"`
	// Roles this process runs: any of api, media, recorder.
	Roles []string `yaml:"roles"`
	// DataDir keeps generated local state: the self-signed certificate and,
	// in development, the token signing key.
	DataDir string `yaml:"data_dir"`
	// AllowPlaintextTransport, when not empty, is the operator's reason why
	// the links to PostgreSQL and S3 may go without verified TLS (another
	// layer encrypts them, e.g. "sidecar encrypts: istio mTLS"). It is
	// logged as a warning at every start (transport.go).
	AllowPlaintextTransport string `yaml:"allow_plaintext_transport"`

	TLS       TLS       `yaml:"tls"`
	Database  Database  `yaml:"database"`
	S3        S3        `yaml:"s3"`
	Token     Token     `yaml:"token"`
	Auth      Auth      `yaml:"auth"`
	SMTP      SMTP      `yaml:"smtp"`
	Audit     Audit     `yaml:"audit"`
	Alerts    Alerts    `yaml:"alerts"`
	SFU       SFU       `yaml:"sfu"`
	Media     Media     `yaml:"media"`
	Cluster   Cluster   `yaml:"cluster"`
	Recording Recording `yaml:"recording"`
	Clinic    Clinic    `yaml:"clinic"`
	Log       Log       `yaml:"log"`
	HTTP      HTTP      `yaml:"http"`
}

// TLS configures the HTTPS listener. Without files, a self-signed
// certificate is generated in DataDir (development only).
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Database configures PostgreSQL.
type Database struct {
	URL      string `yaml:"url" secret:"true"`
	MaxConns int32  `yaml:"max_conns"`
	// RequireTLS refuses a database URL whose sslmode does not verify the
	// server. Always on in production (transport.go).
	RequireTLS bool `yaml:"require_tls"`
}

// S3 configures object storage.
type S3 struct {
	Endpoint  string `yaml:"endpoint"`
	AccessKey string `yaml:"access_key"`
	SecretKey string `yaml:"secret_key" secret:"true"`
	// UseTLS speaks HTTPS to the endpoint; required in production.
	UseTLS bool `yaml:"use_tls"`
	// CAFile (PEM) replaces the system roots for the endpoint's certificate:
	// a private CA.
	CAFile string `yaml:"ca_file"`
	Region string `yaml:"region"`
	Bucket string `yaml:"bucket"`
}

// Token configures join tokens.
type Token struct {
	// SigningKeyFile holds the Ed25519 private key (base64 of the 32-byte
	// seed). In development it is generated in DataDir when empty.
	SigningKeyFile string `yaml:"signing_key_file"`
	// PublicKey (base64) lets a media-only node verify tokens without the
	// private key.
	PublicKey string        `yaml:"public_key"`
	TTL       time.Duration `yaml:"ttl"`
}

// Auth configures sign-in and sessions.
type Auth struct {
	// SecretKeyFile holds the 32-byte server secret (base64) that seals TOTP
	// secrets and keys CSRF tokens. Generated in DataDir in development.
	SecretKeyFile string `yaml:"secret_key_file"`
	// Idle and Absolute end staff sessions; PatientIdle ends patients'.
	Idle        time.Duration `yaml:"idle_timeout"`
	PatientIdle time.Duration `yaml:"patient_idle_timeout"`
	Absolute    time.Duration `yaml:"absolute_timeout"`
	// BreakGlass is how long an emergency access grant lasts.
	BreakGlass time.Duration `yaml:"break_glass_duration"`
	// SetupLinkTTL is how long an invite or MFA-reset link stays usable.
	SetupLinkTTL time.Duration `yaml:"setup_link_ttl"`
}

// Audit configures the tamper-evident trail's signed checkpoints.
type Audit struct {
	// CheckpointKeyFile holds the Ed25519 seed (base64) that signs
	// checkpoints; development generates data_dir/audit-checkpoint.key.
	CheckpointKeyFile  string        `yaml:"checkpoint_key_file"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// AnchorBucket is the write-once (Object Lock) bucket the checkpoints
	// are anchored in, on the S3 endpoint configured under s3.
	AnchorBucket string `yaml:"anchor_bucket"`
	// AnchorRetention is how long each anchored checkpoint stays locked.
	AnchorRetention time.Duration `yaml:"anchor_retention"`
	// HeadAnchorInterval is how often the chain head is checked and, when
	// entries were written since the last look, signed and anchored in the
	// bucket: the longest a database superuser's rewrite of new rows can go
	// unanchored.
	HeadAnchorInterval time.Duration `yaml:"head_anchor_interval"`
}

// Alerts configures the alert rules and the webhook they are sent to.
type Alerts struct {
	// WebhookURL receives each alert as JSON, signed with HMAC-SHA256 of
	// the body under the secret in WebhookSecretFile (header
	// X-OpenVisit-Signature: sha256=<hex>). Empty: alerts stay in the UI.
	WebhookURL        string        `yaml:"webhook_url"`
	WebhookSecretFile string        `yaml:"webhook_secret_file"`
	EvalInterval      time.Duration `yaml:"eval_interval"`
	// Failed sign-ins per account and per address within SigninWindow.
	FailedSigninsAccount int           `yaml:"failed_signins_account"`
	FailedSigninsIP      int           `yaml:"failed_signins_ip"`
	SigninWindow         time.Duration `yaml:"signin_window"`
	// Recording accesses by one actor within RecordingWindow.
	RecordingAccesses int           `yaml:"recording_accesses"`
	RecordingWindow   time.Duration `yaml:"recording_window"`
}

// SMTP configures invite emails (optional: without a host, providers send
// links themselves).
type SMTP struct {
	Host     string `yaml:"host"`
	Port     int    `yaml:"port"`
	Username string `yaml:"username"`
	Password string `yaml:"password" secret:"true"`
	From     string `yaml:"from"`
}

// SFU configures the media role.
type SFU struct {
	NodeID string `yaml:"node_id"`
	// UDPAddr is the one UDP address all peers share (ICE UDP mux).
	UDPAddr string `yaml:"udp_addr"`
	// PublicIPs are advertised as host candidates behind 1:1 NAT.
	PublicIPs []string `yaml:"public_ips"`
}

// Cluster configures the media node registry: how often a media node
// heartbeats its load into Postgres, when the control plane counts a silent
// node as dead, and how long SIGTERM waits for a node's calls to end.
type Cluster struct {
	// NodeURL is the wss:// URL of this media node's /sfu/ws that browsers
	// and recorders dial; empty derives it from public_url.
	NodeURL string `yaml:"node_url"`
	// AllowedOrigins are the browser origins the media node's WebSocket
	// accepts; empty means the origin of public_url. A separate media node
	// lists the API's public origin here.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// MediaConnectSrc are CSP sources the API's pages may open WebSockets
	// to: the media nodes' origins when they are separate hosts, e.g.
	// wss://*.media.clinic.example. Empty: this origin only.
	MediaConnectSrc []string `yaml:"media_connect_src"`
	// HeartbeatInterval is how often a media node writes its load.
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	// DeadAfter: a node silent this long gets no new visits, and joins
	// move its visits to a live node.
	DeadAfter time.Duration `yaml:"dead_after"`
	// DrainTimeout bounds how long SIGTERM waits for the node's calls to
	// end (0: do not wait).
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// Media configures how participants reach the media role beyond the ICE
// UDP port (sfu.udp_addr): ICE over TCP, the embedded TURN relay, and
// loopback-only ICE for load tests on one machine.
type Media struct {
	// ICETCPAddr is the one TCP address for ICE-TCP, the fallback where
	// UDP is blocked; empty turns it off.
	ICETCPAddr string `yaml:"ice_tcp_addr"`
	// LoopbackOnly makes ICE use loopback addresses only (load tests and
	// CI on one machine). Development only.
	LoopbackOnly bool `yaml:"loopback_only"`
	// NoReceiveFastPath sends received media through Pion's own receive
	// goroutines instead of the SFU's fast path (for comparison and as a
	// way out should the fast path misbehave).
	NoReceiveFastPath bool `yaml:"no_receive_fast_path"`
	TURN              TURN `yaml:"turn"`
}

// TURN configures the embedded TURN relay (turnserver/).
type TURN struct {
	// Addr is the relay's UDP listen address; empty turns the relay off.
	Addr string `yaml:"addr"`
	// PublicIP is the address relayed candidates advertise; default:
	// Addr's host, which must then be a specific address.
	PublicIP string `yaml:"public_ip"`
	// SecretFile holds the credential secret (base64, 32 bytes); empty
	// means data_dir/turn-secret.key, generated in development.
	SecretFile string `yaml:"secret_file"`
	// AllowPrivatePeers lets the relay forward to loopback, link-local and
	// private addresses (tests, a clinic LAN); off, they are refused.
	AllowPrivatePeers bool `yaml:"allow_private_peers"`
}

// Recording configures the recorder role, retention and the recording keyring.
type Recording struct {
	// KeyringFile holds the key-encryption keys (JSON, mode 0600); empty
	// means data_dir/recording-keyring.json. Production: a secret mount.
	KeyringFile string `yaml:"keyring_file"`
	// Retention is how long a recording is kept before the deletion job
	// destroys its key and objects (unless on legal hold).
	Retention time.Duration `yaml:"retention"`
	// RetentionInterval is how often the deletion job runs.
	RetentionInterval time.Duration `yaml:"retention_interval"`
	// SpoolDir holds ciphertext parts waiting for object storage; empty
	// means data_dir/recording-spool. SpoolMaxBytes bounds it.
	SpoolDir      string `yaml:"spool_dir"`
	SpoolMaxBytes int64  `yaml:"spool_max_bytes"`
	// ChunkDuration rotates a recording to a new encrypted object (at the
	// next keyframe). It bounds what a crash can lose: a finished chunk is
	// whole, and of the chunk in flight recovery keeps what was stored.
	ChunkDuration time.Duration `yaml:"chunk_duration"`
	// PartSize is the multipart upload part size (S3 minimum 5 MiB); a
	// smaller part reaches storage sooner.
	PartSize int64 `yaml:"part_size"`
	// SegmentSize is the streaming AEAD ciphertext segment size.
	SegmentSize int `yaml:"segment_size"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`
	Format string `yaml:"format"`
}

// HTTP configures the HTTP server's limits, the proxies it believes and
// the operational listener.
type HTTP struct {
	MaxBodyBytes      int64         `yaml:"max_body_bytes"`
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	ShutdownTimeout   time.Duration `yaml:"shutdown_timeout"`
	// TrustedProxies are the CIDRs (or single addresses) of reverse proxies
	// whose X-Forwarded-For is believed. Empty: the client's address is
	// always the TCP peer's.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// OpsAddr is the plain-HTTP listener for /metrics, never the public
	// one; empty turns it off.
	OpsAddr string `yaml:"ops_addr"`
}

// Default returns the configuration a production process starts from.
func Default() Config {
	return Config{
		Environment: Production,
		ListenAddr:  ":8443",
		PublicURL:   "https://localhost:8443",
		Roles:       []string{RoleAPI, RoleMedia, RoleRecorder},
		DataDir:     "data",
		Database:    Database{MaxConns: 10},
		S3:          S3{Region: "us-east-1", Bucket: "openvisit-recordings"},
		Token:       Token{TTL: 2 * time.Minute},
		SMTP:        SMTP{Port: 587},
		Audit: Audit{CheckpointInterval: 5 * time.Minute, HeadAnchorInterval: 2 * time.Second, AnchorBucket: "openvisit-audit-anchors",
			AnchorRetention: 6 * 365 * 24 * time.Hour},
		Alerts: Alerts{EvalInterval: 30 * time.Second, FailedSigninsAccount: 10, FailedSigninsIP: 30,
			SigninWindow: 15 * time.Minute, RecordingAccesses: 25, RecordingWindow: time.Hour},
		Auth: Auth{
			Idle: 15 * time.Minute, PatientIdle: 30 * time.Minute, Absolute: 12 * time.Hour,
			BreakGlass: time.Hour, SetupLinkTTL: 72 * time.Hour,
		},
		SFU: SFU{NodeID: "local", UDPAddr: "0.0.0.0:8443"},
		Cluster: Cluster{HeartbeatInterval: 2 * time.Second, DeadAfter: 10 * time.Second,
			DrainTimeout: 30 * time.Minute},
		Recording: Recording{
			Retention: 6 * 365 * 24 * time.Hour, RetentionInterval: time.Hour,
			SpoolMaxBytes: 1 << 30, ChunkDuration: 30 * time.Second, PartSize: 5 << 20, SegmentSize: 1 << 20,
		},
		Log: Log{Level: "info", Format: "json"},
		HTTP: HTTP{
			MaxBodyBytes:      1 << 20,
			ReadHeaderTimeout: 10 * time.Second,
			ShutdownTimeout:   20 * time.Second,
			OpsAddr:           "127.0.0.1:9464",
		},
	}
}

// Has reports whether the process runs role.
func (c Config) Has(role string) bool { return slices.Contains(c.Roles, role) }

// Origin is the scheme://host[:port] browsers send in Origin headers.
func (c Config) Origin() string {
	u, err := url.Parse(c.PublicURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// NodeURL is the wss:// URL this media node registers for /sfu/ws.
func (c Config) NodeURL() string {
	if c.Cluster.NodeURL != "" {
		return c.Cluster.NodeURL
	}
	return strings.Replace(c.Origin(), "https://", "wss://", 1) + "/sfu/ws"
}

// MediaOrigins are the browser origins the media node's WebSocket accepts.
func (c Config) MediaOrigins() []string {
	if len(c.Cluster.AllowedOrigins) > 0 {
		return slices.Clone(c.Cluster.AllowedOrigins)
	}
	return []string{c.Origin()}
}

// Validate checks the configuration as a whole before anything starts.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	switch c.Environment {
	case Development, Production:
	default:
		bad("environment: must be %q or %q", Development, Production)
	}
	if c.Demo && c.Environment != Development {
		bad("demo: demo links are refused outside the development environment")
	}
	if len(c.Roles) == 0 {
		bad("roles: at least one of api, media, recorder")
	}
	seen := map[string]bool{}
	for _, r := range c.Roles {
		switch r {
		case RoleAPI, RoleMedia, RoleRecorder:
		default:
			bad("roles: unknown role %q", r)
		}
		if seen[r] {
			bad("roles: %q twice", r)
		}
		seen[r] = true
	}
	if c.Demo && !(c.Has(RoleAPI) && c.Has(RoleMedia)) {
		bad("demo: needs the api and media roles in one process")
	}
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		bad("listen_addr: %v", err)
	}
	if u, err := url.Parse(c.PublicURL); err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		bad("public_url: must be an https origin like https://clinic.example:8443")
	}
	if c.DataDir == "" {
		bad("data_dir: required")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls: cert_file and key_file go together")
	}
	if c.Environment == Production && c.TLS.CertFile == "" {
		bad("tls: production needs cert_file and key_file (self-signed certificates are for development)")
	}
	if c.Database.URL == "" {
		bad("database.url: required")
	} else if u, err := url.Parse(c.Database.URL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		bad("database.url: must be a postgres:// URL")
	}
	errs = append(errs, c.ValidateTransport())
	if c.Database.MaxConns < 1 || c.Database.MaxConns > 1000 {
		bad("database.max_conns: 1..1000")
	}
	if c.Token.TTL < 10*time.Second || c.Token.TTL > 10*time.Minute {
		bad("token.ttl: between 10s and 10m")
	}
	if c.Environment == Production && c.Has(RoleAPI) && c.Token.SigningKeyFile == "" {
		bad("token.signing_key_file: required in production")
	}
	if c.Environment == Production && c.Has(RoleAPI) && c.Auth.SecretKeyFile == "" {
		bad("auth.secret_key_file: required in production")
	}
	if c.Auth.Idle < time.Minute || c.Auth.Idle > time.Hour || c.Auth.PatientIdle < time.Minute || c.Auth.PatientIdle > 2*time.Hour {
		bad("auth: idle timeouts between 1m and 1h (patients 2h)")
	}
	if c.Auth.Absolute < c.Auth.Idle || c.Auth.Absolute > 24*time.Hour {
		bad("auth.absolute_timeout: at least the idle timeout, at most 24h")
	}
	if c.Auth.BreakGlass < time.Minute || c.Auth.BreakGlass > 4*time.Hour {
		bad("auth.break_glass_duration: between 1m and 4h")
	}
	if c.Auth.SetupLinkTTL < time.Minute || c.Auth.SetupLinkTTL > 30*24*time.Hour {
		bad("auth.setup_link_ttl: between 1m and 30 days")
	}
	if c.Environment == Production && c.Has(RoleAPI) {
		if c.Audit.CheckpointKeyFile == "" {
			bad("audit.checkpoint_key_file: required in production")
		}
		if c.S3.Endpoint == "" {
			bad("s3.endpoint: required in production (audit checkpoints are anchored in a write-once bucket)")
		}
	}
	if c.Audit.CheckpointInterval < 10*time.Second || c.Audit.CheckpointInterval > 24*time.Hour {
		bad("audit.checkpoint_interval: between 10s and 24h")
	}
	if c.Audit.AnchorBucket == "" || c.Audit.AnchorRetention < time.Minute {
		bad("audit: anchor_bucket and an anchor_retention of at least 1m are required")
	}
	if c.Alerts.WebhookURL != "" {
		if u, err := url.Parse(c.Alerts.WebhookURL); err != nil || (u.Scheme != "https" && !(c.Environment == Development && u.Scheme == "http")) || c.Alerts.WebhookSecretFile == "" {
			bad("alerts: webhook_url must be https (http in development) and needs webhook_secret_file")
		}
	}
	if c.Alerts.EvalInterval < time.Second || c.Alerts.FailedSigninsAccount < 1 || c.Alerts.FailedSigninsIP < 1 ||
		c.Alerts.RecordingAccesses < 1 || c.Alerts.SigninWindow < time.Minute || c.Alerts.RecordingWindow < time.Minute {
		bad("alerts: thresholds must be positive, windows at least 1m, eval_interval at least 1s")
	}
	if c.SMTP.Host != "" && (c.SMTP.Port < 1 || c.SMTP.Port > 65535 || !strings.Contains(c.SMTP.From, "@")) {
		bad("smtp: port 1..65535 and a from address are required with a host")
	}
	if c.Has(RoleMedia) {
		if c.SFU.NodeID == "" || len(c.SFU.NodeID) > 64 {
			bad("sfu.node_id: 1..64 characters")
		}
		if _, _, err := net.SplitHostPort(c.SFU.UDPAddr); err != nil {
			bad("sfu.udp_addr: %v", err)
		}
		for _, ip := range c.SFU.PublicIPs {
			if net.ParseIP(ip) == nil {
				bad("sfu.public_ips: %q is not an IP address", ip)
			}
		}
		if a := c.Media.ICETCPAddr; a != "" {
			if _, _, err := net.SplitHostPort(a); err != nil {
				bad("media.ice_tcp_addr: %v", err)
			}
		}
		if c.Media.LoopbackOnly && c.Environment != Development {
			bad("media.loopback_only: development only")
		}
		if t := c.Media.TURN; t.Addr != "" {
			if h, _, err := net.SplitHostPort(t.Addr); err != nil {
				bad("media.turn.addr: %v", err)
			} else if ip := net.ParseIP(h); t.PublicIP == "" && (ip == nil || ip.IsUnspecified()) {
				bad("media.turn.public_ip: required unless media.turn.addr names a specific IP")
			}
			if t.PublicIP != "" && net.ParseIP(t.PublicIP) == nil {
				bad("media.turn.public_ip: %q is not an IP address", t.PublicIP)
			}
		}
	}
	if cl := c.Cluster; cl.HeartbeatInterval < 100*time.Millisecond || cl.HeartbeatInterval > time.Minute {
		bad("cluster.heartbeat_interval: between 100ms and 1m")
	} else if cl.DeadAfter < 2*cl.HeartbeatInterval || cl.DeadAfter > 10*time.Minute {
		bad("cluster.dead_after: at least two heartbeat intervals, at most 10m")
	}
	if c.Cluster.DrainTimeout < 0 || c.Cluster.DrainTimeout > 24*time.Hour {
		bad("cluster.drain_timeout: between 0 and 24h")
	}
	if u := c.Cluster.NodeURL; u != "" {
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "wss" || pu.Host == "" {
			bad("cluster.node_url: must be a wss:// URL like wss://media-1.clinic.example/sfu/ws")
		}
	}
	for _, o := range c.Cluster.AllowedOrigins {
		if u, err := url.Parse(o); err != nil || u.Scheme != "https" || u.Host == "" || (u.Path != "" && u.Path != "/") {
			bad("cluster.allowed_origins: %q is not an https origin", o)
		}
	}
	for _, src := range c.Cluster.MediaConnectSrc {
		if !strings.HasPrefix(src, "wss://") || len(src) <= len("wss://") || strings.ContainsAny(src, " \t;,'\"") {
			bad("cluster.media_connect_src: %q is not a wss:// CSP source like wss://*.media.clinic.example", src)
		}
	}
	if c.Has(RoleRecorder) && c.Environment == Production && (c.S3.Endpoint == "" || c.S3.Bucket == "") {
		bad("s3.endpoint, s3.bucket: required by the recorder role in production")
	}
	if r := c.Recording; r.Retention < time.Hour || r.Retention > 100*365*24*time.Hour {
		bad("recording.retention: between 1h and 100 years")
	}
	if r := c.Recording; r.RetentionInterval < time.Second || r.RetentionInterval > 24*time.Hour {
		bad("recording.retention_interval: between 1s and 24h")
	}
	if r := c.Recording; r.PartSize < 5<<20 || r.PartSize > 512<<20 {
		bad("recording.part_size: 5 MiB..512 MiB")
	}
	if r := c.Recording; r.SpoolMaxBytes < 2*r.PartSize {
		bad("recording.spool_max_bytes: at least two parts")
	}
	if r := c.Recording; r.ChunkDuration < 10*time.Second || r.ChunkDuration > 24*time.Hour {
		bad("recording.chunk_duration: between 10s and 24h")
	}
	if r := c.Recording; r.SegmentSize < 4096 || r.SegmentSize > 64<<20 {
		bad("recording.segment_size: 4 KiB..64 MiB")
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level: debug, info, warn or error")
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format: json or text")
	}
	if c.HTTP.MaxBodyBytes < 1024 || c.HTTP.MaxBodyBytes > 64<<20 {
		bad("http.max_body_bytes: 1 KiB..64 MiB")
	}
	if c.HTTP.ReadHeaderTimeout <= 0 || c.HTTP.ShutdownTimeout <= 0 {
		bad("http: timeouts must be positive")
	}
	errs = append(errs, validateHTTPEdge(c)...)
	errs = append(errs, c.validateMediaReach()...)
	errs = append(errs, c.validateClinic()...)
	errs = append(errs, c.validateAudit()...)
	return errors.Join(errs...)
}

// validateHTTPEdge checks what decides who a client is and where the
// operational endpoints listen.
func validateHTTPEdge(c Config) []error {
	var errs []error
	if _, err := ParseTrustedProxies(c.HTTP.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("http.trusted_proxies: %w", err))
	}
	if a := c.HTTP.OpsAddr; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("http.ops_addr: %v", err))
		} else if a == c.ListenAddr {
			errs = append(errs, errors.New("http.ops_addr: must differ from listen_addr (metrics are not public)"))
		}
	}
	return errs
}

// ParseTrustedProxies parses http.trusted_proxies: CIDRs, or single
// addresses meaning one host. A prefix that trusts every address
// (0.0.0.0/0, ::/0) is refused: it would let any client name its own
// address.
func ParseTrustedProxies(list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		s = strings.TrimSpace(s)
		p, err := netip.ParsePrefix(s)
		if !strings.Contains(s, "/") {
			var a netip.Addr
			if a, err = netip.ParseAddr(s); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil || p.Addr().Zone() != "" {
			return nil, fmt.Errorf("%q is not a CIDR (10.0.0.0/8) or the address of a proxy", s)
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("%q trusts every address", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// Redacted returns a copy with secrets replaced, safe to log.
func (c Config) Redacted() Config {
	r := c
	r.Roles = slices.Clone(c.Roles)
	r.SFU.PublicIPs = slices.Clone(c.SFU.PublicIPs)
	r.Cluster.AllowedOrigins = slices.Clone(c.Cluster.AllowedOrigins)
	r.Cluster.MediaConnectSrc = slices.Clone(c.Cluster.MediaConnectSrc)
	r.HTTP.TrustedProxies = slices.Clone(c.HTTP.TrustedProxies)
	if r.Database.URL != "" {
		r.Database.URL = redactURL(r.Database.URL)
	}
	if r.S3.SecretKey != "" {
		r.S3.SecretKey = "REDACTED"
	}
	if r.SMTP.Password != "" {
		r.SMTP.Password = "REDACTED"
	}
	return r
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "REDACTED"
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "REDACTED")
		}
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "REDACTED")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// validateAudit checks the audit trail's anchoring.
func (c Config) validateAudit() []error {
	// Entries must reach the write-once bucket within 5 s of being written
	// (README, "Audit trail"); a tick plus one PUT must fit in that.
	if d := c.Audit.HeadAnchorInterval; d < 500*time.Millisecond || d > 4*time.Second {
		return []error{errors.New("audit.head_anchor_interval: between 500ms and 4s")}
	}
	return nil
}
