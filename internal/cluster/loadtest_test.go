package cluster

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/openvisit/openvisit/internal/loadtest"
	"github.com/openvisit/openvisit/internal/testenv"
)

// TestLoadtestSpawnCarriesMedia runs `openvisit loadtest --spawn` as an
// operator would: the spawned server admits the simulated participants
// (their visits are in its database, as the join's revocation check needs)
// and media flows both ways in every visit, on the clients' fast path.
func TestLoadtestSpawnCarriesMedia(t *testing.T) {
	bin := binary(t)
	dsn := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "loadtest", "--spawn", "--visits", "2",
		"--warmup", "3s", "--duration", "3s", "--json")
	cmd.Env = append(withoutEnv(os.Environ(), "OPENVISIT_DATABASE_URL"), "OPENVISIT_DATABASE_URL="+dsn)
	var stderr testenv.SyncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("loadtest: %v\n%s\n%s", err, out, stderr.String())
	}
	var rep loadtest.Report
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	if rep.Visits != 2 || rep.VisitsUp != 2 || len(rep.Errors) != 0 {
		t.Fatalf("visits %d, with media both ways %d, errors %q; want 2, 2, none\n%s",
			rep.Visits, rep.VisitsUp, rep.Errors, stderr.String())
	}
	if rep.ReceivedPackets == 0 {
		t.Fatalf("no packets received (sent %d)", rep.SentPackets)
	}
	// The clients' media went around Pion (the fast path), and every
	// participant's first keyframe was timed from its join.
	if rep.MediaPath != "fast" || rep.FastReceived == 0 {
		t.Errorf("media path %q, %d of %d packets received on the fast path", rep.MediaPath, rep.FastReceived, rep.ReceivedPackets)
	}
	if rep.JoinsMeasured != 4 || rep.JoinFrameP50MS <= 0 {
		t.Errorf("join → first frame measured for %d of 4 participants (p50 %.1f ms)", rep.JoinsMeasured, rep.JoinFrameP50MS)
	}
	if rep.ServerCPUSec <= 0 || rep.CPUPerForwardedUS <= 0 {
		t.Errorf("server CPU %.2f s, %.1f µs per forwarded packet: want both measured", rep.ServerCPUSec, rep.CPUPerForwardedUS)
	}
}

// withoutEnv is env without the variables named.
func withoutEnv(env []string, names ...string) []string {
	var out []string
next:
	for _, kv := range env {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		out = append(out, kv)
	}
	return out
}
