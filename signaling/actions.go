package signaling

import (
	"github.com/openvisit/openvisit/internal/accounts"
	"github.com/openvisit/openvisit/internal/breakglass"
	"github.com/openvisit/openvisit/internal/incidents"
	"github.com/openvisit/openvisit/internal/invites"
	"github.com/openvisit/openvisit/internal/review"
	"github.com/openvisit/openvisit/internal/signin"
)

// Audit actions the control plane records. Reports and alert rules match on
// these strings: keep them stable.
const (
	actionLogin              = signin.ActionLogin
	actionMFAEnrolBegin      = signin.ActionMFAEnrolBegin
	actionMFAEnrol           = signin.ActionMFAEnrol
	actionUserCreate         = accounts.ActionCreate
	actionUserRole           = accounts.ActionRole
	actionUserDisable        = accounts.ActionDisable
	actionUserEnable         = accounts.ActionEnable
	actionUserUnlock         = accounts.ActionUnlock
	actionUserResetMFA       = review.ActionResetMFA
	actionUserList           = "user.list"
	actionVisitCreate        = "visit.create"
	actionVisitView          = "visit.view"
	actionVisitList          = "visit.list"
	actionVisitJoin          = "visit.join"
	actionBreakGlass         = breakglass.ActionGrant
	actionBreakReview        = review.ActionBreakReview
	actionAlertAck           = review.ActionAlertAck
	actionAlertList          = "alert.list"
	actionBreakGlassList     = "break_glass.list"
	actionPatientCreate      = "patient.create"
	actionPatientView        = "patient.view"
	actionVisitReschedule    = "visit.reschedule"
	actionVisitCancel        = "visit.cancel"
	actionVisitNoShow        = "visit.no_show"
	actionVisitEnd           = "visit.end"
	actionVisitLeave         = "visit.leave"
	actionInviteCreate       = "invite.create"
	actionInviteRevoke       = "invite.revoke"
	actionInviteEmail        = "invite.email"
	actionInviteesView       = "invite.list"
	actionRosterView         = "visit.roster"
	actionGuestAdd           = "visit.guest_add"
	actionInviteRedeem       = invites.ActionRedeem
	actionInviteCheck        = invites.ActionCheck
	actionOutboxRead         = "dev_outbox.read"
	actionAdmit              = "participant.admit"
	actionTurnAway           = "participant.turn_away"
	actionRemove             = "participant.remove"
	actionAuditSearch        = "audit.search"
	actionAuditExport        = "audit.export"
	actionAuditPatientReport = "audit.patient_report"
	actionIncidentCreate     = incidents.ActionCreate
	actionIncidentStatus     = incidents.ActionStatus
	actionIncidentScope      = incidents.ActionScope
	actionAccessDenied       = "access.denied"
)
