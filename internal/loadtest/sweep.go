package loadtest

import (
	"fmt"
	"io"
)

// Limits are what a run must stay under to hold its visits: every visit
// has media both ways, under MaxLoss of the packets are lost and the p99
// latency the SFU added is under MaxP99MS.
type Limits struct {
	MaxLoss  float64
	MaxP99MS float64
}

// DefaultLimits are the scaling report's: < 1 % loss, p99 < 20 ms.
var DefaultLimits = Limits{MaxLoss: 0.01, MaxP99MS: 20}

// Holds reports whether r held its visits within DefaultLimits.
func Holds(r Report) bool { return DefaultLimits.Holds(r) }

// Holds reports whether r held its visits within l (the sweep's stop
// rule: the sweep raises the visit count while the runs hold, and stops
// at the first that does not).
func (l Limits) Holds(r Report) bool {
	return r.Visits > 0 && r.VisitsUp == r.Visits && r.ReceivedPackets > 0 &&
		r.Loss < l.MaxLoss && r.LatencyP99MS < l.MaxP99MS
}

// SweepRow is one GOMAXPROCS of a sweep: the largest visit count held,
// with that run's figures (zero when none held), and the first count that
// did not hold (0 if the sweep reached its last count).
type SweepRow struct {
	Procs      int      `json:"gomaxprocs"`
	MaxVisits  int      `json:"max_visits_held"`
	FailedAt   int      `json:"failed_at_visits,omitempty"`
	FailReason string   `json:"fail_reason,omitempty"`
	CPUPerFwd  float64  `json:"server_cpu_us_per_forwarded_packet"`
	PPS        float64  `json:"forwarded_pps"`
	ServerCPU  float64  `json:"server_cpu_cores"`
	ClientCPU  float64  `json:"client_cpu_cores"`
	P99MS      float64  `json:"latency_p99_ms"`
	Runs       []Report `json:"runs"`
}

// Why says which limit of DefaultLimits r broke ("" if it held).
func Why(r Report) string { return DefaultLimits.Why(r) }

// Why says which limit r broke ("" if it held).
func (l Limits) Why(r Report) string {
	switch {
	case l.Holds(r):
		return ""
	case r.VisitsUp < r.Visits:
		return fmt.Sprintf("%d of %d visits up", r.VisitsUp, r.Visits)
	case r.ReceivedPackets == 0:
		return "nothing received"
	case r.Loss >= l.MaxLoss:
		return fmt.Sprintf("loss %.2f%%", r.Loss*100)
	default:
		return fmt.Sprintf("p99 %.1f ms", r.LatencyP99MS)
	}
}

// Sweep runs run(procs, visits) for each procs, at each of visits in
// turn, until a run does not hold within lim (or fails), and returns a row
// per procs.
func Sweep(lim Limits, procs, visits []int, run func(procs, visits int) (Report, error), log io.Writer) []SweepRow {
	var rows []SweepRow
	for _, p := range procs {
		row := SweepRow{Procs: p}
		for _, v := range visits {
			rep, err := run(p, v)
			row.Runs = append(row.Runs, rep)
			held := err == nil && lim.Holds(rep)
			if log != nil {
				fmt.Fprintf(log, "sweep: GOMAXPROCS %d, %d visits: held %v %s%v\n", p, v, held, lim.Why(rep), errText(err))
			}
			if !held {
				row.FailedAt, row.FailReason = v, lim.Why(rep)
				if err != nil {
					row.FailReason = err.Error()
				}
				break
			}
			row.MaxVisits, row.CPUPerFwd, row.PPS = v, rep.CPUPerForwardedUS, rep.ForwardedPPS
			row.ServerCPU, row.ClientCPU, row.P99MS = rep.ServerCPUSec/rep.WindowSeconds, rep.ClientCPUSec/rep.WindowSeconds, rep.LatencyP99MS
		}
		rows = append(rows, row)
	}
	return rows
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return " (" + err.Error() + ")"
}

// WriteSweep prints the sweep's table, then every run's figures.
func WriteSweep(w io.Writer, rows []SweepRow) {
	defer writeRuns(w, rows)
	fmt.Fprintf(w, "\n%10s %10s %12s %12s %10s %10s %8s  %s\n",
		"GOMAXPROCS", "max visits", "µs/fwd pkt", "fwd pkts/s", "srv cores", "cli cores", "p99 ms", "stopped by")
	for _, r := range rows {
		stop := "-"
		if r.FailedAt > 0 {
			stop = fmt.Sprintf("%d visits: %s", r.FailedAt, r.FailReason)
		}
		fmt.Fprintf(w, "%10d %10d %12.1f %12.0f %10.2f %10.2f %8.2f  %s\n",
			r.Procs, r.MaxVisits, r.CPUPerFwd, r.PPS, r.ServerCPU, r.ClientCPU, r.P99MS, stop)
	}
}

// writeRuns prints a line per run of the sweep.
func writeRuns(w io.Writer, rows []SweepRow) {
	fmt.Fprintf(w, "\n%10s %7s %6s %7s %8s %12s %12s %10s %10s %12s\n",
		"GOMAXPROCS", "visits", "up", "loss%", "p99 ms", "µs/fwd pkt", "fwd pkts/s", "srv cores", "cli cores", "cli µs/pkt")
	for _, row := range rows {
		for _, r := range row.Runs {
			win := max(r.WindowSeconds, 1e-9)
			fmt.Fprintf(w, "%10d %7d %6d %7.3f %8.2f %12.1f %12.0f %10.2f %10.2f %12.1f\n",
				row.Procs, r.Visits, r.VisitsUp, r.Loss*100, r.LatencyP99MS, r.CPUPerForwardedUS,
				r.ForwardedPPS, r.ServerCPUSec/win, r.ClientCPUSec/win, r.ClientCPUPerPacketUS)
		}
	}
}
