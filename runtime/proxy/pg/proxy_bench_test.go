package pg_test

import (
	"context"
	"net"
	"runtime"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
)

// BenchmarkSimpleQueryThroughProxy compares simple-protocol round trips with
// 8 concurrent clients, directly and through the proxy.
func BenchmarkSimpleQueryThroughProxy(b *testing.B) {
	e := startProxy(b, newHooks(), nil)
	e.hooks.MaskColumn, e.hooks.CopySecret = "", "" // pass-through results
	for _, target := range []struct{ name, dsn string }{{"direct", e.backend}, {"proxy", e.dsn(testToken)}} {
		b.Run(target.name, func(b *testing.B) {
			ctx := context.Background()
			conns := make(chan *pgx.Conn, 8)
			for range 8 {
				c := connect(b, target.dsn)
				conns <- c
			}
			b.ReportAllocs()
			b.SetParallelism(4) // 8 goroutines on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c := <-conns
				defer func() { conns <- c }()
				var n int
				for pb.Next() {
					if err := c.QueryRow(ctx, "SELECT 1", pgx.QueryExecModeSimpleProtocol).Scan(&n); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestIdleConnectionMemory measures the heap held per idle proxied
// connection. Clients are raw sockets so that only the proxy's memory counts.
func TestIdleConnectionMemory(t *testing.T) {
	const n = 50
	e := startProxy(t, newHooks(), nil)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	open := func() {
		nc, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		if _, err := nc.Write(rawStartup(e.db)); err != nil {
			t.Fatal(err)
		}
		fe := pgproto3.NewFrontend(nc, nc)
		if _, err := fe.Receive(); err != nil { // AuthenticationCleartextPassword
			t.Fatal(err)
		}
		pw, _ := (&pgproto3.PasswordMessage{Password: testToken}).Encode(nil)
		q, _ := (&pgproto3.Query{String: "SELECT 1"}).Encode(nil)
		if _, err := nc.Write(append(pw, q...)); err != nil {
			t.Fatal(err)
		}
		// Read until the second ReadyForQuery (startup, then the query).
		ready := 0
		for ready < 2 {
			m, err := fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := m.(*pgproto3.ReadyForQuery); ok {
				ready++
			}
		}
	}
	open() // warm up
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range n {
		open()
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	// Client-side frontends are garbage once open returns; client sockets
	// and their goroutines are counted, which overstates the proxy's share.
	per := (int64(after.HeapInuse+after.StackInuse) - int64(before.HeapInuse+before.StackInuse)) / n
	t.Logf("heap+stack per idle connection (proxy side plus a raw client socket): %d bytes", per)
	if per > 64<<10 {
		t.Fatalf("idle connection holds %d bytes, want < 64 KiB", per)
	}
}
