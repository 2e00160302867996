package conformance

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"time"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/gatehouse/gatehouse/runtime/sqlclass"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/record"
)

// ExportOptions select and transform the sessions Export writes.
type ExportOptions struct {
	// Since, when set, keeps sessions started at or after it.
	Since time.Time
	// Identity and Resource, when set, keep only matching sessions.
	Identity string
	Resource string
	// Anonymize replaces identities, client addresses and claim values
	// with consistent pseudonyms and SQL literals with placeholders
	// (pg_query normalisation), so queries keep their shape.
	Anonymize bool
	// Key keys the pseudonyms (HMAC-SHA256). Empty: a random key, so
	// pseudonyms are consistent within one export only.
	Key []byte
	// Source is written to the header (never a DSN with a password).
	Source string
	// Now stamps the header (zero: no time).
	Now time.Time
}

// Reasons with which the gateway records a statement whose effect is not
// its own decision (runtime/proxy).
var collateralReasons = []string{
	"not executed: another statement in the same message was denied",
	"decision not retained for this text",
}

// Export reads the sessions selected by opts from rd, with their command
// events, oldest session first. Results are never exported (they are not
// part of the format); values that were masked stay masked.
func Export(ctx context.Context, rd record.Reader, opts ExportOptions) (*Corpus, error) {
	var headers []record.Session
	f := record.SessionFilter{Identity: opts.Identity, Resource: opts.Resource, Since: opts.Since, Limit: record.MaxLimit}
	for {
		page, err := rd.ListSessions(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("export: list sessions: %w", err)
		}
		headers = append(headers, page...)
		if len(page) < f.Limit {
			break
		}
		f.Offset += len(page)
	}
	// Newest first from the store; the corpus is oldest first.
	for i, j := 0, len(headers)-1; i < j; i, j = i+1, j-1 {
		headers[i], headers[j] = headers[j], headers[i]
	}
	an, err := newAnonymizer(opts)
	if err != nil {
		return nil, err
	}
	c := &Corpus{Header: Header{Format: Format, ExportedAt: opts.Now.UTC().Truncate(time.Second), Source: opts.Source, Anonymized: opts.Anonymize}}
	for _, h := range headers {
		evs, err := rd.Events(ctx, h.ID)
		if err != nil {
			return nil, fmt.Errorf("export: events of session %s: %w", h.ID, err)
		}
		s := FromRecord(&h, evs)
		if an != nil {
			an.session(&s)
		}
		c.Sessions = append(c.Sessions, s)
	}
	c.Header.Sessions = len(c.Sessions)
	c.Header.Events = c.Statements()
	return c, nil
}

// FromRecord converts a recorded session and its events into the corpus
// form, keeping only command events.
func FromRecord(h *record.Session, evs []record.Event) Session {
	s := Session{
		ID: h.ID, Identity: h.Identity, IdentityKind: h.IdentityKind, Groups: h.Groups, Claims: h.Claims,
		Resource: h.Resource, ResourceType: h.ResourceType, ClientAddr: h.ClientAddr,
		StartedAt: h.StartedAt.UTC(), BundleRevision: h.BundleRevision,
	}
	for i := range evs {
		e := &evs[i]
		if e.Kind != record.KindCommand {
			continue
		}
		ev := Event{
			Seq: e.Seq, Time: e.Time.UTC(), Protocol: e.Protocol, Command: e.Command, Facts: e.Facts,
			Decision: Recorded{Effect: bundle.Effect(e.Effect), RuleIDs: e.RuleIDs, Masked: e.Masked, ApprovalID: e.ApprovalID},
		}
		for _, r := range collateralReasons {
			if strings.HasPrefix(e.Reason, r) {
				ev.Collateral = true
			}
		}
		s.Events = append(s.Events, ev)
	}
	return s
}

type anonymizer struct {
	key []byte
}

func newAnonymizer(opts ExportOptions) (*anonymizer, error) {
	if !opts.Anonymize {
		return nil, nil
	}
	key := opts.Key
	if len(key) == 0 {
		key = make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("export: anonymization key: %w", err)
		}
	}
	return &anonymizer{key: key}, nil
}

func (a *anonymizer) pseudonym(kind, v string) string {
	if v == "" {
		return ""
	}
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write([]byte(v))
	return kind + "-" + hex.EncodeToString(m.Sum(nil)[:6])
}

func (a *anonymizer) session(s *Session) {
	s.Identity = a.pseudonym("identity", s.Identity)
	if s.ClientAddr != "" {
		host, port, err := net.SplitHostPort(s.ClientAddr)
		if err != nil {
			host, port = s.ClientAddr, ""
		}
		s.ClientAddr = a.pseudonym("client", host)
		if port != "" {
			s.ClientAddr += ":" + port
		}
	}
	if len(s.Claims) > 0 {
		claims := make(map[string]any, len(s.Claims))
		for k, v := range s.Claims {
			b, _ := json.Marshal(v)
			claims[k] = a.pseudonym("claim", string(b))
		}
		s.Claims = claims
	}
	for i := range s.Events {
		e := &s.Events[i]
		if e.Protocol == string(bundle.ResourcePostgres) || e.Protocol == string(bundle.ResourceMySQL) {
			e.Command = normalizeSQL(e.Command)
		}
		// Approval ids link to approvals and their approvers.
		if e.Decision.ApprovalID != "" {
			e.Decision.ApprovalID = a.pseudonym("approval", e.Decision.ApprovalID)
		}
	}
}

// normalizeSQL replaces literals with $n placeholders. Text the parser
// rejects cannot be normalised and is replaced entirely by text that stays
// unparseable (so it is still denied on replay), and no literal of it is
// exported.
func normalizeSQL(sql string) string {
	// Recordings hold denied texts too, some built to exhaust the C
	// parser's stack: bound them first, as the gateway does.
	if err := sqlclass.CheckNesting(sql, 0); err != nil {
		return "unparseable statement removed by anonymization"
	}
	n, err := pg_query.Normalize(sql)
	if err != nil {
		return "unparseable statement removed by anonymization"
	}
	return n
}
