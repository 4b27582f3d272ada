package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is the path the console is served under.
const Prefix = "/console"

// CSP is the Content-Security-Policy of every console response: nothing
// but the console's own script and style files, no inline script or style,
// calls only to this origin, no framing, no <base>, no form submitted by
// the browser itself (a form sent before the script took it over would
// put its fields in a URL), and Trusted Types
// required, so that no string can ever become markup through innerHTML.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

//go:embed static
var static embed.FS

// file is one embedded file, ready to serve.
type file struct {
	body        []byte
	contentType string
	etag        string
}

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// Handler serves the console under Prefix: GET (or HEAD) of Prefix
// redirects to Prefix+"/", which serves the page; Prefix+"/<file>" serves
// one of its files. Anything else is 404, and a method other than GET or
// HEAD is 405. Every response carries the security headers. Files are
// revalidated on each load (Cache-Control: no-cache, with an ETag), so an
// upgraded binary never runs a page against an older script; the page
// itself is no-store.
func Handler() http.Handler {
	files := map[string]*file{}
	err := fs.WalkDir(static, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := static.ReadFile(p)
		if err != nil {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil // not served
		}
		sum := sha256.Sum256(body)
		files[strings.TrimPrefix(p, "static/")] = &file{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
		return nil
	})
	if err != nil {
		panic("console: reading embedded files: " + err.Error())
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
		h.Set("Cache-Control", "no-store")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, Prefix)
		switch {
		case !ok:
			http.NotFound(w, r)
			return
		case name == "":
			http.Redirect(w, r, Prefix+"/", http.StatusMovedPermanently)
			return
		case name == "/":
			name = "index.html"
		default:
			name = strings.TrimPrefix(name, "/")
		}
		f := files[name]
		if f == nil || name == "index.html" && r.URL.Path != Prefix+"/" {
			http.NotFound(w, r)
			return
		}
		h.Set("Content-Type", f.contentType)
		h.Set("Cache-Control", "no-cache")
		if name == "index.html" {
			// The page itself is never stored: a stored page may be
			// kept whole in the back/forward cache, a signed-in tab
			// with its key in memory.
			h.Set("Cache-Control", "no-store")
		}
		h.Set("ETag", f.etag)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
	})
}
