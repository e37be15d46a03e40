// Package webhooks sends visit events to the clinic's systems: an admin
// subscribes a URL to event kinds; every matching event is posted to it,
// signed (internal/delivery), in order, retried with backoff, and logged
// per attempt for admins.
//
// Events are written by triggers on visits, participants and recordings
// (migration "webhooks"), so each commits with the change that causes it,
// whichever process or command made that change; a Deliverer in every API
// process sends them (rows claimed FOR UPDATE SKIP LOCKED, so several
// processes share the work without sending twice). A payload carries
// opaque IDs only, unless the subscription was granted PHI.
package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/google/uuid"
	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/keys"
	"github.com/openvisit/openvisit/internal/store"
)

// Event kinds.
const (
	KindVisitScheduled     = "visit.scheduled"
	KindPatientWaiting     = "patient.waiting"
	KindVisitStarted       = "visit.started"
	KindVisitEnded         = "visit.ended"
	KindVisitNoShow        = "visit.no_show"
	KindRecordingAvailable = "recording.available"
)

// Kinds are every event kind, in the order of a visit.
var Kinds = []string{KindVisitScheduled, KindPatientWaiting, KindVisitStarted, KindVisitEnded,
	KindVisitNoShow, KindRecordingAvailable}

// Audit actions.
const (
	ActionSubscribe   = "webhook.subscribe"
	ActionUnsubscribe = "webhook.unsubscribe"
)

// Errors.
var (
	ErrBadURL   = errors.New("webhooks: the URL must be an absolute https URL without credentials")
	ErrBadKinds = errors.New("webhooks: unknown or missing event kinds")
)

// MaxURL is the longest URL a subscription takes.
const MaxURL = 2048

// sealPurpose binds a sealed secret to its subscription.
func sealPurpose(id string) string { return "webhook-secret:" + id }

// Subscriptions manages subscriptions. Stateless beyond its fields.
type Subscriptions struct {
	DB     *store.DB
	Sealer *keys.Sealer
	// AllowHTTP accepts http:// URLs (development only).
	AllowHTTP bool
}

// NewSubscription asks for a subscription.
type NewSubscription struct {
	URL           string   `json:"url"`
	Kinds         []string `json:"kinds"`
	MayReceivePHI bool     `json:"may_receive_phi"`
}

// Created is a new subscription with its secret, shown this once.
type Created struct {
	store.WebhookSubscription
	Secret string `json:"secret"`
}

// Validate checks n (URL scheme, kinds) and returns it normalized.
func (s *Subscriptions) Validate(n NewSubscription) (NewSubscription, error) {
	u, err := url.Parse(strings.TrimSpace(n.URL))
	if err != nil || len(n.URL) > MaxURL || u.Host == "" || u.User != nil || u.Fragment != "" ||
		!(u.Scheme == "https" || (s.AllowHTTP && u.Scheme == "http")) {
		return n, ErrBadURL
	}
	n.URL = u.String()
	if len(n.Kinds) == 0 || len(n.Kinds) > len(Kinds) {
		return n, ErrBadKinds
	}
	for _, k := range n.Kinds {
		if !slices.Contains(Kinds, k) {
			return n, ErrBadKinds
		}
	}
	slices.Sort(n.Kinds)
	n.Kinds = slices.Compact(n.Kinds)
	return n, nil
}

// Create stores a subscription with a fresh secret, audited as ev.
func (s *Subscriptions) Create(ctx context.Context, n NewSubscription, ev audit.Event) (Created, error) {
	n, err := s.Validate(n)
	if err != nil {
		return Created{}, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Created{}, fmt.Errorf("webhooks: secret: %w", err)
	}
	secret := "whsec_" + base64.RawURLEncoding.EncodeToString(raw)
	sub := store.WebhookSubscription{ID: uuid.NewString(), URL: n.URL, Kinds: n.Kinds,
		MayReceivePHI: n.MayReceivePHI, CreatedBy: ev.ActorID}
	if sub.SecretSealed, err = s.Sealer.Seal(sealPurpose(sub.ID), []byte(secret)); err != nil {
		return Created{}, err
	}
	ev.Action, ev.ResourceType, ev.ResourceID, ev.Outcome = ActionSubscribe, "webhook", sub.ID, audit.Success
	ev.Reason = "kinds " + strings.Join(n.Kinds, ",") + phiNote(n.MayReceivePHI)
	err = s.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		return store.CreateWebhookSubscription(ctx, tx, sub)
	})
	if err != nil {
		return Created{}, err
	}
	sub.CreatedAt = time.Now()
	return Created{WebhookSubscription: sub, Secret: secret}, nil
}

func phiNote(granted bool) string {
	if granted {
		return "; may receive PHI"
	}
	return ""
}

// Disable stops a subscription, audited as ev.
func (s *Subscriptions) Disable(ctx context.Context, id string, now time.Time, ev audit.Event) error {
	ev.Action, ev.ResourceType, ev.ResourceID, ev.Outcome = ActionUnsubscribe, "webhook", id, audit.Success
	return s.DB.Change(ctx, &ev, func(tx pgx.Tx) error {
		return store.DisableWebhookSubscription(ctx, tx, id, now)
	})
}

// secret opens a subscription's secret.
func secret(sealer *keys.Sealer, sub store.WebhookSubscription) ([]byte, error) {
	return sealer.Open(sealPurpose(sub.ID), sub.SecretSealed)
}
