package compiler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// EncodeBundle returns the canonical JSON encoding of b: encoding/json of
// the bundle structs, whose field order is fixed and whose map keys are
// sorted, and whose slices the compiler has put in their defined order. The
// same bundle always encodes to the same bytes.
func EncodeBundle(b *bundle.Bundle) ([]byte, error) {
	data, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	return data, nil
}

// PolicyDigest returns "sha256:HEX" over the canonical encoding of p.
func PolicyDigest(p *bundle.Policy) (string, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("encode policy: %w", err)
	}
	sum := sha256.Sum256(data)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}
