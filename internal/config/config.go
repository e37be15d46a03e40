// Package config holds OpenVisit's configuration: defaults, then a YAML file,
// then OPENVISIT_* environment variables. Unknown keys in either source are
// errors, Validate runs before anything starts, and Redacted gives a copy
// that is safe to log.
package config

import (
	"runtime"
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
	Reminders Reminders `yaml:"reminders"`
	Audit     Audit     `yaml:"audit"`
	Alerts    Alerts    `yaml:"alerts"`
	SFU       SFU       `yaml:"sfu"`
	Media     Media     `yaml:"media"`
	Cluster   Cluster   `yaml:"cluster"`
	Recording Recording `yaml:"recording"`
	Clinic    Clinic    `yaml:"clinic"`
	Backup    Backup    `yaml:"backup"`
	OIDC      OIDC      `yaml:"oidc"`
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
	// DormantDays: a staff account with no sign-in for this many days is
	// listed as dormant on the admin page.
	DormantDays int `yaml:"dormant_days"`
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
	// "<timestamp>.<body>" under the secret in WebhookSecretFile (headers
	// X-OpenVisit-Timestamp and X-OpenVisit-Signature: sha256=<hex>, as
	// internal/delivery signs every webhook). Empty: alerts stay in the UI.
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

// Reminders configures visit reminders (internal/reminders): an email
// with a fresh link at each offset before a scheduled visit (needs smtp,
// or the development outbox), and optionally an SMS through a webhook,
// signed with HMAC-SHA256 of the body under the secret in
// SMSWebhookSecretFile (header X-OpenVisit-Signature: sha256=<hex>).
type Reminders struct {
	Offsets              []time.Duration `yaml:"offsets"`  // default 24h, 1h; empty list: no reminders
	Interval             time.Duration   `yaml:"interval"` // how often due reminders are looked for
	SMSWebhookURL        string          `yaml:"sms_webhook_url"`
	SMSWebhookSecretFile string          `yaml:"sms_webhook_secret_file"`
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
	// UDPAddr is the first forwarding worker's UDP address (ICE UDP mux);
	// worker i listens on its port + i.
	UDPAddr string `yaml:"udp_addr"`
	// Workers is the number of forwarding workers (0: one per core).
	Workers int `yaml:"workers"`
	// PublicIPs are advertised as host candidates behind 1:1 NAT.
	PublicIPs []string `yaml:"public_ips"`
}

// WorkerCount is the number of forwarding workers Workers asks for.
func (s SFU) WorkerCount() int {
	if s.Workers == 0 {
		return runtime.NumCPU()
	}
	return s.Workers
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

// TURN configures the embedded TURN relay (sfu/turn).
type TURN struct {
	// Addr is the relay's UDP listen address; empty: no TURN over UDP.
	Addr string `yaml:"addr"`
	// TCPAddr is the relay's TURN-over-TCP listen address, for networks
	// that block UDP; empty: none.
	TCPAddr string `yaml:"tcp_addr"`
	// TLSAddr is the relay's TURN-over-TLS listen address (":443" on a
	// media node that has the port to itself), for hospital and corporate
	// networks that pass only TCP 443; it uses the HTTPS listener's
	// certificate (tls.cert_file or the generated one). Empty: none. With
	// none of addr, tcp_addr and tls_addr the relay is off.
	TLSAddr string `yaml:"tls_addr"`
	// PublicIP is the address relayed candidates advertise; default: the
	// host of the first listen address, which must then be a specific one.
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

// Backup configures `openvisit backup` and `openvisit restore`
// (internal/backup; deploy/README.md, "Backup and restore").
type Backup struct {
	// RecipientsFile lists the age recipients (X25519 public keys, one a
	// line, # comments) every backup archive is encrypted to.
	RecipientsFile string `yaml:"recipients_file"`
	// RecoveryRecipientsFile lists the operator's recovery keys that the
	// key escrow inside each backup (keyring and other key files) is sealed
	// to, separately: whoever holds the archive key alone reads no key.
	RecoveryRecipientsFile string `yaml:"recovery_recipients_file"`
	// PGBinDir holds pg_dump and pg_restore (the server's major version or
	// newer); empty: PATH, then /usr/lib/postgresql/15/bin.
	PGBinDir string `yaml:"pg_bin_dir"`
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
