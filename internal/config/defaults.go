package config

import (
	"net/url"
	"slices"
	"strings"
	"time"
)

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
		Reminders: Reminders{Offsets: []time.Duration{24 * time.Hour, time.Hour}, Interval: time.Minute},
		Alerts: Alerts{EvalInterval: 30 * time.Second, FailedSigninsAccount: 10, FailedSigninsIP: 30,
			SigninWindow: 15 * time.Minute, RecordingAccesses: 25, RecordingWindow: time.Hour},
		Auth: Auth{
			Idle: 15 * time.Minute, PatientIdle: 30 * time.Minute, Absolute: 12 * time.Hour,
			BreakGlass: time.Hour, SetupLinkTTL: 72 * time.Hour, DormantDays: 90,
		},
		OIDC: OIDC{LocalPasswords: LocalPasswordsEveryone, SweepInterval: time.Hour},
		SFU:  SFU{NodeID: "local", UDPAddr: "0.0.0.0:8443"},
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
