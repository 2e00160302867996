package conformance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// Format is the format identifier of the first line of a sessions file.
const Format = "gatehouse.sessions/v1"

// formatPrefix is what every version of the format identifier starts with.
const formatPrefix = "gatehouse.sessions/"

// MaxLineBytes bounds one line of a sessions file (the longest SQL text the
// classifier accepts is 1 MiB; JSON escaping can grow it).
const MaxLineBytes = 4 << 20

// MaxFileBytes bounds one sessions file.
const MaxFileBytes = 2 << 30

// Errors of ReadSessions. Every error for bad input is a *FormatError
// wrapping one of them.
var (
	// ErrFormatVersion: the header names another format or version.
	ErrFormatVersion = errors.New("unsupported sessions format")
	// ErrMalformed: a line is not a valid header, session or event.
	ErrMalformed = errors.New("malformed sessions line")
	// ErrUnknownField: a line has a field this version does not define.
	ErrUnknownField = errors.New("unknown field")
	// ErrLineTooLong: a line exceeds MaxLineBytes.
	ErrLineTooLong = errors.New("line too long")
	// ErrNoSessions: a path names no sessions file.
	ErrNoSessions = errors.New("no sessions files")
)

// FormatError is bad input in a sessions file, with its position.
type FormatError struct {
	File string
	Line int
	Err  error
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }

// Header is the first line of a sessions file.
type Header struct {
	Format string `json:"format"`
	// ExportedAt is when the file was written (informational).
	ExportedAt time.Time `json:"exported_at,omitzero"`
	// Source describes where the sessions came from ("sqlite:...", a
	// program name); never a credential.
	Source string `json:"source,omitempty"`
	// Anonymized is true when identities, client addresses, claims and SQL
	// literals were replaced (see ExportOptions.Anonymize).
	Anonymized bool `json:"anonymized,omitempty"`
	Sessions   int  `json:"sessions"`
	Events     int  `json:"events"`
}

// Session is one recorded connection and its command events.
type Session struct {
	ID           string   `json:"id"`
	Identity     string   `json:"identity"`
	IdentityKind string   `json:"identity_kind,omitempty"`
	Groups       []string `json:"groups,omitempty"`
	// Claims is the allow-listed subset of token claims the recorder kept.
	Claims         map[string]any `json:"claims,omitempty"`
	Resource       string         `json:"resource"`
	ResourceType   string         `json:"resource_type"`
	ClientAddr     string         `json:"client_addr,omitempty"`
	StartedAt      time.Time      `json:"started_at"`
	BundleRevision string         `json:"bundle_revision,omitempty"`
	// Events are the session's command events in Seq order.
	Events []Event `json:"-"`
	// Pos is "file:line" of the session line (set by ReadSessions).
	Pos string `json:"-"`
	// anonymized: the file's header says identities are pseudonyms.
	anonymized bool
}

// Event is one recorded command and the decision the gateway gave it.
type Event struct {
	Seq      int64     `json:"seq"`
	Time     time.Time `json:"time"`
	Protocol string    `json:"protocol"`
	// Command is the command text: one SQL statement, an SSH command line,
	// "GET /path".
	Command string `json:"command"`
	// Facts are the facts the gateway recorded (for SQL: kind, tables,
	// columns, functions, has_where), as compact JSON.
	Facts    json.RawMessage `json:"facts,omitempty"`
	Decision Recorded        `json:"decision"`
	// Collateral is true when the recorded effect is not the statement's own
	// decision: it was refused because another statement of the same
	// message was denied, or its decision was not retained. Replay does
	// not compare such events with the recording.
	Collateral bool `json:"collateral,omitempty"`
	// Line is the event's line number in its file (set by ReadSessions).
	Line int `json:"-"`
}

// Recorded is the decision the gateway recorded for an event.
type Recorded struct {
	Effect     bundle.Effect `json:"effect"`
	RuleIDs    []string      `json:"rule_ids,omitempty"`
	Masked     bool          `json:"masked,omitempty"`
	ApprovalID string        `json:"approval_id,omitempty"`
}

// Corpus is a set of recorded sessions, in file order.
type Corpus struct {
	Header   Header
	Sessions []Session
	// Files are the files the corpus was read from.
	Files []string
}

// Statements returns the number of events of all sessions.
func (c *Corpus) Statements() int {
	n := 0
	for i := range c.Sessions {
		n += len(c.Sessions[i].Events)
	}
	return n
}

// line is one line of a sessions file: exactly one field is set.
type line struct {
	Session *Session `json:"session,omitempty"`
	Event   *Event   `json:"event,omitempty"`
}

// WriteSessions writes c in the sessions format: the header (with counts
// filled in), then each session line followed by its events.
func WriteSessions(w io.Writer, c *Corpus) error {
	bw := bufio.NewWriter(w)
	h := c.Header
	h.Format = Format
	h.Sessions = len(c.Sessions)
	h.Events = c.Statements()
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		return fmt.Errorf("write sessions header: %w", err)
	}
	for i := range c.Sessions {
		s := &c.Sessions[i]
		if err := enc.Encode(line{Session: s}); err != nil {
			return fmt.Errorf("write session %s: %w", s.ID, err)
		}
		for j := range s.Events {
			if err := enc.Encode(line{Event: &s.Events[j]}); err != nil {
				return fmt.Errorf("write session %s event %d: %w", s.ID, s.Events[j].Seq, err)
			}
		}
	}
	return bw.Flush()
}

// ReadSessions reads one sessions file strictly: the first line must be a
// header naming Format; every other line is a session or an event of the
// session before it; unknown fields, malformed lines, events out of order,
// lines longer than MaxLineBytes and counts that disagree with the header
// are errors (a *FormatError with the line number). Nothing is returned
// unless the whole file is valid.
func ReadSessions(r io.Reader, name string) (*Corpus, error) {
	br := bufio.NewReaderSize(io.LimitReader(r, MaxFileBytes+1), 64<<10)
	c := &Corpus{Files: []string{name}}
	fail := func(n int, err error) error { return &FormatError{File: name, Line: n, Err: err} }
	cur := -1 // index of the current session
	var read int64
	n := 0
	for {
		raw, err := readLine(br)
		if err == io.EOF {
			break
		}
		n++
		if err != nil {
			return nil, fail(n, err)
		}
		read += int64(len(raw)) + 1
		if read > MaxFileBytes {
			return nil, fail(n, fmt.Errorf("file exceeds %d bytes", int64(MaxFileBytes)))
		}
		if n == 1 {
			if err := decodeHeader(raw, &c.Header); err != nil {
				return nil, fail(n, err)
			}
			continue
		}
		if len(bytes.TrimSpace(raw)) == 0 {
			return nil, fail(n, fmt.Errorf("%w: empty line", ErrMalformed))
		}
		var l line
		if err := decodeStrict(raw, &l); err != nil {
			return nil, fail(n, err)
		}
		switch {
		case l.Session != nil && l.Event != nil, l.Session == nil && l.Event == nil:
			return nil, fail(n, fmt.Errorf("%w: want exactly one of \"session\" and \"event\"", ErrMalformed))
		case l.Session != nil:
			if err := checkSession(l.Session); err != nil {
				return nil, fail(n, err)
			}
			l.Session.Pos = fmt.Sprintf("%s:%d", name, n)
			l.Session.anonymized = c.Header.Anonymized
			c.Sessions = append(c.Sessions, *l.Session)
			cur = len(c.Sessions) - 1
		default:
			if cur < 0 {
				return nil, fail(n, fmt.Errorf("%w: event before the first session", ErrMalformed))
			}
			s := &c.Sessions[cur]
			if err := checkEvent(l.Event); err != nil {
				return nil, fail(n, err)
			}
			if k := len(s.Events); k > 0 && l.Event.Seq <= s.Events[k-1].Seq {
				return nil, fail(n, fmt.Errorf("%w: event seq %d does not follow %d", ErrMalformed, l.Event.Seq, s.Events[k-1].Seq))
			}
			l.Event.Line = n
			s.Events = append(s.Events, *l.Event)
		}
	}
	if n == 0 {
		return nil, fail(1, fmt.Errorf("%w: empty file, want a header line", ErrMalformed))
	}
	if c.Header.Sessions != len(c.Sessions) || c.Header.Events != c.Statements() {
		return nil, fail(n, fmt.Errorf("%w: header announces %d sessions and %d events, file has %d and %d (truncated?)",
			ErrMalformed, c.Header.Sessions, c.Header.Events, len(c.Sessions), c.Statements()))
	}
	return c, nil
}

// readLine returns the next line without its newline, at most MaxLineBytes.
func readLine(br *bufio.Reader) ([]byte, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(buf)+len(frag) > MaxLineBytes+1 {
			return nil, fmt.Errorf("%w: more than %d bytes", ErrLineTooLong, MaxLineBytes)
		}
		switch err {
		case nil:
			buf = append(buf, frag...)
			return bytes.TrimSuffix(bytes.TrimSuffix(buf, []byte("\n")), []byte("\r")), nil
		case bufio.ErrBufferFull:
			buf = append(buf, frag...)
		case io.EOF:
			if len(buf)+len(frag) == 0 {
				return nil, io.EOF
			}
			return append(buf, frag...), nil
		default:
			return nil, err
		}
	}
}

func decodeHeader(raw []byte, h *Header) error {
	var probe struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return fmt.Errorf("%w: header: %v", ErrMalformed, err)
	}
	if probe.Format != Format {
		if strings.HasPrefix(probe.Format, formatPrefix) {
			return fmt.Errorf("%w: %q (this gatehouse reads %q)", ErrFormatVersion, probe.Format, Format)
		}
		return fmt.Errorf("%w: first line must be a header {\"format\":%q,...}, got format %q", ErrFormatVersion, Format, probe.Format)
	}
	if err := decodeStrict(raw, h); err != nil {
		return fmt.Errorf("header: %w", err)
	}
	if h.Sessions < 0 || h.Events < 0 {
		return fmt.Errorf("%w: negative counts in header", ErrMalformed)
	}
	return nil
}

// decodeStrict decodes exactly one JSON object with no unknown fields.
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			return fmt.Errorf("%w: %s", ErrUnknownField, strings.TrimPrefix(err.Error(), "json: unknown field "))
		}
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: more than one JSON value on the line", ErrMalformed)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data after the JSON object", ErrMalformed)
	}
	return nil
}

func checkSession(s *Session) error {
	switch {
	case s.ID == "":
		return fmt.Errorf("%w: session without id", ErrMalformed)
	case s.Identity == "":
		return fmt.Errorf("%w: session %s without identity", ErrMalformed, s.ID)
	case s.Resource == "":
		return fmt.Errorf("%w: session %s without resource", ErrMalformed, s.ID)
	case s.ResourceType == "":
		return fmt.Errorf("%w: session %s without resource_type", ErrMalformed, s.ID)
	}
	return nil
}

func checkEvent(e *Event) error {
	switch e.Decision.Effect {
	case bundle.EffectAllow, bundle.EffectDeny, bundle.EffectApprove:
	default:
		return fmt.Errorf("%w: event %d: decision effect %q, want allow, deny or approve", ErrMalformed, e.Seq, e.Decision.Effect)
	}
	if e.Seq <= 0 {
		return fmt.Errorf("%w: event seq %d must be positive", ErrMalformed, e.Seq)
	}
	if e.Protocol == "" {
		return fmt.Errorf("%w: event %d without protocol", ErrMalformed, e.Seq)
	}
	if len(e.Facts) > 0 && !json.Valid(e.Facts) {
		return fmt.Errorf("%w: event %d: facts are not JSON", ErrMalformed, e.Seq)
	}
	return nil
}

// LoadSessions reads sessions files and directories (every *.jsonl file in
// them, by name) into one corpus, in the order given. Any invalid file
// fails the whole load.
func LoadSessions(paths ...string) (*Corpus, error) {
	var files []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("sessions %s: %w", p, err)
		}
		if !st.IsDir() {
			files = append(files, p)
			continue
		}
		m, err := filepath.Glob(filepath.Join(p, "*.jsonl"))
		if err != nil {
			return nil, err
		}
		sort.Strings(m)
		files = append(files, m...)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w in %s", ErrNoSessions, strings.Join(paths, ", "))
	}
	all := &Corpus{Header: Header{Format: Format}}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, fmt.Errorf("sessions: %w", err)
		}
		c, err := ReadSessions(fh, f)
		fh.Close()
		if err != nil {
			return nil, err
		}
		all.Sessions = append(all.Sessions, c.Sessions...)
		all.Files = append(all.Files, f)
		all.Header.Anonymized = all.Header.Anonymized || c.Header.Anonymized
	}
	all.Header.Sessions = len(all.Sessions)
	all.Header.Events = all.Statements()
	return all, nil
}
