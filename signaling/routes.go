package signaling

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/store"
)

// Every route of the API is declared here once, with the handler that
// answers it and the access rule that guards it, in one table per area.
// Register adds the tables to the router and the policy the authorize
// middleware enforces is built from the same tables, so a route cannot be
// registered without a rule. TestAuthorizationMatrix (internal/app) walks
// the tables (Routes) and compares each rule with a hand-written
// expectation.

// route is one endpoint: method, full path pattern, handler and rule.
type route struct {
	method, path string
	// handler is nil for a route another package serves: internal/app
	// mounts the SFU's WebSocket, and the rule here still guards it.
	handler gin.HandlerFunc
	rule    access.Rule
}

// area is one table of routes. Its routes are registered only when serve
// is set (the demo link and the development outbox are optional); their
// rules are in the policy either way.
type area struct {
	name   string
	serve  bool
	routes []route
}

type kind = access.Kind

func key(method, route string) string { return access.Key(method, route) }

// Roles that appear together in the tables.
var (
	public = []kind{access.Anonymous, access.Patient, access.Provider, access.Admin}
	staff  = []kind{access.Provider, access.Admin}
	anyone = []kind{access.Patient, access.Provider, access.Admin} // signed in, any kind
	admins = []kind{access.Admin}
	provs  = []kind{access.Provider}
)

// Rules shared by several routes.
var (
	onlyAdmins = access.Rule{Allow: admins}
	onlyProvs  = access.Rule{Allow: provs}
	onlyStaff  = access.Rule{Allow: staff}
	// sessionless routes establish a session (or admit by a secret): no
	// CSRF token exists yet, the Origin check still applies.
	sessionless = access.Rule{Allow: public, NoCSRF: true}
	// Visit-scoped rules: anyone outside the visit gets 404.
	providerOf = access.Rule{Allow: provs, VisitParam: "visit_id", BreakGlassOK: true}
	// noInterpreter: routes that show the patient's record.
	noInterpreter = []string{store.InviteeInterpreter}
	inVisit       = access.Rule{Allow: []kind{access.Patient, access.Provider}, VisitParam: "visit_id", BreakGlassOK: true}
)

// areas lists every table, in the order Register adds them.
func (s *Server) areas() []area {
	return []area{
		{name: "ops", serve: true, routes: s.opsRoutes()},
		{name: "demo", serve: s.p.Demo && s.p.Minter != nil, routes: s.demoRoutes()},
		{name: "auth", serve: true, routes: s.authRoutes()},
		{name: "account", serve: true, routes: s.accountRoutes()},
		{name: "admin", serve: true, routes: s.adminRoutes()},
		{name: "webhooks", serve: true, routes: s.webhookRoutes()},
		{name: "audit", serve: true, routes: s.auditRoutes()},
		{name: "visits", serve: true, routes: s.visitRoutes()},
		{name: "patients", serve: true, routes: s.patientRoutes()},
		{name: "recordings", serve: true, routes: s.recordingRoutes()},
		{name: "dev-outbox", serve: s.p.Outbox != nil, routes: s.outboxRoutes()},
		{name: "scim", serve: true, routes: s.scimRoutes()},
		{name: "fhir", serve: true, routes: s.fhirRoutes()},
	}
}

// opsRoutes: up and ready, and the API's description. Metrics are not served on the
// public listener (internal/app's operational listener).
func (s *Server) opsRoutes() []route {
	return []route{
		{http.MethodGet, "/healthz", s.healthz, access.Rule{Allow: public}},
		{http.MethodGet, "/readyz", s.readyz, access.Rule{Allow: public}},
		// The API's own description (openapi.go): public, no PHI.
		{http.MethodGet, "/api/v1/openapi.json", s.serveOpenAPI, access.Rule{Allow: public}},
		// The media WebSocket admits by join token, checked by the SFU.
		{http.MethodGet, "/sfu/ws", nil, access.Rule{Allow: public}},
	}
}

// demoRoutes: the one-time demo links (development, demo mode).
func (s *Server) demoRoutes() []route {
	return []route{
		{http.MethodPost, "/api/v1/demo/redeem", s.redeemDemoLink, sessionless},
	}
}

// authRoutes: sign-in, the session, and enrolment from a setup link.
func (s *Server) authRoutes() []route {
	signedIn := access.Rule{Allow: anyone}
	return []route{
		{http.MethodPost, "/api/v1/auth/login", s.login, sessionless},
		// Passkey sign-in (the passkey alone, or as the second factor of
		// auth/login): options, then the authenticator's answer.
		{http.MethodPost, "/api/v1/auth/passkey/begin", s.passkeyBegin, sessionless},
		{http.MethodPost, "/api/v1/auth/passkey/login", s.passkeyLogin, sessionless},
		{http.MethodGet, "/api/v1/auth/session", s.sessionInfo, signedIn},
		{http.MethodPost, "/api/v1/auth/keepalive", s.sessionInfo, signedIn},
		{http.MethodPost, "/api/v1/auth/logout", s.logout, signedIn},
		{http.MethodPost, "/api/v1/auth/logout-all", s.logoutAll, onlyStaff},
		{http.MethodPost, "/api/v1/setup/begin", s.setupBegin, sessionless},
		{http.MethodPost, "/api/v1/setup/complete", s.setupComplete, sessionless},
		// Sign-in through the clinic's identity providers (sso.go): the
		// flow is bound to the browser by a sealed cookie, not a session.
		{http.MethodGet, "/api/v1/auth/oidc/issuers", s.ssoIssuers, access.Rule{Allow: public}},
		{http.MethodGet, "/api/v1/auth/oidc/:issuer_id/start", s.ssoStart, sessionless},
		{http.MethodGet, "/api/v1/auth/oidc/callback", s.ssoCallback, sessionless},
		{http.MethodPost, "/api/v1/auth/oidc/second-factor", s.ssoSecondFactor, sessionless},
	}
}

// accountRoutes: a staff user's own passkeys (the security page). A
// passkey id of another user answers 404.
func (s *Server) accountRoutes() []route {
	const pk = "/api/v1/account/passkeys"
	return []route{
		{http.MethodGet, pk, s.listPasskeys, onlyStaff},
		{http.MethodPost, pk + "/begin", s.beginAddPasskey, onlyStaff},
		{http.MethodPost, pk, s.addPasskey, onlyStaff},
		{http.MethodPost, pk + "/:passkey_id/rename", s.renamePasskey, onlyStaff},
		{http.MethodPost, pk + "/:passkey_id/remove", s.removePasskey, onlyStaff},
	}
}

// adminRoutes: user administration, alerts and the review of emergency
// access. Admins only.
func (s *Server) adminRoutes() []route {
	return []route{
		{http.MethodGet, "/api/v1/admin/users", s.listUsers, onlyAdmins},
		{http.MethodGet, "/api/v1/admin/users/dormant", s.dormantUsers, onlyAdmins},
		{http.MethodPost, "/api/v1/admin/users", s.inviteUser, onlyAdmins},
		{http.MethodPost, "/api/v1/admin/users/:user_id/role", s.changeRole, onlyAdmins},
		{http.MethodPost, "/api/v1/admin/users/:user_id/disable", s.disableUser, onlyAdmins},
		{http.MethodPost, "/api/v1/admin/users/:user_id/enable", s.enableUser, onlyAdmins},
		{http.MethodPost, "/api/v1/admin/users/:user_id/unlock", s.unlockUser, onlyAdmins},
		{http.MethodPost, "/api/v1/admin/users/:user_id/reset-mfa", s.resetMFA, onlyAdmins},
		{http.MethodGet, "/api/v1/admin/alerts", s.listAlerts, onlyAdmins},
		{http.MethodPost, "/api/v1/admin/alerts/:alert_id/ack", s.ackAlert, onlyAdmins},
		{http.MethodGet, "/api/v1/admin/break-glass", s.listBreakGlass, onlyAdmins},
		{http.MethodPost, "/api/v1/admin/break-glass/:grant_id/review", s.reviewBreakGlass, onlyAdmins},
	}
}

// auditRoutes: the audit trail, patient access reports and breach
// incidents. Admins only.
func (s *Server) auditRoutes() []route {
	return []route{
		{http.MethodGet, "/api/v1/admin/audit", s.searchAudit, onlyAdmins},
		{http.MethodGet, "/api/v1/admin/audit/export", s.exportAudit, onlyAdmins},
		{http.MethodGet, "/api/v1/admin/patients", s.lookupPatients, onlyAdmins},
		{http.MethodGet, "/api/v1/admin/patients/:patient_id/access-report", s.patientAccessReport, onlyAdmins},
		{http.MethodGet, "/api/v1/admin/incidents", s.listIncidents, onlyAdmins},
		{http.MethodPost, "/api/v1/admin/incidents", s.createIncident, onlyAdmins},
		{http.MethodGet, "/api/v1/admin/incidents/:incident_id/scope", s.incidentScope, onlyAdmins},
		{http.MethodPost, "/api/v1/admin/incidents/:incident_id/status", s.setIncidentStatus, onlyAdmins},
	}
}

// visitRoutes: the schedule, the waiting room, the call and the patient's
// invite. Visit-scoped routes answer 404 to anyone outside the visit.
func (s *Server) visitRoutes() []route {
	const v = "/api/v1/visits/:visit_id"
	return []route{
		{http.MethodGet, "/api/v1/visits", s.listVisits, onlyProvs},
		{http.MethodPost, "/api/v1/visits", s.createVisit, onlyProvs},
		// The visit's record names its patient: an interpreter is not shown it.
		{http.MethodGet, v, s.getVisit,
			access.Rule{Allow: anyone, VisitParam: "visit_id", AdminAnyVisit: true, BreakGlassOK: true, NotFor: noInterpreter}},
		{http.MethodPost, v + "/join", s.joinVisit,
			access.Rule{Allow: []kind{access.Patient, access.Provider}, VisitParam: "visit_id", BreakGlassOK: true}},
		// Requesting emergency access is open to any provider; the handler
		// checks that the visit exists and is not already theirs.
		{http.MethodPost, v + "/break-glass", s.breakGlass, onlyProvs},
		// Scheduling and the waiting room: the visit's provider (or one
		// with an emergency grant) runs it; its patient sees their own place.
		{http.MethodPost, v + "/reschedule", s.rescheduleVisit, providerOf},
		{http.MethodPost, v + "/cancel", s.cancelVisit, providerOf},
		{http.MethodPost, v + "/no-show", s.noShowVisit, providerOf},
		{http.MethodPost, v + "/end", s.endVisit, providerOf},
		{http.MethodPost, v + "/leave", s.leaveVisit, inVisit},
		{http.MethodPost, v + "/invite", s.createInvite, providerOf},
		{http.MethodPost, v + "/invite/revoke", s.revokeInvite, providerOf},
		// The care team (careteam.go): each invitee's own link, revoked
		// on its own; guest providers; the names on the call's tiles.
		{http.MethodGet, v + "/invitees", s.listInvitees, providerOf},
		{http.MethodPost, v + "/invitees", s.createInvitee, providerOf},
		{http.MethodPost, v + "/invitees/:invite_id/revoke", s.revokeInvitee, providerOf},
		{http.MethodPost, v + "/guests", s.addGuest, providerOf},
		{http.MethodGet, v + "/roster", s.roster, inVisit},
		{http.MethodGet, v + "/state", s.visitState, inVisit},
		{http.MethodGet, v + "/events", s.visitEvents, inVisit},
		// The visit's chat (chat.go): its participants send; they and the
		// visit's provider afterwards read the transcript.
		{http.MethodPost, v + "/chat", s.sendChat, inVisit},
		{http.MethodGet, v + "/chat", s.chatTranscript, inVisit},
		// The device check's network check (netcheck.go): the visit's
		// relay for a TCP/TLS reachability test, and a download to time.
		{http.MethodGet, v + "/network-check", s.networkCheck, inVisit},
		{http.MethodGet, "/api/v1/network-check/probe", s.networkProbe, access.Rule{Allow: anyone}},
		{http.MethodPost, v + "/participants/:participant_id/admit", s.admitParticipant, providerOf},
		{http.MethodPost, v + "/participants/:participant_id/turn-away", s.turnAwayParticipant, providerOf},
		{http.MethodPost, v + "/participants/:participant_id/remove", s.removeParticipant, providerOf},
		// Before the date of birth: "was this link used on another device?"
		// and nothing more (invitecheck.go).
		{http.MethodPost, "/api/v1/invites/check", s.checkInvite, sessionless},
		// The patient's way in: the invite secret and date of birth are the
		// credential. The Origin check applies; no session exists yet.
		{http.MethodPost, "/api/v1/invites/redeem", s.redeemInvite, sessionless},
	}
}

// patientRoutes: patient records. Their creator, or a provider with a
// visit with them; admins (for breach reports) with an audit entry.
func (s *Server) patientRoutes() []route {
	return []route{
		{http.MethodPost, "/api/v1/patients", s.createPatient, onlyProvs},
		{http.MethodGet, "/api/v1/patients", s.findPatients, onlyProvs},
		{http.MethodGet, "/api/v1/patients/:patient_id", s.getPatient,
			access.Rule{Allow: []kind{access.Provider, access.Admin}, PatientParam: "patient_id", AdminAnyVisit: true}},
	}
}

// recordingRoutes: consent, the recording switch, and retrieval.
//
// Visit-scoped routes (consent and the recording switch) use the visit
// check of the policy. Routes naming a recording resolve its visit in the
// handler (recordingAccess): admins, the visit's provider, or a provider
// with an active break-glass grant; everyone else signed in gets 404.
func (s *Server) recordingRoutes() []route {
	visitRule := func(allow ...kind) access.Rule {
		return access.Rule{Allow: allow, VisitParam: "visit_id"}
	}
	state := visitRule(access.Patient, access.Provider, access.Admin)
	state.AdminAnyVisit, state.BreakGlassOK = true, true
	const v = "/api/v1/visits/:visit_id/recording"
	return []route{
		{http.MethodGet, v, s.recordingState, state},
		{http.MethodPost, v + "/request", s.requestRecording, visitRule(access.Provider)},
		{http.MethodPost, v + "/consent", s.consentRecording, visitRule(access.Patient)},
		{http.MethodPost, v + "/withdraw", s.withdrawRecording, visitRule(access.Patient)},
		{http.MethodPost, v + "/start", s.startRecording, visitRule(access.Provider)},
		{http.MethodPost, v + "/stop", s.stopRecording, visitRule(access.Provider)},

		{http.MethodGet, "/api/v1/recordings", s.listRecordings, onlyStaff},
		{http.MethodGet, "/api/v1/recordings/:recording_id", s.getRecording, access.Rule{Allow: anyone}},
		{http.MethodGet, "/api/v1/recordings/:recording_id/chunks/:seq", s.playRecording, access.Rule{Allow: anyone}},
		{http.MethodPost, "/api/v1/admin/recordings/:recording_id/legal-hold", s.legalHold, onlyAdmins},
	}
}

// outboxRoutes: the development mail outbox (served only in development
// without SMTP). Staff read the mail they sent, admins all of it; another
// provider's message answers 404 (outbox.go).
func (s *Server) outboxRoutes() []route {
	return []route{
		{http.MethodGet, "/api/v1/dev/outbox", s.listOutbox, onlyStaff},
		{http.MethodGet, "/api/v1/dev/outbox/:message_id", s.getOutboxMessage, onlyStaff},
		{http.MethodGet, "/api/v1/dev/outbox/:message_id/attachments/:n", s.getOutboxAttachment, onlyStaff},
	}
}

// routePolicy is every declared route's rule, served or not, keyed as
// the authorize middleware looks it up.
func routePolicy(areas []area) access.Policy {
	out := access.Policy{}
	for _, a := range areas {
		for _, r := range a.routes {
			k := key(r.method, r.path)
			if _, dup := out[k]; dup {
				panic("signaling: route " + k + " is declared twice") // a programming error, caught by every test
			}
			out[k] = r.rule
		}
	}
	return out
}

// Route describes one declared route, for tests that walk the tables.
type Route struct {
	Area, Method, Path string
	Rule               access.Rule
	// Registered: Register adds the route to the router. False for the
	// routes of an area this server does not serve, and for a route
	// another package mounts (the SFU's WebSocket).
	Registered bool
}

// Routes returns every declared route, in table order.
func (s *Server) Routes() []Route {
	var out []Route
	for _, a := range s.areas() {
		for _, r := range a.routes {
			out = append(out, Route{Area: a.name, Method: r.method, Path: r.path, Rule: r.rule,
				Registered: a.serve && r.handler != nil})
		}
	}
	return out
}
