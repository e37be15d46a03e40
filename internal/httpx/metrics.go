package httpx

import (
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// unmatchedRoute labels requests no route matched (pages, 404s): the raw
// path is never a label — it would hold IDs, and any client could make a
// new series per request.
const unmatchedRoute = "unmatched"

// RouteMetrics measures the API by route: the route's template (Gin's
// FullPath, e.g. /api/v1/visits/:id), never the raw path. Lifecycle: New,
// register Collectors once, use Middleware on one router.
type RouteMetrics struct {
	duration *prometheus.HistogramVec
	requests *prometheus.CounterVec
}

// NewRouteMetrics returns unregistered route metrics.
func NewRouteMetrics() *RouteMetrics {
	return &RouteMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "openvisit_http_request_duration_seconds",
			Help:    "API request latency by method and route template (WebSocket upgrades last as long as the socket).",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "openvisit_http_requests_total",
			Help: "API requests by method, route template and status code (errors: code >= 400).",
		}, []string{"method", "route", "code"}),
	}
}

// Collectors are the metrics to register.
func (m *RouteMetrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.duration, m.requests}
}

// Middleware observes each request once it is answered.
func (m *RouteMetrics) Middleware() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = unmatchedRoute
		}
		method := c.Request.Method
		m.duration.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		m.requests.WithLabelValues(method, route, strconv.Itoa(c.Writer.Status())).Inc()
	}
}
