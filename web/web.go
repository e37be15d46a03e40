// Package web serves OpenVisit's browser pages and their assets: plain ES
// modules, one stylesheet and a few HTML pages, embedded in the binary.
//
// The handler is mounted at "/" behind the router, which handles /api, /sfu
// and /healthz itself. Security headers (CSP, nosniff, Referrer-Policy) are
// the router's middleware's job; the pages are written for the strict CSP
// (no inline script or style).
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"regexp"
	"sync"
	"time"
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
}

// devPages are served only by DevHandler: pages of development-only
// features (the mail outbox, which shows PHI kept in development).
var devPages = map[string]string{
	"/outbox": "outbox.html",
}

// assetPath matches the asset routes: flat /js/*.js and /css/*.css names.
var assetPath = regexp.MustCompile(`^/(js/[a-z0-9][a-z0-9_-]*\.js|css/[a-z0-9][a-z0-9_-]*\.css)$`)

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
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
	h := &handler{etags: map[string]string{}, pages: pages}
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
	etags map[string]string // embedded files only: name → ETag
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := h.pages[r.URL.Path]
	if !ok {
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
	data, err := fs.ReadFile(h.fsys, name)
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
	hdr.Set("ETag", h.etag(name, data))
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

func (h *handler) etag(name string, data []byte) string {
	if h.dev {
		return hash(data)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	e, ok := h.etags[name]
	if !ok {
		e = hash(data)
		h.etags[name] = e
	}
	return e
}

func hash(data []byte) string {
	sum := sha256.Sum256(data)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}
