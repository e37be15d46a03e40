package alerts

import (
	"context"
	"time"

	"github.com/openvisit/openvisit/internal/store"
)

// Kind is what an alert is about. Every kind the system raises is declared
// here with its severity, and raised through Raise (or Engine.Raise): a
// newcomer finds every alert in this file.
type Kind string

// Alert kinds.
const (
	// Raised by the rules over the audit trail (Engine.Evaluate).
	KindFailedSigninsAccount Kind = "failed_signins_account"
	KindFailedSigninsIP      Kind = "failed_signins_ip"
	KindBulkRecordingAccess  Kind = "bulk_recording_access"
	// KindCheckpointFailed: an audit checkpoint could not be written or
	// the chain disagrees with its anchors.
	KindCheckpointFailed Kind = "checkpoint_failed"
	// KindAuditWriteFailed: an audit entry outside a change could not be
	// written.
	KindAuditWriteFailed Kind = "audit_write_failed"
	// KindRecordingNotWorking: a visit's recording is switched on but the
	// recorder writes no media (store.RecordingControl.State); its subject
	// is the visit's provider.
	KindRecordingNotWorking Kind = "recording_not_working"
	// KindIntegrityFailure: a stored recording failed authentication when
	// read (modified or damaged ciphertext: corruption or tampering).
	// Raised by whoever read it; subject is the recording ID.
	KindIntegrityFailure Kind = "integrity_failure"
	// KindBreakGlass: a provider took emergency access to a visit that is
	// not theirs (internal/breakglass); subject is the provider.
	KindBreakGlass Kind = "break_glass"
	// KindAccountLocked: an account locked after failed sign-ins; subject
	// is the user.
	KindAccountLocked Kind = "account_locked"
)

// Severities.
const (
	Warning  = "warning"
	Critical = "critical"
)

// severityOf is each kind's severity.
var severityOf = map[Kind]string{
	KindFailedSigninsAccount: Warning,
	KindFailedSigninsIP:      Warning,
	KindBulkRecordingAccess:  Critical,
	KindCheckpointFailed:     Critical,
	KindAuditWriteFailed:     Critical,
	KindRecordingNotWorking:  Critical,
	KindIntegrityFailure:     Critical,
	KindBreakGlass:           Warning,
	KindAccountLocked:        Warning,
}

// Severity is k's severity (critical for a kind not in the table).
func (k Kind) Severity() string {
	if s, ok := severityOf[k]; ok {
		return s
	}
	return Critical
}

// Raise stores an alert of kind k in db. In a transaction, the alert is
// delivered only if it commits (the alerts table is the outbox).
func Raise(ctx context.Context, db store.DBTX, k Kind, subject, detail string, now time.Time) (store.Alert, error) {
	return store.RaiseAlert(ctx, db, string(k), k.Severity(), subject, detail, now)
}
