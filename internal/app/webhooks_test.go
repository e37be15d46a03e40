package app_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestWebhookAdminAPI: an admin subscribes a URL and sees the secret once;
// bad URLs and kinds are refused with stable codes; the list and the
// delivery log never show the secret; a disabled subscription stays
// disabled.
func TestWebhookAdminAPI(t *testing.T) {
	s := startServer(t)
	c := s.newClient(t)
	c.mustLogin(s.enrol(t, "webhook-admin@clinic.test", "admin"))

	for _, tc := range []struct {
		body map[string]any
		code string
	}{
		{map[string]any{"url": "ftp://ehr.clinic.test/x", "kinds": []string{"visit.ended"}}, "bad_webhook_url"},
		{map[string]any{"url": "https://user:pw@ehr.clinic.test/x", "kinds": []string{"visit.ended"}}, "bad_webhook_url"},
		{map[string]any{"url": "https://" + strings.Repeat("a", 2100) + ".test/", "kinds": []string{"visit.ended"}}, "bad_webhook_url"},
		{map[string]any{"url": "https://ehr.clinic.test/x", "kinds": []string{}}, "bad_event_kinds"},
		{map[string]any{"url": "https://ehr.clinic.test/x", "kinds": []string{"visit.deleted"}}, "bad_event_kinds"},
	} {
		if r := c.do("POST", "/api/v1/admin/webhooks", tc.body); r.Status != http.StatusBadRequest || r.code() != tc.code {
			t.Errorf("%v = %d %s, want 400 %s", tc.body, r.Status, r.Body, tc.code)
		}
	}
	var created struct {
		ID            string   `json:"id"`
		Secret        string   `json:"secret"`
		Kinds         []string `json:"kinds"`
		MayReceivePHI bool     `json:"may_receive_phi"`
	}
	r := c.do("POST", "/api/v1/admin/webhooks", map[string]any{"url": "https://ehr.clinic.test/openvisit",
		"kinds": []string{"visit.ended", "visit.scheduled", "visit.ended"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("create = %d %s", r.Status, r.Body)
	}
	r.decode(t, &created)
	if !strings.HasPrefix(created.Secret, "whsec_") || created.MayReceivePHI || len(created.Kinds) != 2 {
		t.Errorf("created %+v: want a whsec_ secret, no PHI grant by default, the two kinds once each", created)
	}
	list := c.do("GET", "/api/v1/admin/webhooks", nil)
	if list.Status != http.StatusOK || !strings.Contains(string(list.Body), created.ID) || strings.Contains(string(list.Body), created.Secret) {
		t.Errorf("list = %d %s: want the subscription without its secret", list.Status, list.Body)
	}
	if r := c.do("POST", "/api/v1/admin/webhooks/"+created.ID+"/disable", struct{}{}); r.Status != http.StatusOK {
		t.Errorf("disable = %d %s", r.Status, r.Body)
	}
	if r := c.do("POST", "/api/v1/admin/webhooks/"+created.ID+"/disable", struct{}{}); r.Status != http.StatusNotFound {
		t.Errorf("disable again = %d %s, want 404", r.Status, r.Body)
	}
	if r := c.do("GET", "/api/v1/admin/webhooks/deliveries?limit=0", nil); r.Status != http.StatusBadRequest {
		t.Errorf("deliveries?limit=0 = %d, want 400", r.Status)
	}
	if r := c.do("GET", "/api/v1/admin/webhooks/deliveries", nil); r.Status != http.StatusOK {
		t.Errorf("deliveries = %d %s", r.Status, r.Body)
	}
	if n := s.auditCount(t, "webhook.subscribe", "success", ""); n != 1 {
		t.Errorf("webhook.subscribe audited %d times, want 1", n)
	}
}
