package pg_test

import (
	"context"
	"net"
	"net/url"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
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

// BenchmarkPgbenchSelectOnly runs pgbench -S with 8 clients directly and
// through the proxy and reports both throughputs and their ratio. It runs
// once regardless of b.N (pgbench times itself).
func BenchmarkPgbenchSelectOnly(b *testing.B) {
	pgbench, err := exec.LookPath("pgbench")
	if err != nil {
		b.Fatal("pgbench not found: install postgresql-contrib")
	}
	e := startProxy(b, newHooks(), nil)
	e.hooks.MaskColumn, e.hooks.CopySecret = "", ""
	u, _ := url.Parse(e.backend)
	dhost, dport, _ := net.SplitHostPort(u.Host)
	phost, pport, _ := net.SplitHostPort(e.addr)
	run := func(args ...string) string {
		cmd := exec.Command(pgbench, args...)
		cmd.Env = psqlEnv(testToken)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("pgbench %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	run("-i", "-s", "1", "-q", "-h", dhost, "-p", dport, "-U", u.User.Username(), e.db)
	tps := func(out string) float64 {
		m := regexp.MustCompile(`tps = ([0-9.]+)`).FindStringSubmatch(out)
		if m == nil {
			b.Fatalf("no tps in %s", out)
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	bench := []string{"-S", "-c", "8", "-j", "2", "-T", "10", "-n"}
	direct := tps(run(append(bench, "-h", dhost, "-p", dport, "-U", u.User.Username(), e.db)...))
	proxied := tps(run(append(bench, "-h", phost, "-p", pport, "-U", "agent", e.db)...))
	b.ReportMetric(direct, "direct_tps")
	b.ReportMetric(proxied, "proxy_tps")
	b.ReportMetric(proxied/direct, "ratio")
}
