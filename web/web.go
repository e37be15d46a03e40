// Package web serves OpenVisit's browser pages and their assets: plain ES
// modules, one stylesheet and a few HTML pages, embedded in the binary.
//
// The handler is mounted at "/" behind the router, which handles /api, /sfu
// and /healthz itself. Security headers (CSP, nosniff, Referrer-Policy) are
// the router's middleware's job; the pages are written for the strict CSP
// (no inline script or style).
//
// The chrome the pages share (the <head>, the staff pages' bar with its
// links and sign-out buttons) is written once, in static/chrome.html: each
// page is an html/template that includes its pieces, rendered once when it
// is first served (on every request with a dev directory).
//
// The modules under static/js, by what they hold:
//
//   - one per page: signin, setup, admin, audit, incidents, provider,
//     recordings (with player), outbox, join (the patient's way in) and
//     call (the visit itself);
//   - the call page's parts: call-grant (join grants), call-tiles,
//     call-media (self-view, devices, screen sharing), call-quality,
//     call-room (the provider's waiting room), call-recording (consent and
//     recording) and call-ice (what a failed connection tried);
//   - the media client, shared by every page that joins a visit: client
//     (VisitClient: staying connected), media-session (the protocol of
//     sfu/PROTOCOL.md), simulcast and ice-report;
//   - the patient pages' languages: i18n (the catalogues of static/i18n,
//     one JSON file per language, which Catalogue gives the server too);
//   - what pages share: api (the JSON API and its errors), dom, staff (the
//     signed-in pages' start, account bar and messages), session (idle
//     logoff), visit-events (a visit's state events), devices (camera and
//     microphone) and compliance (the audit and incident pages' helpers).
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"os"
	"path"
	"regexp"
	"sync"
	"time"

	"github.com/openvisit/openvisit/internal/i18n"
)

//go:embed static
var static embed.FS

// pages maps each page route to its file under static/.
var pages = map[string]string{
	"/":           "index.html",
	"/call":       "call.html",
	"/join":       "join.html",
	"/signin":     "signin.html",
	"/setup":      "setup.html",
	"/admin":      "admin.html",
	"/provider":   "provider.html",
	"/audit":      "audit.html",
	"/incidents":  "incidents.html",
	"/recordings": "recordings.html",
	"/security":   "security.html",
}

// chromeFile holds the templates every page may include; it is not served.
const chromeFile = "chrome.html"

// devPages are served only by DevHandler: pages of development-only
// features (the mail outbox, which shows PHI kept in development).
var devPages = map[string]string{
	"/outbox": "outbox.html",
}

// assetPath matches the asset routes: flat /js/*.js and /css/*.css names,
// and the message catalogues /i18n/<language>.json.
var assetPath = regexp.MustCompile(`^/(js/[a-z0-9][a-z0-9_-]*\.js|css/[a-z0-9][a-z0-9_-]*\.css|i18n/[a-z]{2,3}(?:-[A-Z]{2})?\.json)$`)

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".json": "application/json; charset=utf-8",
}

// catalogueDir is where the message catalogues are, under static/.
const catalogueDir = "i18n"

// Catalogue is the patient-facing messages of every language: the same
// files the pages load from /i18n/, so the server's email and calendar
// file and the browser speak from one catalogue. The embedded files never
// change, so they are read once.
var Catalogue = sync.OnceValues(func() (*i18n.Catalogue, error) {
	sub, err := fs.Sub(static, "static/"+catalogueDir)
	if err != nil {
		return nil, err
	}
	return i18n.Load(sub)
})

// pageData is what a page's template sees: the languages to offer.
type pageData struct {
	Languages []i18n.Language
}

// Handler serves the pages and assets. devDir != "" serves from that
// directory on disk instead (a dev flag: the path of web/static), so edits
// show without a rebuild.
func Handler(devDir string) http.Handler {
	return newHandler(devDir, pages)
}

// DevHandler is Handler plus the development-only pages (/outbox). Only a
// development process with the mail outbox uses it; elsewhere those pages
// answer 404.
func DevHandler(devDir string) http.Handler {
	all := make(map[string]string, len(pages)+len(devPages))
	for _, m := range []map[string]string{pages, devPages} {
		for route, name := range m {
			all[route] = name
		}
	}
	return newHandler(devDir, all)
}

func newHandler(devDir string, pages map[string]string) http.Handler {
	h := &handler{files: map[string]file{}, pages: pages}
	if devDir != "" {
		h.fsys = os.DirFS(devDir)
		h.dev = true
	} else {
		// fs.Sub fails only for an invalid directory name; "static" is
		// valid and go:embed guarantees it exists.
		sub, _ := fs.Sub(static, "static")
		h.fsys = sub
	}
	return h
}

type handler struct {
	fsys  fs.FS
	dev   bool
	pages map[string]string // route → file under static/

	mu    sync.Mutex
	files map[string]file // embedded files only: name → what is served
}

// file is what is served for a name: an asset as it is, a page rendered.
type file struct {
	data []byte
	etag string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, page := h.pages[r.URL.Path]
	if !page {
		m := assetPath.FindStringSubmatch(r.URL.Path)
		if m == nil {
			http.NotFound(w, r)
			return
		}
		name = m[1]
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
		return
	}
	f, err := h.load(name, page)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			http.NotFound(w, r)
			return
		}
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", contentTypes[path.Ext(name)])
	hdr.Set("X-Content-Type-Options", "nosniff")
	// Assets have no fingerprint in their names, so everything revalidates
	// (cheap: the ETag answers 304) and a deploy never mixes old and new
	// modules.
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("ETag", f.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.data))
}

// load reads a file (rendering it when it is a page) and its ETag. The
// embedded files never change, so what they give is kept; a dev directory
// is read again on every request.
func (h *handler) load(name string, page bool) (file, error) {
	if !h.dev {
		h.mu.Lock()
		defer h.mu.Unlock()
		if f, ok := h.files[name]; ok {
			return f, nil
		}
	}
	data, err := fs.ReadFile(h.fsys, name)
	if err != nil {
		return file{}, err
	}
	if page {
		if data, err = render(h.fsys, name, data); err != nil {
			return file{}, err
		}
	}
	f := file{data: data, etag: hash(data)}
	if !h.dev {
		h.files[name] = f
	}
	return f, nil
}

// render executes a page as an html/template, with the templates of
// chrome.html to include.
func render(fsys fs.FS, name string, page []byte) ([]byte, error) {
	chrome, err := fs.ReadFile(fsys, chromeFile)
	if err != nil {
		return nil, fmt.Errorf("web: page %s: %w", name, err)
	}
	t, err := template.New(chromeFile).Funcs(template.FuncMap{"args": args}).Parse(string(chrome))
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if _, err := t.New(name).Parse(string(page)); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	langs, err := languages(fsys)
	if err != nil {
		return nil, fmt.Errorf("web: page %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, pageData{Languages: langs}); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return b.Bytes(), nil
}

// languages are the catalogues of fsys's i18n directory (none when a dev
// directory has no such directory).
func languages(fsys fs.FS) ([]i18n.Language, error) {
	if _, err := fs.Stat(fsys, catalogueDir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	sub, err := fs.Sub(fsys, catalogueDir)
	if err != nil {
		return nil, err
	}
	cat, err := i18n.Load(sub)
	if err != nil {
		return nil, err
	}
	return cat.Languages(), nil
}

// args makes a template's named arguments from pairs of key and value:
// {{template "head" (args "title" "Sign in — OpenVisit" "script" "signin")}}.
func args(kv ...string) (map[string]string, error) {
	if len(kv)%2 != 0 {
		return nil, errors.New("args: a key without a value")
	}
	m := make(map[string]string, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m, nil
}

func hash(data []byte) string {
	sum := sha256.Sum256(data)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}
