package web

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestHandlerRoutes(t *testing.T) {
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantType           string
	}{
		{"index", "GET", "/", 200, "text/html; charset=utf-8"},
		{"call", "GET", "/call", 200, "text/html; charset=utf-8"},
		{"head call", "HEAD", "/call", 200, "text/html; charset=utf-8"},
		{"signin", "GET", "/signin", 200, "text/html; charset=utf-8"},
		{"setup", "GET", "/setup", 200, "text/html; charset=utf-8"},
		{"admin", "GET", "/admin", 200, "text/html; charset=utf-8"},
		{"provider", "GET", "/provider", 200, "text/html; charset=utf-8"},
		{"audit", "GET", "/audit", 200, "text/html; charset=utf-8"},
		{"incidents", "GET", "/incidents", 200, "text/html; charset=utf-8"},
		{"api module", "GET", "/js/api.js", 200, "text/javascript; charset=utf-8"},
		{"session module", "GET", "/js/session.js", 200, "text/javascript; charset=utf-8"},
		{"admin module", "GET", "/js/admin.js", 200, "text/javascript; charset=utf-8"},
		{"admin by file name", "GET", "/admin.html", 404, ""},
		{"page with trailing slash", "GET", "/admin/", 404, ""},
		{"client module", "GET", "/js/client.js", 200, "text/javascript; charset=utf-8"},
		{"call module", "GET", "/js/call.js", 200, "text/javascript; charset=utf-8"},
		{"stylesheet", "GET", "/css/app.css", 200, "text/css; charset=utf-8"},
		{"unknown page", "GET", "/nope", 404, ""},
		{"html by file name", "GET", "/call.html", 404, ""},
		{"index by file name", "GET", "/index.html", 404, ""},
		{"unknown module", "GET", "/js/nope.js", 404, ""},
		{"wrong extension", "GET", "/js/app.css", 404, ""},
		{"traversal", "GET", "/js/../web.go", 404, ""},
		{"encoded traversal", "GET", "/js/..%2fweb.go", 404, ""},
		{"nested", "GET", "/js/x/client.js", 404, ""},
		{"directory", "GET", "/js/", 404, ""},
		{"post", "POST", "/call", 405, ""},
	}
	h := Handler("")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/", nil)
			req.URL.Path = tt.path // keep the raw path; the router does not clean it for us
			if strings.Contains(tt.path, "%") {
				req = httptest.NewRequest(tt.method, tt.path, nil)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("%s %s: status %d, want %d", tt.method, tt.path, rec.Code, tt.wantStatus)
			}
			if tt.wantType != "" {
				if got := rec.Header().Get("Content-Type"); got != tt.wantType {
					t.Errorf("Content-Type = %q, want %q", got, tt.wantType)
				}
				if got := rec.Header().Get("Cache-Control"); got != "no-cache" {
					t.Errorf("Cache-Control = %q, want no-cache", got)
				}
				if rec.Header().Get("ETag") == "" {
					t.Error("no ETag")
				}
			}
		})
	}
}

// The development-only pages are served by DevHandler alone.
func TestDevPagesOnlyInDevHandler(t *testing.T) {
	for route := range devPages {
		for _, tc := range []struct {
			name string
			h    http.Handler
			want int
		}{{"Handler", Handler(""), 404}, {"DevHandler", DevHandler(""), 200}} {
			rec := httptest.NewRecorder()
			tc.h.ServeHTTP(rec, httptest.NewRequest("GET", route, nil))
			if rec.Code != tc.want {
				t.Errorf("%s %s: %d, want %d", tc.name, route, rec.Code, tc.want)
			}
		}
	}
	rec := httptest.NewRecorder()
	DevHandler("").ServeHTTP(rec, httptest.NewRequest("GET", "/provider", nil))
	if rec.Code != 200 {
		t.Errorf("DevHandler /provider: %d", rec.Code)
	}
}

func TestHandlerETagRevalidates(t *testing.T) {
	h := Handler("")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/js/client.js", nil))
	etag := rec.Header().Get("ETag")
	req := httptest.NewRequest("GET", "/js/client.js", nil)
	req.Header.Set("If-None-Match", etag)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNotModified {
		t.Fatalf("status %d, want 304", rec.Code)
	}
}

func TestHandlerDevDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "js"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "js", "client.js"), []byte("export const edited = 1;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := Handler(dir)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/js/client.js", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "edited") {
		t.Fatalf("dev dir not served: %d %q", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/call", nil))
	if rec.Code != 404 {
		t.Fatalf("missing dev file: status %d, want 404", rec.Code)
	}
}

// With a dev directory, a page is rendered with the directory's chrome on
// every request, so edits to either show at once.
func TestHandlerDevDirRendersPages(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	get := func() (string, string) {
		rec := httptest.NewRecorder()
		Handler(dir).ServeHTTP(rec, httptest.NewRequest("GET", "/signin", nil))
		if rec.Code != 200 {
			t.Fatalf("status %d", rec.Code)
		}
		return rec.Body.String(), rec.Header().Get("ETag")
	}
	write(chromeFile, `{{define "bar"}}<header>{{.}}</header>{{end}}`)
	write("signin.html", `{{template "bar" "one"}}<main></main>`)
	body, etag := get()
	if body != "<header>one</header><main></main>" {
		t.Fatalf("rendered %q", body)
	}
	write(chromeFile, `{{define "bar"}}<nav>{{.}}</nav>{{end}}`)
	body, etag2 := get()
	if body != "<nav>one</nav><main></main>" || etag2 == etag {
		t.Fatalf("chrome edit not shown: %q (ETag %s then %s)", body, etag, etag2)
	}
	write("signin.html", `{{template "missing"}}`)
	rec := httptest.NewRecorder()
	Handler(dir).ServeHTTP(rec, httptest.NewRequest("GET", "/signin", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Errorf("a page that does not render: status %d, want 500", rec.Code)
	}
}

// The pages must work under the strict CSP: no inline scripts, inline
// styles or inline event handlers, and every asset from 'self'.
func TestPagesFitCSP(t *testing.T) {
	inline := []*regexp.Regexp{
		regexp.MustCompile(`(?i)<script[^>]*>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`(?i)<style\b`),
		regexp.MustCompile(`(?i)\sstyle\s*=`),
		regexp.MustCompile(`(?i)\son[a-z]+\s*=`),
		regexp.MustCompile(`(?i)javascript:`),
	}
	scriptTag := regexp.MustCompile(`(?i)<script[^>]*>`)
	sameOrigin := regexp.MustCompile(`\ssrc="/[a-z]`)
	linkTag := regexp.MustCompile(`(?i)<link[^>]*>`)
	linkOK := regexp.MustCompile(`\shref="(?:/[a-z]|data:)`)
	// The pages as served (rendered with their chrome), and the chrome's
	// templates themselves.
	for p, b := range renderedPages(t) {
		for _, re := range inline {
			if loc := re.FindIndex(b); loc != nil {
				t.Errorf("%s: breaks the CSP: %q", p, b[loc[0]:loc[1]])
			}
		}
		for _, tag := range scriptTag.FindAll(b, -1) {
			if !sameOrigin.Match(tag) {
				t.Errorf("%s: script not loaded from 'self': %s", p, tag)
			}
		}
		for _, tag := range linkTag.FindAll(b, -1) {
			if !linkOK.Match(tag) {
				t.Errorf("%s: link not from 'self': %s", p, tag)
			}
		}
	}
	// Scripts must not set inline styles either (style-src 'self' refuses
	// element.style via setAttribute and style attributes in innerHTML).
	for p, b := range modules(t) {
		for _, bad := range []string{"innerHTML", "setAttribute('style'", "eval(", "new Function"} {
			if strings.Contains(string(b), bad) {
				t.Errorf("%s: uses %s", p, bad)
			}
		}
	}
}

// Every page route serves a file that exists, and every module a page or
// module imports exists too (a typo would only show in a browser).
func TestPagesAndImportsExist(t *testing.T) {
	for route, name := range devPages {
		if _, dup := pages[route]; dup {
			t.Errorf("route %s is both a page and a development page", route)
		}
		if _, err := fs.Stat(static, "static/"+name); err != nil {
			t.Errorf("route %s: %v", route, err)
		}
	}
	for route, name := range pages {
		if _, err := fs.Stat(static, "static/"+name); err != nil {
			t.Errorf("route %s: %v", route, err)
		}
	}
	src := regexp.MustCompile(`src="/(js/[a-z0-9_-]+\.js)"`)
	imp := regexp.MustCompile(`(?m)^\s*import\s[^'"]*['"]\./([a-z0-9_-]+\.js)['"]`)
	refs := map[string][]string{} // file → the modules it loads
	for p, b := range renderedPages(t) {
		for _, m := range src.FindAllSubmatch(b, -1) {
			refs[p] = append(refs[p], string(m[1]))
		}
	}
	for p, b := range modules(t) {
		for _, m := range imp.FindAllSubmatch(b, -1) {
			refs[p] = append(refs[p], "js/"+string(m[1]))
		}
	}
	for p, list := range refs {
		for _, r := range list {
			if !assetPath.MatchString("/" + r) {
				t.Errorf("%s: %s is not a servable asset name", p, r)
			}
			if _, err := fs.Stat(static, "static/"+r); err != nil {
				t.Errorf("%s: imports %s: %v", p, r, err)
			}
		}
	}
}

// modules returns the embedded JavaScript modules by path.
func modules(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || filepath.Ext(p) != ".js" {
			return err
		}
		out[p], err = fs.ReadFile(static, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// renderedPages serves every page (development ones too) and returns
// them by file name, with chrome.html as it is; a page that does not
// render fails the test.
func renderedPages(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	h := DevHandler("")
	for _, m := range []map[string]string{pages, devPages} {
		for route, name := range m {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", route, nil))
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s: status %d", route, rec.Code)
			}
			out[name] = rec.Body.Bytes()
		}
	}
	chrome, err := fs.ReadFile(static, "static/"+chromeFile)
	if err != nil {
		t.Fatal(err)
	}
	out[chromeFile] = chrome
	return out
}

// Every page renders with the shared chrome: one document, with its
// <head>, and nothing of the template language left in it.
func TestPagesRenderWithChrome(t *testing.T) {
	for name, b := range renderedPages(t) {
		if name == chromeFile {
			continue
		}
		s := string(b)
		if !strings.HasPrefix(s, "<!doctype html>\n") || strings.Count(s, "<head>") != 1 || !strings.Contains(s, `<link rel="stylesheet" href="/css/app.css">`) {
			t.Errorf("%s: no shared <head>", name)
		}
		if strings.Contains(s, "{{") || strings.Contains(s, "}}") {
			t.Errorf("%s: template text left in the page", name)
		}
	}
	// The chrome file is a template, not a page: it is not served.
	rec := httptest.NewRecorder()
	Handler("").ServeHTTP(rec, httptest.NewRequest("GET", "/"+chromeFile, nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /%s: status %d, want 404", chromeFile, rec.Code)
	}
}

// The embedded pages are rendered once: the same bytes and ETag every time.
func TestPageRenderedOnce(t *testing.T) {
	h := Handler("").(*handler)
	first, err := h.load("admin.html", true)
	if err != nil {
		t.Fatal(err)
	}
	again, err := h.load("admin.html", true)
	if err != nil {
		t.Fatal(err)
	}
	if &first.data[0] != &again.data[0] || first.etag != again.etag {
		t.Error("page rendered again")
	}
}
