package signaling

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/recordings"
	"github.com/openvisit/openvisit/internal/sso"
	"github.com/openvisit/openvisit/internal/store"
)

// apiOp documents one /api/v1 route for the OpenAPI description
// (openapi.go). The request body is not declared here: it is the type the
// route decodes (requestBodies), reflected. The answer is a prototype of
// what the handler writes — a view struct, or a gin.H with one prototype
// value per member, as the handler builds it — and is reflected too, so a
// changed view changes the description; TestAPIResponsesMatchSpec
// (internal/app) checks every answer the API tests receive against it.
type apiOp struct {
	summary string
	status  int // the success status
	answer  any // prototype of the JSON answer; nil when the answer is not JSON
	// media is the answer's content type when it is not JSON (an event
	// stream, a file); "" for JSON. noBody: the answer is a redirect.
	media  []string
	noBody bool
	query  []string // query parameters the handler reads
	// also: other success statuses with the same answer (206 Partial
	// Content). mediaErrors: the handler's own errors have no body and
	// carry their code in X-Error-Code (recordings.go mediaError), for a
	// media element; the middleware's are the JSON Error.
	also        []int
	mediaErrors bool
	// form: the route reads an application/x-www-form-urlencoded body
	// with these fields (a name ending in "?" is optional) instead of
	// a JSON body of requestBodies.
	form []string
}

// Prototypes of answers that many routes share.
var (
	statusAnswer = gin.H{"status": ""}
	setupAnswer  = gin.H{"status": "", "setup_link": "", "setup_link_expires_at": time.Time{}}
	auditFilters = []string{"actor", "patient", "visit", "action", "outcome", "from", "to", "before_seq", "limit"}
)

func ok(summary string, answer any, query ...string) apiOp {
	return apiOp{summary: summary, status: http.StatusOK, answer: answer, query: query}
}

func created(summary string, answer any) apiOp {
	return apiOp{summary: summary, status: http.StatusCreated, answer: answer}
}

// apiOps is every /api/v1 route's documentation, keyed as the route
// tables key their rules: "METHOD /path/:param". A route added to a table
// in routes.go needs its line here; TestOpenAPIMatchesRoutes names the
// missing ones.
func apiOps() map[string]apiOp {
	const v, pk = "/api/v1/visits/:visit_id", "/api/v1/account/passkeys"
	ops := map[string]apiOp{
		key("GET", "/api/v1/openapi.json"): ok("This description (OpenAPI 3.1).", json.RawMessage(nil)),
		key("POST", "/api/v1/demo/redeem"): ok("Redeem a one-time demo link (demo mode only).", JoinGrant{}),

		key("POST", "/api/v1/auth/login"):         ok("Sign in with email, password and a second factor.", SessionView{}),
		key("POST", "/api/v1/auth/passkey/begin"): ok("Begin a passkey ceremony (WebAuthn options).", json.RawMessage(nil)),
		key("POST", "/api/v1/auth/passkey/login"): ok("Sign in with a passkey.", SessionView{}),
		key("GET", "/api/v1/auth/session"):        ok("The caller's session.", SessionView{}),
		key("POST", "/api/v1/auth/keepalive"):     ok("Keep the session alive; answers it.", SessionView{}),
		key("POST", "/api/v1/auth/logout"):        ok("Sign out of this session.", statusAnswer),
		key("POST", "/api/v1/auth/logout-all"):    ok("Sign out of every session of this user.", gin.H{"status": "", "sessions": 0}),
		key("POST", "/api/v1/setup/begin"):        ok("Open a setup link: the TOTP secret to enrol.", setupBeginAnswer),
		key("POST", "/api/v1/setup/complete"):     ok("Finish enrolment: password and first TOTP code.", gin.H{"email": "", "recovery_codes": []string{}}),
		key("GET", "/api/v1/auth/oidc/issuers"):   ok("The identity providers to offer on the sign-in page.", gin.H{"issuers": []sso.Button{}, "local_passwords": ""}),
		key("GET", "/api/v1/auth/oidc/:issuer_id/start"): {summary: "Start signing in at an identity provider (redirect).",
			status: http.StatusSeeOther, noBody: true},
		key("GET", "/api/v1/auth/oidc/callback"): {summary: "The identity provider's redirect back (redirect to a page).",
			status: http.StatusSeeOther, noBody: true, query: []string{"code", "state", "error"}},
		key("POST", "/api/v1/auth/oidc/second-factor"): ok("The local second factor after an identity provider.", SessionView{}),

		key("GET", pk):                            ok("The caller's passkeys.", gin.H{"passkeys": []PasskeyView{}}),
		key("POST", pk+"/begin"):                  ok("Begin adding a passkey (WebAuthn options).", json.RawMessage(nil)),
		key("POST", pk):                           created("Add a passkey.", PasskeyView{}),
		key("POST", pk+"/:passkey_id/rename"):     ok("Rename a passkey.", statusAnswer),
		key("POST", pk+"/:passkey_id/remove"):     ok("Remove a passkey.", statusAnswer),
		key("GET", "/api/v1/admin/users"):         ok("Every staff user.", gin.H{"users": []UserView{}}),
		key("GET", "/api/v1/admin/users/dormant"): ok("Staff users not signed in for days.", gin.H{"days": 0, "users": []UserView{}}, "days"),
		key("POST", "/api/v1/admin/users"): created("Invite a staff user: answers the setup link.",
			gin.H{"user": UserView{}, "setup_link": "", "setup_link_expires_at": time.Time{}}),
		key("POST", "/api/v1/admin/users/:user_id/role"):                 ok("Change a user's role.", statusAnswer),
		key("POST", "/api/v1/admin/users/:user_id/disable"):              ok("Disable a user.", statusAnswer),
		key("POST", "/api/v1/admin/users/:user_id/enable"):               ok("Enable a user.", statusAnswer),
		key("POST", "/api/v1/admin/users/:user_id/unlock"):               ok("Unlock a locked user.", statusAnswer),
		key("POST", "/api/v1/admin/users/:user_id/reset-mfa"):            ok("Reset a user's second factor: a new setup link.", setupAnswer),
		key("GET", "/api/v1/admin/alerts"):                               ok("Security alerts.", gin.H{"alerts": []store.Alert{}}),
		key("POST", "/api/v1/admin/alerts/:alert_id/ack"):                ok("Acknowledge an alert.", statusAnswer),
		key("GET", "/api/v1/admin/break-glass"):                          ok("Emergency access grants.", gin.H{"grants": []store.BreakGlass{}}),
		key("POST", "/api/v1/admin/break-glass/:grant_id/review"):        ok("Review an emergency access grant.", statusAnswer),
		key("GET", "/api/v1/admin/audit"):                                ok("Search the audit trail.", gin.H{"entries": []EntryView{}, "has_more": false}, auditFilters...),
		key("GET", "/api/v1/admin/patients"):                             ok("Find patients by name and date of birth.", gin.H{"patients": []store.Patient{}}, "name", "date_of_birth"),
		key("GET", "/api/v1/admin/incidents"):                            ok("Breach incidents.", gin.H{"incidents": []store.Incident{}, "now": time.Time{}}),
		key("POST", "/api/v1/admin/incidents"):                           created("Open a breach incident.", store.Incident{}),
		key("POST", "/api/v1/admin/incidents/:incident_id/status"):       ok("Set an incident's status.", statusAnswer),
		key("POST", "/api/v1/admin/recordings/:recording_id/legal-hold"): ok("Place or lift a legal hold.", store.Recording{}),
		key("GET", "/api/v1/admin/patients/:patient_id/access-report"): ok("Who saw a patient's records.",
			gin.H{"patient_id": "", "entries": []EntryView{}, "actors": map[string]string{}, "has_more": false}, auditFilters...),
		key("GET", "/api/v1/admin/audit/export"): {summary: "Export the audit trail (JSON or CSV) with its signed checkpoint.",
			status: http.StatusOK, media: []string{"application/json", "text/csv"}, query: append([]string{"format"}, auditFilters...)},
		key("GET", "/api/v1/admin/incidents/:incident_id/scope"): {summary: "The patients and recordings a breach may have touched (JSON, or the notification list as CSV).",
			status: http.StatusOK, answer: gin.H{"incident": store.Incident{}, "scope": store.Scope{}},
			media: []string{"text/csv"}, query: []string{"actor_id", "kek_id", "from", "to", "format"}},
	}
	addVisitOps(ops, v)
	addRecordingOps(ops, v)
	return ops
}

var setupBeginAnswer = gin.H{"expires_at": time.Time{}, "email": "", "purpose": "", "needs_password": false,
	"otpauth_uri": "", "secret": "", "qr_png": ""}

func addVisitOps(ops map[string]apiOp, v string) {
	participant := gin.H{"participant_id": ids.ParticipantID(""), "state": ""}
	for k, op := range map[string]apiOp{
		key("GET", "/api/v1/visits"):                             ok("The provider's schedule.", gin.H{"visits": []store.ScheduledVisit{}, "from": time.Time{}, "to": time.Time{}}, "from", "to"),
		key("POST", "/api/v1/visits"):                            created("Schedule a visit (or start one now).", store.ScheduledVisit{}),
		key("GET", v):                                            ok("A visit.", store.Visit{}),
		key("POST", v+"/join"):                                   ok("Join the visit's call: a media grant.", JoinGrant{}),
		key("POST", v+"/break-glass"):                            created("Request emergency access to a visit.", gin.H{"grant_id": "", "visit_id": ids.VisitID(""), "expires_at": time.Time{}}),
		key("POST", v+"/reschedule"):                             ok("Move a scheduled visit.", store.ScheduledVisit{}),
		key("POST", v+"/cancel"):                                 ok("Cancel a visit that has not started.", store.ScheduledVisit{}),
		key("POST", v+"/no-show"):                                ok("Mark a visit a no-show.", store.ScheduledVisit{}),
		key("POST", v+"/end"):                                    ok("End a visit.", store.ScheduledVisit{}),
		key("POST", v+"/leave"):                                  ok("Leave the visit.", statusAnswer),
		key("POST", v+"/invite/revoke"):                          ok("Withdraw the patient's invites.", gin.H{"revoked": 0}),
		key("GET", v+"/state"):                                   ok("The waiting room and call state as the caller may see it.", VisitState{}),
		key("POST", v+"/participants/:participant_id/admit"):     ok("Admit a waiting participant.", participant),
		key("POST", v+"/participants/:participant_id/turn-away"): ok("Turn a waiting participant away.", participant),
		key("POST", v+"/participants/:participant_id/remove"):    ok("Remove a participant from the call.", participant),
		key("POST", "/api/v1/invites/check"):                     ok("Was this invite already used on another device?", gin.H{"used": false}),
		key("POST", "/api/v1/invites/redeem"):                    ok("Redeem an invite with the date of birth: a patient session.", gin.H{"visit_id": ids.VisitID(""), "participant_id": ids.ParticipantID("")}),
		key("POST", "/api/v1/patients"):                          created("Create a patient record.", store.Patient{}),
		key("GET", "/api/v1/patients"):                           ok("Search the provider's patients.", gin.H{"patients": []store.Patient{}}, "q"),
		key("GET", "/api/v1/patients/:patient_id"):               ok("A patient record.", store.Patient{}),
		key("GET", "/api/v1/dev/outbox"):                         ok("The development mail outbox (development only).", gin.H{"messages": []store.OutboxMessage{}}),
		key("GET", "/api/v1/dev/outbox/:message_id"):             ok("One outbox message.", store.OutboxMessage{}),
		key("POST", v+"/invite"): created("Create the patient's invite link (and email it).", gin.H{"invite_id": "", "invite_url": "",
			"usable_from": time.Time{}, "usable_until": time.Time{}, "ics": "", "emailed": false}),
		key("GET", v+"/events"): {summary: "The visit's state as a stream of server-sent events.", status: http.StatusOK,
			media: []string{"text/event-stream"}},
		key("GET", "/api/v1/dev/outbox/:message_id/attachments/:n"): {summary: "An attachment of an outbox message.",
			status: http.StatusOK, media: []string{"*/*"}},
	} {
		ops[k] = op
	}
}

func addRecordingOps(ops map[string]apiOp, v string) {
	state := recordings.State{}
	for k, op := range map[string]apiOp{
		key("GET", v+"/recording"):                     ok("The visit's recording state.", state),
		key("POST", v+"/recording/request"):            ok("Ask the patient to consent to recording.", state),
		key("POST", v+"/recording/consent"):            ok("The patient's answer to the request.", state),
		key("POST", v+"/recording/withdraw"):           ok("The patient withdraws consent.", state),
		key("POST", v+"/recording/start"):              ok("Start recording.", state),
		key("POST", v+"/recording/stop"):               ok("Stop recording.", state),
		key("GET", "/api/v1/recordings"):               ok("Recordings the caller may see.", gin.H{"recordings": []recordings.Listed{}}, "visit_id", "patient_id", "from", "to", "limit"),
		key("GET", "/api/v1/recordings/:recording_id"): ok("A recording and its playable chunks.", RecordingView{}),
		key("GET", "/api/v1/recordings/:recording_id/chunks/:seq"): {summary: "Play or download one chunk (WebM; Range requests answer 206).",
			status: http.StatusOK, also: []int{http.StatusPartialContent}, media: []string{"video/webm"},
			query: []string{"download"}, mediaErrors: true},
	} {
		ops[k] = op
	}
}
