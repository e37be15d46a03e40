package reminders

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/openvisit/openvisit/internal/delivery"
	"github.com/openvisit/openvisit/internal/ids"
)

// SMS is one text message. To is the patient's phone number (PHI): it
// travels only in an HTTPS request body, never in a URL, header or log.
type SMS struct {
	To      string
	Body    string
	VisitID ids.VisitID
}

// Sender sends text messages. The shipped one posts to a webhook
// (WebhookSender); a gateway's own API is another implementation.
type Sender interface {
	Send(ctx context.Context, m SMS) error
}

// WebhookSender posts each message as JSON to an HTTPS webhook the
// clinic's SMS gateway (or glue of its own) answers, signed as every
// OpenVisit webhook is (internal/delivery, one home for the scheme): the
// timestamp is inside the MAC, so a captured request cannot be replayed
// later unnoticed.
type WebhookSender struct {
	URL    string // https:// (http:// only to a loopback address, for tests)
	Secret []byte
	Client *http.Client // nil: a client with a 10 s timeout
	Now    func() time.Time
}

// webhookBody is what the webhook receives.
type webhookBody struct {
	To      string `json:"to"`
	Body    string `json:"body"`
	VisitID string `json:"visit_id"`
	SentAt  string `json:"sent_at"`
}

// CheckWebhookURL refuses a webhook that would carry a phone number in the
// clear: https only, or http to a loopback host.
func CheckWebhookURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("reminders: sms webhook url is not a URL")
	}
	if u.Scheme == "https" {
		return nil
	}
	if h := u.Hostname(); u.Scheme == "http" && (h == "127.0.0.1" || h == "::1" || h == "localhost") {
		return nil
	}
	return fmt.Errorf("reminders: sms webhook url must be https")
}

// Send implements Sender.
func (w WebhookSender) Send(ctx context.Context, m SMS) error {
	if err := CheckWebhookURL(w.URL); err != nil {
		return err
	}
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	body, err := json.Marshal(webhookBody{To: m.To, Body: m.Body, VisitID: string(m.VisitID), SentAt: now().UTC().Format(time.RFC3339)})
	if err != nil {
		return err
	}
	c := w.Client
	if c == nil {
		c = &http.Client{Timeout: 10 * time.Second}
	}
	// Signed and posted as every OpenVisit webhook is (internal/delivery);
	// the result names the URL's failure class, never the body.
	if r := delivery.Post(ctx, c, delivery.Request{URL: w.URL, Secret: w.Secret, Body: body, At: now()}); !r.OK() {
		return fmt.Errorf("reminders: sms webhook: %w", r.Err)
	}
	return nil
}
