package record

import (
	"context"
	"time"
)

// nopStore accepts everything; it isolates the recorder's own cost in
// benchmarks and configuration tests (store behaviour is covered by the
// compliance suite against real databases).
type nopStore struct{}

func (nopStore) CreateSession(context.Context, *Session) error               { return nil }
func (nopStore) EndSession(context.Context, string, time.Time, string) error { return nil }
func (nopStore) AppendEvents(context.Context, []Event) error                 { return nil }
func (nopStore) Close() error                                                { return nil }

// nopEvidenceStore also accepts seals and checkpoints, for the signing
// recorder.
type nopEvidenceStore struct{ nopStore }

func (nopEvidenceStore) PutSeal(context.Context, *Seal) error             { return nil }
func (nopEvidenceStore) PutCheckpoint(context.Context, *Checkpoint) error { return nil }
func (nopEvidenceStore) LastCheckpoint(context.Context, string) (Checkpoint, error) {
	return Checkpoint{}, ErrNotFound
}
