package review

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/record"
)

// Sentinel errors. Callers branch with errors.Is.
var (
	// ErrInvalid: the configuration is incomplete or inconsistent.
	ErrInvalid = errors.New("review: invalid configuration")
	// ErrUnknownIdentity: the identity asked for is neither in the policy
	// nor in the recordings of the period.
	ErrUnknownIdentity = errors.New("review: unknown identity")
	// ErrTooManyEvents: the period holds more events than Config.MaxEvents.
	ErrTooManyEvents = errors.New("review: too many events in the period")
)

// Defaults and bounds.
const (
	// DefaultPeriod is the review period when Config.Since is zero.
	DefaultPeriod = 90 * 24 * time.Hour
	// DefaultExpiringWithin flags grants that expire this soon.
	DefaultExpiringWithin = 30 * 24 * time.Hour
	// DefaultMaxEvents bounds the events a review reads.
	DefaultMaxEvents = 1_000_000
	// MaxListed bounds the denied attempts and approvals listed per
	// identity (counts are always complete).
	MaxListed = 200
	// maxWeeks bounds the activity chart.
	maxWeeks = 530
)

// ApprovalReader reads approvals with their votes. record.Backend
// implements it.
type ApprovalReader interface {
	// GetApproval returns an approval with its votes (record.ErrNotFound).
	GetApproval(ctx context.Context, id string) (record.Approval, error)
}

// Config is the input of Build.
type Config struct {
	// Reader holds the recordings. Required.
	Reader record.Reader
	// Approvals, when set, supplies approvers' votes and reasons; without
	// it approvals are reconstructed from the recorded approval events
	// (approvers and decisions, no reasons).
	Approvals ApprovalReader
	// Policy is the active policy the grants come from. Required.
	Policy *bundle.Policy
	// Now ends the period and is the time grants are judged at (expired,
	// review due). Required: the package never reads the wall clock.
	Now time.Time
	// Since starts the period; zero means Now - DefaultPeriod.
	Since time.Time
	// Identity restricts the review to one identity; "" reviews every
	// identity of the policy and every identity seen in the recordings.
	Identity string
	// ExpiringWithin flags grants expiring this soon (default
	// DefaultExpiringWithin).
	ExpiringWithin time.Duration
	// MaxEvents bounds the events read (default DefaultMaxEvents).
	MaxEvents int
}

// Validate checks cfg and fills defaults.
func (c *Config) Validate() error {
	var errs []error
	if c.Reader == nil {
		errs = append(errs, errors.New("reader is required"))
	}
	if c.Policy == nil {
		errs = append(errs, errors.New("policy is required"))
	}
	if c.Now.IsZero() {
		errs = append(errs, errors.New("now is required"))
	}
	if c.Since.IsZero() && !c.Now.IsZero() {
		c.Since = c.Now.Add(-DefaultPeriod)
	}
	if !c.Now.IsZero() && !c.Since.Before(c.Now) {
		errs = append(errs, fmt.Errorf("since %s is not before now %s", c.Since.Format(time.RFC3339), c.Now.Format(time.RFC3339)))
	}
	if c.ExpiringWithin <= 0 {
		c.ExpiringWithin = DefaultExpiringWithin
	}
	if c.MaxEvents <= 0 {
		c.MaxEvents = DefaultMaxEvents
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// Report is an access review of one period.
type Report struct {
	// Since and Until bound the period (Until is Config.Now).
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// PolicyRevision is informational: the revision the caller reviewed
	// against, when known (see Build's callers).
	PolicyRevision string `json:"policy_revision,omitempty"`
	// Identities: agents first, then services, humans and identities that
	// are only in the recordings; by name within a kind.
	Identities []Identity `json:"identities"`
}

// Identity is the review of one identity.
type Identity struct {
	Name   string   `json:"name"`
	Kind   string   `json:"kind"`
	Owner  string   `json:"owner,omitempty"`
	Groups []string `json:"groups,omitempty"`
	// InPolicy is false for an identity that appears in the recordings but
	// no longer in the policy.
	InPolicy bool `json:"in_policy"`

	// Still needed?
	Sessions        int       `json:"sessions"`
	SessionsPerWeek float64   `json:"sessions_per_week"`
	Commands        int       `json:"commands"`
	LastActivity    time.Time `json:"last_activity,omitzero"`
	// Activity counts commands per week of the period, oldest first; week
	// i starts at Since + i*7 days.
	Activity []int `json:"activity"`

	// Least privilege?
	Grants []Grant `json:"grants"`

	// Used and provable?
	Resources  []ResourceUse `json:"resources"`
	Statements []Count       `json:"statements"`
	// Access is what ran, per resource and granting effect: the evidence
	// Suggest turns into least-privilege rules.
	Access      []Access     `json:"access"`
	Approvals   []Approval   `json:"approvals"`
	Denied      []Attempt    `json:"denied"`
	DeniedCount int          `json:"denied_count"`
	MaskedReads int          `json:"masked_reads"`
	Chains      ChainSummary `json:"chains"`
}

// UnusedGrants returns the grants that matched nothing in the period.
func (id *Identity) UnusedGrants() []Grant {
	var out []Grant
	for _, g := range id.Grants {
		if g.Uses == 0 {
			out = append(out, g)
		}
	}
	return out
}

// Grant is one allow or approve rule that applies to the identity.
type Grant struct {
	RuleID      string `json:"rule_id"`
	Effect      string `json:"effect"`
	Description string `json:"description,omitempty"`
	// Via says how the rule reaches the identity: its name, "group:NAME"
	// or "*".
	Via       string   `json:"via"`
	Resources []string `json:"resources"`
	// Scope is a one-line summary of what the rule matches.
	Scope string `json:"scope,omitempty"`
	Pos   string `json:"pos,omitempty"`
	// Uses counts the identity's commands in the period that name the rule;
	// LastUse is the latest of them.
	Uses    int       `json:"uses"`
	LastUse time.Time `json:"last_use,omitzero"`

	Expires      string    `json:"expires,omitempty"`
	ExpiresAt    time.Time `json:"expires_at,omitzero"`
	Expired      bool      `json:"expired"`
	ExpiringSoon bool      `json:"expiring_soon"`

	ReviewOwner  string    `json:"review_owner,omitempty"`
	ReviewEvery  string    `json:"review_every,omitempty"`
	LastReviewed string    `json:"last_reviewed,omitempty"`
	Reviewer     string    `json:"reviewer,omitempty"`
	NextReview   time.Time `json:"next_review,omitzero"`
	// ReviewDue: the grant has a review schedule and was never reviewed,
	// or its next review is at or before now.
	ReviewDue bool `json:"review_due"`
}

// Unused reports whether the grant matched nothing in the period.
func (g *Grant) Unused() bool { return g.Uses == 0 }

// ResourceUse is what the identity did on one resource.
type ResourceUse struct {
	Name     string    `json:"name"`
	Type     string    `json:"type,omitempty"`
	Sessions int       `json:"sessions"`
	Commands int       `json:"commands"`
	Denied   int       `json:"denied"`
	LastUse  time.Time `json:"last_use,omitzero"`
	// Statements by kind and Tables by use count, for commands that ran
	// (allowed or approved).
	Statements []Count `json:"statements"`
	Tables     []Count `json:"tables"`
}

// Access is the use one identity made of one resource through grants of
// one effect (allow, or approve with one approval spec).
type Access struct {
	Resource string `json:"resource"`
	Type     string `json:"type,omitempty"`
	Effect   string `json:"effect"`
	// Approval is the approval spec of the approve rule that was used.
	Approval *bundle.ApprovalSpec `json:"approval,omitempty"`
	// RuleIDs are the grants that were used, sorted.
	RuleIDs    []string  `json:"rule_ids"`
	Commands   int       `json:"commands"`
	First      time.Time `json:"first"`
	Last       time.Time `json:"last"`
	Statements []Count   `json:"statements"`
	Tables     []Count   `json:"tables"`
}

// Count is a named counter.
type Count struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
}

// Approval is one approval request of the identity, with its votes.
type Approval struct {
	ID       string        `json:"id"`
	Resource string        `json:"resource,omitempty"`
	Command  string        `json:"command,omitempty"`
	RuleID   string        `json:"rule_id,omitempty"`
	Status   string        `json:"status"`
	Group    string        `json:"group,omitempty"`
	Time     time.Time     `json:"time"`
	Votes    []record.Vote `json:"votes"`
}

// Attempt is one denied command.
type Attempt struct {
	SessionID string    `json:"session_id"`
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Resource  string    `json:"resource"`
	Command   string    `json:"command"`
	RuleIDs   []string  `json:"rule_ids,omitempty"`
	Reason    string    `json:"reason,omitempty"`
}

// ChainSummary is the hash-chain verification of the identity's sessions
// in the period.
type ChainSummary struct {
	Sessions int `json:"sessions"`
	Verified int `json:"verified"`
	// Broken lists the sessions whose chain does not verify.
	Broken []record.VerifyResult `json:"broken,omitempty"`
}

// OK reports whether every session verified.
func (c ChainSummary) OK() bool { return len(c.Broken) == 0 }

// Build computes the review. It reads the sessions that started in the
// period and the events recorded in it, and verifies the hash chain of
// every session it read events of.
func Build(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b := &builder{cfg: cfg, sessions: map[string]*record.Session{}, ids: map[string]*acc{}}
	b.indexPolicy()
	if err := b.read(ctx); err != nil {
		return nil, err
	}
	if cfg.Identity != "" && b.ids[cfg.Identity] == nil {
		return nil, fmt.Errorf("%w: %q is not in the policy and has no recordings in the period", ErrUnknownIdentity, cfg.Identity)
	}
	if err := b.verify(ctx); err != nil {
		return nil, err
	}
	if err := b.approvals(ctx); err != nil {
		return nil, err
	}
	rep := &Report{Since: record.Timestamp(cfg.Since), Until: record.Timestamp(cfg.Now)}
	for _, a := range b.ids {
		rep.Identities = append(rep.Identities, a.finish(&cfg))
	}
	slices.SortFunc(rep.Identities, func(x, y Identity) int {
		return cmp.Or(cmp.Compare(kindRank(x), kindRank(y)), cmp.Compare(x.Name, y.Name))
	})
	return rep, nil
}

func kindRank(id Identity) int {
	if !id.InPolicy {
		return 4
	}
	switch id.Kind {
	case "agent":
		return 0
	case "service":
		return 1
	case "human":
		return 2
	default:
		return 3
	}
}

type builder struct {
	cfg      Config
	sessions map[string]*record.Session
	ids      map[string]*acc
	resType  map[string]string
	ruleByID map[string]*bundle.Rule
}

// acc accumulates one identity's review.
type acc struct {
	id        Identity
	grantIdx  map[string]int
	resources map[string]*resAcc
	kinds     map[string]int
	sessions  map[string]bool
	approvals map[string]*Approval
	order     []string // approval ids in first-seen order
	access    map[string]*accessAcc
}

type accessAcc struct {
	a      Access
	rules  map[string]bool
	kinds  map[string]int
	tables map[string]int
}

type resAcc struct {
	use      ResourceUse
	sessions map[string]bool
	kinds    map[string]int
	tables   map[string]int
}

func (b *builder) indexPolicy() {
	p := b.cfg.Policy
	b.resType = make(map[string]string, len(p.Resources))
	for _, r := range p.Resources {
		b.resType[r.Name] = string(r.Type)
	}
	for i := range p.Identities {
		pid := &p.Identities[i]
		if b.cfg.Identity != "" && pid.Name != b.cfg.Identity {
			continue
		}
		a := b.identity(pid.Name)
		a.id.Kind, a.id.Owner, a.id.InPolicy = pid.Kind, pid.Owner, true
		a.id.Groups = slices.Clone(pid.Groups)
		for j := range p.Rules {
			r := &p.Rules[j]
			if r.Effect != bundle.EffectAllow && r.Effect != bundle.EffectApprove {
				continue
			}
			via, ok := appliesTo(r, pid)
			if !ok {
				continue
			}
			a.grantIdx[r.ID] = len(a.id.Grants)
			a.id.Grants = append(a.id.Grants, grantOf(r, via, b.cfg.Now, b.cfg.ExpiringWithin))
		}
	}
}

func (b *builder) identity(name string) *acc {
	a := b.ids[name]
	if a == nil {
		a = &acc{
			id:        Identity{Name: name},
			grantIdx:  map[string]int{},
			resources: map[string]*resAcc{},
			kinds:     map[string]int{},
			sessions:  map[string]bool{},
			approvals: map[string]*Approval{},
			access:    map[string]*accessAcc{},
		}
		b.ids[name] = a
	}
	return a
}

// appliesTo reports whether rule r applies to identity id and through
// which subject.
func appliesTo(r *bundle.Rule, id *bundle.Identity) (string, bool) {
	if len(r.Subjects) == 0 {
		return "*", true
	}
	for _, s := range r.Subjects {
		if s == id.Name {
			return s, true
		}
	}
	for _, s := range r.Subjects {
		if g, ok := strings.CutPrefix(s, "group:"); ok && slices.Contains(id.Groups, g) {
			return s, true
		}
	}
	if slices.Contains(r.Subjects, "*") {
		return "*", true
	}
	return "", false
}

func grantOf(r *bundle.Rule, via string, now time.Time, soon time.Duration) Grant {
	g := Grant{
		RuleID: r.ID, Effect: string(r.Effect), Description: r.Description, Via: via,
		Resources: slices.Clone(r.ResolvedResources), Scope: Scope(r), Pos: r.Pos, Expires: r.Expires,
	}
	if r.Expires != "" {
		if t, err := ParseDate(r.Expires); err == nil {
			g.ExpiresAt = t
			g.Expired = !now.Before(t)
			g.ExpiringSoon = !g.Expired && t.Sub(now) <= soon
		}
	}
	if rv := r.Review; rv != nil {
		g.ReviewOwner, g.ReviewEvery, g.LastReviewed, g.Reviewer = rv.Owner, rv.Every, rv.LastReviewed, rv.Reviewer
		every, err := ParseEvery(rv.Every)
		last, lerr := ParseDate(rv.LastReviewed)
		switch {
		case rv.LastReviewed == "" || lerr != nil:
			g.ReviewDue = true
		case err == nil:
			g.NextReview = last.Add(every)
			g.ReviewDue = !now.Before(g.NextReview)
		}
	}
	return g
}

// Scope summarises what a rule matches in one line.
func Scope(r *bundle.Rule) string {
	var parts []string
	add := func(name string, vs []string) {
		if len(vs) > 0 {
			parts = append(parts, name+" "+strings.Join(vs, ","))
		}
	}
	switch {
	case r.SQL != nil:
		add("statements", r.SQL.Statements)
		add("tables", r.SQL.Tables)
		add("columns", r.SQL.Columns)
		add("functions", r.SQL.Functions)
	case r.SSH != nil:
		add("commands", r.SSH.Commands)
	case r.HTTP != nil:
		add("methods", r.HTTP.Methods)
		add("hosts", r.HTTP.Hosts)
		add("paths", r.HTTP.Paths)
	case r.Kubernetes != nil:
		add("verbs", r.Kubernetes.Verbs)
		add("resources", r.Kubernetes.Resources)
		add("namespaces", r.Kubernetes.Namespaces)
		add("exec", r.Kubernetes.ExecCommands)
	}
	if len(parts) == 0 {
		return "any command"
	}
	return strings.Join(parts, "; ")
}

// ParseDate parses "2027-03-01" (start of the day, UTC) or an RFC 3339
// time, as the engine reads expiry dates.
func ParseDate(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("date %q: want YYYY-MM-DD or RFC 3339", s)
	}
	return t.UTC(), nil
}

// ParseEvery parses a review interval: "90d", "12w" or a Go duration.
func ParseEvery(s string) (time.Duration, error) {
	bad := fmt.Errorf("interval %q: want days (\"90d\"), weeks (\"12w\") or a Go duration", s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v <= 0 || v > 36600 {
			return 0, bad
		}
		return time.Duration(v) * 24 * time.Hour, nil
	}
	if n, ok := strings.CutSuffix(s, "w"); ok {
		v, err := strconv.Atoi(n)
		if err != nil || v <= 0 || v > 5200 {
			return 0, bad
		}
		return time.Duration(v) * 7 * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return d, nil
}

// read loads the sessions that started in the period and the events of
// the period.
func (b *builder) read(ctx context.Context) error {
	f := record.SessionFilter{Identity: b.cfg.Identity, Since: b.cfg.Since, Until: b.cfg.Now, Limit: record.MaxLimit}
	for {
		page, err := b.cfg.Reader.ListSessions(ctx, f)
		if err != nil {
			return fmt.Errorf("review: list sessions: %w", err)
		}
		for i := range page {
			s := page[i]
			if _, seen := b.sessions[s.ID]; seen {
				continue
			}
			b.sessions[s.ID] = &s
			a := b.identity(s.Identity)
			if !a.sessions[s.ID] {
				a.sessions[s.ID] = true
				a.id.Sessions++
			}
			a.resource(s.Resource, b.resType[s.Resource]).sessions[s.ID] = true
			if s.StartedAt.After(a.id.LastActivity) {
				a.id.LastActivity = s.StartedAt
			}
			if len(b.sessions) > b.cfg.MaxEvents {
				return fmt.Errorf("%w: more than %d sessions", ErrTooManyEvents, b.cfg.MaxEvents)
			}
		}
		if len(page) < f.Limit {
			break
		}
		f.Offset += len(page)
	}

	// Events are read in time order; a page that ends inside a burst of
	// events with the same time is continued from that time, skipping
	// what was already seen.
	ef := record.EventFilter{Identity: b.cfg.Identity, Since: b.cfg.Since, Until: b.cfg.Now, Limit: record.MaxLimit}
	seen := map[string]map[int64]bool{}
	total := 0
	for {
		page, err := b.cfg.Reader.QueryEvents(ctx, ef)
		if err != nil {
			return fmt.Errorf("review: query events: %w", err)
		}
		fresh := 0
		for i := range page {
			ev := &page[i]
			if seen[ev.SessionID][ev.Seq] {
				continue
			}
			if seen[ev.SessionID] == nil {
				seen[ev.SessionID] = map[int64]bool{}
			}
			seen[ev.SessionID][ev.Seq] = true
			fresh++
			total++
			if total > b.cfg.MaxEvents {
				return fmt.Errorf("%w: more than %d events", ErrTooManyEvents, b.cfg.MaxEvents)
			}
			if err := b.event(ctx, ev); err != nil {
				return err
			}
		}
		if len(page) < ef.Limit {
			return nil
		}
		if fresh == 0 {
			return fmt.Errorf("%w: more than %d events share one timestamp", ErrTooManyEvents, ef.Limit)
		}
		ef.Since = page[len(page)-1].Time
	}
}

func (b *builder) session(ctx context.Context, id string) (*record.Session, error) {
	if s, ok := b.sessions[id]; ok {
		return s, nil
	}
	s, err := b.cfg.Reader.GetSession(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("review: session %s: %w", id, err)
	}
	b.sessions[id] = &s
	return &s, nil
}

// facts is the part of the recorded SQL facts a review reads.
type facts struct {
	Kind          string   `json:"kind"`
	TablesRead    []string `json:"tables_read"`
	TablesWritten []string `json:"tables_written"`
}

func (b *builder) event(ctx context.Context, ev *record.Event) error {
	s, err := b.session(ctx, ev.SessionID)
	if err != nil {
		return err
	}
	if b.cfg.Identity != "" && s.Identity != b.cfg.Identity {
		return nil
	}
	a := b.identity(s.Identity)
	if !a.sessions[s.ID] {
		// A session that started before the period but was active in it.
		a.sessions[s.ID] = true
	}
	if ev.Time.After(a.id.LastActivity) {
		a.id.LastActivity = ev.Time
	}
	ra := a.resource(s.Resource, cmp.Or(s.ResourceType, b.resType[s.Resource]))
	ra.sessions[s.ID] = true
	if ev.ApprovalID != "" {
		a.approval(ev, s.Resource)
	}
	if ev.Kind != record.KindCommand {
		return nil
	}
	a.id.Commands++
	ra.use.Commands++
	if ev.Time.After(ra.use.LastUse) {
		ra.use.LastUse = ev.Time
	}
	a.week(ev.Time, &b.cfg)
	if ev.Masked {
		a.id.MaskedReads++
	}
	if ev.Effect == string(bundle.EffectDeny) {
		a.id.DeniedCount++
		ra.use.Denied++
		if len(a.id.Denied) < MaxListed {
			a.id.Denied = append(a.id.Denied, Attempt{
				SessionID: ev.SessionID, Seq: ev.Seq, Time: ev.Time, Resource: s.Resource,
				Command: ev.Command, RuleIDs: slices.Clone(ev.RuleIDs), Reason: ev.Reason,
			})
		}
		return nil
	}
	var used []*bundle.Rule
	for _, id := range ev.RuleIDs {
		if i, ok := a.grantIdx[id]; ok {
			g := &a.id.Grants[i]
			g.Uses++
			if ev.Time.After(g.LastUse) {
				g.LastUse = ev.Time
			}
			if r := b.rule(id); r != nil {
				used = append(used, r)
			}
		}
	}
	var f facts
	var tables []string
	hasFacts := len(ev.Facts) > 0 && json.Unmarshal(ev.Facts, &f) == nil && f.Kind != ""
	if hasFacts {
		a.kinds[f.Kind]++
		ra.kinds[f.Kind]++
		tables = dedupe(append(slices.Clone(f.TablesRead), f.TablesWritten...))
		for _, t := range tables {
			ra.tables[t]++
		}
	}
	if len(used) > 0 {
		x := a.accessFor(s.Resource, ra.use.Type, used[0])
		x.a.Commands++
		if x.a.First.IsZero() || ev.Time.Before(x.a.First) {
			x.a.First = ev.Time
		}
		if ev.Time.After(x.a.Last) {
			x.a.Last = ev.Time
		}
		for _, r := range used {
			x.rules[r.ID] = true
		}
		if hasFacts {
			x.kinds[f.Kind]++
			for _, t := range tables {
				x.tables[t]++
			}
		}
	}
	return nil
}

func (b *builder) rule(id string) *bundle.Rule {
	if b.ruleByID == nil {
		b.ruleByID = map[string]*bundle.Rule{}
		for i := range b.cfg.Policy.Rules {
			b.ruleByID[b.cfg.Policy.Rules[i].ID] = &b.cfg.Policy.Rules[i]
		}
	}
	return b.ruleByID[id]
}

func (a *acc) accessFor(resource, typ string, r *bundle.Rule) *accessAcc {
	key := resource + "\x00" + string(r.Effect)
	var spec *bundle.ApprovalSpec
	if r.Effect == bundle.EffectApprove && r.Approval != nil {
		c := *r.Approval
		spec = &c
		key += "\x00" + c.Group + "\x00" + strconv.Itoa(c.Count) + "\x00" + c.Timeout
	}
	x := a.access[key]
	if x == nil {
		x = &accessAcc{a: Access{Resource: resource, Type: typ, Effect: string(r.Effect), Approval: spec},
			rules: map[string]bool{}, kinds: map[string]int{}, tables: map[string]int{}}
		a.access[key] = x
	}
	return x
}

func (a *acc) resource(name, typ string) *resAcc {
	r := a.resources[name]
	if r == nil {
		r = &resAcc{use: ResourceUse{Name: name, Type: typ}, sessions: map[string]bool{}, kinds: map[string]int{}, tables: map[string]int{}}
		a.resources[name] = r
	}
	return r
}

func (a *acc) week(t time.Time, cfg *Config) {
	n := weeks(cfg)
	if len(a.id.Activity) != n {
		a.id.Activity = make([]int, n)
	}
	i := int(t.Sub(cfg.Since) / (7 * 24 * time.Hour))
	if i >= 0 && i < n {
		a.id.Activity[i]++
	}
}

func weeks(cfg *Config) int {
	n := int(math.Ceil(cfg.Now.Sub(cfg.Since).Hours() / (7 * 24)))
	return max(1, min(n, maxWeeks))
}

func (a *acc) approval(ev *record.Event, resource string) {
	ap := a.approvals[ev.ApprovalID]
	if ap == nil {
		ap = &Approval{ID: ev.ApprovalID, Resource: resource, Status: record.StatusPending, Time: ev.Time}
		a.approvals[ev.ApprovalID] = ap
		a.order = append(a.order, ev.ApprovalID)
	}
	if ap.Command == "" {
		ap.Command = ev.Command
	}
	if ap.RuleID == "" && len(ev.RuleIDs) > 0 && ev.Kind == record.KindApproval {
		ap.RuleID = ev.RuleIDs[0]
	}
	if ev.Kind == record.KindApproval {
		// The outcome event: status and "approver:decision" votes.
		ap.Status = ev.Effect
		var f struct {
			Votes []string `json:"votes"`
			Group string   `json:"group"`
		}
		if json.Unmarshal(ev.Facts, &f) == nil {
			ap.Group = f.Group
			ap.Votes = ap.Votes[:0]
			for _, v := range f.Votes {
				who, decision, _ := strings.Cut(v, ":")
				ap.Votes = append(ap.Votes, record.Vote{Approver: who, Decision: decision, Time: ev.Time})
			}
		}
	}
}

// approvals replaces reconstructed approvals with the stored ones (votes
// with reasons) when an ApprovalReader is configured.
func (b *builder) approvals(ctx context.Context) error {
	for _, a := range b.ids {
		for _, id := range a.order {
			ap := a.approvals[id]
			if b.cfg.Approvals != nil {
				got, err := b.cfg.Approvals.GetApproval(ctx, id)
				switch {
				case err == nil:
					ap.Status, ap.Group, ap.RuleID = got.Status, got.Group, cmp.Or(got.RuleID, ap.RuleID)
					ap.Command = cmp.Or(got.Command, ap.Command)
					ap.Time = got.CreatedAt
					ap.Votes = got.Votes
				case !errors.Is(err, record.ErrNotFound):
					return fmt.Errorf("review: approval %s: %w", id, err)
				}
			}
			if len(a.id.Approvals) < MaxListed {
				a.id.Approvals = append(a.id.Approvals, *ap)
			}
		}
	}
	return nil
}

// verify checks the hash chain of every session the review read.
func (b *builder) verify(ctx context.Context) error {
	for _, a := range b.ids {
		ids := make([]string, 0, len(a.sessions))
		for id := range a.sessions {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			s, err := b.session(ctx, id)
			if err != nil {
				return err
			}
			evs, err := b.cfg.Reader.Events(ctx, id)
			if err != nil {
				return fmt.Errorf("review: events of session %s: %w", id, err)
			}
			res := record.VerifyChain(s, evs)
			a.id.Chains.Sessions++
			if res.OK {
				a.id.Chains.Verified++
			} else {
				a.id.Chains.Broken = append(a.id.Chains.Broken, res)
			}
		}
	}
	return nil
}

func (a *acc) finish(cfg *Config) Identity {
	id := a.id
	if id.Kind == "" {
		id.Kind = "unknown"
	}
	if len(id.Activity) == 0 {
		id.Activity = make([]int, weeks(cfg))
	}
	if w := cfg.Now.Sub(cfg.Since).Hours() / (7 * 24); w > 0 {
		id.SessionsPerWeek = math.Round(float64(id.Sessions)/w*100) / 100
	}
	id.Statements = counts(a.kinds)
	for _, r := range a.resources {
		r.use.Sessions = len(r.sessions)
		r.use.Statements = counts(r.kinds)
		r.use.Tables = counts(r.tables)
		id.Resources = append(id.Resources, r.use)
	}
	slices.SortFunc(id.Resources, func(x, y ResourceUse) int { return cmp.Compare(x.Name, y.Name) })
	id.Access = []Access{}
	for _, x := range a.access {
		ac := x.a
		for r := range x.rules {
			ac.RuleIDs = append(ac.RuleIDs, r)
		}
		slices.Sort(ac.RuleIDs)
		ac.Statements, ac.Tables = counts(x.kinds), counts(x.tables)
		id.Access = append(id.Access, ac)
	}
	slices.SortFunc(id.Access, func(x, y Access) int {
		return cmp.Or(cmp.Compare(x.Resource, y.Resource), cmp.Compare(x.Effect, y.Effect), cmp.Compare(strings.Join(x.RuleIDs, ","), strings.Join(y.RuleIDs, ",")))
	})
	if id.Grants == nil {
		id.Grants = []Grant{}
	}
	for _, p := range []*[]ResourceUse{&id.Resources} {
		if *p == nil {
			*p = []ResourceUse{}
		}
	}
	if id.Statements == nil {
		id.Statements = []Count{}
	}
	if id.Approvals == nil {
		id.Approvals = []Approval{}
	}
	if id.Denied == nil {
		id.Denied = []Attempt{}
	}
	return id
}

// counts sorts a counter map by count (descending), then name.
func counts(m map[string]int) []Count {
	out := make([]Count, 0, len(m))
	for k, v := range m {
		out = append(out, Count{Name: k, Count: v})
	}
	slices.SortFunc(out, func(x, y Count) int { return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Name, y.Name)) })
	return out
}

func dedupe(ss []string) []string {
	slices.Sort(ss)
	return slices.Compact(ss)
}
