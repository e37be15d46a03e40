package signaling

import (
	"errors"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/access"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/webhooks"
)

// actionRequestRefused audits a request refused for what it carries (a
// malformed body or parameter) on a route whose own action is not in
// inputActions.
const actionRequestRefused = "request.refused"

// requestBodies names, for every route that reads a JSON body, the type
// its handler decodes with httpx.DecodeJSON (a route with an optional body
// is listed too). checkInput decodes every body into its route's type
// before any handler runs, so a malformed body is refused whatever the
// handler would check first; a state-changing route not listed takes no
// body and accepts none or an empty object, so that no route ignores what
// a client sent. FuzzDecodeJSON decodes into each type, and
// TestNulInJSONRefused (internal/app) sends each route a poisoned body.
func requestBodies() map[string]func() any {
	none := func() any { return new(struct{}) }
	return map[string]func() any{
		key("POST", "/api/v1/demo/redeem"):                               func() any { return new(redeemRequest) },
		key("POST", "/api/v1/auth/login"):                                func() any { return new(loginRequest) },
		key("POST", "/api/v1/auth/passkey/begin"):                        func() any { return new(passkeyBeginRequest) },
		key("POST", "/api/v1/auth/passkey/login"):                        func() any { return new(passkeyLoginRequest) },
		key("POST", "/api/v1/account/passkeys"):                          func() any { return new(passkeyAddRequest) },
		key("POST", "/api/v1/account/passkeys/:passkey_id/rename"):       func() any { return new(passkeyRenameRequest) },
		key("POST", "/api/v1/setup/begin"):                               func() any { return new(setupRequest) },
		key("POST", "/api/v1/setup/complete"):                            func() any { return new(setupRequest) },
		key("POST", "/api/v1/auth/oidc/second-factor"):                   func() any { return new(ssoSecondFactorRequest) },
		key("POST", "/api/v1/admin/users"):                               func() any { return new(inviteRequest) },
		key("POST", "/api/v1/admin/users/:user_id/role"):                 func() any { return new(roleRequest) },
		key("POST", "/api/v1/admin/incidents"):                           func() any { return new(incidentRequest) },
		key("POST", "/api/v1/admin/webhooks"):                            func() any { return new(webhooks.NewSubscription) },
		key("POST", "/api/v1/admin/incidents/:incident_id/status"):       func() any { return new(incidentStatusRequest) },
		key("POST", "/api/v1/admin/recordings/:recording_id/legal-hold"): func() any { return new(legalHoldRequest) },
		key("POST", "/api/v1/visits"):                                    func() any { return new(scheduleRequest) },
		key("POST", "/api/v1/visits/:visit_id/reschedule"):               func() any { return new(rescheduleRequest) },
		key("POST", "/api/v1/visits/:visit_id/invite"):                   func() any { return new(createInviteRequest) },
		key("POST", "/api/v1/visits/:visit_id/break-glass"):              func() any { return new(breakGlassRequest) },
		key("POST", "/api/v1/visits/:visit_id/invitees"):                 func() any { return new(createInviteeRequest) },
		key("POST", "/api/v1/visits/:visit_id/guests"):                   func() any { return new(addGuestRequest) },
		key("POST", "/api/v1/invites/redeem"):                            func() any { return new(redeemInviteRequest) },
		key("POST", "/api/v1/invites/check"):                             func() any { return new(checkInviteRequest) },
		key("POST", "/api/v1/patients"):                                  func() any { return new(patientRequest) },
		key("POST", "/api/v1/visits/:visit_id/recording/consent"):        func() any { return new(consentRequest) },
		key("POST", "/api/v1/visits/:visit_id/chat"):                     func() any { return new(chatRequest) },
		// The recording controls decode an empty object themselves.
		key("POST", "/api/v1/visits/:visit_id/recording/request"):  none,
		key("POST", "/api/v1/visits/:visit_id/recording/withdraw"): none,
		key("POST", "/api/v1/visits/:visit_id/recording/start"):    none,
		key("POST", "/api/v1/visits/:visit_id/recording/stop"):     none,
	}
}

// RequestBodies returns, for each route that reads a JSON body, a new zero
// value of the type it decodes into (for tests that build bodies).
func RequestBodies() map[string]any {
	out := map[string]any{}
	for k, f := range requestBodies() {
		out[k] = f()
	}
	return out
}

// inputActions: the routes whose refused input is audited under the
// route's own action, where its success and its other failures are (a
// sign-in with a malformed body is a failed auth.login, counted by the
// failed-sign-ins alerts).
var inputActions = map[string]string{
	key("POST", "/api/v1/auth/login"):         actionLogin,
	key("POST", "/api/v1/auth/passkey/login"): actionLogin,
	key("POST", "/api/v1/setup/begin"):        actionMFAEnrolBegin,
	key("POST", "/api/v1/setup/complete"):     actionMFAEnrol,
	key("POST", "/api/v1/invites/redeem"):     actionInviteRedeem,
	key("POST", "/api/v1/invites/check"):      actionInviteCheck,
	key("POST", "/api/v1/demo/redeem"):        audit.ActionDemoLinkRedeem,
}

// checkInput runs before every handler: path and query parameters must be
// storable text (httpx.CheckParams), and a body must decode strictly into
// its route's type (requestBodies; an empty object where none is read).
func (s *Server) checkInput(c *gin.Context) {
	if c.FullPath() == "" {
		c.Next() // pages and unknown paths
		return
	}
	err := httpx.CheckParams(c)
	if err == nil && isSCIM(c) {
		err = s.checkSCIMBody(c)
	} else if err == nil && isMachine(c) {
		err = s.checkMachineBody(c)
	} else if err == nil && !isSafeMethod(c.Request.Method) && c.Request.ContentLength != 0 {
		body, ok := s.bodies[access.Key(c.Request.Method, c.FullPath())]
		if !ok {
			body = func() any { return new(struct{}) }
		}
		err = httpx.CheckJSON(c, body())
	}
	if err != nil {
		s.abort(c, err)
		return
	}
	c.Next()
}

// auditRefusedInput records a request refused for its content as a
// failure of the route's action (inputActions) or as request.refused. The
// reason is the error's stable code; nothing the client sent is kept.
func (s *Server) auditRefusedInput(c *gin.Context, err error) {
	k := access.Key(c.Request.Method, c.FullPath())
	action, ok := inputActions[k]
	if !ok {
		action = actionRequestRefused
	}
	reason := "bad input"
	var e *httpx.Error
	if errors.As(err, &e) {
		reason = e.Code
	}
	p := principal(c)
	s.auditLog(c, audit.Event{
		ActorID: p.ActorID(), ActorRole: p.AuditRole(), Action: action, ResourceType: "route",
		ResourceID: k, VisitID: string(p.VisitID), Outcome: audit.Failure, Reason: reason,
	})
}
