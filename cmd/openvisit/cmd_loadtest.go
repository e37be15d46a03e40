package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/loadtest"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
)

const loadtestUsage = `openvisit loadtest — simulated 1:1 visits against a media node

  openvisit loadtest --spawn [--visits N] [--duration D] [--warmup D] [--json]
      starts 'openvisit serve' (api+media, development, loopback-only ICE) as a
      child process on 127.0.0.1 with the database in OPENVISIT_DATABASE_URL,
      measures it, and stops it.
  openvisit loadtest --url https://127.0.0.1:8443 --signing-key FILE [--node ID]
                     [--config FILE] [--server-pid PID] [--visits N] [--duration D] [--json]
      drives a running server: its visits are created as demo visits in the
      server's database (database.url from --config or OPENVISIT_DATABASE_URL)
      and join tokens are minted directly with its token signing key
      (development: data_dir/token-signing.key), as the control plane would
      mint them. The server must offer candidates the clients can reach
      (media.loopback_only on one machine).

  openvisit loadtest --clients-only --target https://node:8443 --signing-key FILE
                     [--node ID] [--config FILE] [--bind IP] [--visits N] ...
      only the clients, against a media node on another machine (so that the
      load can come from elsewhere). Joins are admitted as for --url: the
      visits are demo visits written to the node's database (database.url
      from --config or OPENVISIT_DATABASE_URL, reachable from here) and
      tokens are minted with the node's token signing key, naming --node.
      The node must offer candidates this machine reaches; the clients bind
      --bind (default: the local address that routes to the target).
  openvisit loadtest --spawn --sweep [--sweep-visits 4,8,16,...] [--duration D]
      the scaling report: the spawned server at GOMAXPROCS 1, 2, 4, … up to
      this machine's cores, each at rising visit counts until a run does not
      hold (loss ≥ 1%, p99 added latency ≥ 20 ms, or a visit without media);
      prints per GOMAXPROCS the most visits held, µs of server CPU per
      forwarded packet and packets/s.

Every visit has two participants; each publishes 720p VP8 (≈1.8 Mbit/s) and
Opus (32 kbit/s, 20 ms) recorded media in real time and receives the other's.
The clients do ICE and DTLS through Pion and send and receive media around it
(pre-packetized, SRTP in place, sendmmsg/recvmmsg); --pion-media sends it
through Pion's tracks instead, for comparison.
`

// loadtestFlags are loadtest's flags (loadtestUsage).
type loadtestFlags struct {
	spawn            bool
	rawURL, keyPath  string
	configPath       string
	node             string
	pid, visits      int
	duration, warmup time.Duration
	asJSON, insecure bool
	cpuProfile       string
	childAddr        string
	procs            int
	pionMedia        bool
	clientsOnly      bool
	bind             string
	sweep            bool
	sweepVisits      string
	clientProfile    string
	sweepP99         float64
}

func parseLoadtestFlags(args []string, stderr io.Writer) (*flag.FlagSet, loadtestFlags, error) {
	var f loadtestFlags
	fs := newFlagSet("loadtest", stderr)
	fs.Usage = func() { fmt.Fprint(stderr, loadtestUsage); fs.PrintDefaults() }
	fs.BoolVar(&f.spawn, "spawn", false, "start and measure a server child process")
	fs.StringVar(&f.rawURL, "url", "", "server origin (https://host:port)")
	fs.StringVar(&f.keyPath, "signing-key", "", "the server's token signing key file")
	fs.StringVar(&f.node, "node", "local", "the media node ID the tokens name")
	fs.StringVar(&f.configPath, "config", "", "YAML config file naming the server's database.url")
	fs.IntVar(&f.pid, "server-pid", 0, "server process to report CPU and memory of")
	fs.IntVar(&f.visits, "visits", 4, "visits of two participants")
	fs.DurationVar(&f.duration, "duration", 20*time.Second, "measured window")
	fs.DurationVar(&f.warmup, "warmup", 5*time.Second, "time after the last join before the window (DTLS, keyframes)")
	fs.BoolVar(&f.asJSON, "json", false, "print the report as JSON (per-second samples included)")
	fs.BoolVar(&f.insecure, "insecure", true, "accept a self-signed certificate")
	fs.StringVar(&f.cpuProfile, "cpuprofile", "", "with --spawn: write the server's CPU profile of the run to this file")
	fs.StringVar(&f.childAddr, "child", "", "internal: run as the spawned server on this address")
	fs.IntVar(&f.procs, "server-gomaxprocs", 0, "with --spawn: GOMAXPROCS of the server (0: Go's default)")
	fs.BoolVar(&f.pionMedia, "pion-media", false, "send and receive media through Pion's tracks (the slower client, for comparison)")
	fs.BoolVar(&f.clientsOnly, "clients-only", false, "only the clients, against --target on another machine")
	fs.StringVar(&f.rawURL, "target", "", "with --clients-only: the media node's origin (same as --url)")
	fs.StringVar(&f.bind, "bind", "", "the clients' local IP (default: loopback, or with --clients-only the address that routes to the target)")
	fs.StringVar(&f.clientProfile, "client-cpuprofile", "", "write the clients' (this process's) CPU profile of the run to this file")
	fs.Float64Var(&f.sweepP99, "sweep-max-p99", loadtest.DefaultLimits.MaxP99MS, "with --sweep: the p99 added latency (ms) a run must stay under (raise it only to read a busy machine's curve, and say so)")
	fs.BoolVar(&f.sweep, "sweep", false, "with --spawn: the scaling report over GOMAXPROCS and visit counts")
	fs.StringVar(&f.sweepVisits, "sweep-visits", "4,8,16,32,64,128,256", "with --sweep: the visit counts tried, rising")
	err := fs.Parse(args)
	return fs, f, err
}

// loadtestCmd runs `openvisit loadtest`: against a running server, or one
// it spawns and stops.
func loadtestCmd(args []string, stdout, stderr io.Writer) error {
	fs, f, err := parseLoadtestFlags(args, stderr)
	if err != nil {
		return err
	}
	if f.childAddr != "" {
		return loadtestChild(f.childAddr, f.cpuProfile, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if f.sweep {
		if !f.spawn {
			return errors.New("loadtest: --sweep needs --spawn")
		}
		return loadtestSweep(ctx, f, stdout, stderr)
	}
	if f.clientsOnly && f.spawn {
		return errors.New("loadtest: --clients-only and --spawn exclude each other")
	}
	if f.spawn {
		srv, err := spawnServer(ctx, f.cpuProfile, f.procs, stderr)
		if err != nil {
			return err
		}
		defer srv.stop()
		f.rawURL, f.keyPath, f.pid = srv.url, srv.key, srv.cmd.Process.Pid
	}
	if f.rawURL == "" || f.keyPath == "" {
		fs.Usage()
		return errors.New("loadtest: --spawn, or --url (--target) and --signing-key")
	}
	pool, err := loadtestDatabase(ctx, f.configPath)
	if err != nil {
		return err
	}
	defer pool.Close()
	p, err := loadtestParams(ctx, f, pool)
	if err != nil {
		return err
	}
	if !f.asJSON {
		loadtest.WriteSampleHeader(stdout)
		p.OnSample = func(s loadtest.Sample) { loadtest.WriteSample(stdout, s) }
	}
	if f.clientProfile != "" {
		stopProfile, err := startProfile(f.clientProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	rep, err := loadtest.Run(ctx, p)
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(rep); jerr != nil {
			return jerr
		}
	} else {
		loadtest.WriteReport(stdout, rep)
	}
	return err
}

// loadtestDatabase opens the server's database (OPENVISIT_DATABASE_URL or
// --config's): the media node admits a join only for a visit
// and participant it finds there, so the simulated visits are recorded in it.
func loadtestDatabase(ctx context.Context, configPath string) (*pgxpool.Pool, error) {
	cfg, err := loadConfig(configPath)
	if err != nil {
		return nil, err
	}
	return openDatabase(ctx, cfg, noMigrations)
}

// loadtestParams turns the flags into the load generator's parameters:
// the media socket's URL, visits created as demo visits (marked as not
// clinical) on the node, and a minter of join tokens with the server's
// signing key for participants added to them, as the control plane would
// mint them.
func loadtestParams(ctx context.Context, f loadtestFlags, pool *pgxpool.Pool) (loadtest.Params, error) {
	u, err := url.Parse(f.rawURL)
	if err != nil || u.Host == "" {
		return loadtest.Params{}, fmt.Errorf("loadtest: bad --url %q", f.rawURL)
	}
	ws := "wss://" + u.Host + "/sfu/ws"
	if u.Scheme == "http" {
		ws = "ws://" + u.Host + "/sfu/ws"
	}
	key, err := token.LoadKey(f.keyPath, false)
	if err != nil {
		return loadtest.Params{}, err
	}
	minter, err := token.NewMinter(key, 5*time.Minute, nil)
	if err != nil {
		return loadtest.Params{}, err
	}
	n := ids.NodeID(f.node)
	bind, configure, err := clientNetwork(f, u.Host)
	if err != nil {
		return loadtest.Params{}, err
	}
	return loadtest.Params{
		WSURL: ws,
		NewVisit: func() (string, error) {
			v := ids.NewVisitID()
			return string(v), store.CreateDemoVisit(ctx, pool, v, n)
		},
		Mint: func(visit string) (string, error) {
			v, p := ids.VisitID(visit), ids.NewParticipantID()
			if err := store.AddDemoParticipant(ctx, pool, v, p, string(token.RolePatient)); err != nil {
				return "", err
			}
			tok, _, err := minter.Mint(token.Grant{Visit: v, Participant: p,
				Role: token.RolePatient, Subject: "loadtest", Node: n})
			return tok, err
		},
		Visits: f.visits, Warmup: f.warmup, Duration: f.duration,
		ServerPID: f.pid, InsecureTLS: f.insecure,
		ConfigureWebRTC: configure,
		PionMedia:       f.pionMedia, BindIP: bind,
	}, nil
}

// clientNetwork is where the clients' sockets bind and how their ICE is
// set up: loopback only on one machine; with --clients-only, the address
// that routes to host (or --bind) and no mDNS.
func clientNetwork(f loadtestFlags, host string) (net.IP, func(*webrtc.SettingEngine), error) {
	var bind net.IP
	if f.bind != "" {
		if bind = net.ParseIP(f.bind); bind == nil {
			return nil, nil, fmt.Errorf("loadtest: bad --bind %q", f.bind)
		}
	}
	if !f.clientsOnly {
		return bind, sfu.LoopbackOnly, nil
	}
	if bind == nil {
		c, err := net.Dial("udp4", host) // no packet is sent: it only picks the route
		if err != nil {
			return nil, nil, fmt.Errorf("loadtest: no route to %s: %w", host, err)
		}
		bind = c.LocalAddr().(*net.UDPAddr).IP
		c.Close()
	}
	return bind, func(se *webrtc.SettingEngine) {
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}, nil
}

// loadtestSweep runs the scaling report: a fresh spawned server per run,
// at each GOMAXPROCS and rising visit counts (loadtest.Sweep).
func loadtestSweep(ctx context.Context, f loadtestFlags, stdout, stderr io.Writer) error {
	visits, err := parseCounts(f.sweepVisits)
	if err != nil {
		return err
	}
	pool, err := loadtestDatabase(ctx, f.configPath)
	if err != nil {
		return err
	}
	defer pool.Close()
	fmt.Fprintf(stdout, "sweep on %d cores (%s), media path %s, window %s after %s warmup\n",
		runtime.NumCPU(), runtime.GOARCH, mediaPath(f.pionMedia), f.duration, f.warmup)
	lim := loadtest.DefaultLimits
	if f.sweepP99 > 0 {
		lim.MaxP99MS = f.sweepP99
	}
	fmt.Fprintf(stdout, "holding: loss < %.1f%%, p99 added latency < %.0f ms\n", lim.MaxLoss*100, lim.MaxP99MS)
	rows := loadtest.Sweep(lim, sweepProcs(runtime.NumCPU()), visits, func(procs, n int) (loadtest.Report, error) {
		srv, err := spawnServer(ctx, "", procs, stderr)
		if err != nil {
			return loadtest.Report{}, err
		}
		defer srv.stop()
		run := f
		run.rawURL, run.keyPath, run.pid, run.visits = srv.url, srv.key, srv.cmd.Process.Pid, n
		p, err := loadtestParams(ctx, run, pool)
		if err != nil {
			return loadtest.Report{}, err
		}
		rep, err := loadtest.Run(ctx, p)
		if !f.asJSON {
			loadtest.WriteReport(stderr, rep)
		}
		return rep, err
	}, stderr)
	if f.asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rows)
	}
	loadtest.WriteSweep(stdout, rows)
	return ctx.Err()
}

// startProfile starts a CPU profile into path; the func stops it.
func startProfile(path string) (func(), error) {
	pf, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(pf); err != nil {
		pf.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); pf.Close() }, nil
}

func mediaPath(pion bool) string {
	if pion {
		return "pion"
	}
	return "fast"
}

// sweepProcs is 1, 2, 4, … below cores, and cores.
func sweepProcs(cores int) []int {
	var out []int
	for p := 1; p < cores; p *= 2 {
		out = append(out, p)
	}
	return append(out, cores)
}

// parseCounts parses a comma-separated list of rising positive counts.
func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || n > 10000 || (len(out) > 0 && n <= out[len(out)-1]) {
			return nil, fmt.Errorf("loadtest: bad --sweep-visits %q: want rising counts like 4,8,16", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// child is a server started by --spawn.
type child struct {
	cmd      *exec.Cmd
	url, key string
	dir      string
}

// spawnServer starts this binary's serve command on a free loopback port
// with a fresh data directory and waits until it answers.
func spawnServer(ctx context.Context, cpuProfile string, procs int, stderr io.Writer) (*child, error) {
	if os.Getenv("OPENVISIT_DATABASE_URL") == "" {
		return nil, errors.New("loadtest: --spawn needs OPENVISIT_DATABASE_URL (source .dev/env)")
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := ln.Addr().String()
	ln.Close()
	dir, err := os.MkdirTemp("", "openvisit-loadtest-")
	if err != nil {
		return nil, err
	}
	if cpuProfile != "" {
		if cpuProfile, err = filepath.Abs(cpuProfile); err != nil {
			return nil, err
		}
	}
	cmd := exec.CommandContext(ctx, exe, "loadtest", "--child", addr, "--cpuprofile", cpuProfile)
	cmd.Env = append(os.Environ(),
		"OPENVISIT_ENVIRONMENT=development",
		"OPENVISIT_DEMO=false",
		"OPENVISIT_DATA_DIR="+dir,
		"OPENVISIT_PUBLIC_URL=https://"+addr,
		"OPENVISIT_SFU_UDP_ADDR=127.0.0.1:0",
		"OPENVISIT_MEDIA_LOOPBACK_ONLY=true",
		"OPENVISIT_LOG_LEVEL=error",
		"OPENVISIT_HTTP_OPS_ADDR=127.0.0.1:0",
	)
	if procs > 0 {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+strconv.Itoa(procs))
	}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	c := &child{cmd: cmd, url: "https://" + addr, key: filepath.Join(dir, "token-signing.key"), dir: dir}
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // our own child's self-signed certificate
	}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(c.url + "/")
		if err == nil {
			resp.Body.Close()
			if _, err := os.Stat(c.key); err == nil {
				fmt.Fprintf(stderr, "loadtest: server pid %d on %s\n", cmd.Process.Pid, c.url)
				return c, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			c.stop()
			return nil, errors.New("loadtest: the spawned server did not come up")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(c.dir)
}

// loadtestChild is the spawned server: 'serve' with the api and media roles
// from the environment's configuration, and an optional CPU profile from
// when it is ready until it is stopped.
func loadtestChild(addr, cpuProfile string, stderr io.Writer) error {
	cfg, err := loadConfig("")
	if err != nil {
		return err
	}
	cfg.ListenAddr = addr
	cfg.Roles = []string{config.RoleAPI, config.RoleMedia}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, ln, _, err := startApp(ctx, cfg, "", stderr)
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	errc := make(chan error, 1)
	go func() { errc <- a.Serve(ln) }()
	select {
	case err := <-errc:
		_ = a.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	printBatching(stderr, a.Media().Stats())
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return a.Shutdown(sctx)
}

// printBatching tells how well the spawned server's media sockets batched
// over its life (joins and warmup included): datagrams per system call
// and per message (GSO and GRO) each way.
func printBatching(w io.Writer, st sfu.Stats) {
	per := func(a, b uint64) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	fmt.Fprintf(w, "server sockets: received %d datagrams, %.1f per recvmmsg, %.1f per message (GRO); "+
		"sent %d in batches, %.1f per sendmmsg, %.1f per message (GSO)\n",
		st.ReceivedDatagrams, per(st.ReceivedDatagrams, st.ReceiveCalls), per(st.ReceivedDatagrams, st.ReceivedMessages),
		st.BatchedDatagrams, per(st.BatchedDatagrams, st.BatchSends), per(st.BatchedDatagrams, st.BatchMessages))
}
