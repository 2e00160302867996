package pg_test

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/gatehouse/gatehouse/runtime/proxy/pg"
	"github.com/gatehouse/gatehouse/runtime/proxy/pg/pgtest"
)

// fuzzSeed builds a valid session: startup, password, then msgs.
func fuzzSeed(msgs ...pgproto3.FrontendMessage) []byte {
	b, _ := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersionNumber,
		Parameters: map[string]string{"user": "agent", "database": "db"}}).Encode(nil)
	b, _ = (&pgproto3.PasswordMessage{Password: testToken}).Encode(b)
	for _, m := range msgs {
		b, _ = m.Encode(b)
	}
	return b
}

// FuzzServeConn feeds random client bytes into a whole connection served
// against the scripted in-memory backend. Property: no panic, no hang, and
// memory bounded by the configured limits.
func FuzzServeConn(f *testing.F) {
	f.Add(fuzzSeed(&pgproto3.Query{String: "SELECT 1"}, &pgproto3.Terminate{}))
	f.Add(fuzzSeed(&pgproto3.Query{String: "SELECT 'DENYME'"}, &pgproto3.Query{String: "SELECT email"}))
	f.Add(fuzzSeed(&pgproto3.Parse{Name: "s", Query: "SELECT 1"}, &pgproto3.Describe{ObjectType: 'S', Name: "s"},
		&pgproto3.Bind{PreparedStatement: "s"}, &pgproto3.Execute{}, &pgproto3.Sync{},
		&pgproto3.Parse{Query: "DENYME"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Sync{},
		&pgproto3.Close{ObjectType: 'S', Name: "s"}, &pgproto3.Sync{}))
	f.Add(fuzzSeed(&pgproto3.FunctionCall{Function: 1}, &pgproto3.CopyData{Data: []byte("x")}, &pgproto3.Flush{}))
	ssl := make([]byte, 8)
	binary.BigEndian.PutUint32(ssl, 8)
	binary.BigEndian.PutUint32(ssl[4:], 80877103)
	f.Add(append(ssl, fuzzSeed()...))
	cancel := make([]byte, 16)
	binary.BigEndian.PutUint32(cancel, 16)
	binary.BigEndian.PutUint32(cancel[4:], 80877102)
	f.Add(cancel)

	hooks := &pgtest.Hooks{Token: testToken, DenyMarker: "DENYME", MaskColumn: "x"}
	h, err := pg.New(pg.Config{
		Hooks: hooks,
		Backend: func(context.Context, string) (pg.BackendConfig, error) {
			return pg.BackendConfig{Address: "fake:5432", User: "u", Database: "db", Dial: pgtest.FakeBackend{}.Dial}, nil
		},
		MaxMessageSize: 1 << 16,
		MaxTokenSize:   1 << 12,
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		go func() {
			_, _ = client.Write(data)
			_ = client.Close()
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		_ = h.ServeConn(ctx, server)
		_ = client.Close()
	})
}
