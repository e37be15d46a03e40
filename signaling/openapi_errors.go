package signaling

// errorCodes is the one list of the stable codes an /api/v1 error answer
// carries in error.code, with what each means. The OpenAPI description
// publishes it (the ErrorCode schema: an enum, and this table in its
// description); TestErrorCodesListed (openapi_test.go) fails on a code the
// source writes that is not here, and on one here that the source no
// longer writes. The HTTP status of each comes from its kind, in one
// table: internal/httpx statusOf.
var errorCodes = []struct{ code, meaning string }{
	// Input (httpx.DecodeJSON, CheckParams), 400 or 413.
	{"bad_content_type", "The body is not application/json."},
	{"bad_json", "The body is not one valid JSON object of this route's shape, or holds NUL or non-UTF-8 text."},
	{"unknown_field", "The body has a member this route does not accept."},
	{"body_too_large", "The body is over http.max_body_bytes (413)."},
	{"too_large", "The body is too large (413)."},
	{"bad_parameter", "A path or query parameter is malformed."},
	{"bad_text", "Text PostgreSQL cannot store (NUL, or not UTF-8)."},
	{"bad_request", "The request cannot be understood."},
	{"method_not_allowed", "The path exists, not with this method."},
	// Who may ask (the authorize middleware), 401, 403, 404.
	{"unauthenticated", "No valid session (401)."},
	{"forbidden", "Signed in, not allowed (403)."},
	{"csrf", "Missing or wrong CSRF token, or a foreign Origin (403)."},
	{"not_found", "No such resource, or not one the caller may see (404)."},
	{"rate_limited", "Too many attempts; Retry-After says when to try again (429)."},
	// Sign-in and enrolment.
	{"invalid_credentials", "Sign-in failed (the one answer to every failed sign-in)."},
	{"too_long", "A field is longer than allowed."},
	{"link_invalid", "The setup link is not valid, used or expired."},
	{"enrolment_not_started", "Enrolment must start again from the setup link."},
	{"weak_password", "The password is too weak; the message says why."},
	{"wrong_code", "The TOTP code is not right."},
	{"bad_code", "The code is malformed."},
	{"passkeys_unavailable", "Passkeys are not configured on this server (503)."},
	{"passkey_failed", "The passkey could not be verified."},
	{"bad_passkey_name", "A passkey's name is 1 to 64 characters."},
	{"too_many_passkeys", "The user has the most passkeys allowed."},
	{"sso_expired", "The identity provider sign-in took too long; start again."},
	// Users and review.
	{"bad_email", "Not a valid email address."},
	{"bad_name", "A name is missing or too long."},
	{"bad_role", "Role must be provider or admin."},
	{"email_taken", "A user with that email already exists."},
	{"self", "An admin cannot do this to their own account."},
	{"self_review", "An admin cannot review their own alert or emergency access."},
	// Audit and breach incidents.
	{"bad_filter", "An audit search filter is malformed."},
	{"bad_format", "format is csv or json."},
	{"bad_incident", "An incident needs a title; the description is bounded."},
	{"bad_discovered_at", "The discovery time is not RFC 3339 or is in the future."},
	{"bad_status", "An incident's status is open, notified or closed."},
	{"bad_scope", "A breach scope needs actor_id or kek_id and a valid time range."},
	{"audit_unavailable", "The audit log cannot be written, so access is refused (503)."},
	// Visits, the schedule and the waiting room.
	{"bad_visit_id", "visit_id is not an id."},
	{"bad_patient_id", "patient_id is not an id."},
	{"bad_start", "The start time is not RFC 3339."},
	{"bad_duration", "A visit lasts 5 to 240 minutes."},
	{"bad_reason", "A reason is too long, or (emergency access) too short."},
	{"bad_range", "A time range is malformed, not positive or too long."},
	{"bad_limit", "limit is out of range."},
	{"bad_from", "from is not an RFC 3339 time."},
	{"bad_to", "to is not an RFC 3339 time."},
	{"in_the_past", "The time is in the past."},
	{"too_far_ahead", "Visits can be scheduled up to a year ahead."},
	{"unknown_patient", "No such patient among the provider's."},
	{"overlap", "The provider already has a visit at that time."},
	{"not_scheduled", "Only a scheduled visit that has not started can be moved."},
	{"not_cancellable", "Only a visit that has not started can be cancelled."},
	{"not_no_show", "A visit is a no-show only after its start, if the patient never arrived."},
	{"visit_closed", "The visit has ended."},
	{"not_admitted", "The patient waits to be admitted."},
	{"wrong_state", "The participant is not in a state this change applies to."},
	{"not_needed", "Emergency access to one's own visit is not needed."},
	{"no_media_node", "No media server is available for the visit (503)."},
	{"no_minter", "This process cannot issue media grants (503)."},
	// Invites.
	{"invite_invalid", "The invite link is not valid."},
	{"invite_revoked", "The invite link was withdrawn."},
	{"invite_used", "The invite link was used on another device."},
	{"invite_locked", "Too many wrong dates of birth."},
	{"invite_expired", "The invite link has expired."},
	{"visit_ended", "The visit of the invite has ended."},
	{"too_early", "The invite opens one hour before the visit; details.usable_from says when."},
	{"no_patient", "The visit has no patient yet."},
	{"wrong_date_of_birth", "The date of birth does not match; details.tries_left counts the tries left."},
	{"no_patient_email", "The patient has no email address to send the invite to."},
	{"no_smtp", "No mail server is configured (503)."},
	{"smtp_failed", "The mail server refused the message (503)."},
	// Patients.
	{"bad_date_of_birth", "The date of birth is not YYYY-MM-DD."},
	{"bad_phone", "The phone number holds characters other than digits, spaces and + ( ) - ."},
	{"bad_state", "The state of residence is not a two-letter code."},
	{"bad_query", "The search is too long."},
	{"bad_lookup", "A lookup needs a name and a date of birth."},
	// Recordings.
	{"no_request", "Recording has not been requested for the visit."},
	{"consent_required", "The patient has not consented to recording."},
	{"no_consent", "There is no consent to withdraw."},
	{"recording_deleted", "The recording was deleted (retention)."},
	{"recording_unavailable", "The recording cannot be read right now (503)."},
	{"recording_storage_unavailable", "The recording storage cannot be reached (503)."},
	{"integrity_failed", "A recording chunk failed its integrity check (500); an alert is raised."},
	// Anything.
	{"unavailable", "A dependency is unavailable (503)."},
	{"service_unavailable", "The database cannot be reached; Retry-After says when to try again (503)."},
	{"internal", "An internal error; quote error.request_id (500)."},
}
