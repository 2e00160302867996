package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse/gatehouse/runtime/approval"
	"github.com/gatehouse/gatehouse/runtime/identity"
	"github.com/gatehouse/gatehouse/runtime/record"
)

// Roles on the gateway itself, from the policy's identities.
const (
	RoleAdmin   = "admin"
	RoleAuditor = "auditor"
)

// adminHandler serves health, metrics, the development issuer and the JSON
// admin API (docs/api.md). Health and metrics are unauthenticated (they
// reveal no recorded data); everything under /api requires a token of a
// policy identity.
func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !s.activator.Ready() {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "no valid policy bundle is active"})
			return
		}
		if err := s.recorder.Available(); err != nil && s.cfg.Recording.FailClosed {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "recorder unavailable: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	if s.dev != nil {
		u, err := url.Parse(s.dev.Issuer())
		if err == nil && u.Path != "" && u.Path != "/" {
			mux.Handle("GET "+strings.TrimSuffix(u.Path, "/")+"/", s.dev.Handler())
		}
	}

	api := http.NewServeMux()
	api.HandleFunc("GET /api/v1/status", s.requireRole(s.apiStatus, RoleAdmin, RoleAuditor))
	api.HandleFunc("GET /api/v1/sessions", s.requireRole(s.apiSessions, RoleAdmin, RoleAuditor))
	api.HandleFunc("GET /api/v1/sessions/{id}", s.requireRole(s.apiSession, RoleAdmin, RoleAuditor))
	api.HandleFunc("GET /api/v1/sessions/{id}/verify", s.requireRole(s.apiVerify, RoleAdmin, RoleAuditor))
	api.HandleFunc("GET /api/v1/events", s.requireRole(s.apiEvents, RoleAdmin, RoleAuditor))
	api.HandleFunc("GET /api/v1/recording/keys", s.requireRole(s.apiRecordingKeys, RoleAdmin, RoleAuditor))
	// Any identity of the policy may list approvals and vote: the approval
	// service checks membership of the approver group per approval.
	api.HandleFunc("GET /api/v1/approvals", s.requireRole(s.apiApprovals))
	api.HandleFunc("GET /api/v1/approvals/{id}", s.requireRole(s.apiApproval))
	api.HandleFunc("POST /api/v1/approvals/{id}/approve", s.requireRole(s.apiVote(record.DecisionApprove)))
	api.HandleFunc("POST /api/v1/approvals/{id}/deny", s.requireRole(s.apiVote(record.DecisionDeny)))
	mux.Handle("/api/", api)
	mux.Handle("/ui/", s.dashboard)
	return mux
}

type principalKey struct{}

// requireRole authenticates the bearer token against the active policy and,
// when roles are given, requires one of them.
func (s *Server) requireRole(next http.HandlerFunc, roles ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.authenticate(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
			writeError(w, http.StatusUnauthorized, err.Error())
			return
		}
		if len(roles) > 0 && !slices.ContainsFunc(roles, func(role string) bool { return slices.Contains(p.Roles, role) }) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("%s lacks the role %s", p.Name, strings.Join(roles, " or ")))
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	}
}

func (s *Server) authenticate(r *http.Request) (*identity.Principal, error) {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || tok == "" {
		return nil, errors.New("missing bearer token")
	}
	return s.authenticateToken(r.Context(), tok)
}

// authenticateToken verifies a token and resolves it against the active
// policy (the admin API and the dashboard).
func (s *Server) authenticateToken(ctx context.Context, tok string) (*identity.Principal, error) {
	eng := s.activator.Engine()
	if eng == nil {
		return nil, errors.New("no valid policy bundle is active")
	}
	claims, err := s.verifier.Verify(ctx, tok)
	if err != nil {
		return nil, fmt.Errorf("token rejected: %w", err)
	}
	return identity.Resolve(&eng.Bundle().Policy, claims)
}

func principalFrom(ctx context.Context) *identity.Principal {
	p, _ := ctx.Value(principalKey{}).(*identity.Principal)
	return p
}

// Status is the body of /api/v1/status.
type Status struct {
	GatewayID string       `json:"gateway_id"`
	Bundle    BundleStatus `json:"bundle"`
	Recorder  string       `json:"recorder"`
	Time      time.Time    `json:"time"`
}

func (s *Server) status() Status {
	rec := "ok"
	if err := s.recorder.Available(); err != nil {
		rec = err.Error()
	} else if err := s.recorder.Healthy(); err != nil {
		rec = "ok (sessions are waiting for the recorder: " + err.Error() + ")"
	}
	return Status{GatewayID: s.cfg.GatewayID, Bundle: s.activator.Status(), Recorder: rec, Time: s.clock().UTC()}
}

func (s *Server) apiStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.status())
}

func (s *Server) apiSessions(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := record.SessionFilter{Identity: q.Get("identity"), Resource: q.Get("resource")}
	var err error
	if f.Since, f.Until, err = timeRange(q, s.clock()); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f.Limit, _ = strconv.Atoi(q.Get("limit"))
	f.Offset, _ = strconv.Atoi(q.Get("offset"))
	list, err := s.store.ListSessions(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": list})
}

func (s *Server) apiSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	sess, err := s.store.GetSession(r.Context(), id)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	evs, err := s.store.Events(r.Context(), id)
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"session": sess, "events": evs})
}

func (s *Server) apiVerify(w http.ResponseWriter, r *http.Request) {
	res, err := record.Verify(r.Context(), s.store, r.PathValue("id"))
	if err != nil && !errors.Is(err, record.ErrChainBroken) {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) apiEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := record.EventFilter{Identity: q.Get("identity"), Resource: q.Get("resource"), Effect: q.Get("effect"), RuleID: q.Get("rule")}
	var err error
	if f.Since, f.Until, err = timeRange(q, s.clock()); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	f.Limit, _ = strconv.Atoi(q.Get("limit"))
	evs, err := s.store.QueryEvents(r.Context(), f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
}

func (s *Server) apiApprovals(w http.ResponseWriter, r *http.Request) {
	list, err := s.approvals.List(r.Context(), r.URL.Query().Get("status"))
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"approvals": list})
}

func (s *Server) apiApproval(w http.ResponseWriter, r *http.Request) {
	a, err := s.approvals.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		writeStoreError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) apiVote(decision string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Reason string `json:"reason"`
		}
		if r.ContentLength != 0 {
			dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&body); err != nil {
				writeError(w, http.StatusBadRequest, "body: "+err.Error())
				return
			}
		}
		if strings.TrimSpace(body.Reason) == "" {
			writeError(w, http.StatusBadRequest, "a reason is required")
			return
		}
		p := principalFrom(r.Context())
		a, err := s.approvals.Vote(r.Context(), r.PathValue("id"), approval.Approver{Name: p.Name, Groups: p.Groups}, decision, body.Reason)
		switch {
		case errors.Is(err, approval.ErrNotMember), errors.Is(err, record.ErrSelfApproval):
			writeError(w, http.StatusForbidden, err.Error())
		case errors.Is(err, record.ErrDuplicateVote), errors.Is(err, record.ErrApprovalClosed):
			writeError(w, http.StatusConflict, err.Error())
		case err != nil:
			writeStoreError(w, err)
		default:
			writeJSON(w, http.StatusOK, a)
		}
	}
}

// timeRange parses since/until: RFC 3339 times or durations back from now
// ("24h", "30d").
func timeRange(q url.Values, now time.Time) (since, until time.Time, err error) {
	parse := func(name string) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, nil
		}
		if t, err := time.Parse(time.RFC3339, v); err == nil {
			return t, nil
		}
		d, err := ParseDuration(v)
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: want an RFC 3339 time or a duration like 24h or 30d", name)
		}
		return now.Add(-d), nil
	}
	if since, err = parse("since"); err != nil {
		return
	}
	until, err = parse("until")
	return
}

// ParseDuration accepts Go durations and whole days ("30d").
func ParseDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func writeStoreError(w http.ResponseWriter, err error) {
	if errors.Is(err, record.ErrNotFound) {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}
