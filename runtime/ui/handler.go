package ui

import (
	"bytes"
	"cmp"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/runtime/approval"
	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/identity"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/review"
)

//go:embed templates/*.html static/*
var assets embed.FS

// The gateway's own roles, as the policy grants them to identities (the
// admin API checks the same names).
const (
	roleAdmin   = "admin"
	roleAuditor = "auditor"
)

const (
	// maxForm bounds a dashboard form body (a pasted token is the largest
	// field).
	maxForm = 64 << 10
	// sessionsPage is how many sessions a list page shows.
	sessionsPage = 100
)

// Approvals is the approval service as the dashboard uses it.
type Approvals interface {
	// List returns approvals with the given status ("" = all), oldest
	// first.
	List(ctx context.Context, status string) ([]record.Approval, error)
	// Vote records who's decision ("approve" or "deny") with a reason; it
	// fails with approval.ErrNotMember, record.ErrSelfApproval,
	// record.ErrDuplicateVote, record.ErrApprovalClosed or
	// record.ErrNotFound.
	Vote(ctx context.Context, id string, who approval.Approver, decision, reason string) (record.Approval, error)
}

var _ Approvals = (*approval.Service)(nil)

// Config is what a Handler serves from.
type Config struct {
	// Key keys the CSRF tokens (HMAC-SHA256), at least MinKeyLen bytes.
	// Gateways behind one load balancer must share it, or a form rendered
	// by one is refused by another. Required.
	Key []byte
	// Authenticate verifies a token and resolves it against the active
	// policy. It is called on every request. Required.
	Authenticate func(ctx context.Context, token string) (*identity.Principal, error)
	// Bundle returns the active bundle, or nil when none is active.
	// Required.
	Bundle func() *bundle.Bundle
	// Recordings are the recorded sessions. Required.
	Recordings record.Reader
	// ApprovalRecords, when set, give the review the approvers' reasons.
	ApprovalRecords review.ApprovalReader
	// Approvals lists approvals and casts votes. Required.
	Approvals Approvals
	// Status returns what the status page shows: a value with the fields
	// GatewayID, Bundle (Active, Revision, Serial, SignedBy, ActivatedAt,
	// Expires, LastCheck, LastRejection, LastRejectedAt) and Recorder, as
	// the admin API's status. Required.
	Status func() any
	// SecureCookies marks the cookies Secure (set it when the admin server
	// has TLS).
	SecureCookies bool
	// Clock is the time the review is judged at (default time.Now).
	Clock func() time.Time
	// Logger receives logins and refusals (default: discarded).
	Logger *slog.Logger
}

// Validate checks c and fills defaults.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Key) < MinKeyLen {
		errs = append(errs, fmt.Errorf("key: %d bytes, want at least %d", len(c.Key), MinKeyLen))
	}
	for name, missing := range map[string]bool{
		"Authenticate": c.Authenticate == nil, "Bundle": c.Bundle == nil, "Recordings": c.Recordings == nil,
		"Approvals": c.Approvals == nil, "Status": c.Status == nil,
	} {
		if missing {
			errs = append(errs, fmt.Errorf("%s is required", name))
		}
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// Handler serves the dashboard under /ui/. It is safe for concurrent use.
type Handler struct {
	cfg     Config
	handler http.Handler
}

var _ http.Handler = (*Handler)(nil)

// New validates cfg and builds the handler.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	h := &Handler{cfg: cfg}
	mux := http.NewServeMux()
	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /ui/login", h.loginForm)
	mux.HandleFunc("POST /ui/login", h.login)
	mux.HandleFunc("POST /ui/logout", h.auth(h.logout))
	mux.HandleFunc("GET /ui/{$}", h.auth(h.home))
	mux.HandleFunc("GET /ui/review", h.auth(h.review, roleAdmin, roleAuditor))
	mux.HandleFunc("GET /ui/sessions", h.auth(h.sessions, roleAdmin, roleAuditor))
	mux.HandleFunc("GET /ui/sessions/{id}", h.auth(h.session, roleAdmin, roleAuditor))
	mux.HandleFunc("GET /ui/status", h.auth(h.status, roleAdmin, roleAuditor))
	mux.HandleFunc("GET /ui/approvals", h.auth(h.approvals))
	mux.HandleFunc("POST /ui/approvals/{id}/vote", h.auth(h.vote))
	h.handler = securityHeaders(h.originProtection(mux))
	return h, nil
}

// ServeHTTP serves the paths under /ui/.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.handler.ServeHTTP(w, r) }

var pages = parseTemplates()

func parseTemplates() map[string]*template.Template {
	funcs := template.FuncMap{
		"shortID": func(s string) string {
			if len(s) > 10 {
				return s[:10] + "…"
			}
			return s
		},
		"split":  strings.Fields,
		"micros": func(us int64) string { return (time.Duration(us) * time.Microsecond).String() },
		"ts": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05")
		},
		"hasRole": func(p *identity.Principal, roles ...string) bool {
			return p != nil && slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(p.Roles, r) })
		},
	}
	for k, v := range review.TemplateFuncs {
		funcs[k] = v
	}
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html"))
	out := map[string]*template.Template{}
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		panic(err) // the pattern is constant
	}
	for _, n := range names {
		base := strings.TrimPrefix(n, "templates/")
		if base == "layout.html" {
			continue
		}
		out[strings.TrimSuffix(base, ".html")] = template.Must(template.Must(layout.Clone()).ParseFS(assets, n))
	}
	return out
}

// page is what every page template gets.
type page struct {
	Title     string
	Nav       string
	Principal *identity.Principal
	CSRF      string
	Error     string
	Notice    string
	Data      any
}

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// auth authenticates the session, checks the CSRF token of unsafe
// methods against it, checks roles when given, and passes the page on.
// Unauthenticated page loads go to the login form. Cross-origin requests
// never get here (originProtection).
func (h *Handler) auth(next func(http.ResponseWriter, *http.Request, *page), roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := sessionOf(r)
		if err != nil {
			msg := ""
			if !errors.Is(err, errNoLogin) {
				msg = "Please log in again: " + err.Error()
			}
			h.toLogin(w, r, msg)
			return
		}
		p, err := h.cfg.Authenticate(r.Context(), s.token)
		if err != nil {
			h.toLogin(w, r, "Please log in again: "+err.Error())
			return
		}
		pg := &page{Principal: p, CSRF: h.csrf(s)}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				h.errorPage(w, pg, http.StatusBadRequest, "The form could not be read: "+err.Error())
				return
			}
			if err := h.checkCSRF(r, s); err != nil {
				h.cfg.Logger.WarnContext(r.Context(), "Dashboard refused a form.", "identity", p.Name, "path", r.URL.Path, "error", err)
				h.errorPage(w, pg, http.StatusForbidden, "The form expired or did not come from this dashboard (CSRF check failed: "+
					err.Error()+"). Reload the page and try again.")
				return
			}
		}
		if len(roles) > 0 && !slices.ContainsFunc(roles, func(role string) bool { return slices.Contains(p.Roles, role) }) {
			h.errorPage(w, pg, http.StatusForbidden, fmt.Sprintf("%s lacks the role %s for this page.", p.Name, strings.Join(roles, " or ")))
			return
		}
		next(w, r, pg)
	}
}

func (h *Handler) toLogin(w http.ResponseWriter, r *http.Request, msg string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.errorPage(w, &page{}, http.StatusUnauthorized, cmp.Or(msg, "Please log in."))
		return
	}
	q := url.Values{"next": {r.URL.RequestURI()}}
	if msg != "" {
		q.Set("error", msg)
	}
	http.Redirect(w, r, "/ui/login?"+q.Encode(), http.StatusSeeOther)
}

func (h *Handler) render(w http.ResponseWriter, code int, name string, pg *page) {
	var buf bytes.Buffer
	if err := pages[name].ExecuteTemplate(&buf, "layout.html", pg); err != nil {
		h.cfg.Logger.Error("Rendering a dashboard page failed.", "page", name, "error", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) errorPage(w http.ResponseWriter, pg *page, code int, msg string) {
	pg.Title, pg.Error = http.StatusText(code), msg
	h.render(w, code, "error", pg)
}

// safeNext keeps a post-login redirect inside the dashboard.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/"
	}
	return next
}

type loginData struct{ Next string }

func (h *Handler) loginForm(w http.ResponseWriter, r *http.Request) {
	pg := &page{Title: "Log in", CSRF: h.csrf(h.loginNonce(w, r)), Error: r.URL.Query().Get("error"),
		Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}}
	h.render(w, http.StatusOK, "login", pg)
}

func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	nonce := h.loginNonce(w, r)
	pg := &page{Title: "Log in", CSRF: h.csrf(nonce)}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.errorPage(w, pg, http.StatusBadRequest, "The form could not be read.")
		return
	}
	pg.Data = loginData{Next: safeNext(r.PostForm.Get("next"))}
	if err := h.checkCSRF(r, nonce); err != nil {
		pg.Error = "The form expired (CSRF check failed). Please try again."
		h.render(w, http.StatusForbidden, "login", pg)
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	tok = strings.TrimPrefix(tok, "Bearer ")
	if tok == "" {
		pg.Error = "Paste a token."
		h.render(w, http.StatusUnauthorized, "login", pg)
		return
	}
	p, err := h.cfg.Authenticate(r.Context(), tok)
	if err != nil {
		pg.Error = "That token was not accepted: " + err.Error()
		h.render(w, http.StatusUnauthorized, "login", pg)
		return
	}
	// A new id for every login: a session id planted before the login
	// (fixation) or one of an earlier login never becomes this one.
	h.setCookie(w, sessionCookie, newSession(tok).cookieValue(), 0)
	h.cfg.Logger.InfoContext(r.Context(), "Dashboard login.", "identity", p.Name)
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, _ *page) {
	h.setCookie(w, sessionCookie, "", -1)
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

func (h *Handler) home(w http.ResponseWriter, r *http.Request, pg *page) {
	if slices.Contains(pg.Principal.Roles, roleAdmin) || slices.Contains(pg.Principal.Roles, roleAuditor) {
		http.Redirect(w, r, "/ui/review", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/ui/approvals", http.StatusSeeOther)
}
