package app_test

import (
	"context"
	"testing"

	"github.com/openvisit/openvisit/internal/ids"
	"github.com/openvisit/openvisit/internal/store"
)

// outboxFixture keeps a message sent by provider in the development outbox
// (the matrix server runs in development without SMTP), with a calendar
// file attached.
func (s *server) outboxFixture(t *testing.T, provider ids.UserID) string {
	t.Helper()
	id, err := store.AddOutboxMessage(context.Background(), s.App.DB(), store.OutboxMessage{SentBy: provider, To: "pat@example.test",
		Subject: "Your video visit link", Body: "Join from this link",
		Attachments: []store.OutboxAttachment{{Name: "video-visit.ics", ContentType: "text/calendar", Data: []byte("BEGIN:VCALENDAR")}}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// outboxMatrix: staff read the development outbox, a provider only the
// mail they sent (another's answers 404), admins all of it.
func outboxMatrix() map[string]matrixCase {
	staffOnly := expect{anon: 401, patient: 403, otherPatient: 403, provA: 200, provB: 200, admin: 200}
	sender := with(staffOnly, expect{provB: 404})
	return map[string]matrixCase{
		"GET /api/v1/dev/outbox":                            {want: staffOnly},
		"GET /api/v1/dev/outbox/:message_id":                {want: sender},
		"GET /api/v1/dev/outbox/:message_id/attachments/:n": {want: sender},
	}
}
