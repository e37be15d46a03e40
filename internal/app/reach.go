package app

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/openvisit/openvisit/internal/config"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/reach"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/sfu"
	"github.com/openvisit/openvisit/sfu/turn"
)

// reachWait bounds the candidate gathering and the DNS lookup of the node's
// host at start.
const reachWait = 3 * time.Second

// webrtcSettings is the Pion configuration the media node and the in-process
// recorder share: loopback-only ICE when media.loopback_only is set, then
// what the caller injects (tests).
func webrtcSettings(cfg config.Config, opt Options) func(*webrtc.SettingEngine) {
	if !cfg.Media.LoopbackOnly {
		return opt.ConfigureWebRTC
	}
	return func(se *webrtc.SettingEngine) {
		sfu.LoopbackOnly(se)
		if opt.ConfigureWebRTC != nil {
			opt.ConfigureWebRTC(se)
		}
	}
}

// MediaReport is what a media node tells browsers and whether they can use
// it (`openvisit doctor` prints it).
type MediaReport struct {
	NodeURL      string            // where browsers open the media WebSocket
	Candidates   []reach.Candidate // ICE candidates every participant is given
	PublicIPs    []string          // sfu.public_ips (advertised instead of the host's addresses)
	ICETCP       string            // media.ice_tcp_addr, "" when off
	TURNURLs     []string          // the relay URLs join grants carry, none when off
	LoopbackOnly bool
	Findings     []reach.Finding
}

// mediaReport gathers media's candidates and checks them against cfg.
func mediaReport(ctx context.Context, cfg config.Config, media *sfu.SFU) (MediaReport, error) {
	ctx, cancel := context.WithTimeout(ctx, reachWait)
	defer cancel()
	cands, err := media.Advertised(ctx)
	if err != nil {
		return MediaReport{}, err
	}
	r := MediaReport{NodeURL: cfg.NodeURL(), Candidates: cands, PublicIPs: cfg.SFU.PublicIPs,
		ICETCP: cfg.Media.ICETCPAddr, LoopbackOnly: cfg.Media.LoopbackOnly}
	in := reach.Input{
		LoopbackOnly: cfg.Media.LoopbackOnly, PublicIPs: cfg.SFU.PublicIPs, ICETCPAddr: cfg.Media.ICETCPAddr,
		TURNAddr: cfg.Media.TURN.First(), TURNPrivatePeers: cfg.Media.TURN.AllowPrivatePeers, Candidates: cands,
	}
	if t := cfg.Media.TURN; t.On() {
		in.TURNRelayIP = t.PublicIP
		if in.TURNRelayIP == "" {
			in.TURNRelayIP, _, _ = net.SplitHostPort(t.First())
		}
		r.TURNURLs = turn.URLs(hostOf(r.NodeURL), portOf(t.Addr), portOf(t.TCPAddr), portOf(t.TLSAddr))
	}
	in.NodeHost = hostOf(r.NodeURL)
	in.NodeHostAddrs, in.NodeHostResolveOK = resolve(ctx, in.NodeHost)
	r.Findings = reach.Check(in)
	return r, nil
}

// portOf is the port of a host:port listen address, "" for none.
func portOf(hostport string) string {
	_, p, _ := net.SplitHostPort(hostport)
	return p
}

func hostOf(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	return pu.Hostname()
}

// resolve returns host's addresses (host itself when it is an IP).
func resolve(ctx context.Context, host string) ([]netip.Addr, bool) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, true
	}
	if host == "" {
		return nil, false
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	return addrs, err == nil && len(addrs) > 0
}

// checkMediaReach refuses to run a media node that browsers on other
// machines cannot reach (each Fatal finding names the setting and the fix)
// and logs every Warning once.
func (a *App) checkMediaReach(ctx context.Context) error {
	r, err := mediaReport(ctx, a.cfg, a.media)
	if err != nil {
		return fmt.Errorf("app: media reachability: %w", err)
	}
	var fatal []error
	for _, f := range r.Findings {
		switch f.Severity {
		case reach.Fatal:
			fatal = append(fatal, errors.New(f.String()))
		case reach.Warning:
			a.log.Warn("media reachability: "+f.Problem, "fix", f.Fix, "settings", strings.Join(f.Settings, ","))
		}
	}
	if len(fatal) > 0 {
		return fmt.Errorf("media: browsers could not reach this node (`openvisit doctor` explains): %w", errors.Join(fatal...))
	}
	a.log.Info("media advertises", "candidates", reach.Describe(r.Candidates))
	return nil
}

// Doctor reports what a media node with cfg would advertise and whether
// browsers on other machines could reach it, without a database: it opens
// the node's sockets on ephemeral ports of the same addresses (a running
// node may hold the real ones) and reports the configured ports.
func Doctor(ctx context.Context, cfg config.Config, log *slog.Logger) (MediaReport, error) {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return MediaReport{}, err
	}
	verifier, err := token.NewVerifier(pub, ids.NodeID(cfg.SFU.NodeID), nil)
	if err != nil {
		return MediaReport{}, err
	}
	udp, udpPort := ephemeral(cfg.SFU.UDPAddr)
	tcp, tcpPort := ephemeral(cfg.Media.ICETCPAddr)
	media, err := sfu.New(sfu.Params{
		Node: ids.NodeID(cfg.SFU.NodeID), Verifier: verifier, Burner: token.NewMemoryBurner(1, nil), Logger: log,
		UDPAddr: udp, Workers: 1, TCPAddr: tcp, PublicIPs: cfg.SFU.PublicIPs, NoFastPath: true,
		ConfigureWebRTC: webrtcSettings(cfg, Options{}),
	})
	if err != nil {
		return MediaReport{}, fmt.Errorf("doctor: open the media sockets: %w", err)
	}
	defer media.Close()
	r, err := mediaReport(ctx, cfg, media)
	if err != nil {
		return MediaReport{}, err
	}
	for i, c := range r.Candidates {
		switch {
		case c.Protocol == "udp" && udpPort != 0:
			r.Candidates[i].Port = udpPort
		case c.Protocol == "tcp" && tcpPort != 0:
			r.Candidates[i].Port = tcpPort
		}
	}
	return r, nil
}

// ephemeral returns hostport with port 0, and the configured port.
func ephemeral(hostport string) (string, int) {
	if hostport == "" {
		return "", 0
	}
	h, p, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport, 0
	}
	port, _ := strconv.Atoi(p)
	return net.JoinHostPort(h, "0"), port
}
