package signaling

import "github.com/openvisit/openvisit/internal/review"

// Audit actions the control plane records. Reports and alert rules match on
// these strings: keep them stable.
const (
	actionLogin              = "auth.login"
	actionLogout             = "auth.logout"
	actionLogoutAll          = "auth.logout_all"
	actionLock               = "auth.lock"
	actionMFAEnrolBegin      = "mfa.enrol.begin"
	actionMFAEnrol           = "mfa.enrol"
	actionRecoveryUsed       = "mfa.recovery_code.use"
	actionUserCreate         = "user.create"
	actionUserRole           = "user.role.change"
	actionUserDisable        = "user.disable"
	actionUserEnable         = "user.enable"
	actionUserUnlock         = "user.unlock"
	actionUserResetMFA       = review.ActionResetMFA
	actionUserList           = "user.list"
	actionVisitCreate        = "visit.create"
	actionVisitView          = "visit.view"
	actionVisitList          = "visit.list"
	actionVisitJoin          = "visit.join"
	actionBreakGlass         = "break_glass.grant"
	actionBreakReview        = review.ActionBreakReview
	actionAlertAck           = review.ActionAlertAck
	actionAlertList          = "alert.list"
	actionBreakGlassList     = "break_glass.list"
	actionSessionExpire      = "session.expire"
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
	actionInviteRedeem       = "invite.redeem"
	actionAdmit              = "participant.admit"
	actionTurnAway           = "participant.turn_away"
	actionRemove             = "participant.remove"
	actionAuditSearch        = "audit.search"
	actionAuditExport        = "audit.export"
	actionAuditPatientReport = "audit.patient_report"
	actionIncidentCreate     = "incident.create"
	actionIncidentStatus     = "incident.status"
	actionIncidentScope      = "incident.scope"
	actionAccessDenied       = "access.denied"
)
