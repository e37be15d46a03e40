// Package phi is protected health information at rest: the one declaration
// of what every database column holds (Columns), the field cipher that
// stores PHI as AES-256-GCM ciphertext bound to its table, column and row
// (Cipher), the data keys it uses, wrapped by the recording keyring's KEKs
// (phi_data_keys), and the keyed blind indexes that let the pages find a
// patient by name, date of birth or email without the plaintext
// (docs/DESIGN.md decision 13).
//
// The store encrypts and decrypts through this package; the PHI inventory
// (docs/compliance) and the tests read Columns. A column that Columns does
// not classify fails TestEveryColumnClassified, so a new column cannot be
// added without saying whether it is PHI.
package phi

import "slices"

// Kind is what a column holds.
type Kind string

// Kinds of column. The first five are PHI; the others are not, each for
// the reason its Column gives.
const (
	Name        Kind = "name"          // a patient's name
	DateOfBirth Kind = "date_of_birth" // a patient's date of birth
	Email       Kind = "email"         // a patient's email address
	Phone       Kind = "phone"         // a patient's phone number
	FreeText    Kind = "free_text"     // free text that may be about a patient
	// MRN is a medical record number (an EHR's patient identifier).
	MRN Kind = "medical_record_number"
	// Network is an IP address or browser user agent. IP addresses are
	// identifiers under HIPAA's Safe Harbor list; they are kept in
	// plaintext where the security controls must read them (Why says).
	Network Kind = "network_identifier"
	// Ciphertext is the encrypted form of a PHI column (Cipher names it).
	Ciphertext Kind = "ciphertext"
	// BlindIndex is a keyed HMAC of a normalised PHI value (or the ID of
	// the key that made it): it reveals equality, not the value.
	BlindIndex Kind = "blind_index"
	// NotPHI is anything else: opaque IDs, times, states, hashes, keys
	// wrapped by a KEK, text written by the server.
	NotPHI Kind = "not_phi"
)

// IsPHI reports whether k is one of the kinds of PHI.
func (k Kind) IsPHI() bool {
	switch k {
	case Name, DateOfBirth, Email, Phone, FreeText, MRN, Network:
		return true
	}
	return false
}

// Index is a kind of blind index kept of a PHI column.
type Index string

// Blind indexes (index.go has their normalisation).
const (
	// IndexEmail: exact email address, trimmed and lower-cased.
	IndexEmail Index = "email"
	// IndexDOB: exact date of birth, YYYY-MM-DD.
	IndexDOB Index = "date_of_birth"
	// IndexNamePrefixes: every prefix (MinPrefix..MaxPrefix runes) of
	// every normalised name word, in patient_name_tokens. An exact last
	// name is one of them.
	IndexNamePrefixes Index = "name_prefixes"
	// IndexMRN: exact medical record number ("system|value", trimmed).
	IndexMRN Index = "mrn"
)

// Column is one column of one table and what it holds. Every column of the
// migrated schema appears in Columns exactly once.
type Column struct {
	Table  string `json:"table"`
	Column string `json:"column"`
	Kind   Kind   `json:"kind"`
	// Cipher is the bytea column that holds this column's ciphertext; the
	// plaintext column is no longer written (the migration job empties it).
	// Empty: the column is stored as it is.
	Cipher string `json:"cipher,omitempty"`
	// Indexes are the blind indexes kept of it.
	Indexes []Index `json:"indexes,omitempty"`
	// Where the value lives, is worked on and travels (for the inventory).
	Stored      string `json:"stored,omitempty"`
	Processed   string `json:"processed,omitempty"`
	Transmitted string `json:"transmitted,omitempty"`
	// Why: for a column that is not PHI, why not; for PHI kept in
	// plaintext, why it must be.
	Why string `json:"why,omitempty"`
}

// Encrypted reports whether the column's values are stored as ciphertext.
func (c Column) Encrypted() bool { return c.Cipher != "" }

// Where PHI goes, shared by the declarations below.
const (
	inDB       = "PostgreSQL (as ciphertext), its backups and replicas"
	inAPI      = "memory of the API process (signaling) while a request is served"
	toStaff    = "HTTPS (TLS) to the signed-in staff's browser"
	inviteMail = "the invite email (SMTP with STARTTLS, or the development outbox)"
)

// The encrypted PHI fields. The store names them when it seals or opens a
// value, so that the declaration and the encryption cannot disagree.
var (
	PatientName = Column{Table: "patients", Column: "name", Kind: Name, Cipher: "name_ct",
		Indexes: []Index{IndexNamePrefixes}, Stored: inDB, Processed: inAPI,
		Transmitted: toStaff + "; the patient's own invite email"}
	PatientDOB = Column{Table: "patients", Column: "date_of_birth", Kind: DateOfBirth, Cipher: "date_of_birth_ct",
		Indexes: []Index{IndexDOB}, Stored: inDB, Processed: inAPI + " (also to check an invite's date of birth)",
		Transmitted: toStaff + "; typed by the patient to redeem an invite"}
	PatientEmail = Column{Table: "patients", Column: "email", Kind: Email, Cipher: "email_ct",
		Indexes: []Index{IndexEmail}, Stored: inDB, Processed: inAPI, Transmitted: toStaff + "; " + inviteMail}
	PatientPhone = Column{Table: "patients", Column: "phone", Kind: Phone, Cipher: "phone_ct",
		Stored: inDB, Processed: inAPI, Transmitted: toStaff}
	PatientMRN = Column{Table: "patients", Column: "mrn", Kind: MRN, Cipher: "mrn_ct",
		Indexes: []Index{IndexMRN}, Stored: inDB, Processed: inAPI + " (also FHIR Patient search by identifier)",
		Transmitted: toStaff + "; HTTPS (TLS) to the clinic's EHR client (FHIR Patient.identifier)"}
	VisitReason = Column{Table: "visits", Column: "reason", Kind: FreeText, Cipher: "reason_ct",
		Stored: inDB, Processed: inAPI, Transmitted: toStaff + " (the visit's provider)"}
	BreakGlassReason = Column{Table: "break_glass", Column: "reason", Kind: FreeText, Cipher: "reason_ct",
		Stored: inDB, Processed: inAPI, Transmitted: toStaff + " (admins reviewing the grant)"}
	IncidentTitle = Column{Table: "incidents", Column: "title", Kind: FreeText, Cipher: "title_ct",
		Stored: inDB, Processed: inAPI, Transmitted: toStaff + " (admins)"}
	IncidentDescription = Column{Table: "incidents", Column: "description", Kind: FreeText, Cipher: "description_ct",
		Stored: inDB, Processed: inAPI, Transmitted: toStaff + " (admins)"}
	OutboxRecipient = Column{Table: "dev_outbox", Column: "recipient", Kind: Email, Cipher: "recipient_ct",
		Stored: inDB + " (development only)", Processed: inAPI, Transmitted: toStaff + " (development outbox page)"}
	OutboxSubject = Column{Table: "dev_outbox", Column: "subject", Kind: FreeText, Cipher: "subject_ct",
		Stored: inDB + " (development only)", Processed: inAPI, Transmitted: toStaff + " (development outbox page)"}
	OutboxBody = Column{Table: "dev_outbox", Column: "body", Kind: FreeText, Cipher: "body_ct",
		Stored: inDB + " (development only)", Processed: inAPI, Transmitted: toStaff + " (development outbox page)"}
	ChatBody = Column{Table: "chat_messages", Column: "body", Kind: FreeText, Cipher: "body_ct",
		Stored: inDB + "; kept with the visit", Processed: inAPI,
		Transmitted: "HTTPS (TLS) server-sent events to the visit's participants' browsers; " + toStaff + " (the visit's provider, afterwards)"}
	InviteeName = Column{Table: "visit_invites", Column: "invitee_name", Kind: Name, Cipher: "invitee_name_ct",
		Stored: inDB, Processed: inAPI, Transmitted: toStaff + " (the visit's providers); the call page's tiles (the visit's participants)"}
	InviteeEmail = Column{Table: "visit_invites", Column: "invitee_email", Kind: Email, Cipher: "invitee_email_ct",
		Stored: inDB, Processed: inAPI, Transmitted: toStaff + " (the visit's providers); " + inviteMail}
	OutboxAttachment = Column{Table: "dev_outbox_attachments", Column: "data", Kind: FreeText, Cipher: "data_ct",
		Stored: inDB + " (development only)", Processed: inAPI, Transmitted: toStaff + " (development outbox page)"}
)

// Encrypted lists the encrypted fields.
var Encrypted = []Column{PatientName, PatientDOB, PatientEmail, PatientPhone, PatientMRN, VisitReason, BreakGlassReason,
	IncidentTitle, IncidentDescription, OutboxRecipient, OutboxSubject, OutboxBody, OutboxAttachment, ChatBody,
	InviteeName, InviteeEmail}

// Columns classifies every column of every table.
var Columns = slices.Concat(
	Encrypted,
	derived(),
	network(),
	notPHI("alerts", "server-written alert: opaque IDs (subject, detail name a user, visit or recording by ID), kinds, times",
		"id", "kind", "severity", "subject", "detail", "created_at", "acknowledged_by", "acknowledged_at", "notified_at", "notify_attempts"),
	notPHI("webhook_subscriptions", "a receiver's URL (the clinic's system), its HMAC secret sealed under the server secret, event kinds, the PHI grant, an admin's ID, times",
		"id", "url", "secret_enc", "kinds", "may_receive_phi", "created_by", "created_at", "disabled_at"),
	notPHI("webhook_deliveries", "the visit events outbox: opaque IDs (event, visit, participant or recording), kinds, states, times; PHI a subscription is granted is read at send time, never stored",
		"id", "subscription_id", "event_id", "kind", "visit_id", "subject_id", "occurred_at", "status", "attempts", "next_attempt_at", "finished_at"),
	notPHI("webhook_attempts", "the delivery log: attempt numbers, times, HTTP status codes and error classes; no bodies",
		"delivery_id", "attempt", "at", "status_code", "error_class"),
	notPHI("audit_chain_head", "the audit chain's head: a sequence number and a hash", "singleton", "seq", "hash"),
	notPHI("audit_checkpoints", "signed checkpoints of the audit chain: hashes, signatures, object names",
		"id", "seq", "head_hash", "signature", "key_id", "signed_at", "anchored_at", "object_key", "object_version"),
	notPHI("audit_events", "the audit trail keeps opaque IDs only (actors, patients, visits by UUID); action, outcome and reason are server-written codes",
		"seq", "at", "actor_id", "actor_role", "action", "resource_type", "resource_id", "patient_id", "visit_id", "outcome", "reason", "prev_hash", "hash"),
	notPHI("break_glass", "opaque IDs and times of an emergency access grant", "id", "user_id", "visit_id", "granted_at", "expires_at", "reviewed_by", "reviewed_at"),
	notPHI("chat_messages", "opaque IDs of the message, visit and sender, the sender's role, the message's order and time",
		"id", "visit_id", "seq", "sender_id", "sender_role", "created_at"),
	notPHI("consents", "opaque IDs, the kind of consent and its times", "id", "visit_id", "patient_id", "participant_id", "kind", "given_at", "declined_at", "withdrawn_at"),
	notPHI("demo_links", "hashed secret, opaque IDs and times of a development demo link", "code_hash", "visit_id", "participant_id", "expires_at", "used_at"),
	notPHI("dev_outbox", "opaque IDs and times of a kept message", "id", "created_at", "sent_by", "patient_id", "visit_id"),
	notPHI("dev_outbox_attachments", "server-chosen file name (invite.ics) and media type", "message_id", "n", "name", "content_type"),
	notPHI("incidents", "opaque IDs, status and deadlines of an incident", "id", "discovered_at", "notify_by", "status", "created_by", "created_at"),
	notPHI("join_tokens", "opaque token IDs, roles, times and a session hash", "jti", "visit_id", "participant_id", "role", "expires_at", "used_at", "session_hash"),
	notPHI("participants", "opaque IDs, roles, states and times of a visit's participants",
		"id", "visit_id", "role", "subject", "created_at", "joined_at", "left_at", "user_id", "state", "invite_id", "admitted_at", "waiting_at",
		"media_state", "media_state_at", "media_failed_at"),
	notPHI("patients", "opaque IDs and times; state is the two-letter US state, which Safe Harbor does not count as an identifier (breach notices are counted by it)",
		"id", "state", "created_by", "created_at"),
	notPHI("phi_data_keys", "data keys wrapped by a KEK (never in the clear), their purpose, period and KEK ID",
		"id", "purpose", "period", "kek_id", "wrapped", "created_at"),
	notPHI("recording_chunks", "object names (opaque), headers, sizes, hashes and times of encrypted recording objects",
		"recording_id", "seq", "object_key", "header", "size", "sha256", "status", "started_at", "ended_at", "duration_ms",
		"upload_id", "truncated", "plaintext_size", "integrity_failed_at"),
	notPHI("recording_controls", "a visit's recording switch: opaque IDs, states, times, server-written stop codes",
		"visit_id", "requested_by", "requested_at", "active", "started_by", "started_at", "stopped_at", "stop_reason", "updated_at",
		"claim_id", "recorder_node", "heartbeat_at", "media_at", "first_media_at", "alerted_at"),
	notPHI("recordings", "a recording's envelope (data key wrapped by a KEK), status, sizes and times; the media is encrypted in S3",
		"id", "visit_id", "participant_id", "participant_role", "kek_id", "wrapped_dek", "segment_size", "status", "started_at", "ended_at",
		"heartbeat_at", "recorder_node", "size", "legal_hold", "delete_after", "deleted_at"),
	notPHI("recovery_codes", "hashes of staff recovery codes", "user_id", "code_hash"),
	notPHI("schema_migrations", "applied migration numbers and file names", "version", "name", "applied_at"),
	notPHI("sessions", "hashed session IDs, opaque IDs, times, server-written revoke codes",
		"id_hash", "kind", "user_id", "visit_id", "participant_id", "created_at", "last_seen_at", "revoked_at", "revoke_reason"),
	notPHI("setup_links", "hashed one-time staff links", "token_hash", "user_id", "purpose", "created_at", "expires_at", "used_at"),
	notPHI("sfu_nodes", "media node registry: node IDs, URLs (the node's and its TURN relay's), the node's own address, load", "id", "url", "public_ip", "capacity", "load",
		"draining", "last_seen_at", "rooms", "started_at", "relay_urls"),
	notPHI("sfu_rooms", "which media node hosts which visit (opaque IDs)", "node_id", "visit_id", "joined_at"),
	notPHI("users", "staff accounts (workforce, not patients): staff name and work email are not PHI; credentials are hashed or sealed",
		"id", "email", "name", "role", "password_hash", "totp_secret_enc", "totp_pending_enc", "totp_last_step", "mfa_enrolled_at",
		"failed_logins", "last_failed_at", "locked_at", "disabled_at", "created_at", "updated_at", "last_signin_at", "external_id"),
	notPHI("webauthn_credentials", "staff passkeys: public keys, authenticator metadata and the staff member's name for the key; no patient data",
		"id", "user_id", "credential_id", "public_key", "attestation_type", "aaguid", "sign_count", "clone_warning", "transports",
		"attachment", "user_present", "user_verified", "backup_eligible", "backup_state", "name", "created_at", "last_used_at"),
	notPHI("webauthn_ceremonies", "a staff passkey ceremony's server-side state for two minutes (challenge, opaque IDs)",
		"token_hash", "purpose", "user_id", "session_hash", "data", "expires_at"),
	notPHI("machine_clients", "machine clients (SCIM identity providers, EHRs): names, hashed tokens, public keys, scopes, times",
		"id", "kind", "name", "token_hash", "created_at", "created_by", "last_used_at", "revoked_at", "jwks", "scopes"),
	notPHI("client_access_tokens", "hashed access tokens of machine clients, their scopes and times",
		"token_hash", "client_id", "scopes", "issued_at", "expires_at"),
	notPHI("client_assertion_jtis", "the random IDs of accepted client assertions (replay protection) and their expiry",
		"client_id", "jti", "expires_at"),
	notPHI("oidc_links", "staff accounts linked to an identity provider's subject; the refresh token sealed under the auth secret",
		"issuer", "subject", "user_id", "refresh_token_enc", "created_at", "last_signin_at", "vouched_at"),
	notPHI("visit_invites", "hashed invite secrets, opaque IDs, the invitee's role, counters and times (contact details only as ciphertext); "+
		"lang is the code of the catalogue the invite's messages use (en, es), the provider's choice of wording, not a recorded fact about the patient",
		"id", "secret_hash", "visit_id", "created_at", "revoked_at", "used_at", "dob_failures", "locked_at", "role", "lang"),
	notPHI("visit_reminders", "which reminder (visit ID, offset) went when, through which channels, with which invite ID",
		"visit_id", "offset_seconds", "sent_at", "invite_id", "email", "sms"),
	notPHI("visit_staff", "opaque IDs and times of a visit's guest providers", "visit_id", "user_id", "added_by", "added_at"),
	notPHI("visits", "opaque IDs, statuses and times of a visit", "id", "status", "scheduled_start", "scheduled_end", "sfu_node_id", "demo",
		"created_at", "started_at", "ended_at", "provider_id", "patient_id", "waiting_at", "cancelled_at", "no_show_at", "placed_at"),
)

// derived are the columns the encryption adds: ciphertexts and indexes.
func derived() []Column {
	var out []Column
	for _, c := range Encrypted {
		out = append(out, Column{Table: c.Table, Column: c.Cipher, Kind: Ciphertext,
			Why: "AES-256-GCM ciphertext of " + c.Table + "." + c.Column + " under a data key wrapped by a KEK"})
	}
	idx := "HMAC-SHA-256 under the blind-index key: reveals equality of the normalised value, not the value"
	return append(out,
		Column{Table: "patients", Column: "email_bidx", Kind: BlindIndex, Why: idx},
		Column{Table: "patients", Column: "dob_bidx", Kind: BlindIndex, Why: idx},
		Column{Table: "patients", Column: "mrn_bidx", Kind: BlindIndex, Why: idx},
		Column{Table: "patients", Column: "bidx_key_id", Kind: BlindIndex, Why: "which index key made the patient's indexes"},
		Column{Table: "patient_name_tokens", Column: "patient_id", Kind: NotPHI, Why: "opaque ID"},
		Column{Table: "patient_name_tokens", Column: "token", Kind: BlindIndex, Why: idx + " (one row per name-word prefix)"},
		Column{Table: "patient_name_tokens", Column: "key_id", Kind: BlindIndex, Why: "which index key made the token"},
	)
}

// network are the network identifiers kept in plaintext, and why.
func network() []Column {
	audit := "the audit trail hashes it into its chain and the sign-in alert rules count failures by it (164.312(b)); " +
		"access to audit_events is the audit's own"
	sess := "kept with the session for the security review of sign-ins and session use (164.312(b)); staff and patient sessions alike"
	return []Column{
		{Table: "audit_events", Column: "ip", Kind: Network, Stored: "PostgreSQL (plaintext)", Processed: "alert rules", Why: audit},
		{Table: "audit_events", Column: "user_agent", Kind: Network, Stored: "PostgreSQL (plaintext)", Processed: "alert rules", Why: audit},
		{Table: "sessions", Column: "ip", Kind: Network, Stored: "PostgreSQL (plaintext)", Processed: inAPI, Why: sess},
		{Table: "sessions", Column: "user_agent", Kind: Network, Stored: "PostgreSQL (plaintext)", Processed: inAPI, Why: sess},
	}
}

func notPHI(table, why string, cols ...string) []Column {
	out := make([]Column, len(cols))
	for i, c := range cols {
		out[i] = Column{Table: table, Column: c, Kind: NotPHI, Why: why}
	}
	return out
}

// Lookup returns the declaration of table.column.
func Lookup(table, column string) (Column, bool) {
	i := slices.IndexFunc(Columns, func(c Column) bool { return c.Table == table && c.Column == column })
	if i < 0 {
		return Column{}, false
	}
	return Columns[i], true
}
