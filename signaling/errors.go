package signaling

import (
	"errors"

	"github.com/openvisit/openvisit/internal/accounts"
	"github.com/openvisit/openvisit/internal/breakglass"
	"github.com/openvisit/openvisit/internal/chat"
	"github.com/openvisit/openvisit/internal/fhir"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/incidents"
	"github.com/openvisit/openvisit/internal/invites"
	"github.com/openvisit/openvisit/internal/patients"
	"github.com/openvisit/openvisit/internal/recordings"
	"github.com/openvisit/openvisit/internal/signin"
	"github.com/openvisit/openvisit/internal/visits"
	"github.com/openvisit/openvisit/internal/webhooks"
)

// inviteErrors are the invites domain's refusals as the patient reads them,
// by refusal code; the kinds map to status in httpx, the one table.
var inviteErrors = map[string]*httpx.Error{
	invites.ErrInvalid.Code:    httpx.E(httpx.KindNotFound, invites.ErrInvalid.Code, "This link is not valid. Ask your provider for a new one."),
	invites.ErrRevoked.Code:    httpx.E(httpx.KindNotFound, invites.ErrRevoked.Code, "This link was withdrawn. Ask your provider for a new one."),
	invites.ErrUsed.Code:       httpx.E(httpx.KindConflict, invites.ErrUsed.Code, "This link was already used on another device. Ask your provider for a new one."),
	invites.ErrLocked.Code:     httpx.E(httpx.KindForbidden, invites.ErrLocked.Code, "Too many wrong dates of birth. Ask your provider for a new link."),
	invites.ErrVisitEnded.Code: httpx.E(httpx.KindNotFound, invites.ErrVisitEnded.Code, "This visit has ended."),
	invites.ErrExpired.Code:    httpx.E(httpx.KindNotFound, invites.ErrExpired.Code, "This link has expired. Ask your provider for a new one."),
	invites.ErrNoPatient.Code:  httpx.E(httpx.KindConflict, invites.ErrNoPatient.Code, "This visit has no patient yet. Ask your provider."),
	invites.ErrWrongDOB.Code:   httpx.E(httpx.KindInvalid, invites.ErrWrongDOB.Code, "That date of birth does not match our records. Check it and try again."),
	invites.ErrTooEarly.Code:   httpx.E(httpx.KindConflict, invites.ErrTooEarly.Code, ""),
	invites.ErrFull.Code:       httpx.E(httpx.KindConflict, invites.ErrFull.Code, "This visit is full. Ask your provider."),
}

// domainErrors are the domains' sentinel errors as the client reads them.
var domainErrors = []struct {
	err  error
	http *httpx.Error
}{
	{breakglass.ErrBadReason, httpx.E(httpx.KindInvalid, "bad_reason", "Write why you need emergency access (20 to 2000 characters).")},
	{webhooks.ErrBadURL, httpx.E(httpx.KindInvalid, "bad_webhook_url", "The URL must be an absolute https:// URL (up to 2048 characters, no user or password).")},
	{webhooks.ErrBadKinds, httpx.E(httpx.KindInvalid, "bad_event_kinds", "Choose one or more event kinds: visit.scheduled, patient.waiting, visit.started, visit.ended, visit.no_show, recording.available.")},
	{accounts.ErrBadEmail, httpx.E(httpx.KindInvalid, "bad_email", "Enter a valid email address.")},
	{accounts.ErrBadName, httpx.E(httpx.KindInvalid, "bad_name", "The name is too long.")},
	{accounts.ErrBadRole, httpx.E(httpx.KindInvalid, "bad_role", "Role must be provider or admin.")},
	{accounts.ErrEmailTaken, httpx.E(httpx.KindConflict, "email_taken", "A user with that email already exists.")},
	{accounts.ErrSelf, httpx.E(httpx.KindConflict, "self", "You cannot do this to your own account; ask another admin.")},
	{incidents.ErrBadIncident, httpx.E(httpx.KindInvalid, "bad_incident", "A title (up to 200 characters) is required; the description is at most 10000.")},
	{incidents.ErrBadDiscovered, httpx.E(httpx.KindInvalid, "bad_discovered_at", "The discovery time must be an RFC 3339 time, not in the future.")},
	{incidents.ErrBadStatus, httpx.E(httpx.KindInvalid, "bad_status", "Status is open, notified or closed.")},
	{incidents.ErrBadScope, httpx.E(httpx.KindInvalid, "bad_scope", "Give either actor_id or kek_id.")},
	{incidents.ErrBadRange, httpx.E(httpx.KindInvalid, "bad_scope", "from and to must be RFC 3339 times, from before to.")},
	{recordings.ErrNoRequest, httpx.E(httpx.KindConflict, "no_request", "Recording has not been requested for this visit.")},
	{recordings.ErrNoConsent, httpx.E(httpx.KindConflict, "consent_required", "The patient has not consented to recording.")},
	{recordings.ErrNotGiven, httpx.E(httpx.KindConflict, "no_consent", "There is no consent to withdraw.")},
	{recordings.ErrVisitEnded, httpx.E(httpx.KindConflict, "visit_closed", "This visit has ended.")},
	{recordings.ErrAuditDown, errRecAuditDown},
	{visits.ErrVisitClosed, errVisitClosed},
	{visits.ErrNotAdmitted, httpx.E(httpx.KindConflict, "not_admitted", "Please wait: your provider will admit you.")},
	{visits.ErrNoMediaNode, httpx.E(httpx.KindUnavailable, "no_media_node", "No media server is available for this visit right now.")},
	{visits.ErrBadDuration, httpx.E(httpx.KindInvalid, "bad_duration", "A visit lasts 5 to 240 minutes.")},
	{visits.ErrInPast, httpx.E(httpx.KindInvalid, "in_the_past", "That time is in the past.")},
	{visits.ErrTooFarAhead, httpx.E(httpx.KindInvalid, "too_far_ahead", "Visits can be scheduled up to a year ahead.")},
	{visits.ErrReasonTooLong, httpx.E(httpx.KindInvalid, "bad_reason", "The reason is at most 500 characters.")},
	{visits.ErrUnknownPatient, httpx.E(httpx.KindInvalid, "unknown_patient", "No such patient among yours; create the patient first.")},
	{visits.ErrOverlap, httpx.E(httpx.KindConflict, "overlap", "You already have a visit at that time.")},
	{visits.ErrNotScheduled, httpx.E(httpx.KindConflict, "not_scheduled", "Only a scheduled visit that has not started can be moved.")},
	{visits.ErrNotCancellable, httpx.E(httpx.KindConflict, "not_cancellable", "Only a visit that has not started can be cancelled.")},
	{visits.ErrBadRange, httpx.E(httpx.KindInvalid, "bad_range", "The range must be positive and at most 62 days.")},
	{visits.ErrNotNoShow, httpx.E(httpx.KindConflict, "not_no_show", "A visit is a no-show only after its start, if the patient never arrived.")},
	{signin.ErrBadCredentials, errBadCredentials},
	{signin.ErrTooLong, httpx.E(httpx.KindInvalid, "too_long", "A field is longer than allowed.")},
	{signin.ErrBadLink, errSetupLink},
	{signin.ErrNotStarted, httpx.E(httpx.KindConflict, "enrolment_not_started", "Start again from the setup link.")},
	{signin.ErrPasskeysOff, httpx.E(httpx.KindUnavailable, "passkeys_unavailable", "Passkeys are not available on this server.")},
	{signin.ErrCeremony, httpx.E(httpx.KindInvalid, "passkey_failed", "The passkey could not be verified, or the request took too long. Try again.")},
	{signin.ErrPasskeyName, httpx.E(httpx.KindInvalid, "bad_passkey_name", "Name the passkey (1 to 64 characters).")},
	{signin.ErrTooManyPasskeys, httpx.E(httpx.KindConflict, "too_many_passkeys", "You have the most passkeys allowed; remove one first.")},
	{signin.ErrWrongCode, httpx.E(httpx.KindInvalid, "wrong_code", "That code is not right. Check your authenticator app's clock and try the next code.")},
	{patients.ErrBadName, httpx.E(httpx.KindInvalid, "bad_name", "Enter the patient's name (up to 200 characters).")},
	{patients.ErrBadDOB, httpx.E(httpx.KindInvalid, "bad_date_of_birth", "Enter the date of birth as YYYY-MM-DD.")},
	{patients.ErrBadEmail, httpx.E(httpx.KindInvalid, "bad_email", "Enter a valid email address or leave it empty.")},
	{patients.ErrBadPhone, httpx.E(httpx.KindInvalid, "bad_phone", "Enter a phone number with digits, spaces and + ( ) - . only.")},
	{patients.ErrBadState, httpx.E(httpx.KindInvalid, "bad_state", "Enter the two-letter state of residence, e.g. CA.")},
	{fhir.ErrNotFound, errNotFound},
	{fhir.ErrBadAppointment, httpx.E(httpx.KindInvalid, "bad_appointment", "An Appointment needs status booked, start, end, one Patient and one Practitioner participant.")},
	{fhir.ErrNotProvider, httpx.E(httpx.KindInvalid, "not_a_provider", "The Practitioner is not an active OpenVisit provider.")},
	{fhir.ErrBadSearch, httpx.E(httpx.KindInvalid, "bad_search", "Unsupported or malformed search parameters; see the CapabilityStatement.")},
	{fhir.ErrOnlyCancel, httpx.E(httpx.KindInvalid, "only_cancel", "Only a change of status to cancelled is supported.")},
	{patients.ErrBadMRN, httpx.E(httpx.KindInvalid, "bad_mrn", "Enter the medical record number as system|value.")},
	{patients.ErrBadQuery, httpx.E(httpx.KindInvalid, "bad_query", "The search is too long.")},
	{patients.ErrBadLookup, httpx.E(httpx.KindInvalid, "bad_lookup", "Give a name and a date of birth (YYYY-MM-DD).")},
	{patients.ErrNotRecorded, httpx.E(httpx.KindUnavailable, "audit_unavailable", "The audit log cannot be written; access is refused.")},
	{chat.ErrEmpty, httpx.E(httpx.KindInvalid, "chat_empty", "Write a message first.")},
	{chat.ErrTooLong, httpx.E(httpx.KindInvalid, "chat_too_long", "A message is at most 2000 characters; shorten it or send it in parts.")},
	{chat.ErrBadText, httpx.E(httpx.KindInvalid, "chat_bad_text", "The message holds characters that cannot be sent.")},
	{chat.ErrNotInCall, httpx.E(httpx.KindConflict, "not_in_call", "You can send messages once you are in the call.")},
	{chat.ErrVisitClosed, errVisitClosed},
	{breakglass.ErrNotNeeded, httpx.E(httpx.KindConflict, "not_needed", "This is your own visit; emergency access is not needed.")},
}

// domainError turns a domain package's error into what the client is
// told: its kind (hence its status, in httpx), a stable code, a message and
// details. Errors of no domain pass through. Adding a domain error means
// adding its line here.
func domainError(err error) error {
	var r *invites.Refusal
	if errors.As(err, &r) {
		return inviteError(r)
	}
	if errors.Is(err, signin.ErrWeakPassword) {
		return httpx.Wrap(httpx.KindInvalid, "weak_password", passwordMessage(err), err)
	}
	var ws *visits.WrongStateError
	if errors.As(err, &ws) {
		return httpx.E(httpx.KindConflict, "wrong_state", "That participant is "+ws.State+".")
	}
	for _, d := range domainErrors {
		if errors.Is(err, d.err) {
			e := *d.http
			e.Err = err // for the log; the client reads the kind, code and message
			return &e
		}
	}
	return err
}

func inviteError(r *invites.Refusal) error {
	e := *inviteErrors[r.Code]
	switch r.Code {
	case invites.ErrTooEarly.Code:
		e.Message = "It is too early to join. The link opens at " + r.From.UTC().Format("15:04 MST on Mon 2 Jan") + ", one hour before the visit."
		e.Details = map[string]any{"usable_from": r.From}
	case invites.ErrWrongDOB.Code:
		e.Details = map[string]any{"tries_left": r.TriesLeft}
	}
	return &e
}
