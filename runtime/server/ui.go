package server

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/runtime/approval"
	"github.com/gatehouse/gatehouse/runtime/identity"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/review"
)

// The dashboard: server-rendered pages under /ui/ over the same data and
// the same authentication as the JSON admin API. A browser logs in by
// pasting a token of a policy identity; the token is kept in an HttpOnly,
// SameSite=Strict cookie and verified on every request, exactly as a
// bearer token is (an Authorization header works too). Every form that
// changes something carries a CSRF token that must equal the value of a
// separate cookie (double submit), checked in constant time. Pages read
// without JavaScript.

//go:embed ui/templates/*.html ui/static/*
var uiFS embed.FS

const (
	uiTokenCookie = "gatehouse_token"
	uiCSRFCookie  = "gatehouse_csrf"
	uiCSRFField   = "csrf"
	// uiMaxForm bounds a dashboard form body (a pasted token is the
	// largest field).
	uiMaxForm = 64 << 10
	// uiSessionsPage is how many sessions a list page shows.
	uiSessionsPage = 100
)

var uiPages = parseUITemplates()

func parseUITemplates() map[string]*template.Template {
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
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(uiFS, "ui/templates/layout.html"))
	pages := map[string]*template.Template{}
	names, err := fs.Glob(uiFS, "ui/templates/*.html")
	if err != nil {
		panic(err) // the pattern is constant
	}
	for _, n := range names {
		base := strings.TrimPrefix(n, "ui/templates/")
		if base == "layout.html" {
			continue
		}
		pages[strings.TrimSuffix(base, ".html")] = template.Must(template.Must(layout.Clone()).ParseFS(uiFS, n))
	}
	return pages
}

// uiPage is what every page template gets.
type uiPage struct {
	Title     string
	Nav       string
	Principal *identity.Principal
	CSRF      string
	Error     string
	Notice    string
	Data      any
}

func (s *Server) uiHandler() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(uiFS, "ui/static")
	mux.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /ui/login", s.uiLoginForm)
	mux.HandleFunc("POST /ui/login", s.uiLogin)
	mux.HandleFunc("POST /ui/logout", s.uiAuth(s.uiLogout))
	mux.HandleFunc("GET /ui/{$}", s.uiAuth(s.uiHome))
	mux.HandleFunc("GET /ui/review", s.uiAuth(s.uiReview, RoleAdmin, RoleAuditor))
	mux.HandleFunc("GET /ui/sessions", s.uiAuth(s.uiSessions, RoleAdmin, RoleAuditor))
	mux.HandleFunc("GET /ui/sessions/{id}", s.uiAuth(s.uiSession, RoleAdmin, RoleAuditor))
	mux.HandleFunc("GET /ui/status", s.uiAuth(s.uiStatus, RoleAdmin, RoleAuditor))
	mux.HandleFunc("GET /ui/approvals", s.uiAuth(s.uiApprovals))
	mux.HandleFunc("POST /ui/approvals/{id}/vote", s.uiAuth(s.uiVote))
	return securityHeaders(mux)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// uiAuth authenticates the cookie (or Authorization header), checks roles
// when given, checks the CSRF token of unsafe methods, and passes the
// principal on. Unauthenticated page loads go to the login form.
func (s *Server) uiAuth(next func(http.ResponseWriter, *http.Request, *uiPage), roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		csrf := s.uiCSRF(w, r)
		ar := r
		if r.Header.Get("Authorization") == "" {
			c, err := r.Cookie(uiTokenCookie)
			if err != nil || c.Value == "" {
				s.uiToLogin(w, r, "")
				return
			}
			ar = r.Clone(r.Context())
			ar.Header.Set("Authorization", "Bearer "+c.Value)
		}
		p, err := s.authenticate(ar)
		if err != nil {
			s.uiToLogin(w, r, "Please log in again: "+err.Error())
			return
		}
		page := &uiPage{Principal: p, CSRF: csrf}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			r.Body = http.MaxBytesReader(w, r.Body, uiMaxForm)
			if err := r.ParseForm(); err != nil {
				s.uiError(w, page, http.StatusBadRequest, "The form could not be read: "+err.Error())
				return
			}
			if !validCSRF(r, csrf) {
				s.uiError(w, page, http.StatusForbidden, "The form expired or did not come from this dashboard (CSRF check failed). Reload the page and try again.")
				return
			}
		}
		if len(roles) > 0 && !slices.ContainsFunc(roles, func(role string) bool { return slices.Contains(p.Roles, role) }) {
			s.uiError(w, page, http.StatusForbidden, fmt.Sprintf("%s lacks the role %s for this page.", p.Name, strings.Join(roles, " or ")))
			return
		}
		next(w, r, page)
	}
}

// uiCSRF returns the CSRF token of the browser, setting a new one when it
// has none.
func (s *Server) uiCSRF(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(uiCSRFCookie); err == nil && len(c.Value) == 32 {
		if _, err := hex.DecodeString(c.Value); err == nil {
			return c.Value
		}
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	v := hex.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: uiCSRFCookie, Value: v, Path: "/ui/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.Admin.TLSCert != ""})
	r.AddCookie(&http.Cookie{Name: uiCSRFCookie, Value: v})
	return v
}

func validCSRF(r *http.Request, want string) bool {
	got := r.PostForm.Get(uiCSRFField)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (s *Server) uiToLogin(w http.ResponseWriter, r *http.Request, msg string) {
	if r.Method != http.MethodGet {
		page := &uiPage{Title: "Log in", CSRF: s.uiCSRF(w, r)}
		s.uiError(w, page, http.StatusUnauthorized, cmpOr(msg, "Please log in."))
		return
	}
	q := url.Values{"next": {r.URL.RequestURI()}}
	if msg != "" {
		q.Set("error", msg)
	}
	http.Redirect(w, r, "/ui/login?"+q.Encode(), http.StatusSeeOther)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (s *Server) render(w http.ResponseWriter, code int, name string, page *uiPage) {
	t := uiPages[name]
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", page); err != nil {
		s.log.Error("Rendering a dashboard page failed.", "page", name, "error", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func (s *Server) uiError(w http.ResponseWriter, page *uiPage, code int, msg string) {
	page.Title, page.Error = http.StatusText(code), msg
	s.render(w, code, "error", page)
}

// safeNext keeps a post-login redirect inside the dashboard.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/ui/"
	}
	return next
}

type loginData struct{ Next string }

func (s *Server) uiLoginForm(w http.ResponseWriter, r *http.Request) {
	page := &uiPage{Title: "Log in", CSRF: s.uiCSRF(w, r), Error: r.URL.Query().Get("error"),
		Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}}
	s.render(w, http.StatusOK, "login", page)
}

func (s *Server) uiLogin(w http.ResponseWriter, r *http.Request) {
	csrf := s.uiCSRF(w, r)
	page := &uiPage{Title: "Log in", CSRF: csrf}
	r.Body = http.MaxBytesReader(w, r.Body, uiMaxForm)
	if err := r.ParseForm(); err != nil {
		s.uiError(w, page, http.StatusBadRequest, "The form could not be read.")
		return
	}
	page.Data = loginData{Next: safeNext(r.PostForm.Get("next"))}
	if !validCSRF(r, csrf) {
		page.Error = "The form expired (CSRF check failed). Please try again."
		s.render(w, http.StatusForbidden, "login", page)
		return
	}
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	tok = strings.TrimPrefix(tok, "Bearer ")
	ar := r.Clone(r.Context())
	ar.Header.Set("Authorization", "Bearer "+tok)
	p, err := s.authenticate(ar)
	if tok == "" || err != nil {
		msg := "Paste a token."
		if err != nil && tok != "" {
			msg = "That token was not accepted: " + err.Error()
		}
		page.Error = msg
		s.render(w, http.StatusUnauthorized, "login", page)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: uiTokenCookie, Value: tok, Path: "/ui/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.cfg.Admin.TLSCert != ""})
	s.log.InfoContext(r.Context(), "Dashboard login.", "identity", p.Name)
	http.Redirect(w, r, safeNext(r.PostForm.Get("next")), http.StatusSeeOther)
}

func (s *Server) uiLogout(w http.ResponseWriter, r *http.Request, _ *uiPage) {
	http.SetCookie(w, &http.Cookie{Name: uiTokenCookie, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

func (s *Server) uiHome(w http.ResponseWriter, r *http.Request, page *uiPage) {
	if slices.Contains(page.Principal.Roles, RoleAdmin) || slices.Contains(page.Principal.Roles, RoleAuditor) {
		http.Redirect(w, r, "/ui/review", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/ui/approvals", http.StatusSeeOther)
}

// ---- access review ----------------------------------------------------

type reviewData struct {
	Report     *review.Report
	Since      string
	Identity   string
	Identities []string
	Selected   *review.Identity
	Suggestion string
}

func (s *Server) uiReview(w http.ResponseWriter, r *http.Request, page *uiPage) {
	page.Title, page.Nav = "Access review", "review"
	q := r.URL.Query()
	d := reviewData{Since: cmpOr(q.Get("since"), "90d"), Identity: q.Get("identity")}
	page.Data = &d
	eng := s.activator.Engine()
	if eng == nil {
		s.uiError(w, page, http.StatusServiceUnavailable, "No policy bundle is active.")
		return
	}
	pol := &eng.Bundle().Policy
	for _, id := range pol.Identities {
		d.Identities = append(d.Identities, id.Name)
	}
	period, err := ParseDuration(d.Since)
	if err != nil || period <= 0 {
		page.Error = "Period: want a duration such as 30d or 90d."
		s.render(w, http.StatusBadRequest, "review", page)
		return
	}
	now := s.clock()
	rep, err := review.Build(r.Context(), review.Config{Reader: s.store, Approvals: s.store, Policy: pol,
		Now: now, Since: now.Add(-period), Identity: d.Identity})
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, review.ErrUnknownIdentity) || errors.Is(err, review.ErrInvalid) {
			code = http.StatusBadRequest
		}
		page.Error = err.Error()
		s.render(w, code, "review", page)
		return
	}
	rep.PolicyRevision = eng.Bundle().Manifest.Revision
	d.Report = rep
	if d.Identity != "" && len(rep.Identities) == 1 {
		d.Selected = &rep.Identities[0]
		d.Suggestion = review.Suggest(d.Selected, rep, review.SuggestOptions{})
	}
	s.render(w, http.StatusOK, "review", page)
}

// ---- sessions -----------------------------------------------------------

type sessionsData struct {
	Identity, Resource, Decision, Since, Until string
	Identities, Resources                      []string
	Sessions                                   []record.Session
	More                                       bool
}

func (s *Server) uiSessions(w http.ResponseWriter, r *http.Request, page *uiPage) {
	page.Title, page.Nav = "Sessions", "sessions"
	q := r.URL.Query()
	d := sessionsData{Identity: q.Get("identity"), Resource: q.Get("resource"), Decision: q.Get("decision"),
		Since: q.Get("since"), Until: q.Get("until")}
	page.Data = &d
	if eng := s.activator.Engine(); eng != nil {
		for _, id := range eng.Bundle().Policy.Identities {
			d.Identities = append(d.Identities, id.Name)
		}
		for _, res := range eng.Bundle().Policy.Resources {
			d.Resources = append(d.Resources, res.Name)
		}
	}
	f := record.SessionFilter{Identity: d.Identity, Resource: d.Resource, Limit: uiSessionsPage + 1}
	var err error
	if f.Since, err = uiDate(d.Since, false); err == nil {
		f.Until, err = uiDate(d.Until, true)
	}
	if err != nil {
		page.Error = err.Error()
		s.render(w, http.StatusBadRequest, "sessions", page)
		return
	}
	switch d.Decision {
	case "", "allow", "deny", "approve":
	default:
		page.Error = "Decision: want allow, deny or approve."
		s.render(w, http.StatusBadRequest, "sessions", page)
		return
	}
	var keep map[string]bool
	if d.Decision != "" {
		// Sessions with at least one command of that decision.
		evs, err := s.store.QueryEvents(r.Context(), record.EventFilter{Identity: d.Identity, Resource: d.Resource,
			Since: f.Since, Until: f.Until, Effect: d.Decision, Limit: record.MaxLimit})
		if err != nil {
			s.uiError(w, page, http.StatusInternalServerError, err.Error())
			return
		}
		keep = map[string]bool{}
		for _, e := range evs {
			if e.Kind == record.KindCommand {
				keep[e.SessionID] = true
			}
		}
		f.Limit = record.MaxLimit
	}
	list, err := s.store.ListSessions(r.Context(), f)
	if err != nil {
		s.uiError(w, page, http.StatusInternalServerError, err.Error())
		return
	}
	for _, sess := range list {
		if keep != nil && !keep[sess.ID] {
			continue
		}
		if len(d.Sessions) == uiSessionsPage {
			d.More = true
			break
		}
		d.Sessions = append(d.Sessions, sess)
	}
	s.render(w, http.StatusOK, "sessions", page)
}

// uiDate parses a date input ("2026-11-27"); end dates include the day.
func uiDate(v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q: want YYYY-MM-DD", v)
	}
	if end {
		t = t.Add(24 * time.Hour)
	}
	return t, nil
}

type sessionData struct {
	Session record.Session
	Events  []record.Event
	Verify  record.VerifyResult
}

func (s *Server) uiSession(w http.ResponseWriter, r *http.Request, page *uiPage) {
	page.Title, page.Nav = "Session", "sessions"
	id := r.PathValue("id")
	sess, err := s.store.GetSession(r.Context(), id)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, record.ErrNotFound) {
			code = http.StatusNotFound
		}
		s.uiError(w, page, code, err.Error())
		return
	}
	evs, err := s.store.Events(r.Context(), id)
	if err != nil {
		s.uiError(w, page, http.StatusInternalServerError, err.Error())
		return
	}
	page.Title = "Session " + id
	page.Data = &sessionData{Session: sess, Events: evs, Verify: record.VerifyChain(&sess, evs)}
	s.render(w, http.StatusOK, "session", page)
}

// ---- approvals --------------------------------------------------------

type approvalsData struct {
	Pending  []record.Approval
	Resolved []record.Approval
}

func (s *Server) uiApprovals(w http.ResponseWriter, r *http.Request, page *uiPage) {
	page.Title, page.Nav = "Approvals", "approvals"
	switch r.URL.Query().Get("done") {
	case "approve":
		page.Notice = "Your approval was recorded."
	case "deny":
		page.Notice = "Your denial was recorded."
	}
	s.renderApprovals(w, r, page, http.StatusOK)
}

func (s *Server) renderApprovals(w http.ResponseWriter, r *http.Request, page *uiPage, code int) {
	page.Title, page.Nav = "Approvals", "approvals"
	all, err := s.approvals.List(r.Context(), "")
	if err != nil {
		s.uiError(w, page, http.StatusInternalServerError, err.Error())
		return
	}
	d := &approvalsData{}
	for i := len(all) - 1; i >= 0; i-- { // newest first
		a := all[i]
		if a.Status == record.StatusPending {
			d.Pending = append(d.Pending, a)
		} else if len(d.Resolved) < 50 {
			d.Resolved = append(d.Resolved, a)
		}
	}
	page.Data = d
	s.render(w, code, "approvals", page)
}

func (s *Server) uiVote(w http.ResponseWriter, r *http.Request, page *uiPage) {
	decision := r.PostForm.Get("decision")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if decision != record.DecisionApprove && decision != record.DecisionDeny {
		page.Error = "Choose approve or deny."
		s.renderApprovals(w, r, page, http.StatusBadRequest)
		return
	}
	if reason == "" {
		page.Error = "A reason is required."
		s.renderApprovals(w, r, page, http.StatusBadRequest)
		return
	}
	p := page.Principal
	_, err := s.approvals.Vote(r.Context(), r.PathValue("id"), approval.Approver{Name: p.Name, Groups: p.Groups}, decision, reason)
	code := http.StatusOK
	switch {
	case err == nil:
		http.Redirect(w, r, "/ui/approvals?done="+decision, http.StatusSeeOther)
		return
	case errors.Is(err, approval.ErrNotMember), errors.Is(err, record.ErrSelfApproval):
		code = http.StatusForbidden
	case errors.Is(err, record.ErrDuplicateVote), errors.Is(err, record.ErrApprovalClosed):
		code = http.StatusConflict
	case errors.Is(err, record.ErrNotFound):
		code = http.StatusNotFound
	default:
		code = http.StatusInternalServerError
	}
	page.Error = "The vote was not recorded: " + err.Error()
	s.renderApprovals(w, r, page, code)
}

// ---- status ----------------------------------------------------------

type statusData struct {
	Status   Status
	Rules    int
	Policies string
}

func (s *Server) uiStatus(w http.ResponseWriter, _ *http.Request, page *uiPage) {
	page.Title, page.Nav = "Bundle status", "status"
	d := &statusData{Status: s.status()}
	if eng := s.activator.Engine(); eng != nil {
		d.Rules = len(eng.Bundle().Policy.Rules)
		d.Policies = strconv.Itoa(len(eng.Bundle().Policy.Identities)) + " identities, " +
			strconv.Itoa(len(eng.Bundle().Policy.Resources)) + " resources"
	}
	page.Data = d
	s.render(w, http.StatusOK, "status", page)
}
