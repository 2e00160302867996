package rowcodec

import (
	"encoding/json"
	"fmt"
)

// Strings encodes a string list as a JSON array ("" for an empty list).
func Strings(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	b, _ := json.Marshal(ss) // a []string always marshals
	return string(b)
}

// ParseStrings decodes Strings; "" is nil.
func ParseStrings(s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	var out []string
	if err := json.Unmarshal([]byte(s), &out); err != nil {
		return nil, fmt.Errorf("decode string list: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// RawJSON returns stored JSON text as a RawMessage ("" is nil).
func RawJSON(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}
