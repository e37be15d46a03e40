package signaling

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/audit"
	"github.com/openvisit/openvisit/internal/httpx"
	"github.com/openvisit/openvisit/internal/store"
	"github.com/openvisit/openvisit/internal/webhooks"
)

// Audit actions of the webhook admin routes that only read.
const (
	actionWebhookList = "webhook.list"
	actionWebhookLog  = "webhook.log"
)

// maxWebhookLog is the most deliveries one log request returns.
const maxWebhookLog = 500

// webhookRoutes: visit event subscriptions and their delivery log, for
// admins (internal/webhooks).
func (s *Server) webhookRoutes() []route {
	return []route{
		{http.MethodGet, "/api/v1/admin/webhooks", s.listWebhooks, onlyAdmins},
		{http.MethodPost, "/api/v1/admin/webhooks", s.createWebhook, onlyAdmins},
		{http.MethodPost, "/api/v1/admin/webhooks/:webhook_id/disable", s.disableWebhook, onlyAdmins},
		{http.MethodGet, "/api/v1/admin/webhooks/deliveries", s.webhookLog, onlyAdmins},
	}
}

func (s *Server) webhookService() *webhooks.Subscriptions {
	return &webhooks.Subscriptions{DB: s.p.DB, Sealer: s.p.Sealer, AllowHTTP: s.p.WebhooksAllowHTTP}
}

func (s *Server) listWebhooks(c *gin.Context) {
	subs, err := store.WebhookSubscriptions(c.Request.Context(), s.p.DB)
	if err != nil {
		s.abort(c, err)
		return
	}
	s.auditLog(c, s.webhookEvent(c, actionWebhookList, ""))
	c.JSON(http.StatusOK, gin.H{"webhooks": subs, "kinds": webhooks.Kinds})
}

// createWebhook subscribes a URL; the answer holds the signing secret,
// shown this once.
func (s *Server) createWebhook(c *gin.Context) {
	var req webhooks.NewSubscription
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	created, err := s.webhookService().Create(c.Request.Context(), req, s.webhookEvent(c, "", ""))
	if err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusCreated, created)
}

func (s *Server) disableWebhook(c *gin.Context) {
	id := c.Param("webhook_id")
	if err := s.webhookService().Disable(c.Request.Context(), id, s.p.Now(), s.webhookEvent(c, "", id)); err != nil {
		s.abort(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "disabled"})
}

// webhookLog lists the latest deliveries (?subscription=ID, ?limit=N) with
// each attempt's time, status code and error class; never a body.
func (s *Server) webhookLog(c *gin.Context) {
	limit := 100
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxWebhookLog {
			s.abort(c, httpx.E(httpx.KindInvalid, "bad_limit", "limit is a number from 1 to 500."))
			return
		}
		limit = n
	}
	sub := c.Query("subscription")
	log, err := store.WebhookLog(c.Request.Context(), s.p.DB, sub, limit)
	if err != nil {
		s.abort(c, err)
		return
	}
	s.auditLog(c, s.webhookEvent(c, actionWebhookLog, sub))
	c.JSON(http.StatusOK, gin.H{"deliveries": log})
}

func (s *Server) webhookEvent(c *gin.Context, action, id string) audit.Event {
	e := s.adminEvent(c, action, id)
	e.ResourceType = "webhook"
	return e
}
