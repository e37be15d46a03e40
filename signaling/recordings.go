package signaling

import (
	"github.com/gin-gonic/gin"

	"github.com/openvisit/openvisit/internal/access"
)

// recordingPolicy holds the rules of the recording routes (none yet).
func recordingPolicy() access.Policy { return access.Policy{} }

// registerRecordings adds the recording routes (none yet).
func (s *Server) registerRecordings(api *gin.RouterGroup) {}
