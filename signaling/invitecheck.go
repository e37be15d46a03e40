package signaling

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/auth/throttle"
	"github.com/openvisit/openvisit/internal/httpx"
)

// Invite links are tried per client address at most inviteBurst at once and
// one more every inviteInterval, the pre-check and redeem together. The
// secret (256 bits) cannot be guessed; the limit bounds the work and the
// audit entries one address can cause.
const (
	inviteInterval = 2 * time.Second
	inviteBurst    = 30
)

func newInviteLimiter(now func() time.Time) *throttle.Limiter {
	return throttle.NewLimiter(throttle.LimiterParams{Interval: inviteInterval, Burst: inviteBurst, MaxKeys: 100_000, Now: now})
}

// inviteAllowed takes a token from the caller's address; when none is left
// it answers 429 with Retry-After and returns false.
func (s *Server) inviteAllowed(c *gin.Context) bool {
	ok, retry := s.inviteLimiter.Allow(throttle.IPKey(httpx.ClientAddr(c)))
	if ok {
		return true
	}
	c.Header("Retry-After", strconv.Itoa(int(retry.Seconds())+1))
	s.abort(c, httpx.E(httpx.KindRateLimited, "rate_limited", "Too many tries from this network; wait a moment and try again."))
	return false
}

type checkInviteRequest struct {
	Invite string `json:"invite"`
}

// checkInvite answers the one thing the join page asks before the date of
// birth: was this link already used on another device, and in which
// language should the page speak? The answer is {"used": bool, "lang":
// code} and nothing else. A link that is unknown, malformed, withdrawn,
// expired, locked or of an ended visit answers false like a fresh one
// (redeeming it says why, once the date of birth is typed), an unknown one
// in English like an English link, so the check reveals nothing about the
// visit and not even whether the link exists. The browser that used the link (its patient
// session in that visit) is told false: redeem lets it back in. A "used"
// answer is audited (someone holds a link already used elsewhere).
func (s *Server) checkInvite(c *gin.Context) {
	if !s.inviteAllowed(c) {
		return
	}
	var req checkInviteRequest
	if err := httpx.DecodeJSON(c, &req); err != nil {
		s.abort(c, err)
		return
	}
	used, lang, err := s.inviteService().Check(c.Request.Context(), s.inviteAttempt(c, req.Invite))
	if err != nil {
		s.abort(c, err)
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"used": used, "lang": lang})
}
