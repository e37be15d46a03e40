package signaling

import (
	"crypto/rand"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// The device check's network check (join page, js/netcheck.js): the round
// trip and throughput of a small download (probe), and whether the
// browser reaches the media node's TURN relay over TCP or TLS — the way in
// when UDP is blocked — with relay credentials of a few minutes.

// netcheckTTL bounds the relay credentials a check receives.
const netcheckTTL = 3 * time.Minute

// maxProbe is the largest probe download.
const maxProbe = 1 << 20

// probeData is what the probe sends: random, so no compressor shrinks it.
var probeData = func() []byte {
	b := make([]byte, maxProbe)
	_, _ = rand.Read(b)
	return b
}()

type netcheckView struct {
	ICEServers []ICEServer `json:"ice_servers"` // TCP and TLS relay URLs only; empty: the node runs no relay
	ProbeURL   string      `json:"probe_url"`
	MaxProbe   int         `json:"max_probe_bytes"`
}

// networkCheck answers what the check needs for this visit: the relay of
// the media node the visit is on (or, not yet placed, this process's).
func (s *Server) networkCheck(c *gin.Context) {
	ctx := c.Request.Context()
	visit := ids.VisitID(c.Param("visit_id"))
	v, err := store.VisitByID(ctx, s.p.DB, visit)
	if err != nil {
		s.abort(c, err)
		return
	}
	node := v.NodeID
	if node == "" {
		node = s.p.Node
	}
	urls, err := store.NodeRelayURLs(ctx, s.p.DB, node)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.abort(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, netcheckView{ICEServers: s.iceServers(TCPRelayURLs(urls), principal(c).ActorID(), s.p.Now().Add(netcheckTTL)),
		ProbeURL: "/api/v1/network-check/probe", MaxProbe: maxProbe})
}

// TCPRelayURLs keeps the relay URLs that do not need UDP: turns:, and
// turn: with transport=tcp.
func TCPRelayURLs(urls []string) []string {
	out := []string{}
	for _, u := range urls {
		if strings.HasPrefix(u, "turns:") || (strings.HasPrefix(u, "turn:") && strings.Contains(u, "transport=tcp")) {
			out = append(out, u)
		}
	}
	return out
}

// networkProbe sends ?bytes= random bytes (0 to maxProbe) uncached, for the
// page to time.
func (s *Server) networkProbe(c *gin.Context) {
	n, err := strconv.Atoi(c.DefaultQuery("bytes", "0"))
	if err != nil || n < 0 || n > maxProbe {
		s.abort(c, httpx.E(httpx.KindInvalid, "bad_parameter", "bytes must be 0 to "+strconv.Itoa(maxProbe)+"."))
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "application/octet-stream", probeData[:n])
}
