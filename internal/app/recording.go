package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

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

// recorderMetrics exports the recorder's counts (recording.Stats).
func recorderMetrics(svc *recording.Service) []prometheus.Collector {
	gauge := func(name, help string, f func(recording.Stats) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return f(svc.Stats()) })
	}
	counter := func(name, help string, f func(recording.Stats) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return f(svc.Stats()) })
	}
	return []prometheus.Collector{
		gauge("openvisit_recorder_sessions", "Visits this recorder is recording now.",
			func(s recording.Stats) float64 { return float64(s.Sessions) }),
		gauge("openvisit_recorder_backlog_recordings", "Recordings not yet finalized: being recorded, or waiting for their uploads.",
			func(s recording.Stats) float64 { return float64(s.Backlog) }),
		gauge("openvisit_recorder_spool_bytes", "Ciphertext in the spool, waiting for object storage.",
			func(s recording.Stats) float64 { return float64(s.SpoolBytes) }),
		counter("openvisit_recorder_dropped_packets_total", "Media packets the recorder's queue dropped (spool full or slow).",
			func(s recording.Stats) float64 { return float64(s.DroppedPackets) }),
		counter("openvisit_recorder_parts_uploaded_total", "Spooled parts uploaded to object storage.",
			func(s recording.Stats) float64 { return float64(s.PartsUploaded) }),
		counter("openvisit_recorder_upload_retries_total", "Part uploads retried.",
			func(s recording.Stats) float64 { return float64(s.UploadRetries) }),
	}
}
