package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// problems collects what one section's validator refuses.
type problems []error

func (p *problems) add(format string, a ...any) { *p = append(*p, fmt.Errorf(format, a...)) }

// Validate checks the configuration as a whole before anything starts. Each
// section has its own validator; all of them run, so that an operator reads
// every problem at once (one per line), in this order.
func (c Config) Validate() error {
	var errs []error
	for _, section := range []func() []error{
		c.validateProcess, c.validateListener, c.validateDatabase, c.validateToken, c.validateAuth,
		c.validateCheckpoints, c.validateAlerts, c.validateReminders, c.validateSMTP, c.validateSFU, c.validateCluster,
		c.validateRecording, c.validateLog, c.validateHTTP, c.validateMediaReach, c.validateClinic,
		c.validateAudit, c.validateOIDC,
	} {
		errs = append(errs, section()...)
	}
	return errors.Join(errs...)
}

// validateProcess checks the environment, the roles and demo mode.
func (c Config) validateProcess() []error {
	var p problems
	switch c.Environment {
	case Development, Production:
	default:
		p.add("environment: must be %q or %q", Development, Production)
	}
	if c.Demo && c.Environment != Development {
		p.add("demo: demo links are refused outside the development environment")
	}
	if len(c.Roles) == 0 {
		p.add("roles: at least one of api, media, recorder")
	}
	seen := map[string]bool{}
	for _, r := range c.Roles {
		switch r {
		case RoleAPI, RoleMedia, RoleRecorder:
		default:
			p.add("roles: unknown role %q", r)
		}
		if seen[r] {
			p.add("roles: %q twice", r)
		}
		seen[r] = true
	}
	if c.Demo && !(c.Has(RoleAPI) && c.Has(RoleMedia)) {
		p.add("demo: needs the api and media roles in one process")
	}
	return p
}

// validateListener checks the HTTPS listener, the public origin, the data
// directory and the certificate.
func (c Config) validateListener() []error {
	var p problems
	if _, _, err := net.SplitHostPort(c.ListenAddr); err != nil {
		p.add("listen_addr: %v", err)
	}
	if !isHTTPSOrigin(c.PublicURL) {
		p.add("public_url: must be an https origin like https://clinic.example:8443")
	}
	if c.DataDir == "" {
		p.add("data_dir: required")
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		p.add("tls: cert_file and key_file go together")
	}
	if c.Environment == Production && c.TLS.CertFile == "" {
		p.add("tls: production needs cert_file and key_file (self-signed certificates are for development)")
	}
	return p
}

// isHTTPSOrigin reports whether s is scheme https, a host, and no path.
func isHTTPSOrigin(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme == "https" && u.Host != "" && (u.Path == "" || u.Path == "/")
}

// validateDatabase checks PostgreSQL's URL, the transport rule (which
// covers S3 too: transport.go) and the pool size.
func (c Config) validateDatabase() []error {
	var p problems
	if c.Database.URL == "" {
		p.add("database.url: required")
	} else if u, err := url.Parse(c.Database.URL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		p.add("database.url: must be a postgres:// URL")
	}
	if err := c.ValidateTransport(); err != nil {
		p = append(p, err)
	}
	if c.Database.MaxConns < 1 || c.Database.MaxConns > 1000 {
		p.add("database.max_conns: 1..1000")
	}
	return p
}

// validateToken checks join tokens.
func (c Config) validateToken() []error {
	var p problems
	if c.Token.TTL < 10*time.Second || c.Token.TTL > 10*time.Minute {
		p.add("token.ttl: between 10s and 10m")
	}
	if c.Environment == Production && c.Has(RoleAPI) && c.Token.SigningKeyFile == "" {
		p.add("token.signing_key_file: required in production")
	}
	return p
}

// validateAuth checks sign-in secrets and session lengths.
func (c Config) validateAuth() []error {
	var p problems
	a := c.Auth
	if c.Environment == Production && c.Has(RoleAPI) && a.SecretKeyFile == "" {
		p.add("auth.secret_key_file: required in production")
	}
	if a.Idle < time.Minute || a.Idle > time.Hour || a.PatientIdle < time.Minute || a.PatientIdle > 2*time.Hour {
		p.add("auth: idle timeouts between 1m and 1h (patients 2h)")
	}
	if a.Absolute < a.Idle || a.Absolute > 24*time.Hour {
		p.add("auth.absolute_timeout: at least the idle timeout, at most 24h")
	}
	if a.BreakGlass < time.Minute || a.BreakGlass > 4*time.Hour {
		p.add("auth.break_glass_duration: between 1m and 4h")
	}
	if a.SetupLinkTTL < time.Minute || a.SetupLinkTTL > 30*24*time.Hour {
		p.add("auth.setup_link_ttl: between 1m and 30 days")
	}
	if a.DormantDays < 1 || a.DormantDays > 3650 {
		p.add("auth.dormant_days: between 1 and 3650")
	}
	return p
}

// validateCheckpoints checks the audit trail's signed checkpoints and the
// write-once bucket they are anchored in.
func (c Config) validateCheckpoints() []error {
	var p problems
	if c.Environment == Production && c.Has(RoleAPI) {
		if c.Audit.CheckpointKeyFile == "" {
			p.add("audit.checkpoint_key_file: required in production")
		}
		if c.S3.Endpoint == "" {
			p.add("s3.endpoint: required in production (audit checkpoints are anchored in a write-once bucket)")
		}
	}
	if c.Audit.CheckpointInterval < 10*time.Second || c.Audit.CheckpointInterval > 24*time.Hour {
		p.add("audit.checkpoint_interval: between 10s and 24h")
	}
	if c.Audit.AnchorBucket == "" || c.Audit.AnchorRetention < time.Minute {
		p.add("audit: anchor_bucket and an anchor_retention of at least 1m are required")
	}
	return p
}

// validateAudit checks how soon entries are anchored.
func (c Config) validateAudit() []error {
	// Entries must reach the write-once bucket within 5 s of being written
	// (README, "Audit trail"); a tick plus one PUT must fit in that.
	if d := c.Audit.HeadAnchorInterval; d < 500*time.Millisecond || d > 4*time.Second {
		return []error{errors.New("audit.head_anchor_interval: between 500ms and 4s")}
	}
	return nil
}

// validateAlerts checks the alert rules and their webhook.
func (c Config) validateAlerts() []error {
	var p problems
	a := c.Alerts
	if a.WebhookURL != "" {
		if u, err := url.Parse(a.WebhookURL); err != nil || (u.Scheme != "https" && !(c.Environment == Development && u.Scheme == "http")) || a.WebhookSecretFile == "" {
			p.add("alerts: webhook_url must be https (http in development) and needs webhook_secret_file")
		}
	}
	if a.EvalInterval < time.Second || a.FailedSigninsAccount < 1 || a.FailedSigninsIP < 1 ||
		a.RecordingAccesses < 1 || a.SigninWindow < time.Minute || a.RecordingWindow < time.Minute {
		p.add("alerts: thresholds must be positive, windows at least 1m, eval_interval at least 1s")
	}
	return p
}

// validateReminders checks the reminder offsets and the SMS webhook (it
// carries phone numbers: https only, http to loopback in tests).
func (c Config) validateReminders() []error {
	var p problems
	r := c.Reminders
	for _, o := range r.Offsets {
		if o < time.Minute || o > 30*24*time.Hour {
			p.add("reminders: each offset must be between 1m and 720h")
		}
	}
	if r.Interval < time.Second {
		p.add("reminders: interval must be at least 1s")
	}
	if r.SMSWebhookURL != "" {
		if u, err := url.Parse(r.SMSWebhookURL); err != nil || u.Scheme != "https" || r.SMSWebhookSecretFile == "" {
			p.add("reminders: sms_webhook_url must be https and needs sms_webhook_secret_file")
		}
	}
	return p
}

// validateSMTP checks the mail server, when there is one.
func (c Config) validateSMTP() []error {
	var p problems
	if c.SMTP.Host != "" && (c.SMTP.Port < 1 || c.SMTP.Port > 65535 || !strings.Contains(c.SMTP.From, "@")) {
		p.add("smtp: port 1..65535 and a from address are required with a host")
	}
	return p
}

// validateSFU checks the media role's addresses (their reach is
// validateMediaReach's concern).
func (c Config) validateSFU() []error {
	if !c.Has(RoleMedia) {
		return nil
	}
	var p problems
	if c.SFU.NodeID == "" || len(c.SFU.NodeID) > 64 {
		p.add("sfu.node_id: 1..64 characters")
	}
	if _, port, err := net.SplitHostPort(c.SFU.UDPAddr); err != nil {
		p.add("sfu.udp_addr: %v", err)
	} else if n, err := strconv.Atoi(port); err == nil && n > 0 && n+c.SFU.WorkerCount()-1 > 65535 {
		p.add("sfu.udp_addr: port %d plus one per worker passes 65535", n)
	}
	if c.SFU.Workers < 0 || c.SFU.Workers > 1024 {
		p.add("sfu.workers: %d not in 0..1024 (0: one per core)", c.SFU.Workers)
	}
	for _, ip := range c.SFU.PublicIPs {
		if net.ParseIP(ip) == nil {
			p.add("sfu.public_ips: %q is not an IP address", ip)
		}
	}
	if a := c.Media.ICETCPAddr; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			p.add("media.ice_tcp_addr: %v", err)
		}
	}
	if c.Media.LoopbackOnly && c.Environment != Development {
		p.add("media.loopback_only: development only")
	}
	if t := c.Media.TURN; t.On() {
		for _, f := range []struct{ key, addr string }{{"addr", t.Addr}, {"tcp_addr", t.TCPAddr}, {"tls_addr", t.TLSAddr}} {
			if f.addr == "" {
				continue
			}
			if _, _, err := net.SplitHostPort(f.addr); err != nil {
				p.add("media.turn.%s: %v", f.key, err)
			}
		}
		if ip := net.ParseIP(t.firstHost()); t.PublicIP == "" && (ip == nil || ip.IsUnspecified()) {
			p.add("media.turn.public_ip: required unless the relay's first listen address names a specific IP")
		}
		if t.PublicIP != "" && net.ParseIP(t.PublicIP) == nil {
			p.add("media.turn.public_ip: %q is not an IP address", t.PublicIP)
		}
	}
	return p
}

// validateCluster checks the media node registry and the origins a
// separate media node serves.
func (c Config) validateCluster() []error {
	var p problems
	cl := c.Cluster
	if cl.HeartbeatInterval < 100*time.Millisecond || cl.HeartbeatInterval > time.Minute {
		p.add("cluster.heartbeat_interval: between 100ms and 1m")
	} else if cl.DeadAfter < 2*cl.HeartbeatInterval || cl.DeadAfter > 10*time.Minute {
		p.add("cluster.dead_after: at least two heartbeat intervals, at most 10m")
	}
	if cl.DrainTimeout < 0 || cl.DrainTimeout > 24*time.Hour {
		p.add("cluster.drain_timeout: between 0 and 24h")
	}
	if u := cl.NodeURL; u != "" {
		if pu, err := url.Parse(u); err != nil || pu.Scheme != "wss" || pu.Host == "" {
			p.add("cluster.node_url: must be a wss:// URL like wss://media-1.clinic.example/sfu/ws")
		}
	}
	for _, o := range cl.AllowedOrigins {
		if !isHTTPSOrigin(o) {
			p.add("cluster.allowed_origins: %q is not an https origin", o)
		}
	}
	for _, src := range cl.MediaConnectSrc {
		if !strings.HasPrefix(src, "wss://") || len(src) <= len("wss://") || strings.ContainsAny(src, " \t;,'\"") {
			p.add("cluster.media_connect_src: %q is not a wss:// CSP source like wss://*.media.clinic.example", src)
		}
	}
	return p
}

// validateRecording checks the recorder's storage, retention and sizes.
func (c Config) validateRecording() []error {
	var p problems
	r := c.Recording
	if c.Has(RoleRecorder) && c.Environment == Production && (c.S3.Endpoint == "" || c.S3.Bucket == "") {
		p.add("s3.endpoint, s3.bucket: required by the recorder role in production")
	}
	if r.Retention < time.Hour || r.Retention > 100*365*24*time.Hour {
		p.add("recording.retention: between 1h and 100 years")
	}
	if r.RetentionInterval < time.Second || r.RetentionInterval > 24*time.Hour {
		p.add("recording.retention_interval: between 1s and 24h")
	}
	if r.PartSize < 5<<20 || r.PartSize > 512<<20 {
		p.add("recording.part_size: 5 MiB..512 MiB")
	}
	if r.SpoolMaxBytes < 2*r.PartSize {
		p.add("recording.spool_max_bytes: at least two parts")
	}
	if r.ChunkDuration < 10*time.Second || r.ChunkDuration > 24*time.Hour {
		p.add("recording.chunk_duration: between 10s and 24h")
	}
	if r.SegmentSize < 4096 || r.SegmentSize > 64<<20 {
		p.add("recording.segment_size: 4 KiB..64 MiB")
	}
	return p
}

// validateLog checks the log level and format.
func (c Config) validateLog() []error {
	var p problems
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		p.add("log.level: debug, info, warn or error")
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		p.add("log.format: json or text")
	}
	return p
}

// validateHTTP checks the HTTP server's limits, the proxies it believes
// (they decide who a client is) and the operational listener.
func (c Config) validateHTTP() []error {
	var p problems
	if c.HTTP.MaxBodyBytes < 1024 || c.HTTP.MaxBodyBytes > 64<<20 {
		p.add("http.max_body_bytes: 1 KiB..64 MiB")
	}
	if c.HTTP.ReadHeaderTimeout <= 0 || c.HTTP.ShutdownTimeout <= 0 {
		p.add("http: timeouts must be positive")
	}
	if _, err := ParseTrustedProxies(c.HTTP.TrustedProxies); err != nil {
		p = append(p, fmt.Errorf("http.trusted_proxies: %w", err))
	}
	if a := c.HTTP.OpsAddr; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			p.add("http.ops_addr: %v", err)
		} else if a == c.ListenAddr {
			p = append(p, errors.New("http.ops_addr: must differ from listen_addr (metrics are not public)"))
		}
	}
	return p
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
