package backup

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// defaultPGBinDir is where Debian's PostgreSQL 15 keeps its tools
// (deploy/services.sh installs it); PATH is tried first.
const defaultPGBinDir = "/usr/lib/postgresql/15/bin"

// pgTool returns the path of a PostgreSQL client tool (pg_dump,
// pg_restore): in dir when set, else on PATH, else in defaultPGBinDir.
func pgTool(dir, name string) (string, error) {
	if dir != "" {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("backup: %s: %w", name, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join(defaultPGBinDir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("backup: %s not on PATH nor in %s (set backup.pg_bin_dir)", name, defaultPGBinDir)
	}
	return p, nil
}

// libpqURL turns the database URL pgx takes into one libpq tools take:
// pgx's own pool_* parameters are dropped, and the password is moved out
// of the URL into PGPASSWORD, so that it is not on a command line that
// any local user can read in the process list.
func libpqURL(raw string) (string, []string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", nil, fmt.Errorf("backup: database url: malformed")
	}
	q := u.Query()
	for k := range q {
		if strings.HasPrefix(k, "pool_") {
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	var env []string
	if u.User != nil {
		if pw, ok := u.User.Password(); ok {
			env = append(env, "PGPASSWORD="+pw)
			u.User = url.User(u.User.Username())
		}
	}
	return u.String(), env, nil
}

// runPG runs a PostgreSQL tool; a failure's error carries the tool's own
// error lines (toolErrors).
func runPG(ctx context.Context, tool string, env []string, args ...string) error {
	cmd := exec.CommandContext(ctx, tool, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Env = append(cmd.Env, "PGCONNECT_TIMEOUT=10")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("backup: %s: %w: %s", filepath.Base(tool), err, toolErrors(filepath.Base(tool), stderr.String()))
	}
	return nil
}

// toolErrors keeps the tool's own message lines of its stderr, the last
// few, without the CONTEXT lines in which the server quotes a failing
// row's data, and with every quoted value blanked (the server quotes an
// offending value, which could be PHI, in its ERROR text; names of tables
// go with them).
var quoted = regexp.MustCompile(`"[^"]*"`)

func toolErrors(name, stderr string) string {
	var keep []string
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.HasPrefix(line, name+":") || strings.Contains(line, "CONTEXT") {
			continue
		}
		line = quoted.ReplaceAllString(line, `"…"`)
		if len(line) > 300 {
			line = line[:300] + "…"
		}
		keep = append(keep, line)
	}
	if len(keep) > 5 {
		keep = keep[len(keep)-5:]
	}
	return strings.Join(keep, "; ")
}
