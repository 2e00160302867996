package pgtest

import (
	"context"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
)

// FakeBackend is a scripted in-memory PostgreSQL server speaking just enough
// protocol for the proxy: trust login, one-row results, errors for the
// proxy's deny substitute (any text containing "DENIED"), skip-to-Sync after
// errors. Use Dial as pg.BackendConfig.Dial.
type FakeBackend struct{}

// Dial returns a connection served by a fresh fake server goroutine, which
// ends when the connection closes.
func (f FakeBackend) Dial(_ context.Context, _, _ string) (net.Conn, error) {
	client, server := net.Pipe()
	go f.serve(server)
	return client, nil
}

func (FakeBackend) serve(conn net.Conn) {
	defer conn.Close()
	be := pgproto3.NewBackend(conn, conn)
	be.SetMaxBodyLen(1 << 20)
	if _, err := be.ReceiveStartupMessage(); err != nil {
		return
	}
	be.Send(&pgproto3.AuthenticationOk{})
	be.Send(&pgproto3.ParameterStatus{Name: "server_version", Value: "15.0"})
	be.Send(&pgproto3.BackendKeyData{ProcessID: 42, SecretKey: []byte{1, 2, 3, 4}})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		return
	}
	fields := []pgproto3.FieldDescription{{Name: []byte("x"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1}}
	syntaxErr := &pgproto3.ErrorResponse{Severity: "ERROR", Code: "42601", Message: "syntax error"}
	skipping := false
	for {
		msg, err := be.Receive()
		if err != nil {
			return
		}
		if skipping {
			if _, ok := msg.(*pgproto3.Sync); !ok {
				continue
			}
		}
		switch m := msg.(type) {
		case *pgproto3.Query:
			if strings.Contains(m.String, "DENIED") {
				be.Send(syntaxErr)
			} else {
				be.Send(&pgproto3.RowDescription{Fields: fields})
				be.Send(&pgproto3.DataRow{Values: [][]byte{[]byte("secret")}})
				be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
			}
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Parse:
			if strings.Contains(m.Query, "DENIED") {
				be.Send(syntaxErr)
				skipping = true
			} else {
				be.Send(&pgproto3.ParseComplete{})
			}
		case *pgproto3.Bind:
			be.Send(&pgproto3.BindComplete{})
		case *pgproto3.Describe:
			if m.ObjectType == 'S' {
				be.Send(&pgproto3.ParameterDescription{})
			}
			be.Send(&pgproto3.RowDescription{Fields: fields})
		case *pgproto3.Execute:
			be.Send(&pgproto3.DataRow{Values: [][]byte{[]byte("secret")}})
			be.Send(&pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
		case *pgproto3.Close:
			be.Send(&pgproto3.CloseComplete{})
		case *pgproto3.Sync:
			skipping = false
			be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		case *pgproto3.Terminate:
			_ = be.Flush()
			return
		}
		if be.Flush() != nil {
			return
		}
	}
}
