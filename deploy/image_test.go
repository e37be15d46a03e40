// The one-host deployment: the image recipe and the Compose file.

package deploy_test

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/openvisit/openvisit/internal/config"
)

// TestDockerfile checks the image recipe: a multi-stage build of a static
// binary (CGO off) into a minimal base, run as a non-root user, with
// pinned base images.
func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	// Join continuation lines, drop comments.
	var lines []string
	var cur string
	for _, l := range strings.Split(string(b), "\n") {
		s := strings.TrimSpace(l)
		if strings.HasPrefix(s, "#") || s == "" {
			continue
		}
		if strings.HasSuffix(s, "\\") {
			cur += strings.TrimSuffix(s, "\\") + " "
			continue
		}
		lines = append(lines, cur+s)
		cur = ""
	}
	var froms []string
	var final []string // instructions of the last stage
	for _, l := range lines {
		instr := strings.ToUpper(strings.Fields(l)[0])
		if instr == "FROM" {
			froms = append(froms, l)
			final = nil
		}
		final = append(final, l)
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got %d FROM lines", len(froms))
	}
	for _, f := range froms {
		img := strings.Fields(f)[1]
		if !pinned(img) && !strings.HasPrefix(img, "gcr.io/distroless/static-debian12:nonroot") {
			t.Errorf("base image %s is not pinned", img)
		}
	}
	last := strings.Fields(froms[len(froms)-1])[1]
	if !strings.HasPrefix(last, "gcr.io/distroless/static") && last != "scratch" {
		t.Errorf("final stage %s: want distroless/static or scratch", last)
	}
	joined := strings.Join(lines, "\n")
	if !regexp.MustCompile(`CGO_ENABLED=0 .*go build`).MatchString(joined) {
		t.Error("the binary is not built with CGO_ENABLED=0")
	}
	var user, entry string
	for _, l := range final {
		switch strings.ToUpper(strings.Fields(l)[0]) {
		case "USER":
			user = strings.Fields(l)[1]
		case "ENTRYPOINT":
			entry = l
		}
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("final stage USER %q: want a numeric non-root user", user)
	}
	if !strings.Contains(entry, `["/usr/local/bin/openvisit"]`) {
		t.Errorf("ENTRYPOINT %q: want the exec form of the binary", entry)
	}
	if !strings.Contains(joined, "EXPOSE 8443/tcp 8443/udp") {
		t.Error("the image must expose 8443 on TCP (HTTPS) and UDP (media)")
	}
}

// TestComposeFile checks the one-host Compose file.
func TestComposeFile(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Services map[string]map[string]any `json:"services"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"certs", "postgres", "minio", "migrate", "openvisit"} {
		svc, ok := c.Services[s]
		if !ok {
			t.Errorf("compose: no %s service", s)
			continue
		}
		if img, _ := svc["image"].(string); !pinned(img) {
			t.Errorf("compose: %s image %q not pinned", s, img)
		}
	}
	ov := c.Services["openvisit"]
	ports := fmt.Sprint(ov["ports"])
	if !strings.Contains(ports, "8443:8443/udp") || !strings.Contains(ports, "8443:8443/tcp") {
		t.Errorf("compose: openvisit ports %s, want 8443 tcp and udp", ports)
	}
	if u, _ := ov["user"].(string); u == "" || strings.HasPrefix(u, "0") {
		t.Errorf("compose: openvisit user %q, want non-root", u)
	}
	env, err := os.ReadFile("openvisit.env")
	if err != nil {
		t.Fatal(err)
	}
	known := config.EnvNames()
	var environ []string
	for _, l := range strings.Split(string(env), "\n") {
		if k, _, ok := strings.Cut(l, "="); ok && !strings.HasPrefix(l, "#") {
			environ = append(environ, l)
			if !slices.Contains(known, k) {
				t.Errorf("openvisit.env: %s is not a config variable", k)
			}
		}
	}
	checkComposeTLS(t, c.Services, environ)
}

// checkComposeTLS checks that every backend link of the Compose deployment
// is TLS as production requires: the certs service makes the certificates
// before the servers start, PostgreSQL has ssl on and a pg_hba that refuses
// plaintext TCP, MinIO serves HTTPS, and openvisit.env passes the
// production transport rule with the CA it mounts.
func checkComposeTLS(t *testing.T, svcs map[string]map[string]any, environ []string) {
	t.Helper()
	if cmd := fmt.Sprint(svcs["certs"]["command"]); !strings.Contains(cmd, "deploy/dev/localca") ||
		!strings.Contains(cmd, "postgres") || !strings.Contains(cmd, "minio") {
		t.Errorf("compose: the certs service must run deploy/dev/localca for postgres and minio: %s", cmd)
	}
	for _, s := range []string{"postgres", "minio"} {
		if dep := fmt.Sprint(svcs[s]["depends_on"]); !strings.Contains(dep, "certs:map[condition:service_completed_successfully]") {
			t.Errorf("compose: %s must wait for the certs service to complete: depends_on %s", s, dep)
		}
	}
	pg := fmt.Sprint(svcs["postgres"]["command"])
	for _, want := range []string{"ssl=on", "ssl_cert_file=", "ssl_key_file=", "hba_file=/etc/openvisit/pg_hba.conf"} {
		if !strings.Contains(pg, want) {
			t.Errorf("compose: postgres command lacks %s: %s", want, pg)
		}
	}
	if v := fmt.Sprint(svcs["postgres"]["volumes"]); !strings.Contains(v, "./postgres/pg_hba.conf:/etc/openvisit/pg_hba.conf:ro") {
		t.Errorf("compose: postgres does not mount postgres/pg_hba.conf: %s", v)
	}
	checkHBA(t, "postgres/pg_hba.conf")
	if cmd := fmt.Sprint(svcs["minio"]["command"]); !strings.Contains(cmd, "--certs-dir") {
		t.Errorf("compose: minio must serve HTTPS (--certs-dir): %s", cmd)
	}

	c, err := config.Load("", append(environ,
		"OPENVISIT_DATABASE_URL=postgres://openvisit_app:x@postgres:5432/openvisit?sslmode=verify-full&sslrootcert=/backend-tls/ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateTransport(); err != nil || c.AllowPlaintextTransport != "" {
		t.Errorf("openvisit.env does not pass the production transport rule on its own: %v (allow_plaintext_transport %q)", err, c.AllowPlaintextTransport)
	}
	if !strings.HasPrefix(c.S3.CAFile, "/backend-tls/") {
		t.Errorf("openvisit.env: OPENVISIT_S3_CA_FILE %q, want the backend CA under /backend-tls/", c.S3.CAFile)
	}
	for _, s := range []string{"migrate", "openvisit"} {
		if v := fmt.Sprint(svcs[s]["volumes"]); !strings.Contains(v, "backend-tls:/backend-tls:ro") {
			t.Errorf("compose: %s does not mount the backend CA (backend-tls:/backend-tls:ro): %s", s, v)
		}
		if e := fmt.Sprint(svcs[s]["environment"]); !strings.Contains(e, "sslmode=verify-full&sslrootcert=/backend-tls/ca.crt") {
			t.Errorf("compose: %s's database URL message does not ask for sslmode=verify-full&sslrootcert=/backend-tls/ca.crt", s)
		}
	}
}

// checkHBA checks a pg_hba.conf: TCP only over TLS (hostssl), plaintext TCP
// rejected (hostnossl … reject), and no line that admits either (host).
func checkHBA(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var ssl, reject bool
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "hostssl":
			ssl = true
		case "hostnossl":
			reject = reject || f[len(f)-1] == "reject"
			if f[len(f)-1] != "reject" {
				t.Errorf("%s: %q admits plaintext TCP", path, l)
			}
		case "host", "hostgssenc", "hostnogssenc":
			t.Errorf("%s: %q admits TCP without requiring TLS", path, l)
		}
	}
	if !ssl || !reject {
		t.Errorf("%s: want hostssl lines and a hostnossl … reject line", path)
	}
}
