package ui

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/runtime/approval"
	"github.com/gatehouse/gatehouse/runtime/record"
	"github.com/gatehouse/gatehouse/runtime/review"
)

// ---- access review ----------------------------------------------------

type reviewData struct {
	Report     *review.Report
	Since      string
	Identity   string
	Identities []string
	Selected   *review.Identity
	Suggestion string
}

func (h *Handler) review(w http.ResponseWriter, r *http.Request, pg *page) {
	pg.Title, pg.Nav = "Access review", "review"
	q := r.URL.Query()
	d := reviewData{Since: cmp.Or(q.Get("since"), "90d"), Identity: q.Get("identity")}
	pg.Data = &d
	b := h.cfg.Bundle()
	if b == nil {
		h.errorPage(w, pg, http.StatusServiceUnavailable, "No policy bundle is active.")
		return
	}
	pol := &b.Policy
	for _, id := range pol.Identities {
		d.Identities = append(d.Identities, id.Name)
	}
	period, err := review.ParseEvery(d.Since)
	if err != nil {
		pg.Error = "Period: want a duration such as 30d or 90d."
		h.render(w, http.StatusBadRequest, "review", pg)
		return
	}
	now := h.cfg.Clock()
	rep, err := review.Build(r.Context(), review.Config{Reader: h.cfg.Recordings, Approvals: h.cfg.ApprovalRecords, Policy: pol,
		Now: now, Since: now.Add(-period), Identity: d.Identity})
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, review.ErrUnknownIdentity) || errors.Is(err, review.ErrInvalid) {
			code = http.StatusBadRequest
		}
		pg.Error = err.Error()
		h.render(w, code, "review", pg)
		return
	}
	rep.PolicyRevision = b.Manifest.Revision
	d.Report = rep
	if d.Identity != "" && len(rep.Identities) == 1 {
		d.Selected = &rep.Identities[0]
		d.Suggestion = review.Suggest(d.Selected, rep, review.SuggestOptions{})
	}
	h.render(w, http.StatusOK, "review", pg)
}

// ---- sessions -----------------------------------------------------------

type sessionsData struct {
	Identity, Resource, Decision, Since, Until string
	Identities, Resources                      []string
	Sessions                                   []record.Session
	More                                       bool
}

func (h *Handler) sessions(w http.ResponseWriter, r *http.Request, pg *page) {
	pg.Title, pg.Nav = "Sessions", "sessions"
	q := r.URL.Query()
	d := sessionsData{Identity: q.Get("identity"), Resource: q.Get("resource"), Decision: q.Get("decision"),
		Since: q.Get("since"), Until: q.Get("until")}
	pg.Data = &d
	if b := h.cfg.Bundle(); b != nil {
		for _, id := range b.Policy.Identities {
			d.Identities = append(d.Identities, id.Name)
		}
		for _, res := range b.Policy.Resources {
			d.Resources = append(d.Resources, res.Name)
		}
	}
	f := record.SessionFilter{Identity: d.Identity, Resource: d.Resource, Limit: sessionsPage + 1}
	var err error
	if f.Since, err = parseDate(d.Since, false); err == nil {
		f.Until, err = parseDate(d.Until, true)
	}
	if err != nil {
		pg.Error = err.Error()
		h.render(w, http.StatusBadRequest, "sessions", pg)
		return
	}
	switch d.Decision {
	case "", "allow", "deny", "approve":
	default:
		pg.Error = "Decision: want allow, deny or approve."
		h.render(w, http.StatusBadRequest, "sessions", pg)
		return
	}
	var keep map[string]bool
	if d.Decision != "" {
		// Sessions with at least one command of that decision.
		evs, err := h.cfg.Recordings.QueryEvents(r.Context(), record.EventFilter{Identity: d.Identity, Resource: d.Resource,
			Since: f.Since, Until: f.Until, Effect: d.Decision, Limit: record.MaxLimit})
		if err != nil {
			h.errorPage(w, pg, http.StatusInternalServerError, err.Error())
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
	list, err := h.cfg.Recordings.ListSessions(r.Context(), f)
	if err != nil {
		h.errorPage(w, pg, http.StatusInternalServerError, err.Error())
		return
	}
	for _, sess := range list {
		if keep != nil && !keep[sess.ID] {
			continue
		}
		if len(d.Sessions) == sessionsPage {
			d.More = true
			break
		}
		d.Sessions = append(d.Sessions, sess)
	}
	h.render(w, http.StatusOK, "sessions", pg)
}

// parseDate parses a date input ("2026-11-27"); end dates include the day.
func parseDate(v string, end bool) (time.Time, error) {
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

func (h *Handler) session(w http.ResponseWriter, r *http.Request, pg *page) {
	pg.Title, pg.Nav = "Session", "sessions"
	id := r.PathValue("id")
	sess, err := h.cfg.Recordings.GetSession(r.Context(), id)
	if err != nil {
		code := http.StatusInternalServerError
		if errors.Is(err, record.ErrNotFound) {
			code = http.StatusNotFound
		}
		h.errorPage(w, pg, code, err.Error())
		return
	}
	evs, err := h.cfg.Recordings.Events(r.Context(), id)
	if err != nil {
		h.errorPage(w, pg, http.StatusInternalServerError, err.Error())
		return
	}
	pg.Title = "Session " + id
	pg.Data = &sessionData{Session: sess, Events: evs, Verify: record.VerifyChain(&sess, evs)}
	h.render(w, http.StatusOK, "session", pg)
}

// ---- approvals --------------------------------------------------------

type approvalsData struct {
	Pending  []record.Approval
	Resolved []record.Approval
}

func (h *Handler) approvals(w http.ResponseWriter, r *http.Request, pg *page) {
	switch r.URL.Query().Get("done") {
	case record.DecisionApprove:
		pg.Notice = "Your approval was recorded."
	case record.DecisionDeny:
		pg.Notice = "Your denial was recorded."
	}
	h.renderApprovals(w, r, pg, http.StatusOK)
}

func (h *Handler) renderApprovals(w http.ResponseWriter, r *http.Request, pg *page, code int) {
	pg.Title, pg.Nav = "Approvals", "approvals"
	all, err := h.cfg.Approvals.List(r.Context(), "")
	if err != nil {
		h.errorPage(w, pg, http.StatusInternalServerError, err.Error())
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
	pg.Data = d
	h.render(w, code, "approvals", pg)
}

func (h *Handler) vote(w http.ResponseWriter, r *http.Request, pg *page) {
	decision := r.PostForm.Get("decision")
	reason := strings.TrimSpace(r.PostForm.Get("reason"))
	if decision != record.DecisionApprove && decision != record.DecisionDeny {
		pg.Error = "Choose approve or deny."
		h.renderApprovals(w, r, pg, http.StatusBadRequest)
		return
	}
	if reason == "" {
		pg.Error = "A reason is required."
		h.renderApprovals(w, r, pg, http.StatusBadRequest)
		return
	}
	p := pg.Principal
	_, err := h.cfg.Approvals.Vote(r.Context(), r.PathValue("id"), approval.Approver{Name: p.Name, Groups: p.Groups}, decision, reason)
	var code int
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
	pg.Error = "The vote was not recorded: " + err.Error()
	h.renderApprovals(w, r, pg, code)
}

// ---- status ----------------------------------------------------------

type statusData struct {
	Status   any
	Rules    int
	Policies string
}

func (h *Handler) status(w http.ResponseWriter, _ *http.Request, pg *page) {
	pg.Title, pg.Nav = "Bundle status", "status"
	d := &statusData{Status: h.cfg.Status()}
	if b := h.cfg.Bundle(); b != nil {
		d.Rules = len(b.Policy.Rules)
		d.Policies = strconv.Itoa(len(b.Policy.Identities)) + " identities, " +
			strconv.Itoa(len(b.Policy.Resources)) + " resources"
	}
	pg.Data = d
	h.render(w, http.StatusOK, "status", pg)
}
