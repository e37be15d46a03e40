package signaling

// Audit actions the control plane records. Reports and alert rules match on
// these strings: keep them stable.
const (
	actionLogin          = "auth.login"
	actionLogout         = "auth.logout"
	actionLogoutAll      = "auth.logout_all"
	actionLock           = "auth.lock"
	actionMFAEnrolBegin  = "mfa.enrol.begin"
	actionMFAEnrol       = "mfa.enrol"
	actionRecoveryUsed   = "mfa.recovery_code.use"
	actionUserCreate     = "user.create"
	actionUserRole       = "user.role.change"
	actionUserDisable    = "user.disable"
	actionUserEnable     = "user.enable"
	actionUserUnlock     = "user.unlock"
	actionUserResetMFA   = "user.mfa.reset"
	actionUserList       = "user.list"
	actionVisitCreate    = "visit.create"
	actionVisitView      = "visit.view"
	actionVisitList      = "visit.list"
	actionVisitJoin      = "visit.join"
	actionBreakGlass     = "break_glass.grant"
	actionBreakReview    = "break_glass.review"
	actionAlertAck       = "alert.acknowledge"
	actionAlertList      = "alert.list"
	actionBreakGlassList = "break_glass.list"
	actionSessionExpire  = "session.expire"
	actionAccessDenied   = "access.denied"
)
