package httpx

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestRouteMetricsLabelTemplates: requests are counted by route template
// and status, never by raw path (which holds IDs).
func TestRouteMetricsLabelTemplates(t *testing.T) {
	gin.SetMode(gin.TestMode)
	m := NewRouteMetrics()
	reg := prometheus.NewRegistry()
	reg.MustRegister(m.Collectors()...)
	r := gin.New()
	r.Use(m.Middleware())
	r.GET("/api/v1/visits/:id", func(c *gin.Context) { c.Status(http.StatusOK) })
	r.GET("/api/v1/fail", func(c *gin.Context) { c.Status(http.StatusConflict) })
	for _, p := range []string{"/api/v1/visits/0b5e6a1e-1111-4222-8333-944445555666", "/api/v1/visits/another", "/api/v1/fail", "/secret/path/123"} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, p, nil))
	}
	want := `
# HELP openvisit_http_requests_total API requests by method, route template and status code (errors: code >= 400).
# TYPE openvisit_http_requests_total counter
openvisit_http_requests_total{code="200",method="GET",route="/api/v1/visits/:id"} 2
openvisit_http_requests_total{code="404",method="GET",route="unmatched"} 1
openvisit_http_requests_total{code="409",method="GET",route="/api/v1/fail"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "openvisit_http_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.duration); n != 3 {
		t.Errorf("latency series: %d, want 3 (one per route template)", n)
	}
}
