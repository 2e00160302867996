package record

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ValidateSession checks a session header before it is stored.
func ValidateSession(s *Session) error {
	if s == nil {
		return fmt.Errorf("%w: nil session", ErrInvalid)
	}
	if !ValidID(s.ID) {
		return fmt.Errorf("%w: session id %q", ErrInvalid, s.ID)
	}
	if s.StartedAt.IsZero() {
		return fmt.Errorf("%w: session %s: started_at is required", ErrInvalid, s.ID)
	}
	if _, err := ClaimsJSON(s.Claims); err != nil {
		return fmt.Errorf("session %s: %w", s.ID, err)
	}
	return nil
}

// ValidateEvent checks an event before it is stored: it must belong to a
// valid session, have a positive Seq and a Hash, and carry valid JSON in
// Facts and Results.
func ValidateEvent(ev *Event) error {
	if !ValidID(ev.SessionID) {
		return fmt.Errorf("%w: event session id %q", ErrInvalid, ev.SessionID)
	}
	if ev.Seq < 1 {
		return fmt.Errorf("%w: session %s: seq %d", ErrInvalid, ev.SessionID, ev.Seq)
	}
	if ev.Hash == "" {
		return fmt.Errorf("%w: session %s seq %d: missing hash", ErrInvalid, ev.SessionID, ev.Seq)
	}
	if len(ev.Facts) > 0 && !json.Valid(ev.Facts) {
		return fmt.Errorf("%w: session %s seq %d: facts are not JSON", ErrInvalid, ev.SessionID, ev.Seq)
	}
	if len(ev.Results) > 0 && !json.Valid(ev.Results) {
		return fmt.Errorf("%w: session %s seq %d: results are not JSON", ErrInvalid, ev.SessionID, ev.Seq)
	}
	return nil
}

// DecodeClaims is the inverse of ClaimsJSON; numbers decode as
// json.Number so that the claims encode back to the same bytes.
func DecodeClaims(b []byte) (map[string]any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("decode claims: %w", err)
	}
	return m, nil
}

// ValidateSeal checks a seal before it is stored.
func ValidateSeal(s *Seal) error {
	if s == nil {
		return fmt.Errorf("%w: nil seal", ErrInvalid)
	}
	if !ValidID(s.SessionID) {
		return fmt.Errorf("%w: seal session id %q", ErrInvalid, s.SessionID)
	}
	if s.LastSeq < 1 || s.LastHash == "" || s.HeaderHash == "" || s.EndedAt.IsZero() {
		return fmt.Errorf("%w: seal of session %s: incomplete head", ErrInvalid, s.SessionID)
	}
	if s.KeyID == "" || len(s.Signature) == 0 {
		return fmt.Errorf("%w: seal of session %s: not signed", ErrInvalid, s.SessionID)
	}
	return nil
}

// ValidateCheckpoint checks a checkpoint before it is stored.
func ValidateCheckpoint(c *Checkpoint) error {
	if c == nil {
		return fmt.Errorf("%w: nil checkpoint", ErrInvalid)
	}
	if c.GatewayID == "" || c.Seq < 1 || c.Time.IsZero() || c.Hash == "" {
		return fmt.Errorf("%w: checkpoint %s/%d: incomplete", ErrInvalid, c.GatewayID, c.Seq)
	}
	if c.KeyID == "" || len(c.Signature) == 0 {
		return fmt.Errorf("%w: checkpoint %s/%d: not signed", ErrInvalid, c.GatewayID, c.Seq)
	}
	seen := make(map[string]bool, len(c.Entries))
	for _, e := range c.Entries {
		if !ValidID(e.SessionID) || e.LastSeq < 0 || e.LastHash == "" || seen[e.SessionID] {
			return fmt.Errorf("%w: checkpoint %s/%d: bad or duplicate entry for session %q", ErrInvalid, c.GatewayID, c.Seq, e.SessionID)
		}
		seen[e.SessionID] = true
	}
	return nil
}
