package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"path/filepath"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/recording"
)

// KeyringPath is where the recording keyring lives for cfg.
func KeyringPath(cfg config.Config) string { return KeyFilePaths(cfg)[KeyRecordingKeyring] }

// startRecording wires recording: the retrieval library wherever object
// storage is configured, and the recorder service in a process with the
// recorder role.
func (a *App) startRecording(ctx context.Context, minter *token.Minter, opt Options) error {
	cfg, log := a.cfg, a.log
	if cfg.S3.Endpoint == "" {
		if cfg.Has(config.RoleRecorder) {
			log.Warn("recorder role disabled: s3.endpoint is not set")
		}
		return nil
	}
	objs, err := recording.NewObjects(cfg.S3)
	if err != nil {
		return err
	}
	kf := a.keyring
	if kf == nil {
		if kf, err = keys.OpenKeyringFile(KeyringPath(cfg), cfg.Environment == config.Development, opt.Now()); err != nil {
			return err
		}
	}
	a.recLib = &recording.Library{Objects: objs, Keys: kf}
	if !cfg.Has(config.RoleRecorder) {
		return nil
	}
	if minter == nil {
		return errors.New("app: the recorder role needs token.signing_key_file to join rooms")
	}
	spoolDir := cfg.Recording.SpoolDir
	if spoolDir == "" {
		spoolDir = filepath.Join(cfg.DataDir, "recording-spool")
	}
	spool, err := recording.NewSpool(spoolDir, cfg.Recording.SpoolMaxBytes)
	if err != nil {
		return err
	}
	// Media nodes serve this deployment's certificate: trust it (it may be
	// the self-signed development one) besides the system roots.
	roots, _ := x509.SystemCertPool()
	if roots == nil {
		roots = x509.NewCertPool()
	}
	for _, c := range a.tlsConfig.Certificates {
		if len(c.Certificate) > 0 {
			if leaf, err := x509.ParseCertificate(c.Certificate[0]); err == nil {
				roots.AddCert(leaf)
			}
		}
	}
	svc, err := recording.New(recording.Params{
		Pool: a.db.Pool(), Objects: objs, Keys: kf, Minter: minter, Spool: spool, Config: cfg.Recording,
		Node: cfg.SFU.NodeID, TLS: &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		ConfigureWebRTC: webrtcSettings(cfg, opt), Logger: log, Now: opt.Now, BeforeClaim: opt.BeforeRecordingClaim,
	})
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}
	a.recorder = svc
	a.recLib.OnChange = svc.SyncNow
	log.Info("recorder ready", "bucket", objs.Bucket(), "keyring", KeyringPath(cfg))
	return nil
}

// Recorder returns the recorder service, or nil when this process runs none.
func (a *App) Recorder() *recording.Service { return a.recorder }

// RecordingLibrary returns the retrieval library, or nil without storage.
func (a *App) RecordingLibrary() *recording.Library { return a.recLib }
