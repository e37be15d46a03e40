package app

// The media role's wiring: the SFU, its TURN relay and the revocation
// watcher that ends calls whose grants were revoked.

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/nodes"
	"github.com/openvisit/openvisit/internal/revocation"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu"
	"github.com/openvisit/openvisit/sfu/turn"
)

// mediaDeps is what the media node needs from the rest of the process.
type mediaDeps struct {
	pub      ed25519.PublicKey
	node     ids.NodeID
	registry *nodes.Registry
	metrics  *prometheus.Registry
}

// startMedia builds the media node (the SFU, its TURN relay, the revocation
// watcher) and registers it in the cluster.
func (a *App) startMedia(ctx, runCtx context.Context, opt Options, d mediaDeps) error {
	if d.pub == nil {
		return errors.New("app: the media role needs token.public_key or token.signing_key_file")
	}
	verifier, err := token.NewVerifier(d.pub, d.node, opt.Now)
	if err != nil {
		return err
	}
	cfg := a.cfg
	// Admission and revocation are one mechanism (internal/revocation):
	// the join checks what the watcher re-checks for every live call.
	watcher := revocation.New(revocation.Params{
		Pool: a.db.Pool(), Burner: token.NewPGBurner(a.db), Logger: a.log, Now: opt.Now,
		Limits: store.SessionLimits{StaffIdle: cfg.Auth.Idle, PatientIdle: cfg.Auth.PatientIdle, Absolute: cfg.Auth.Absolute},
	})
	a.media, err = sfu.New(sfu.Params{
		Node:            d.node,
		Verifier:        verifier,
		Burner:          nodes.RoomBurner(watcher, d.registry, d.node, a.log),
		Origins:         cfg.MediaOrigins(),
		Logger:          a.log,
		Registerer:      d.metrics,
		UDPAddr:         cfg.SFU.UDPAddr,
		Workers:         cfg.SFU.Workers,
		TCPAddr:         cfg.Media.ICETCPAddr,
		NoFastPath:      cfg.Media.NoReceiveFastPath,
		PublicIPs:       cfg.SFU.PublicIPs,
		ConfigureWebRTC: webrtcSettings(cfg, opt),
		OnMediaState:    mediaStateHook(a.db.Pool(), a.log),
	})
	if err != nil {
		return err
	}
	if err := a.startTURN(opt.Now); err != nil {
		return err
	}
	if err := a.checkMediaReach(ctx); err != nil {
		return err
	}
	// The first check before the node admits anyone (Burn refuses until
	// one has succeeded).
	media := a.media
	if err := watcher.Check(ctx, media); err != nil {
		return fmt.Errorf("app: revocation check: %w", err)
	}
	a.goRun(func() { watcher.Run(runCtx, media) })
	if err := a.startHeartbeat(ctx, d.registry, d.node); err != nil {
		return err
	}
	a.log.Info("media node ready", "node", d.node, "udp", a.media.UDPAddr().String())
	return nil
}

// loadTURNSecret reads the relays' credential secret where this process
// needs it: a media node running a relay checks credentials with it, a
// control plane mints them (on a cluster, media.turn.secret_file names the
// secret the relays share). Development generates one.
func (a *App) loadTURNSecret() error {
	t := a.cfg.Media.TURN
	relay := a.cfg.Has(config.RoleMedia) && t.On()
	if !relay && t.SecretFile == "" {
		return nil
	}
	path := t.SecretFile
	if path == "" {
		path = filepath.Join(a.cfg.DataDir, "turn-secret.key")
	}
	var err error
	a.turnKey, err = keys.LoadSecret(path, a.cfg.Environment == config.Development)
	return err
}

// startTURN starts the TURN relay when it has a listen address
// (media.turn.addr, tcp_addr or tls_addr); TURN over TLS serves the HTTPS
// listener's certificate.
func (a *App) startTURN(now func() time.Time) error {
	t := a.cfg.Media.TURN
	if !t.On() {
		return nil
	}
	var err error
	a.turn, err = turn.New(turn.Params{
		Addr: t.Addr, TCPAddr: t.TCPAddr, TLSAddr: t.TLSAddr, TLS: a.tlsConfig,
		RelayIP: net.ParseIP(t.PublicIP), Secret: a.turnKey,
		AllowPrivatePeers: t.AllowPrivatePeers, Logger: a.log, Now: now,
	})
	return err
}

// relayURLs are the URLs this node's relay registers (none without one):
// on the host browsers reach the node at.
func (a *App) relayURLs() []string {
	if a.turn == nil {
		return nil
	}
	return a.turn.URLs(hostOf(a.cfg.NodeURL()))
}
