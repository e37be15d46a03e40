package signin

import (
	"context"
	"errors"
	"strconv"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

var (
	// ErrNoSession: no session has this token.
	ErrNoSession = errors.New("signin: no such session")
	// ErrSessionOver: the session was revoked, its user disabled, or it
	// expired (idle or absolute); its cookie should go.
	ErrSessionOver = errors.New("signin: session over")
)

// Session returns the live session whose token hashes to hash. A session
// past its lifetime is ended (revoked, and audited the first time it is
// seen) and refused with ErrSessionOver, like a revoked one.
func (s *Service) Session(ctx context.Context, hash []byte, src Source) (store.Session, error) {
	sess, err := store.SessionByHash(ctx, s.p.DB, hash)
	if errors.Is(err, store.ErrNotFound) {
		return sess, ErrNoSession
	}
	if err != nil {
		return sess, err
	}
	if sess.RevokedAt != nil || sess.UserDisabled {
		return sess, ErrSessionOver
	}
	now := s.p.Now()
	if err := s.Policy(sess.Kind).Check(sess.CreatedAt, sess.LastSeenAt, now); err != nil {
		reason := "idle"
		if errors.Is(err, session.ErrAbsoluteExpired) {
			reason = "absolute"
		}
		if ended, rerr := store.RevokeSession(ctx, s.p.DB, hash, now, reason); rerr == nil && ended {
			s.p.Record(ctx, audit.Event{
				ActorID: actor(sess), ActorRole: role(sess), Action: ActionSessionExpire,
				ResourceType: "session", Outcome: audit.Success, Reason: reason, VisitID: string(sess.VisitID),
				IP: src.IP, UserAgent: src.UserAgent,
			})
		}
		return sess, ErrSessionOver
	}
	return sess, nil
}

// Touch records activity on the session (it extends its idle time).
func (s *Service) Touch(ctx context.Context, hash []byte) error {
	return store.TouchSession(ctx, s.p.DB, hash, s.p.Now())
}

// User is the staff user id, for the session's page.
func (s *Service) User(ctx context.Context, id ids.UserID) (store.User, error) {
	return store.UserByID(ctx, s.p.DB, id, false)
}

// Logout ends p's session, audited with p as the actor.
func (s *Service) Logout(ctx context.Context, p access.Principal, src Source) error {
	if _, err := store.RevokeSession(ctx, s.p.DB, p.SessionHash, s.p.Now(), "logout"); err != nil {
		return err
	}
	s.p.Record(ctx, audit.Event{ActorID: p.ActorID(), ActorRole: p.AuditRole(), Action: ActionLogout,
		ResourceType: "session", VisitID: string(p.VisitID), Outcome: audit.Success, IP: src.IP, UserAgent: src.UserAgent})
	return nil
}

// LogoutAll ends every session of staff user p and returns how many.
func (s *Service) LogoutAll(ctx context.Context, p access.Principal, src Source) (int, error) {
	n, err := store.RevokeUserSessions(ctx, s.p.DB, p.UserID, s.p.Now(), "logout everywhere")
	if err != nil {
		return 0, err
	}
	s.p.Record(ctx, audit.Event{ActorID: p.ActorID(), ActorRole: p.AuditRole(), Action: ActionLogoutAll,
		ResourceType: "user", ResourceID: string(p.UserID), Outcome: audit.Success, Reason: strconv.Itoa(n) + " sessions",
		IP: src.IP, UserAgent: src.UserAgent})
	return n, nil
}

func actor(s store.Session) string {
	if s.Kind == store.SessionPatient {
		return string(s.ParticipantID)
	}
	return string(s.UserID)
}

func role(s store.Session) string {
	if s.Kind == store.SessionPatient {
		return string(access.Patient)
	}
	return s.UserRole
}
