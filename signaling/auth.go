package signaling

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/accounts"
	"github.com/openvisit/openvisit/internal/alerts"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/csrf"
	"github.com/openvisit/openvisit/internal/auth/password"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/auth/throttle"
	"github.com/openvisit/openvisit/internal/auth/totp"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

const totpPurpose = "totp-secret"

// Input limits for the sign-in and enrolment bodies.
const (
	maxEmailLen    = accounts.MaxEmail
	maxPasswordLen = 4 * password.MaxLength // bytes: up to 128 runes of UTF-8
	maxCodeInput   = 32
	maxNameLen     = accounts.MaxName
)

// errBadCredentials is the one answer to every failed sign-in: unknown
// account, wrong password, wrong or replayed code, disabled or locked.
var errBadCredentials = httpx.E(httpx.KindUnauthenticated, "invalid_credentials",
	"Sign-in failed. Check your email, password and authenticator code. After repeated failures the account is locked until an admin unlocks it.")

type loginRequest struct {
	Email        string `json:"email"`
	Password     string `json:"password"`
	Code         string `json:"code"`
	RecoveryCode string `json:"recovery_code"`
}

// SessionView is what a page learns about its session.
type SessionView struct {
	Kind       access.Kind       `json:"kind"`
	UserID     ids.UserID        `json:"user_id,omitempty"`
	Email      string            `json:"email,omitempty"`
	Name       string            `json:"name,omitempty"`
	VisitID    ids.VisitID       `json:"visit_id,omitempty"`
	CSRFToken  string            `json:"csrf_token"`
	IdleEndsAt time.Time         `json:"idle_ends_at"`
	EndsAt     time.Time         `json:"ends_at"`
	IdleSecs   int               `json:"idle_seconds"`
	Now        time.Time         `json:"now"`
	DevOutbox  bool              `json:"dev_outbox,omitempty"` // staff pages link the development mail outbox
	Extra      map[string]string `json:"-"`
}

func (s *Server) login(c *gin.Context) {
	ctx := c.Request.Context()
	if ok, retry := s.ipLimiter.Allow(throttle.IPKey(httpx.ClientAddr(c))); !ok {
		s.auditLog(c, audit.Event{Action: actionLogin, Outcome: audit.Denied, Reason: "rate limited (address)"})
		c.Header("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
		s.abort(c, httpx.E(httpx.KindRateLimited, "rate_limited", "Too many sign-in attempts from this network; wait a moment and try again."))
		return
	}
	var req loginRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if len(req.Email) > maxEmailLen || len(req.Password) > maxPasswordLen || len(req.Code) > maxCodeInput || len(req.RecoveryCode) > maxCodeInput {
		s.abort(c, httpx.E(httpx.KindInvalid, "too_long", "A field is longer than allowed."))
		return
	}
	now := s.p.Now()
	ev := audit.Event{Action: actionLogin, ResourceType: "user"}

	user, err := store.UserByEmail(ctx, s.p.DB, req.Email)
	if errors.Is(err, store.ErrNotFound) || (err == nil && user.PasswordHash == "") {
		s.unknownAccount(c, ev, req.Email, now)
		return
	}
	if err != nil {
		s.abort(c, err)
		return
	}
	ev.ActorID, ev.ActorRole, ev.ResourceID = string(user.ID), user.Role, string(user.ID)
	state := throttle.State{Failures: user.FailedLogins, Locked: user.LockedAt != nil}
	if user.LastFailedAt != nil {
		state.LastFailure = *user.LastFailedAt
	}
	if ok, retry := throttle.Decide(state, now); !ok {
		s.refuseThrottled(c, ev, retry)
		return
	}

	release := s.hashSlot()
	pwOK, rehash, err := password.Verify(user.PasswordHash, req.Password)
	release()
	if err != nil {
		s.abort(c, err)
		return
	}
	step, factorOK, usedRecovery := int64(0), false, false
	if pwOK && user.DisabledAt == nil && user.MFAEnrolledAt != nil {
		step, factorOK, usedRecovery, err = s.checkSecondFactor(c, user, req, now)
		if err != nil {
			s.abort(c, err)
			return
		}
	}
	if !pwOK || !factorOK || user.DisabledAt != nil {
		s.loginFailed(c, ev, user, now, pwOK, step)
		return
	}

	newHash := ""
	if rehash {
		if newHash, err = password.Hash(req.Password, password.DefaultParams); err != nil {
			s.abort(c, err)
			return
		}
	}
	if usedRecovery {
		ev.Reason = "recovery code"
	}
	plain, hash, err := s.openStaffSession(c, user, ev, step, newHash, now)
	if err != nil {
		s.abort(c, err)
		return
	}
	http.SetCookie(c.Writer, session.Cookie(SessionCookie, plain, s.p.Auth.Absolute))
	view, err := s.viewFor(access.Principal{Kind: access.Kind(user.Role), UserID: user.ID, SessionHash: hash}, user, now, now)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, view)
}

// unknownAccount refuses a sign-in to an address with no account (or none
// set up) after the same work, with the same answer and the same
// throttling as a real account, so the answers do not tell them apart.
func (s *Server) unknownAccount(c *gin.Context, ev audit.Event, email string, now time.Time) {
	key := store.NormalizeEmail(email)
	if ok, retry := throttle.Decide(s.unknownAccounts.get(key), now); !ok {
		s.refuseThrottled(c, ev, retry)
		return
	}
	release := s.hashSlot()
	password.DummyVerify()
	release()
	s.unknownAccounts.fail(key, now)
	ev.Outcome, ev.Reason = audit.Failure, "unknown account"
	s.auditLog(c, ev)
	s.abort(c, errBadCredentials)
}

// openStaffSession records a successful sign-in of u (the TOTP step used,
// a new password hash when the parameters changed) and opens a staff
// session, with the audit entry ev, in one transaction; it returns the
// session's token and its hash.
func (s *Server) openStaffSession(c *gin.Context, u store.User, ev audit.Event, step int64, newHash string, now time.Time) (string, []byte, error) {
	ctx := c.Request.Context()
	plain, hash, err := session.NewToken()
	if err != nil {
		return "", nil, err
	}
	ev.Outcome, ev.IP, ev.UserAgent = audit.Success, httpx.ClientIP(c), httpx.UserAgent(c)
	err = s.p.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		if err := store.RecordLoginSuccess(ctx, tx, u.ID, step, newHash); err != nil {
			return err
		}
		return store.CreateSession(ctx, tx, store.NewSession{
			IDHash: hash, Kind: store.SessionStaff, UserID: u.ID, Now: now,
			IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c),
		})
	})
	return plain, hash, err
}

// checkSecondFactor validates the TOTP code (never a step already used) or
// burns a recovery code.
func (s *Server) checkSecondFactor(c *gin.Context, u store.User, req loginRequest, now time.Time) (step int64, ok, recovery bool, err error) {
	ctx := c.Request.Context()
	if req.RecoveryCode != "" {
		hashes, err := store.RecoveryCodeHashes(ctx, s.p.DB, u.ID)
		if err != nil {
			return 0, false, false, err
		}
		i, match := totp.MatchRecoveryCode(req.RecoveryCode, hashes)
		if !match {
			return 0, false, false, nil
		}
		used, err := store.UseRecoveryCode(ctx, s.p.DB, u.ID, hashes[i])
		if err == nil && used {
			s.auditLog(c, audit.Event{ActorID: string(u.ID), ActorRole: u.Role, Action: actionRecoveryUsed,
				ResourceType: "user", ResourceID: string(u.ID), Outcome: audit.Success})
		}
		return 0, used, true, err
	}
	secret, err := s.p.Sealer.Open(totpPurpose, u.TOTPSecretEnc)
	if err != nil {
		return 0, false, false, err
	}
	step, ok = totp.Validate(string(secret), strings.ReplaceAll(req.Code, " ", ""), now, u.TOTPLastStep)
	return step, ok, false, nil
}

func (s *Server) refuseThrottled(c *gin.Context, ev audit.Event, retry time.Duration) {
	ev.Outcome, ev.Reason = audit.Denied, "throttled"
	s.auditLog(c, ev)
	if retry != throttle.Forever {
		c.Header("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
	}
	s.abort(c, errBadCredentials)
}

func (s *Server) loginFailed(c *gin.Context, ev audit.Event, u store.User, now time.Time, pwOK bool, step int64) {
	ctx := c.Request.Context()
	if pwOK && step > 0 {
		// The code was right but sign-in failed anyway: still burn the step.
		_ = store.SetTOTPStep(ctx, s.p.DB, u.ID, step)
	}
	n, locked, err := store.RecordLoginFailure(ctx, s.p.DB, u.ID, now, throttle.LockAfter)
	if err != nil {
		s.abort(c, err)
		return
	}
	ev.Outcome = audit.Failure
	switch {
	case u.DisabledAt != nil:
		ev.Reason = "account disabled"
	case !pwOK:
		ev.Reason = "wrong password"
	default:
		ev.Reason = "wrong second factor"
	}
	s.auditLog(c, ev)
	if locked && u.LockedAt == nil {
		s.auditLog(c, audit.Event{ActorID: string(u.ID), ActorRole: u.Role, Action: actionLock, ResourceType: "user",
			ResourceID: string(u.ID), Outcome: audit.Success, Reason: strconv.Itoa(n) + " consecutive failures"})
		if _, err := alerts.Raise(ctx, s.p.DB, alerts.KindAccountLocked, string(u.ID),
			"account locked after "+strconv.Itoa(n)+" failed sign-ins", now); err != nil {
			s.log.Error("raise alert", "err", err)
		}
	}
	s.abort(c, errBadCredentials)
}

func (s *Server) viewFor(p access.Principal, u store.User, created, lastSeen time.Time) (SessionView, error) {
	policy := s.staffPolicy()
	if p.Kind == access.Patient {
		policy = s.patientPolicy()
	}
	tok, err := csrfToken(s, p.SessionHash)
	if err != nil {
		return SessionView{}, err
	}
	now := s.p.Now()
	return SessionView{
		Kind: p.Kind, UserID: u.ID, Email: u.Email, Name: u.Name, VisitID: p.VisitID, CSRFToken: tok,
		IdleEndsAt: policy.ExpiresAt(created, lastSeen), EndsAt: created.Add(policy.Absolute),
		IdleSecs: int(policy.Idle.Seconds()), Now: now, DevOutbox: s.p.Outbox != nil && p.IsStaff(),
	}, nil
}

// sessionInfo answers GET /auth/session (passive: does not extend the
// session) and POST /auth/keepalive (the user is active: it does).
func (s *Server) sessionInfo(c *gin.Context) {
	p := principal(c)
	sess := c.MustGet(sessionKey).(store.Session)
	lastSeen := sess.LastSeenAt
	if c.Request.Method == http.MethodPost {
		lastSeen = s.p.Now()
	}
	var u store.User
	if p.IsStaff() {
		var err error
		if u, err = store.UserByID(c.Request.Context(), s.p.DB, p.UserID, false); err != nil {
			s.abort(c, err)
			return
		}
	}
	view, err := s.viewFor(p, u, sess.CreatedAt, lastSeen)
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, view)
}

func (s *Server) logout(c *gin.Context) {
	p := principal(c)
	if _, err := store.RevokeSession(c.Request.Context(), s.p.DB, p.SessionHash, s.p.Now(), "logout"); err != nil {
		s.abort(c, err)
		return
	}
	s.auditLog(c, audit.Event{ActorID: p.ActorID(), ActorRole: string(p.Kind), Action: actionLogout,
		ResourceType: "session", VisitID: string(p.VisitID), Outcome: audit.Success})
	http.SetCookie(c.Writer, session.ClearCookie(SessionCookie))
	c.JSON(http.StatusOK, gin.H{"status": "signed_out"})
}

func (s *Server) logoutAll(c *gin.Context) {
	p := principal(c)
	n, err := store.RevokeUserSessions(c.Request.Context(), s.p.DB, p.UserID, s.p.Now(), "logout everywhere")
	if err != nil {
		s.abort(c, err)
		return
	}
	s.auditLog(c, audit.Event{ActorID: p.ActorID(), ActorRole: string(p.Kind), Action: actionLogoutAll,
		ResourceType: "user", ResourceID: string(p.UserID), Outcome: audit.Success, Reason: strconv.Itoa(n) + " sessions"})
	http.SetCookie(c.Writer, session.ClearCookie(SessionCookie))
	c.JSON(http.StatusOK, gin.H{"status": "signed_out", "sessions": n})
}

type setupRequest struct {
	Token    string `json:"token"`
	Password string `json:"password"`
	Code     string `json:"code"`
}

var errSetupLink = httpx.E(httpx.KindNotFound, "link_invalid", "This setup link is not valid, has expired, or was already used. Ask your admin for a new one.")

// setupBegin checks a setup link and starts TOTP enrolment: a new secret
// waits, sealed, for its first valid code.
func (s *Server) setupBegin(c *gin.Context) {
	ctx := c.Request.Context()
	var req setupRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if len(req.Token) == 0 || len(req.Token) > 64 {
		s.abort(c, errSetupLink)
		return
	}
	link, err := store.SetupLinkBySecret(ctx, s.p.DB, req.Token, s.p.Now(), false)
	if errors.Is(err, store.ErrNotFound) {
		s.abort(c, errSetupLink)
		return
	}
	if err != nil {
		s.abort(c, err)
		return
	}
	u, err := store.UserByID(ctx, s.p.DB, link.UserID, false)
	if err != nil {
		s.abort(c, err)
		return
	}
	// A reload of the setup page shows the same pending secret, so a code
	// already scanned keeps working.
	var secret string
	if u.TOTPPendingEnc != nil {
		if b, err := s.p.Sealer.Open(totpPurpose, u.TOTPPendingEnc); err == nil {
			secret = string(b)
		}
	}
	if secret == "" {
		if secret, err = totp.NewSecret(); err != nil {
			s.abort(c, err)
			return
		}
		sealed, err := s.p.Sealer.Seal(totpPurpose, []byte(secret))
		if err != nil {
			s.abort(c, err)
			return
		}
		if err := store.SetPendingTOTP(ctx, s.p.DB, u.ID, sealed); err != nil {
			s.abort(c, err)
			return
		}
	}
	uri := totp.URI(secret, u.Email)
	png, err := totp.QRPNG(uri)
	if err != nil {
		s.abort(c, err)
		return
	}
	s.auditLog(c, audit.Event{ActorID: string(u.ID), ActorRole: u.Role, Action: actionMFAEnrolBegin,
		ResourceType: "user", ResourceID: string(u.ID), Outcome: audit.Success, Reason: link.Purpose})
	c.JSON(http.StatusOK, gin.H{
		"expires_at": link.ExpiresAt,
		"email":      u.Email, "purpose": link.Purpose, "needs_password": link.Purpose == store.PurposeInvite || u.PasswordHash == "",
		"otpauth_uri": uri, "secret": secret, "qr_png": "data:image/png;base64," + base64.StdEncoding.EncodeToString(png),
	})
}

// setupComplete sets the password (for invites) and confirms TOTP with a
// first code, returning single-use recovery codes. Any failure changes
// nothing and leaves the link usable.
func (s *Server) setupComplete(c *gin.Context) {
	ctx := c.Request.Context()
	var req setupRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	if len(req.Token) == 0 || len(req.Token) > 64 || len(req.Password) > maxPasswordLen || len(req.Code) > maxCodeInput {
		s.abort(c, errSetupLink)
		return
	}
	now := s.p.Now()
	var codes []string
	var u store.User
	err := s.p.DB.Tx(ctx, func(tx pgx.Tx) error {
		// The user's row first, then the link: the order a disable takes,
		// so the two cannot deadlock and a disabled user's link never
		// completes (the store refuses it).
		link, err := store.SetupLinkBySecret(ctx, tx, req.Token, now, false)
		if errors.Is(err, store.ErrNotFound) {
			return errSetupLink
		}
		if err != nil {
			return err
		}
		if u, err = store.UserByID(ctx, tx, link.UserID, true); err != nil {
			return err
		}
		link, err = store.SetupLinkBySecret(ctx, tx, req.Token, now, true)
		if errors.Is(err, store.ErrNotFound) {
			return errSetupLink
		}
		if err != nil {
			return err
		}
		hash := u.PasswordHash
		if link.Purpose == store.PurposeInvite || hash == "" {
			if err := password.Check(req.Password, u.Email); err != nil {
				return httpx.E(httpx.KindInvalid, "weak_password", passwordMessage(err))
			}
			if hash, err = password.Hash(req.Password, password.DefaultParams); err != nil {
				return err
			}
		}
		if u.TOTPPendingEnc == nil {
			return httpx.E(httpx.KindConflict, "enrolment_not_started", "Start again from the setup link.")
		}
		secret, err := s.p.Sealer.Open(totpPurpose, u.TOTPPendingEnc)
		if err != nil {
			return err
		}
		step, ok := totp.Validate(string(secret), strings.ReplaceAll(req.Code, " ", ""), now, 0)
		if !ok {
			return httpx.E(httpx.KindInvalid, "wrong_code", "That code is not right. Check your authenticator app's clock and try the next code.")
		}
		var hashes [][]byte
		if codes, hashes, err = totp.NewRecoveryCodes(10); err != nil {
			return err
		}
		if err := store.CompleteSetup(ctx, tx, u.ID, hash, step, hashes, now); err != nil {
			return err
		}
		return audit.AppendTx(ctx, tx, audit.Event{ActorID: string(u.ID), ActorRole: u.Role, Action: actionMFAEnrol,
			ResourceType: "user", ResourceID: string(u.ID), Outcome: audit.Success, Reason: link.Purpose,
			IP: httpx.ClientIP(c), UserAgent: httpx.UserAgent(c)})
	})
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"email": u.Email, "recovery_codes": codes})
}

func passwordMessage(err error) string {
	switch {
	case errors.Is(err, password.ErrTooShort):
		return "Use at least 12 characters; a few unrelated words make a strong password."
	case errors.Is(err, password.ErrTooLong):
		return "Use at most 128 characters."
	default:
		return "That password is too common or too easy to guess; choose another."
	}
}

// throttleMemory keeps throttle state for sign-in attempts at addresses
// that have no account, bounded in size.
type throttleMemory struct {
	mu  sync.Mutex
	m   map[string]throttle.State
	max int
}

func newThrottleMemory(max int) *throttleMemory {
	return &throttleMemory{m: make(map[string]throttle.State), max: max}
}

func (t *throttleMemory) get(k string) throttle.State {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[k]
}

func (t *throttleMemory) fail(k string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[k]; !ok && len(t.m) >= t.max {
		for old := range t.m { // drop an arbitrary entry to stay bounded
			delete(t.m, old)
			break
		}
	}
	t.m[k] = throttle.OnFailure(t.m[k], now)
}

func csrfToken(s *Server, sessionHash []byte) (string, error) {
	return csrf.Token(s.p.Sealer.MACKey(), sessionHash)
}

// hashSlot waits for one of a few argon2 slots: each hash costs ~19 MiB and
// tens of milliseconds, so a burst of sign-ins must queue, not exhaust memory.
func (s *Server) hashSlot() (release func()) {
	s.hashSlots <- struct{}{}
	return func() { <-s.hashSlots }
}

// CSRFToken returns the CSRF token of the session with the given hash (for
// tests that build requests without a page).
func (s *Server) CSRFToken(sessionHash []byte) string {
	t, _ := csrfToken(s, sessionHash)
	return t
}
