package signaling

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/internal/turncred"
)

// Demo links let a newcomer hold a first call before sign-in and scheduling
// exist. They are minted only in demo mode, which config refuses outside
// development. A link carries a 256-bit one-time code in its URL fragment
// (never sent to the server in a request line, so never in access logs); the
// page posts it once to redeem it for a join token.

const (
	demoLinkTTL = 24 * time.Hour
	codeBytes   = 32
	maxCodeLen  = 64
)

// JoinGrant is what a page receives to join a visit's media.
type JoinGrant struct {
	VisitID       ids.VisitID       `json:"visit_id"`
	ParticipantID ids.ParticipantID `json:"participant_id"`
	Role          token.Role        `json:"role"`
	Token         string            `json:"token"`
	WSURL         string            `json:"ws_url"`
	ICEServers    []ICEServer       `json:"ice_servers"`
	Help          *Help             `json:"help,omitempty"` // shown when the call cannot connect
}

// ICEServer mirrors the browser's RTCIceServer.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

func hashCode(code string) []byte {
	h := sha256.Sum256([]byte(code))
	return h[:]
}

// CreateDemoVisit creates a visit on this server's node with a provider and
// a patient participant, and returns one one-time link for each.
func (s *Server) CreateDemoVisit(ctx context.Context) ([]string, error) {
	if !s.p.Demo {
		return nil, errors.New("signaling: demo mode is off")
	}
	visit := ids.NewVisitID()
	roles := []token.Role{token.RoleProvider, token.RolePatient}
	links := make([]string, 0, len(roles))
	base, err := url.Parse(s.p.PublicURL)
	if err != nil {
		return nil, fmt.Errorf("signaling: demo: public url: %w", err)
	}
	expires := s.p.Now().Add(demoLinkTTL)
	err = s.p.DB.Tx(ctx, func(tx pgx.Tx) error {
		node, err := s.placeNew(ctx, tx)
		if err != nil {
			return err
		}
		if err := store.CreateDemoVisit(ctx, tx, visit, node); err != nil {
			return err
		}
		if err := s.markPlaced(ctx, tx, visit, node); err != nil {
			return err
		}
		for _, role := range roles {
			pid := ids.NewParticipantID()
			var b [codeBytes]byte
			if _, err := rand.Read(b[:]); err != nil {
				return err
			}
			code := base64.RawURLEncoding.EncodeToString(b[:])
			if err := store.AddDemoLink(ctx, tx, visit, pid, string(role), hashCode(code), expires); err != nil {
				return err
			}
			u := *base
			u.Path = "/call"
			u.Fragment = "code=" + code
			links = append(links, u.String())
		}
		return audit.AppendTx(ctx, tx, audit.Event{
			ActorRole: "system", Action: audit.ActionVisitCreate, ResourceType: "visit",
			ResourceID: string(visit), VisitID: string(visit), Outcome: audit.Success, Reason: "demo",
		})
	})
	if err != nil {
		return nil, fmt.Errorf("signaling: create demo visit: %w", err)
	}
	s.log.Info("demo visit created", "visit", visit)
	return links, nil
}

type redeemRequest struct {
	Code string `json:"code"`
}

var errLinkInvalid = httpx.E(httpx.KindNotFound, "link_invalid", "This link is not valid, has expired, or was already used.")

func (s *Server) redeemDemoLink(c *gin.Context) {
	ctx := c.Request.Context()
	var req redeemRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if len(req.Code) == 0 || len(req.Code) > maxCodeLen {
		s.abort(c, httpx.E(httpx.KindInvalid, "bad_code", "code is missing or too long"))
		return
	}
	ev := audit.Event{
		ActorRole: "demo", Action: audit.ActionDemoLinkRedeem, ResourceType: "demo_link",
		IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c),
	}
	var grant JoinGrant
	err := s.p.DB.Tx(ctx, func(tx pgx.Tx) error {
		use, err := store.UseDemoLink(ctx, tx, hashCode(req.Code), s.p.Now())
		if errors.Is(err, store.ErrNotFound) {
			return errLinkInvalid
		}
		if err != nil {
			return err
		}
		visit, participant, role := string(use.Visit), string(use.Participant), use.Role
		// The visit's node, or a live one it moves to (placement.go).
		node, wsURL, err := s.joinNode(ctx, tx, use.Visit, use.Node)
		if err != nil {
			return err
		}
		relayURLs, err := store.NodeRelayURLs(ctx, tx, node)
		if err != nil {
			return err
		}
		tok, err := s.mintJoin(ctx, tx, token.Grant{Visit: use.Visit, Participant: use.Participant,
			Role: token.Role(role), Subject: "demo", Node: node}, nil)
		if err != nil {
			return err
		}
		ev.ActorID, ev.ActorRole, ev.VisitID, ev.ResourceID = participant, role, visit, participant
		ev.Outcome = audit.Success
		// Audit commits with the redemption, before the token leaves.
		if err := audit.AppendTx(ctx, tx, ev); err != nil {
			return err
		}
		grant = JoinGrant{
			VisitID: ids.VisitID(visit), ParticipantID: ids.ParticipantID(participant), Role: token.Role(role),
			Token: tok, WSURL: wsURL, ICEServers: s.iceServers(relayURLs, participant, s.p.Now().Add(demoLinkTTL)),
			Help: s.help(),
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, errLinkInvalid) {
			ev.Outcome, ev.Reason = audit.Denied, "invalid, expired or used link"
			if aerr := s.p.DB.Audit().Append(ctx, ev); aerr != nil {
				s.log.Error("audit append failed", "err", aerr)
			}
		}
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, grant)
}

// iceServers returns the relay a participant may use — the URLs its media
// node registered — with credentials that end with expiry, or none when the
// node runs no relay or this process does not hold the relays' secret.
func (s *Server) iceServers(urls []string, participant string, expiry time.Time) []ICEServer {
	if len(urls) == 0 || s.p.TURNSecret == nil {
		return []ICEServer{}
	}
	user, pass := turncred.Credentials(s.p.TURNSecret, participant, expiry)
	return []ICEServer{{URLs: urls, Username: user, Credential: pass}}
}
