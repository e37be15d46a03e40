package signaling

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/breakglass"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/invites"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/token"
)

// visitEvent is an audit entry about visit v by the request's principal,
// flagged when access rests on break-glass.
func (s *Server) visitEvent(c *gin.Context, action string, v ids.VisitID) audit.Event {
	p := principal(c)
	ev := audit.Event{ActorID: p.ActorID(), ActorRole: string(p.Kind), Action: action, ResourceType: "visit",
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

// joinVisit mints a join token for the caller's participant in the visit.
func (s *Server) joinVisit(c *gin.Context) {
	ctx := c.Request.Context()
	if s.p.Minter == nil {
		s.abort(c, httpx.E(httpx.KindUnavailable, "no_minter", "Joining is not available on this server."))
		return
	}
	p := principal(c)
	visit := ids.VisitID(c.Param("visit_id"))
	var grant JoinGrant
	err := s.p.DB.Tx(ctx, func(tx pgx.Tx) error {
		v, err := store.VisitByID(ctx, tx, visit)
		if err != nil {
			return err
		}
		if store.Closed(v.Status) {
			return errVisitClosed
		}
		// The visit's node, or a live one it moves to (placement.go).
		node, wsURL, err := s.joinNode(ctx, tx, visit, v.NodeID)
		if err != nil {
			return err
		}
		var pid ids.ParticipantID
		var role token.Role
		var subject string
		switch p.Kind {
		case access.Provider:
			role, subject = token.RoleProvider, string(p.UserID)
			if pid, err = store.ProviderParticipant(ctx, tx, visit, p.UserID, ids.NewParticipantID()); err != nil {
				return err
			}
		case access.Patient:
			// A patient reaches media only once admitted from the waiting room.
			pt, err := store.ParticipantByID(ctx, tx, visit, p.ParticipantID)
			if err != nil {
				return err
			}
			if pt.State != "admitted" {
				return httpx.E(httpx.KindConflict, "not_admitted", "Please wait: your provider will admit you.")
			}
			role, subject, pid = token.RolePatient, string(p.ParticipantID), p.ParticipantID
		default:
			return errNotFound
		}
		// The token remembers the session that minted it: ending that
		// session ends the call too (internal/revocation).
		tok, err := s.mintJoin(ctx, tx, token.Grant{Visit: visit, Participant: pid, Role: role, Subject: subject, Node: node}, p.SessionHash)
		if err != nil {
			return err
		}
		if err := store.MarkJoined(ctx, tx, pid, s.p.Now()); err != nil {
			return err
		}
		// Relay credentials last until the visit's end (or half a day for an
		// unscheduled one).
		expiry := s.p.Now().Add(invites.AdhocTTL)
		if v.ScheduledEnd != nil && v.ScheduledEnd.After(s.p.Now()) {
			expiry = v.ScheduledEnd.Add(time.Hour)
		}
		grant = JoinGrant{VisitID: visit, ParticipantID: pid, Role: role, Token: tok, WSURL: wsURL,
			ICEServers: s.iceServers(string(pid), expiry, wsURL), Help: s.help()}
		return audit.AppendTx(ctx, tx, s.visitEvent(c, actionVisitJoin, visit))
	})
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, grant)
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
	return breakglass.New(breakglass.Params{DB: s.p.DB, Duration: s.p.Auth.BreakGlass, Now: s.p.Now})
}
