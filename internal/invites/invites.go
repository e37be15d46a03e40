// Package invites holds the rules of a patient's one-time link: when it may
// be used, what its redemption checks (the date of birth, a few tries), and
// what it opens — a patient session bound to the visit, in the waiting
// room. The HTTP handlers in signaling decode and answer; the rules are
// here, and the SQL in internal/store.
package invites

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/auth/session"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

const (
	// An invite opens this long before the scheduled start.
	Early = time.Hour
	// An unscheduled visit's invite lasts this long after creation.
	AdhocTTL = 12 * time.Hour
	// Wrong dates of birth before the invite locks (the provider re-issues).
	DOBTries = 5
	// MaxSecret is the longest secret worth looking up.
	MaxSecret = 64
)

// Audit actions.
const (
	ActionRedeem = "invite.redeem"
	ActionCheck  = "invite.check"
)

// Window is when an invite for v may be used.
func Window(v store.ScheduledVisit) (from, until time.Time) {
	if v.ScheduledStart != nil && v.ScheduledEnd != nil {
		return v.ScheduledStart.Add(-Early), *v.ScheduledEnd
	}
	return v.CreatedAt, v.CreatedAt.Add(AdhocTTL)
}

// Params configure a Service.
type Params struct {
	store.Env
	// Record appends an audit entry outside a transaction (a refusal); it
	// reports its own failures.
	Record func(context.Context, audit.Event)
}

// Service redeems and checks invites. It holds no state of its own.
type Service struct{ p Params }

// New returns a Service.
func New(p Params) *Service { return &Service{p: p} }

// Patient is the patient session a browser already holds, if any: the
// browser that used an invite may come back with it.
type Patient struct {
	Visit       ids.VisitID
	Participant ids.ParticipantID
}

// Redemption is a patient's attempt to use an invite.
type Redemption struct {
	Secret string
	// DateOfBirth is YYYY-MM-DD, or empty when what was typed is no date.
	DateOfBirth   string
	Current       Patient
	IP, UserAgent string
}

// Admission is what a redemption opens.
type Admission struct {
	Visit       ids.VisitID
	Participant ids.ParticipantID
	// Session is the new patient session's token (its cookie); empty when
	// the browser came back with the session it had.
	Session string
}

// Redeem checks r and, when the invite may be used, puts the patient in the
// visit's waiting room with a new session, in one transaction with its
// audit entry and a change notice. A *Refusal says why not; every refusal
// is audited.
func (s *Service) Redeem(ctx context.Context, r Redemption) (Admission, error) {
	if len(r.Secret) == 0 || len(r.Secret) > MaxSecret {
		return Admission{}, ErrInvalid
	}
	now := s.p.Now()
	ev := audit.Event{Action: ActionRedeem, ActorRole: string(access.Patient), ResourceType: "invite", IP: r.IP, UserAgent: r.UserAgent}
	var a Admission
	var kept *Refusal
	err := s.p.DB.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		a, err = s.redeem(ctx, tx, r, now, &ev)
		var c committed
		if errors.As(err, &c) {
			kept = c.Refusal
			return nil
		}
		return err
	})
	if err == nil && kept != nil {
		return Admission{}, kept // audited in the transaction, with its count
	}
	var refused *Refusal
	if errors.As(err, &refused) {
		ev.Outcome, ev.Reason = audit.Denied, refused.Code
		s.p.Record(ctx, ev)
	}
	if err != nil {
		return Admission{}, err
	}
	return a, nil
}

// committed is a refusal whose transaction commits all the same: what led
// to it (a wrong date of birth) is counted and audited.
type committed struct{ *Refusal }

// redeem is Redeem's transaction. A wrong date of birth commits (its count
// and its audit entry) and refuses; other refusals roll back.
func (s *Service) redeem(ctx context.Context, tx pgx.Tx, r Redemption, now time.Time, ev *audit.Event) (Admission, error) {
	inv, err := store.InviteBySecret(ctx, tx, r.Secret)
	if errors.Is(err, store.ErrNotFound) {
		return Admission{}, ErrInvalid
	}
	if err != nil {
		return Admission{}, err
	}
	// The audit trail names the invitee's role (patient, caregiver,
	// interpreter).
	ev.ResourceID, ev.VisitID, ev.ActorRole = inv.ID, string(inv.VisitID), inv.Role
	v, err := store.ScheduledVisitByID(ctx, tx, inv.VisitID, true)
	if err != nil {
		return Admission{}, err
	}
	ev.PatientID = v.PatientID
	if err := usable(inv, v, now); err != nil {
		return Admission{}, err
	}
	a := Admission{Visit: v.ID}
	if inv.UsedAt != nil {
		// The browser that used it may come back while its session lives;
		// a patient who left the call returns to the waiting room.
		if r.Current.Visit != inv.VisitID || r.Current.Participant == "" {
			return Admission{}, ErrUsed
		}
		a.Participant = r.Current.Participant
		back, err := store.ReturnToWaiting(ctx, tx, v.ID, a.Participant, now)
		if err != nil || !back {
			return a, err
		}
		return a, store.NotifyVisit(ctx, tx, v.ID)
	}
	if err := s.vet(ctx, tx, inv, v, r, now, ev); err != nil {
		return Admission{}, err
	}
	a.Participant = ids.NewParticipantID()
	if a.Session, err = admit(ctx, tx, inv, v, a.Participant, r, now); err != nil {
		return Admission{}, err
	}
	ev.ActorID, ev.Outcome = string(a.Participant), audit.Success
	if err := audit.AppendTx(ctx, tx, *ev); err != nil {
		return Admission{}, err
	}
	return a, store.NotifyVisit(ctx, tx, v.ID)
}

// vet checks what an unused invite's holder must show: a patient or a
// caregiver the patient's date of birth; an interpreter nothing (the
// provider who invited them vetted them; they still wait to be admitted).
// A full visit (MaxPeople) admits no one more.
func (s *Service) vet(ctx context.Context, tx pgx.Tx, inv store.Invite, v store.ScheduledVisit, r Redemption, now time.Time, ev *audit.Event) error {
	n, err := store.PeopleIn(ctx, tx, v.ID)
	if err != nil {
		return err
	}
	if n >= store.MaxPeople {
		return ErrFull
	}
	if !NeedsDOB(inv.Role) {
		return nil
	}
	if v.PatientID == "" {
		return ErrNoPatient
	}
	return s.checkDOB(ctx, tx, inv, v.PatientID, r.DateOfBirth, now, ev)
}

// NeedsDOB reports whether an invite of role asks the patient's date of
// birth: the patient's own and a caregiver's do.
func NeedsDOB(role string) bool { return role != store.InviteeInterpreter }

// usable refuses an invite that cannot be used at now, whoever holds it.
func usable(inv store.Invite, v store.ScheduledVisit, now time.Time) error {
	from, until := Window(v)
	switch {
	case store.Closed(v.Status):
		return ErrVisitEnded
	case inv.RevokedAt != nil: // before locked: a new link was issued
		return ErrRevoked
	case inv.LockedAt != nil:
		return ErrLocked
	case now.Before(from):
		return &Refusal{Code: ErrTooEarly.Code, From: from}
	case !now.Before(until):
		return ErrExpired
	}
	return nil
}

// checkDOB compares the date of birth typed with the patient's. A wrong one
// is counted and audited (and commits: the transaction is not rolled back
// for it), and locks the invite after DOBTries.
func (s *Service) checkDOB(ctx context.Context, tx pgx.Tx, inv store.Invite, patient, dob string, now time.Time, ev *audit.Event) error {
	p, err := store.PatientByID(ctx, tx, patient)
	if err != nil {
		return err
	}
	if dob != "" && dob == p.DateOfBirth {
		return nil
	}
	locked, err := store.InviteDOBFailure(ctx, tx, inv.ID, now, DOBTries)
	if err != nil {
		return err
	}
	ev.Outcome, ev.Reason = audit.Failure, "wrong date of birth"
	if err := audit.AppendTx(ctx, tx, *ev); err != nil {
		return err
	}
	if locked {
		return committed{ErrLocked}
	}
	return committed{&Refusal{Code: ErrWrongDOB.Code, TriesLeft: max(0, DOBTries-inv.DOBFailures-1)}}
}

// admit puts participant in v's waiting room on inv, uses inv, and opens
// the patient's session; it returns the session token.
func admit(ctx context.Context, tx pgx.Tx, inv store.Invite, v store.ScheduledVisit, participant ids.ParticipantID, r Redemption, now time.Time) (string, error) {
	if err := store.AddWaitingInvitee(ctx, tx, v.ID, participant, inv, now); err != nil {
		return "", err
	}
	if err := store.UseInvite(ctx, tx, inv.ID, now); err != nil {
		return "", err
	}
	if v.Status == store.StatusScheduled {
		if err := store.SetVisitStatus(ctx, tx, v.ID, store.StatusWaiting, now); err != nil {
			return "", err
		}
	}
	plain, hash, err := session.NewToken()
	if err != nil {
		return "", err
	}
	err = store.CreateSession(ctx, tx, store.NewSession{IDHash: hash, Kind: store.SessionPatient, VisitID: v.ID,
		ParticipantID: participant, Now: now, IP: r.IP, UserAgent: r.UserAgent})
	return plain, err
}

// Check says whether the invite r.Secret was already used by another
// browser, before its holder types a date of birth, and in which language
// (a catalogue code) the provider sent it. Any other state answers false
// like a fresh link (Redeem says why, once the date is typed), and a link
// that does not exist answers English like an English link, so the check
// reveals nothing about the visit, not even whether the link exists.
// The browser that used it is told false: Redeem lets it back in. A "used"
// answer is audited: someone holds a link already used elsewhere.
func (s *Service) Check(ctx context.Context, r Redemption) (used bool, lang string, err error) {
	const fallback = "en"
	if len(r.Secret) == 0 || len(r.Secret) > MaxSecret {
		return false, fallback, nil
	}
	inv, err := store.PeekInvite(ctx, s.p.DB, r.Secret)
	if errors.Is(err, store.ErrNotFound) {
		return false, fallback, nil
	}
	if err != nil {
		return false, "", err
	}
	if inv.UsedAt == nil || (r.Current.Participant != "" && r.Current.Visit == inv.VisitID) {
		return false, inv.Lang, nil
	}
	s.p.Record(ctx, audit.Event{Action: ActionCheck, ActorRole: string(access.Patient), ResourceType: "invite",
		ResourceID: inv.ID, VisitID: string(inv.VisitID), Outcome: audit.Denied, Reason: ErrUsed.Code,
		IP: r.IP, UserAgent: r.UserAgent})
	return true, inv.Lang, nil
}
