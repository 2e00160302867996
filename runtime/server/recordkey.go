package server

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/cryptoutils"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/record"
)

// RecordingKeyPasswordEnv names the environment variable holding the
// password of the gateway's recording key. Without it the key is written
// unencrypted (mode 0600, like the state directory's other keys).
const RecordingKeyPasswordEnv = "GATEHOUSE_RECORDING_KEY_PASSWORD"

// Files in the state directory.
const (
	recordingKeyFile        = "recording.key"
	recordingKeysPublished  = "recording-keys.pem"
	recordingCheckpointFile = "recording-checkpoint.json"
)

// SigningConfig configures how the gateway signs its recordings (seals of
// ended sessions and checkpoints; see runtime/record).
type SigningConfig struct {
	// Key is the gateway's private key (PEM, Ed25519 or ECDSA P-256);
	// default STATE_DIR/recording.key. A missing file is created with a
	// new Ed25519 key. Rotate by pointing Key at a new file.
	Key string `mapstructure:"key"`
	// PublicKeys are PEM files of the gateway's earlier keys, published
	// with the current one so that what they signed still verifies.
	PublicKeys []string `mapstructure:"public_keys"`
	// CheckpointInterval: how often a signed checkpoint covers the sessions
	// written since the previous one (default 1m).
	CheckpointInterval time.Duration `mapstructure:"checkpoint_interval"`
	// CheckpointEvents: a checkpoint is also taken after this many events
	// (default 10000).
	CheckpointEvents int `mapstructure:"checkpoint_events"`
}

// recordingKeys is the gateway's signing key and the public keys it
// publishes: in STATE_DIR/recording-keys.pem and GET
// /api/v1/recording/keys.
type recordingKeys struct {
	signer *bundle.PrivateKey
	// pems are the published public keys, the current one first.
	pems [][]byte
	ids  []string
	// headPath keeps the last checkpoint stored, so that a restart notices
	// checkpoints deleted from the store (record.Config.CheckpointResume).
	headPath string
	log      *slog.Logger
}

// openRecordingKeys loads (creating on first start) the recording key,
// and writes the published public keys.
func openRecordingKeys(cfg Config, logger *slog.Logger) (*recordingKeys, error) {
	path := cfg.Recording.Signing.Key
	if path == "" {
		path = filepath.Join(cfg.StateDir, recordingKeyFile)
	}
	password := []byte(os.Getenv(RecordingKeyPasswordEnv))
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if data, err = newRecordingKey(path, password); err != nil {
			return nil, fmt.Errorf("recording.signing.key: %w", err)
		}
		logger.Info("Created the gateway's recording signing key.", "path", path)
	} else if err != nil {
		return nil, fmt.Errorf("recording.signing.key: %w", err)
	}
	key, err := bundle.LoadPrivateKey(data, password)
	if err != nil {
		return nil, fmt.Errorf("recording.signing.key: %s: %w", path, err)
	}
	k := &recordingKeys{signer: key, headPath: filepath.Join(cfg.StateDir, recordingCheckpointFile),
		log: logger.With("component", "record.sign")}
	if err := k.add(key.Public()); err != nil {
		return nil, err
	}
	for _, p := range cfg.Recording.Signing.PublicKeys {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("recording.signing.public_keys: %w", err)
		}
		pubs, err := record.ParsePublicKeys(data)
		if err != nil {
			return nil, fmt.Errorf("recording.signing.public_keys: %s: %w", p, err)
		}
		for _, pub := range pubs {
			if err := k.add(pub); err != nil {
				return nil, fmt.Errorf("recording.signing.public_keys: %s: %w", p, err)
			}
		}
	}
	pubPath := strings.TrimSuffix(path, ".key") + ".pub"
	if err := writeFileAtomic(pubPath, k.pems[0]); err != nil {
		return nil, fmt.Errorf("recording.signing.key: public key: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(cfg.StateDir, recordingKeysPublished), bytes.Join(k.pems, nil)); err != nil {
		return nil, fmt.Errorf("publish recording keys: %w", err)
	}
	return k, nil
}

// newRecordingKey writes a new Ed25519 key to path (mode 0600), encrypted
// when a password is set, and returns the PEM.
func newRecordingKey(path string, password []byte) ([]byte, error) {
	var data []byte
	if len(password) > 0 {
		priv, _, err := bundle.GenerateKey(bundle.KeyTypeEd25519, password)
		if err != nil {
			return nil, err
		}
		data = priv
	} else {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(priv)
		if err != nil {
			return nil, err
		}
		data = pem.EncodeToMemory(&pem.Block{Type: string(cryptoutils.PrivateKeyPEMType), Bytes: der})
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return data, f.Close()
}

func (k *recordingKeys) add(pub crypto.PublicKey) error {
	id, err := bundle.KeyID(pub)
	if err != nil {
		return err
	}
	for _, have := range k.ids {
		if have == id {
			return nil
		}
	}
	p, err := cryptoutils.MarshalPublicKeyToPEM(pub)
	if err != nil {
		return err
	}
	k.ids, k.pems = append(k.ids, id), append(k.pems, p)
	return nil
}

// configure makes the recorder sign with the key.
func (k *recordingKeys) configure(rc *record.Config, cfg Config) {
	rc.Signer = k.signer
	rc.GatewayID = cfg.GatewayID
	rc.CheckpointInterval = cfg.Recording.Signing.CheckpointInterval
	rc.CheckpointEvents = cfg.Recording.Signing.CheckpointEvents
	rc.CheckpointResume = k.resume(cfg.GatewayID)
	rc.OnCheckpoint = k.remember
}

type checkpointHead struct {
	GatewayID string `json:"gateway_id"`
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash"`
}

// resume reads the last checkpoint this gateway stored.
func (k *recordingKeys) resume(gatewayID string) record.CheckpointRef {
	data, err := os.ReadFile(k.headPath)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			k.log.Warn("Cannot read the last checkpoint head.", "error", err)
		}
		return record.CheckpointRef{}
	}
	var h checkpointHead
	if err := json.Unmarshal(data, &h); err != nil || h.GatewayID != gatewayID {
		// Another gateway id (renamed gateway): its chain is another one.
		return record.CheckpointRef{}
	}
	return record.CheckpointRef{GatewayID: h.GatewayID, Seq: h.Seq, Hash: h.Hash}
}

// remember keeps the head of the checkpoint chain in the state directory.
func (k *recordingKeys) remember(c *record.Checkpoint) {
	data, _ := json.Marshal(checkpointHead{GatewayID: c.GatewayID, Seq: c.Seq, Hash: c.Hash})
	if err := writeFileAtomic(k.headPath, data); err != nil {
		k.log.Warn("Cannot keep the checkpoint head.", "error", err)
	}
}

// RecordingKey is one published public key.
type RecordingKey struct {
	KeyID   string `json:"key_id"`
	PEM     string `json:"pem"`
	Current bool   `json:"current"`
}

// RecordingKeys is the body of GET /api/v1/recording/keys.
type RecordingKeys struct {
	GatewayID string         `json:"gateway_id"`
	Keys      []RecordingKey `json:"keys"`
	// LastCheckpoint is the last checkpoint this gateway stored: noted
	// outside the store, it anchors later audits (sessions verify
	// --checkpoint GATEWAY:SEQ:HASH).
	LastCheckpoint *record.CheckpointRef `json:"last_checkpoint,omitempty"`
}

func (s *Server) apiRecordingKeys(w http.ResponseWriter, _ *http.Request) {
	body := RecordingKeys{GatewayID: s.cfg.GatewayID}
	for i, id := range s.recordingKeys.ids {
		body.Keys = append(body.Keys, RecordingKey{KeyID: id, PEM: string(s.recordingKeys.pems[i]), Current: i == 0})
	}
	if last := s.recorder.LastCheckpoint(); last.Seq > 0 {
		body.LastCheckpoint = &last
	}
	writeJSON(w, http.StatusOK, body)
}

// deleteRecordingsBefore applies retention: first a signed checkpoint
// records the cut-off, so that audits accept the deleted sessions as
// retained, then the sessions are deleted.
func (s *Server) deleteRecordingsBefore(ctx context.Context, before time.Time) (int64, error) {
	// The signed cut-off has the stores' precision: delete by the same.
	before = record.Timestamp(before)
	if err := s.recorder.Retain(ctx, before); err != nil {
		return 0, fmt.Errorf("record the retention cut-off: %w", err)
	}
	return s.store.DeleteBefore(ctx, before)
}
