package visits

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/invites"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/token"
)

// ErrNotAdmitted: a patient reaches media only once admitted from the
// waiting room.
var ErrNotAdmitted = errors.New("visits: patient not admitted")

// Joining is a request to join a visit's call: a provider as themselves
// (Provider), or a patient as the participant their session names
// (Patient). Neither: nobody who may join (store.ErrNotFound).
type Joining struct {
	Visit    ids.VisitID
	Provider ids.UserID
	Patient  ids.ParticipantID
	// Event carries the audit entry's actor fields.
	Event audit.Event
}

// Seat is where a join puts its participant: the token's grant (visit,
// participant, role, subject and media node), the node's WebSocket URL, its
// TURN relay's URLs (none without one), and until when relay credentials
// last (the visit's end and an hour, or half a day for an unscheduled
// visit).
type Seat struct {
	Grant      token.Grant
	URL        string
	RelayURLs  []string
	RelayUntil time.Time
	// Token is the join token Join's mint returned.
	Token string
}

// Mint mints the join token of a seat in tx (and records it there): the
// control plane's minter.
type Mint func(tx pgx.Tx, s Seat) (string, error)

// Join seats j in its visit and mints its token, in one transaction with
// its audit entry: the visit must not have ended; a provider gets their
// participant (made at their first join), a patient must be admitted; the
// visit's node is the one it is on, or a live one it moves to
// (Placement.ForJoin).
func (p Placement) Join(ctx context.Context, db *store.DB, j Joining, now time.Time, mint Mint) (Seat, error) {
	var seat Seat
	ev := j.Event
	err := db.Change(ctx, &ev, func(tx pgx.Tx) error {
		v, err := store.VisitByID(ctx, tx, j.Visit)
		if err != nil {
			return err
		}
		if store.Closed(v.Status) {
			return ErrVisitClosed
		}
		g := token.Grant{Visit: j.Visit}
		if g.Node, seat.URL, err = p.ForJoin(ctx, tx, j.Visit, v.NodeID); err != nil {
			return err
		}
		if seat.RelayURLs, err = store.NodeRelayURLs(ctx, tx, g.Node); err != nil {
			return err
		}
		if g.Participant, g.Role, g.Subject, err = participant(ctx, tx, j); err != nil {
			return err
		}
		seat.Grant, seat.RelayUntil = g, now.Add(invites.AdhocTTL)
		if v.ScheduledEnd != nil && v.ScheduledEnd.After(now) {
			seat.RelayUntil = v.ScheduledEnd.Add(time.Hour)
		}
		if seat.Token, err = mint(tx, seat); err != nil {
			return err
		}
		return store.MarkJoined(ctx, tx, g.Participant, now)
	})
	return seat, err
}

// participant is who j joins as: its participant, role and subject.
func participant(ctx context.Context, tx pgx.Tx, j Joining) (ids.ParticipantID, token.Role, string, error) {
	switch {
	case j.Provider != "":
		pid, err := store.ProviderParticipant(ctx, tx, j.Visit, j.Provider, ids.NewParticipantID())
		return pid, token.RoleProvider, string(j.Provider), err
	case j.Patient != "":
		pt, err := store.ParticipantByID(ctx, tx, j.Visit, j.Patient)
		if err != nil {
			return "", "", "", err
		}
		if pt.State != Admitted {
			return "", "", "", ErrNotAdmitted
		}
		// The token carries the invitee's role (patient, caregiver or
		// interpreter), which the participants table keeps.
		return j.Patient, token.Role(pt.Role), string(j.Patient), nil
	}
	return "", "", "", store.ErrNotFound
}
