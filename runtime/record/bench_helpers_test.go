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
