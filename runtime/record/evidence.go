package record

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/gatehouse/gatehouse/runtime/bundle"
)

// Signed evidence. The hash chain shows edits to a session only to someone
// who trusts the store's copy of its hashes; a writer of the store can
// rewrite a session and recompute them, or delete it whole. The gateway
// therefore signs, with its own key:
//
//   - a Seal at each session's end: the head of its chain (header hash,
//     last seq and hash) and the end;
//   - Checkpoints: periodically, the heads of every session written since
//     the previous checkpoint, each checkpoint chained to the one before.
//
// Both are signed over their canonical encoding (EncodeSeal,
// EncodeCheckpoint), built with the primitives of the event encoding.
const (
	sealTag       = "gatehouse.seal.v1"
	checkpointTag = "gatehouse.checkpoint.v1"
)

// Errors of evidence verification. A problem found by AuditSession or
// AuditAll wraps one of them (or ErrChainBroken).
var (
	// ErrUntrustedKey: a seal or checkpoint is signed by a key that is not
	// in the trusted key ring.
	ErrUntrustedKey = errors.New("record: signed by a key that is not trusted")
	// ErrBadSignature: a signature does not verify with the key it names.
	ErrBadSignature = errors.New("record: signature does not verify")
	// ErrSealInvalid: a session's seal does not match the stored session or
	// is not validly signed.
	ErrSealInvalid = errors.New("record: session seal does not verify")
	// ErrUnsigned: an ended session has no seal, and one was required
	// (AuditOptions.RequireSignatures, or a checkpoint records its end).
	ErrUnsigned = errors.New("record: ended session is not signed")
	// ErrCheckpointBroken: a checkpoint was edited, is not validly signed,
	// or the chain of checkpoints has a gap.
	ErrCheckpointBroken = errors.New("record: checkpoint chain broken")
	// ErrNotCovered: a session named by a checkpoint is missing, shorter
	// than the checkpoint recorded, or differs from it.
	ErrNotCovered = errors.New("record: session differs from its checkpoint")
)

// Signer signs evidence. *bundle.PrivateKey implements it.
type Signer interface {
	// KeyID is the id of the public key (bundle.KeyID).
	KeyID() string
	// SignMessage signs msg.
	SignMessage(msg []byte) ([]byte, error)
}

var _ Signer = (*bundle.PrivateKey)(nil)

// Seal is the gateway's signature over the head of an ended session's
// chain. It is written with the session's end.
type Seal struct {
	SessionID string `json:"session_id"`
	// HeaderHash is HeaderHash of the session.
	HeaderHash string `json:"header_hash"`
	// LastSeq and LastHash are those of the session's last event, its
	// "end" event.
	LastSeq  int64     `json:"last_seq"`
	LastHash string    `json:"last_hash"`
	EndedAt  time.Time `json:"ended_at"`
	// EndReason is the end event's reason.
	EndReason string `json:"end_reason,omitempty"`
	// KeyID names the signing key (bundle.KeyID of its public key).
	KeyID     string `json:"key_id"`
	Signature []byte `json:"signature"`
}

// EncodeSeal appends the signed encoding of s (every field but KeyID and
// Signature) to dst.
func EncodeSeal(dst []byte, s *Seal) []byte {
	dst = appendString(dst, sealTag)
	dst = appendString(dst, s.SessionID)
	dst = appendString(dst, s.HeaderHash)
	dst = binary.BigEndian.AppendUint64(dst, uint64(s.LastSeq))
	dst = appendString(dst, s.LastHash)
	dst = appendTime(dst, s.EndedAt)
	dst = appendString(dst, s.EndReason)
	return dst
}

// SignSeal signs s with signer, setting KeyID and Signature.
func SignSeal(s *Seal, signer Signer) error {
	sig, err := signer.SignMessage(EncodeSeal(nil, s))
	if err != nil {
		return fmt.Errorf("sign seal of session %s: %w", s.SessionID, err)
	}
	s.KeyID, s.Signature = signer.KeyID(), sig
	return nil
}

// CheckpointEntry is the head of one session's chain as written to the
// store when the checkpoint was taken.
type CheckpointEntry struct {
	SessionID string `json:"session_id"`
	// LastSeq is the seq of the session's last written event, 0 for a
	// session without events; LastHash is that event's hash, or the
	// session's HeaderHash for 0.
	LastSeq  int64  `json:"last_seq"`
	LastHash string `json:"last_hash"`
	// EndedAt is set when that last event is the session's end event.
	EndedAt time.Time `json:"ended_at,omitzero"`
}

// Checkpoint is a signed statement by one gateway of the heads of every
// session it had written since its previous checkpoint. A gateway's
// checkpoints form a chain: Seq counts from 1 without gaps and PrevHash is
// the previous checkpoint's Hash ("" for the first).
type Checkpoint struct {
	GatewayID string    `json:"gateway_id"`
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	PrevHash  string    `json:"prev_hash"`
	// RetentionBefore is the latest retention cut-off the gateway has
	// applied: it may have deleted sessions that ended before it. Zero
	// when it never deleted any.
	RetentionBefore time.Time `json:"retention_before,omitzero"`
	// Entries, one per session, sorted by SessionID.
	Entries []CheckpointEntry `json:"entries,omitempty"`
	// Hash is hex(sha256(EncodeCheckpoint(c))).
	Hash      string `json:"hash"`
	KeyID     string `json:"key_id"`
	Signature []byte `json:"signature"`
}

// CheckpointRef names one checkpoint.
type CheckpointRef struct {
	GatewayID string `json:"gateway_id"`
	Seq       int64  `json:"seq"`
	Hash      string `json:"hash,omitempty"`
}

// Ref returns the checkpoint's reference.
func (c *Checkpoint) Ref() CheckpointRef {
	return CheckpointRef{GatewayID: c.GatewayID, Seq: c.Seq, Hash: c.Hash}
}

// String formats the reference as GATEWAY:SEQ:HASH (ParseCheckpointRef).
func (r CheckpointRef) String() string {
	return fmt.Sprintf("%s:%d:%s", r.GatewayID, r.Seq, r.Hash)
}

// ParseCheckpointRef parses GATEWAY:SEQ:HASH; the gateway id may itself
// contain colons.
func ParseCheckpointRef(s string) (CheckpointRef, error) {
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return CheckpointRef{}, fmt.Errorf("%w: checkpoint %q: want GATEWAY:SEQ:HASH", ErrInvalid, s)
	}
	rest, hash := s[:i], s[i+1:]
	j := strings.LastIndexByte(rest, ':')
	if j <= 0 {
		return CheckpointRef{}, fmt.Errorf("%w: checkpoint %q: want GATEWAY:SEQ:HASH", ErrInvalid, s)
	}
	var seq int64
	if _, err := fmt.Sscan(rest[j+1:], &seq); err != nil || seq < 1 {
		return CheckpointRef{}, fmt.Errorf("%w: checkpoint %q: bad seq", ErrInvalid, s)
	}
	if len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
		return CheckpointRef{}, fmt.Errorf("%w: checkpoint %q: hash must be 64 lower-case hex digits", ErrInvalid, s)
	}
	return CheckpointRef{GatewayID: rest[:j], Seq: seq, Hash: hash}, nil
}

// EncodeCheckpoint appends the signed encoding of c (every field but Hash,
// KeyID and Signature) to dst. Entries are encoded in SessionID order
// whatever their order in c.
func EncodeCheckpoint(dst []byte, c *Checkpoint) []byte {
	entries := c.Entries
	if !slices.IsSortedFunc(entries, compareEntries) {
		entries = slices.SortedFunc(slices.Values(entries), compareEntries)
	}
	dst = appendString(dst, checkpointTag)
	dst = appendString(dst, c.GatewayID)
	dst = binary.BigEndian.AppendUint64(dst, uint64(c.Seq))
	dst = appendString(dst, c.PrevHash)
	dst = appendTime(dst, c.Time)
	dst = appendTime(dst, c.RetentionBefore)
	dst = binary.AppendUvarint(dst, uint64(len(entries)))
	for i := range entries {
		e := &entries[i]
		dst = appendString(dst, e.SessionID)
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.LastSeq))
		dst = appendString(dst, e.LastHash)
		dst = appendTime(dst, e.EndedAt)
	}
	return dst
}

func compareEntries(a, b CheckpointEntry) int { return strings.Compare(a.SessionID, b.SessionID) }

// SignCheckpoint sorts c's entries, sets its Hash and signs it with
// signer, setting KeyID and Signature.
func SignCheckpoint(c *Checkpoint, signer Signer) error {
	slices.SortFunc(c.Entries, compareEntries)
	msg := EncodeCheckpoint(nil, c)
	sum := sha256.Sum256(msg)
	sig, err := signer.SignMessage(msg)
	if err != nil {
		return fmt.Errorf("sign checkpoint %s/%d: %w", c.GatewayID, c.Seq, err)
	}
	c.Hash, c.KeyID, c.Signature = hex.EncodeToString(sum[:]), signer.KeyID(), sig
	return nil
}

// KeyRing holds the public keys trusted to sign evidence: every key the
// gateways have used, the current and the rotated ones. Safe for
// concurrent use.
type KeyRing struct {
	ids  []string
	keys map[string]signature.Verifier
}

// NewKeyRing returns a ring of the given keys (ECDSA P-256 or Ed25519);
// a key given twice counts once.
func NewKeyRing(keys ...crypto.PublicKey) (*KeyRing, error) {
	k := &KeyRing{keys: make(map[string]signature.Verifier, len(keys))}
	for _, pub := range keys {
		id, err := bundle.KeyID(pub)
		if err != nil {
			return nil, err
		}
		if _, dup := k.keys[id]; dup {
			continue
		}
		v, err := signature.LoadVerifier(pub, crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", id, err)
		}
		k.keys[id] = v
		k.ids = append(k.ids, id)
	}
	slices.Sort(k.ids)
	return k, nil
}

// ParsePublicKeys reads every PEM "PUBLIC KEY" block of data (a file
// holding one key, or the concatenation of several).
func ParsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var out []crypto.PublicKey
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		pub, err := bundle.LoadPublicKey(pem.EncodeToMemory(block))
		if err != nil {
			return nil, err
		}
		out = append(out, pub)
	}
	if len(out) == 0 {
		return nil, errors.New("public keys: no PEM block")
	}
	return out, nil
}

// KeyIDs returns the ids of the trusted keys, sorted.
func (k *KeyRing) KeyIDs() []string {
	if k == nil {
		return nil
	}
	return slices.Clone(k.ids)
}

// Len returns the number of trusted keys (0 for a nil ring).
func (k *KeyRing) Len() int {
	if k == nil {
		return 0
	}
	return len(k.ids)
}

// Verify checks sig over msg with the trusted key keyID. It fails with
// ErrUntrustedKey or ErrBadSignature.
func (k *KeyRing) Verify(keyID string, msg, sig []byte) error {
	var v signature.Verifier
	if k != nil {
		v = k.keys[keyID]
	}
	if v == nil {
		return fmt.Errorf("%w: %s", ErrUntrustedKey, shortID(keyID))
	}
	if err := v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)); err != nil {
		return fmt.Errorf("%w (key %s)", ErrBadSignature, shortID(keyID))
	}
	return nil
}

func shortID(id string) string {
	if id == "" {
		return "(none)"
	}
	if len(id) > 16 {
		return id[:16]
	}
	return id
}
