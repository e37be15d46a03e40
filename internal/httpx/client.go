package httpx

import (
	"net/netip"
	"strings"

	"github.com/gin-gonic/gin"
)

// ForwardedForHeader is the one header a trusted proxy may use to name the
// client. X-Real-IP and platform headers (CF-Connecting-IP, …) are never
// read: a client could send them too.
const ForwardedForHeader = "X-Forwarded-For"

// TrustProxies makes r believe X-Forwarded-For only from peers inside
// trusted (http.trusted_proxies); with none, the client is always the TCP
// peer. Gin's default engine trusts every peer, so every engine that
// serves OpenVisit must be configured here before it serves.
func TrustProxies(r *gin.Engine, trusted []netip.Prefix) error {
	cidrs := make([]string, len(trusted))
	for i, p := range trusted {
		cidrs[i] = p.String()
	}
	r.TrustedPlatform = ""
	r.ForwardedByClientIP = len(cidrs) > 0
	r.RemoteIPHeaders = []string{ForwardedForHeader}
	return r.SetTrustedProxies(cidrs)
}

// ClientAddr is the request's client address: the TCP peer's, unless the
// peer is a trusted proxy (TrustProxies), in which case the nearest
// address in X-Forwarded-For that is not itself a trusted proxy. This is
// the one definition of "the client" that audit entries, session rows,
// sign-in throttling and the alert rules use (through ClientIP). An
// unparsable address is the unspecified address.
func ClientAddr(c *gin.Context) netip.Addr {
	a, err := netip.ParseAddr(strings.TrimSpace(c.ClientIP()))
	if err != nil {
		return netip.IPv4Unspecified()
	}
	return a.Unmap().WithZone("")
}

// ClientIP is ClientAddr as text, in one canonical form (an IPv4 client
// reached over IPv6 is written as IPv4), so that rows about one client
// group together.
func ClientIP(c *gin.Context) string { return ClientAddr(c).String() }

// maxUserAgent bounds the User-Agent kept in audit entries and sessions.
const maxUserAgent = 256

// UserAgent is the request's User-Agent as it may be stored: about 256
// bytes at most, valid UTF-8 without NUL (PostgreSQL refuses both in text, and
// a header is client data of any length).
func UserAgent(c *gin.Context) string {
	return CleanText(c.Request.UserAgent(), maxUserAgent)
}

// CleanText cuts s to at most max bytes and replaces what PostgreSQL text
// cannot hold (invalid UTF-8, NUL) with U+FFFD, for values that are kept
// as a record of what a client sent rather than refused.
func CleanText(s string, max int) string {
	if len(s) > max {
		s = s[:max]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}
