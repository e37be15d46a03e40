package signaling

// Help is the clinic's help line (config clinic.*), sent with every join
// grant so that the call page can show it when the video connection cannot
// be made (web/static/js/call.js). Not PHI, not secret.
type Help struct {
	Text  string `json:"text,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// help returns the configured help line, nil when there is none.
func (s *Server) help() *Help {
	if s.p.Help == (Help{}) {
		return nil
	}
	h := s.p.Help
	return &h
}
