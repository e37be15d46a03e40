// Command vulncheck reads govulncheck's JSON stream (-format json) on stdin,
// prints every vulnerable symbol the code calls, and exits 1 when one is
// not accepted. It is the gate behind `make vulncheck` (deploy/dev/vulncheck.sh).
//
// govulncheck's JSON mode always exits 0, and it also reports modules and
// packages that are merely present; only a finding whose trace names a
// function is a called symbol (the level its text mode fails on).
//
// -accept FILE lists accepted standard-library findings, one "ID reason" a
// line: vulnerabilities fixed only in a newer Go than the toolchain these
// machines are pinned to. A module's vulnerability cannot be accepted: the
// fix is to upgrade the module. -expect ID instead exits 0 only when ID is
// reported as called (the canary scan that proves the database works).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// The parts of govulncheck's JSON protocol (golang.org/x/vuln
// internal/govulncheck) this gate reads.
type message struct {
	OSV     *osvEntry `json:"osv"`
	Finding *finding  `json:"finding"`
}

type osvEntry struct {
	ID      string `json:"id"`
	Summary string `json:"summary"`
}

type finding struct {
	OSV          string   `json:"osv"`
	FixedVersion string   `json:"fixed_version"`
	Trace        []*frame `json:"trace"`
}

type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
}

// stdlib is the module path govulncheck gives the standard library.
const stdlib = "stdlib"

// called is one vulnerability the code reaches.
type called struct {
	ID, Summary   string
	Module, Found string
	Fixed         string
	Symbols       []string
}

func main() {
	accept := flag.String("accept", "", "file of accepted standard-library findings (ID reason)")
	expect := flag.String("expect", "", "exit 0 only if this vulnerability ID is reported as called")
	flag.Parse()
	os.Exit(run(os.Stdin, os.Stdout, *accept, *expect))
}

func run(in io.Reader, out io.Writer, acceptFile, expect string) int {
	found, err := read(in)
	if err != nil {
		fmt.Fprintln(out, "vulncheck:", err)
		return 2
	}
	if expect != "" {
		if _, ok := found[expect]; ok {
			fmt.Fprintf(out, "vulncheck: canary %s found, as expected\n", expect)
			return 0
		}
		fmt.Fprintf(out, "vulncheck: canary %s NOT found: the vulnerability database is empty or broken\n", expect)
		return 1
	}
	accepted, err := readAccepted(acceptFile)
	if err != nil {
		fmt.Fprintln(out, "vulncheck:", err)
		return 2
	}
	return report(out, found, accepted)
}

// read collects the called findings by ID.
func read(in io.Reader) (map[string]*called, error) {
	dec := json.NewDecoder(bufio.NewReader(in))
	summaries := map[string]string{}
	found := map[string]*called{}
	for {
		var m message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("reading govulncheck output: %w", err)
		}
		if m.OSV != nil {
			summaries[m.OSV.ID] = m.OSV.Summary
		}
		f := m.Finding
		if f == nil || len(f.Trace) == 0 || f.Trace[0].Function == "" {
			continue // module or package level: present, not called
		}
		top := f.Trace[0]
		c := found[f.OSV]
		if c == nil {
			c = &called{ID: f.OSV, Module: top.Module, Found: top.Version, Fixed: f.FixedVersion}
			found[f.OSV] = c
		}
		sym := top.Package + "." + top.Function
		if top.Receiver != "" {
			sym = top.Package + "." + strings.TrimPrefix(top.Receiver, "*") + "." + top.Function
		}
		if !slices.Contains(c.Symbols, sym) {
			c.Symbols = append(c.Symbols, sym)
		}
	}
	for id, c := range found {
		c.Summary = summaries[id]
	}
	return found, nil
}

// readAccepted reads "ID reason" lines; # starts a comment.
func readAccepted(path string) (map[string]string, error) {
	out := map[string]string{}
	if path == "" {
		return out, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, _ := strings.Cut(line, " ")
		if !strings.HasPrefix(id, "GO-") || strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: want \"GO-YYYY-NNNN reason\"", path, i+1)
		}
		out[id] = strings.TrimSpace(reason)
	}
	return out, nil
}

// symbols lists the first few called symbols (the full traces are in
// govulncheck's own output: run it with -show traces).
func symbols(s []string) string {
	slices.Sort(s)
	const n = 4
	if len(s) <= n {
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(s[:n], ", "), len(s)-n)
}

func report(out io.Writer, found map[string]*called, accepted map[string]string) int {
	ids := make([]string, 0, len(found))
	for id := range found {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	failed := 0
	for _, id := range ids {
		c := found[id]
		verdict := "CALLED"
		if reason, ok := accepted[id]; ok && c.Module == stdlib {
			verdict = "accepted (" + reason + ")"
		} else {
			failed++
		}
		fixed := c.Fixed
		if fixed == "" {
			fixed = "no fix yet"
		}
		fmt.Fprintf(out, "%s %s: %s\n    %s@%s, fixed in %s\n    calls %s\n", id, verdict, c.Summary,
			c.Module, c.Found, fixed, symbols(c.Symbols))
	}
	for id := range accepted {
		if _, ok := found[id]; !ok {
			fmt.Fprintf(out, "note: %s is accepted but no longer reported; remove it from the accept list\n", id)
		}
	}
	if failed > 0 {
		fmt.Fprintf(out, "vulncheck: FAILED: %d called vulnerabilit%s (upgrade the module; a standard-library one needs a newer Go)\n",
			failed, map[bool]string{true: "y", false: "ies"}[failed == 1])
		return 1
	}
	fmt.Fprintf(out, "vulncheck: no unaccepted called vulnerabilities (%d accepted)\n", len(found))
	return 0
}
