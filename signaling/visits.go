package signaling

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/breakglass"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/token"
	"github.com/openvisit/openvisit/internal/visits"
)

// visitEvent is an audit entry about visit v by the request's principal,
// flagged when access rests on break-glass.
func (s *Server) visitEvent(c *gin.Context, action string, v ids.VisitID) audit.Event {
	p := principal(c)
	ev := audit.Event{ActorID: p.ActorID(), ActorRole: p.AuditRole(), Action: action, ResourceType: "visit",
		ResourceID: string(v), VisitID: string(v), Outcome: audit.Success, IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)}
	if viaBreakGlass(c) {
		ev.Reason = "break-glass"
	}
	return ev
}

// getVisit shows one visit; the read is audited before the data leaves.
func (s *Server) getVisit(c *gin.Context) {
	ctx := c.Request.Context()
	id := ids.VisitID(c.Param("visit_id"))
	v, err := store.VisitByID(ctx, s.p.DB, id)
	if err != nil {
		s.abort(c, err)
		return
	}
	if err := s.p.DB.Audit().Append(ctx, s.visitEvent(c, actionVisitView, id)); err != nil {
		s.abort(c, httpx.Wrap(httpx.KindUnavailable, "audit_unavailable", "The audit log cannot be written; access is refused.", err))
		return
	}
	c.JSON(http.StatusOK, v)
}

var errVisitClosed = httpx.E(httpx.KindConflict, "visit_closed", "This visit has ended.")

// joinVisit seats the caller in the visit (visits.Placement.Join: who may
// join, on which node) and answers the join grant with a token minted
// here.
func (s *Server) joinVisit(c *gin.Context) {
	if s.p.Minter == nil {
		s.abort(c, httpx.E(httpx.KindUnavailable, "no_minter", "Joining is not available on this server."))
		return
	}
	p := principal(c)
	visit := ids.VisitID(c.Param("visit_id"))
	j := visits.Joining{Visit: visit, Event: s.visitEvent(c, actionVisitJoin, visit)}
	switch p.Kind {
	case access.Provider:
		j.Provider = p.UserID
	case access.Patient:
		j.Patient = p.ParticipantID
	}
	ctx := c.Request.Context()
	seat, err := s.placement().Join(ctx, s.p.DB, j, s.p.Now(), func(tx pgx.Tx, seat visits.Seat) (string, error) {
		// The token remembers the session that minted it: ending that
		// session ends the call too (internal/revocation).
		return s.mintJoin(ctx, tx, seat.Grant, p.SessionHash)
	})
	if err != nil {
		s.abort(c, err)
		return
	}
	g := seat.Grant
	c.JSON(http.StatusOK, JoinGrant{VisitID: visit, ParticipantID: g.Participant, Role: g.Role, Token: seat.Token, WSURL: seat.URL,
		ICEServers: s.iceServers(seat.RelayURLs, string(g.Participant), seat.RelayUntil), Help: s.help()})
}

// mintJoin mints a join token for g and records it in tx: the join_tokens
// row the media node burns at admission and revocation reads, remembering
// sessionHash (nil for none), the session that minted it. Every token the
// control plane hands out goes through here.
func (s *Server) mintJoin(ctx context.Context, tx pgx.Tx, g token.Grant, sessionHash []byte) (string, error) {
	tok, claims, err := s.p.Minter.Mint(g)
	if err != nil {
		return "", err
	}
	err = store.InsertJoinToken(ctx, tx, store.NewJoinToken{ID: claims.ID, VisitID: string(g.Visit),
		Participant: string(g.Participant), Role: string(g.Role), ExpiresAt: claims.Expiry(), SessionHash: sessionHash})
	return tok, err
}

type breakGlassRequest struct {
	Reason string `json:"reason"`
}

// breakGlass grants a provider emergency access to a visit that is not
// theirs (internal/breakglass).
func (s *Server) breakGlass(c *gin.Context) {
	var req breakGlassRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	visit := ids.VisitID(c.Param("visit_id"))
	g, err := s.breakGlassService().Grant(c.Request.Context(), breakglass.Request{
		User: principal(c).UserID, Visit: visit, Reason: req.Reason, Event: s.visitEvent(c, actionBreakGlass, visit)})
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusCreated, gin.H{"grant_id": g.ID, "visit_id": visit, "expires_at": g.ExpiresAt})
}

// breakGlassService is the break-glass domain on this server's database.
func (s *Server) breakGlassService() *breakglass.Service {
	return breakglass.New(breakglass.Params{Env: s.env(), Duration: s.p.Auth.BreakGlass})
}
