package server

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
)

// loadOrCreateKey returns the 32-byte key stored at path, creating it (mode
// 0600) on first use. Gateways that must agree share the file: the masking
// key so they hash masked values identically, the dashboard's key so a
// form rendered by one is accepted by another.
func loadOrCreateKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		if len(key) < 16 {
			return nil, fmt.Errorf("key file %s: shorter than 16 bytes", path)
		}
		return key, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("key file: %w", err)
	}
	key = make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(path, key); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	return key, nil
}
