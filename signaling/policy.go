package signaling

import "github.com/openvisit/openvisit/internal/access"

type kind = access.Kind

func key(method, route string) string { return access.Key(method, route) }

// Roles that appear together in the table.
var (
	public = []kind{access.Anonymous, access.Patient, access.Provider, access.Admin}
	staff  = []kind{access.Provider, access.Admin}
	anyone = []kind{access.Patient, access.Provider, access.Admin} // signed in, any kind
	admins = []kind{access.Admin}
	provs  = []kind{access.Provider}
)

// Visit-scoped rules shared by several routes.
var (
	providerOf = access.Rule{Allow: provs, VisitParam: "visit_id", BreakGlassOK: true}
	inVisit    = access.Rule{Allow: []kind{access.Patient, access.Provider}, VisitParam: "visit_id", BreakGlassOK: true}
)

// routePolicy is every route's access decision, merged from each area's
// table. TestAuthorizationMatrix fails when a registered route is missing.
func routePolicy() access.Policy {
	out := access.Policy{}
	for _, part := range []access.Policy{corePolicy(), recordingPolicy()} {
		for k, r := range part {
			if _, dup := out[k]; dup {
				panic("signaling: route " + k + " has two policy rules") // a programming error, caught by every test
			}
			out[k] = r
		}
	}
	return out
}

// corePolicy covers operations, sign-in, user administration and visits.
func corePolicy() access.Policy {
	return access.Policy{
		// Operations: up and ready, nothing more. Metrics are not served on
		// the public listener (internal/app's operational listener).
		key("GET", "/healthz"): {Allow: public},
		key("GET", "/readyz"):  {Allow: public},
		// The media WebSocket admits by join token, checked by the SFU.
		key("GET", "/sfu/ws"): {Allow: public},

		key("POST", "/api/v1/demo/redeem"): {Allow: public, NoCSRF: true},

		// Sign-in and enrolment establish sessions: no CSRF token exists yet,
		// the Origin check still applies.
		key("POST", "/api/v1/auth/login"):      {Allow: public, NoCSRF: true},
		key("POST", "/api/v1/setup/begin"):     {Allow: public, NoCSRF: true},
		key("POST", "/api/v1/setup/complete"):  {Allow: public, NoCSRF: true},
		key("GET", "/api/v1/auth/session"):     {Allow: anyone},
		key("POST", "/api/v1/auth/keepalive"):  {Allow: anyone},
		key("POST", "/api/v1/auth/logout"):     {Allow: anyone},
		key("POST", "/api/v1/auth/logout-all"): {Allow: staff},

		// User administration.
		key("GET", "/api/v1/admin/users"):                              {Allow: admins},
		key("POST", "/api/v1/admin/users"):                             {Allow: admins},
		key("POST", "/api/v1/admin/users/:user_id/role"):               {Allow: admins},
		key("POST", "/api/v1/admin/users/:user_id/disable"):            {Allow: admins},
		key("POST", "/api/v1/admin/users/:user_id/enable"):             {Allow: admins},
		key("POST", "/api/v1/admin/users/:user_id/unlock"):             {Allow: admins},
		key("POST", "/api/v1/admin/users/:user_id/reset-mfa"):          {Allow: admins},
		key("GET", "/api/v1/admin/alerts"):                             {Allow: admins},
		key("POST", "/api/v1/admin/alerts/:alert_id/ack"):              {Allow: admins},
		key("GET", "/api/v1/admin/break-glass"):                        {Allow: admins},
		key("POST", "/api/v1/admin/break-glass/:grant_id/review"):      {Allow: admins},
		key("GET", "/api/v1/admin/audit"):                              {Allow: admins},
		key("GET", "/api/v1/admin/audit/export"):                       {Allow: admins},
		key("GET", "/api/v1/admin/patients/:patient_id/access-report"): {Allow: admins},
		key("GET", "/api/v1/admin/incidents"):                          {Allow: admins},
		key("POST", "/api/v1/admin/incidents"):                         {Allow: admins},
		key("POST", "/api/v1/admin/incidents/:incident_id/status"):     {Allow: admins},
		key("GET", "/api/v1/admin/incidents/:incident_id/scope"):       {Allow: admins},

		// Visits. Visit-scoped routes answer 404 to anyone outside the visit.
		key("GET", "/api/v1/visits"):  {Allow: provs},
		key("POST", "/api/v1/visits"): {Allow: provs},
		key("GET", "/api/v1/visits/:visit_id"): {
			Allow: anyone, VisitParam: "visit_id", AdminAnyVisit: true, BreakGlassOK: true,
		},
		key("POST", "/api/v1/visits/:visit_id/join"): {
			Allow: []kind{access.Patient, access.Provider}, VisitParam: "visit_id", BreakGlassOK: true,
		},
		// Requesting emergency access is open to any provider; the handler
		// checks that the visit exists and is not already theirs.
		key("POST", "/api/v1/visits/:visit_id/break-glass"): {Allow: provs},

		// Scheduling and the waiting room: the visit's provider (or one with
		// an emergency grant) runs it; its patient sees their own place.
		key("POST", "/api/v1/visits/:visit_id/reschedule"):                             providerOf,
		key("POST", "/api/v1/visits/:visit_id/cancel"):                                 providerOf,
		key("POST", "/api/v1/visits/:visit_id/no-show"):                                providerOf,
		key("POST", "/api/v1/visits/:visit_id/end"):                                    providerOf,
		key("POST", "/api/v1/visits/:visit_id/invite"):                                 providerOf,
		key("POST", "/api/v1/visits/:visit_id/invite/revoke"):                          providerOf,
		key("POST", "/api/v1/visits/:visit_id/participants/:participant_id/admit"):     providerOf,
		key("POST", "/api/v1/visits/:visit_id/participants/:participant_id/turn-away"): providerOf,
		key("POST", "/api/v1/visits/:visit_id/participants/:participant_id/remove"):    providerOf,
		key("GET", "/api/v1/visits/:visit_id/state"):                                   inVisit,
		key("GET", "/api/v1/visits/:visit_id/events"):                                  inVisit,
		key("POST", "/api/v1/visits/:visit_id/leave"):                                  inVisit,
		// The patient's way in: the invite secret and date of birth are the
		// credential. The Origin check applies; no session exists yet.
		key("POST", "/api/v1/invites/redeem"): {Allow: public, NoCSRF: true},
		// Before the date of birth: "was this link used on another device?"
		// and nothing more (invitecheck.go).
		key("POST", "/api/v1/invites/check"): {Allow: public, NoCSRF: true},

		// Patient records: their creator, or a provider with a visit with
		// them; admins (for breach reports) with an audit entry.
		key("POST", "/api/v1/patients"):            {Allow: provs},
		key("GET", "/api/v1/patients"):             {Allow: provs},
		key("GET", "/api/v1/patients/:patient_id"): {Allow: []kind{access.Provider, access.Admin}, PatientParam: "patient_id", AdminAnyVisit: true},

		// The development mail outbox (registered only in development
		// without SMTP): staff read the mail they sent, admins all of it;
		// another provider's message answers 404 (outbox.go).
		key("GET", "/api/v1/dev/outbox"):                            {Allow: staff},
		key("GET", "/api/v1/dev/outbox/:message_id"):                {Allow: staff},
		key("GET", "/api/v1/dev/outbox/:message_id/attachments/:n"): {Allow: staff},
	}
}
