package sqlclass

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
)

// Environment variables that turn the test binary into a child process.
const (
	// probeEnv makes the binary parse one generated text with libpg_query
	// directly, without the pre-scan: "parse:FAMILY:N" or
	// "normalize:FAMILY:N". A crash kills only the child.
	probeEnv = "GATEHOUSE_SQLCLASS_PROBE"
	// rejectEnv makes the binary classify every deep text of deepInputs
	// and exit 1 if one is not rejected with ErrTooComplex.
	rejectEnv = "GATEHOUSE_SQLCLASS_REJECT"
	// measureEnv enables TestMeasureCrashThresholds.
	measureEnv = "GATEHOUSE_SQLCLASS_MEASURE"
)

func TestMain(m *testing.M) {
	if p := os.Getenv(probeEnv); p != "" {
		os.Exit(runProbe(p))
	}
	if os.Getenv(rejectEnv) != "" {
		os.Exit(runReject())
	}
	os.Exit(m.Run())
}

func rep(s string, n int) string { return strings.Repeat(s, n) }

// deepFamilies generate texts in which a construct repeats n times, each
// repetition adding tree depth.
var deepFamilies = map[string]func(n int) string{
	"plus":       func(n int) string { return "SELECT 1" + rep("+1", n) },
	"concat":     func(n int) string { return "SELECT 'a'" + rep("||'a'", n) },
	"json":       func(n int) string { return "SELECT x" + rep("->'a'", n) + " FROM t" },
	"custom-op":  func(n int) string { return "SELECT 1" + rep(" OPERATOR(pg_catalog.+) 1", n) },
	"minus":      func(n int) string { return "SELECT " + rep("- ", n) + "x FROM t" },
	"not":        func(n int) string { return "SELECT " + rep("NOT ", n) + "true" },
	"tilde":      func(n int) string { return "SELECT " + rep("~ ", n) + "1" },
	"cast":       func(n int) string { return "SELECT 1" + rep("::int", n) },
	"collate":    func(n int) string { return "SELECT x" + rep(` COLLATE "C"`, n) + " FROM t" },
	"at-tz":      func(n int) string { return "SELECT x" + rep(` AT TIME ZONE 'UTC'`, n) + " FROM t" },
	"union":      func(n int) string { return "SELECT 1" + rep(" UNION SELECT 1", n) },
	"join":       func(n int) string { return "SELECT 1 FROM t" + rep(" JOIN t ON true", n) },
	"func":       func(n int) string { return "SELECT " + rep("f(", n) + "1" + rep(")", n) },
	"parens":     func(n int) string { return "SELECT " + rep("(", n) + "1" + rep(")", n) },
	"subquery":   func(n int) string { return "SELECT " + rep("(SELECT ", n) + "1" + rep(")", n) },
	"case":       func(n int) string { return "SELECT " + rep("CASE WHEN true THEN ", n) + "1" + rep(" END", n) },
	"array":      func(n int) string { return "SELECT " + rep("ARRAY[", n) + "1" + rep("]", n) },
	"betweennot": func(n int) string { return "SELECT a" + rep(" BETWEEN b AND NOT a", n) + " FROM t" },
}

// crashThresholds are the repetitions at which libpg_query failed in
// TestMeasureCrashThresholds (8 MiB thread stacks; the smaller of Parse and
// Normalize; for families that never crashed, where bison stopped them
// with "memory exhausted"). See DefaultMaxNesting.
var crashThresholds = map[string]int{
	"plus": 21_875, "concat": 21_875, "json": 21_875, "custom-op": 21_875,
	"cast": 21_875, "collate": 23_875, "at-tz": 10_937, "join": 21_875,
	"union": 26_250,
	"minus": 10_000, "not": 10_000, "tilde": 10_000, "parens": 10_000,
	"func": 5_000, "array": 5_000, "subquery": 3_343, "case": 2_000,
	"betweennot": 1_671,
}

// deepInputs are the texts that must be rejected before libpg_query sees
// them: the 25,000-term sum of the attack, ten times that, and every
// family at twice its threshold.
func deepInputs() map[string]string {
	in := map[string]string{
		"attack 25000 terms":  "SELECT 1" + rep("+1", 25_000),
		"attack x10":          "SELECT 1" + rep("+1", 250_000),
		"attack in where":     "SELECT * FROM t WHERE a = 1 AND b = 1" + rep("+1", 25_000),
		"attack in values":    "INSERT INTO t VALUES (1), (1" + rep("+1", 25_000) + ")",
		"100k parens":         "SELECT " + rep("(", 100_000) + "1" + rep(")", 100_000),
		"unclosed parens":     "SELECT " + rep("(", 100_000),
		"or of sums":          "SELECT 1 WHERE " + rep("1"+rep("+1", 1_000)+" OR ", 30) + "true",
		"commented attack":    "/* c */ SELECT 1" + rep("+1", 25_000),
		"small, cached path":  "SELECT 1" + rep("+1", 7_000),
		"small, C normaliser": "SELECT $1" + rep("+1", 7_000),
	}
	for name, gen := range deepFamilies {
		in[fmt.Sprintf("%s x%d", name, 2*crashThresholds[name])] = gen(2 * crashThresholds[name])
	}
	return in
}

// runReject classifies every deep input, directly and through a Cache
// (whose normaliser calls libpg_query too), in a goroutine so that the C
// code runs on a thread the Go runtime created, as in the gateway.
func runReject() int {
	done := make(chan int)
	go func() {
		p, err := NewPostgres(PostgresConfig{MaxQueryBytes: 16 << 20})
		if err != nil {
			fmt.Println(err)
			done <- 1
			return
		}
		c := NewCache(p, 16)
		failed := 0
		names := sortedKeys(deepInputs())
		inputs := deepInputs()
		for _, name := range names {
			sql := inputs[name]
			for _, cl := range []Classifier{p, c} {
				st, err := cl.Classify(sql)
				if !errors.Is(err, ErrTooComplex) || st != nil {
					fmt.Printf("%s (%d bytes): err = %v, want ErrTooComplex\n", name, len(sql), err)
					failed++
				}
			}
			// The cache's key path on its own (the Cache skips it for
			// texts above MaxCachedQueryBytes): the Go normaliser may take
			// the text, libpg_query's must not see it.
			if key, ok := p.normalize(sql); ok && strings.HasPrefix(key, "p") {
				fmt.Printf("%s: normalised by libpg_query\n", name)
				failed++
			}
		}
		fmt.Printf("%d inputs checked\n", len(names))
		done <- min(failed, 1)
	}()
	return <-done
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// runChild runs the test binary with env set and returns its output and
// whether it exited with status 0.
func runChild(t testing.TB, env ...string) (string, bool) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	return out.String(), err == nil
}

// TestDeepInputsRejected classifies the attack inputs in a child process:
// if the pre-scan let one through and libpg_query overflowed the stack,
// the child dies and the test fails instead of the test binary.
func TestDeepInputsRejected(t *testing.T) {
	t.Parallel()
	out, ok := runChild(t, rejectEnv+"=1")
	if !ok {
		t.Fatalf("child failed:\n%s", clip(out))
	}
	if !strings.Contains(out, "inputs checked") {
		t.Fatalf("child did not run: %s", clip(out))
	}
}

// TestDeepInputsBounded checks the estimates themselves (in process: the
// pre-scan is Go).
func TestDeepInputsBounded(t *testing.T) {
	t.Parallel()
	for name, sql := range deepInputs() {
		if est := nestingBound(sql, DefaultMaxNesting); est <= DefaultMaxNesting {
			t.Errorf("%s: estimate %d within the limit", name, est)
		}
	}
	// Each family's bound holds at a depth well past the limit (1,000
	// repetitions parse safely even with 2 MiB thread stacks).
	for name, gen := range deepFamilies {
		bound, depth := checkBound(t, gen(1_000))
		if depth < 1_000 && (name != "parens" || depth < 0) { // parentheses alone build no nodes
			t.Errorf("%s: depth %d (bound %d), want a parse tree at least 1000 deep", name, depth, bound)
		}
	}
	// The estimate grows with every repetition, so the smallest rejected
	// repetition of each family is far below its crash threshold.
	for name, gen := range deepFamilies {
		n := 1
		for nestingBound(gen(n), DefaultMaxNesting) <= DefaultMaxNesting {
			n++
		}
		if ratio := float64(crashThresholds[name]) / float64(n); ratio < 4 {
			t.Errorf("%s: rejected from %d repetitions, only %.1fx below the threshold %d", name, n, ratio, crashThresholds[name])
		}
	}
}

// TestLegitLargeStatements: big statements of ordinary shape stay
// classifiable.
func TestLegitLargeStatements(t *testing.T) {
	t.Parallel()
	p, err := NewPostgres(PostgresConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var values, ors, in, cols strings.Builder
	for i := range 10_000 {
		if i > 0 {
			values.WriteString(", ")
		}
		fmt.Fprintf(&values, "(%d, 'name %d', %d.5, now() - interval '%d days')", i, i, i, i)
	}
	for i := range 5_000 {
		if i > 0 {
			ors.WriteString(" OR ")
		}
		fmt.Fprintf(&ors, "id = %d", i)
	}
	for i := range 50_000 {
		if i > 0 {
			in.WriteString(", ")
		}
		in.WriteString(strconv.Itoa(i))
	}
	for i := range 200 {
		if i > 0 {
			cols.WriteString(",\n  ")
		}
		fmt.Fprintf(&cols, "coalesce(a%d, 0) * 2 + lower(b%d)::int - (c%d->>'k')::int AS e%d", i, i, i, i)
	}
	cases := []struct {
		name, sql, kind string
	}{
		{"insert 10000 rows", "INSERT INTO orders (id, name, price, at) VALUES " + values.String(), "insert"},
		{"5000 ors", "SELECT * FROM orders WHERE " + ors.String(), "select"},
		{"in 50000 items", "SELECT * FROM orders WHERE id IN (" + in.String() + ")", "select"},
		{"200 columns", "SELECT\n  " + cols.String() + "\nFROM wide", "select"},
		{"deep but sane", "SELECT " + rep("(SELECT ", 20) + "1" + rep(")", 20) + ", " + rep("f(", 60) + "1" + rep(")", 60), "select"},
		{"long concatenation", "SELECT a" + rep(" || ', ' || a", 150) + " FROM t", "select"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			st, err := p.Classify(c.sql)
			if err != nil {
				t.Fatalf("%d bytes, estimate %d: %v", len(c.sql), nestingBound(c.sql, DefaultMaxNesting), err)
			}
			if len(st) != 1 || st[0].Kind != c.kind {
				t.Fatalf("got %d statements, kind %q", len(st), st[0].Kind)
			}
		})
	}
}

// runProbe parses one generated text with libpg_query, without the
// pre-scan, on a thread the Go runtime created: exit 0 parsed, 3 error,
// anything else a crash.
func runProbe(spec string) int {
	parts := strings.SplitN(spec, ":", 3)
	if len(parts) != 3 {
		return 2
	}
	gen, ok := deepFamilies[parts[1]]
	n, err := strconv.Atoi(parts[2])
	if !ok || err != nil {
		return 2
	}
	sql := gen(n)
	runtime.LockOSThread() // keep the main thread out of it
	done := make(chan error)
	go func() {
		var err error
		switch parts[0] {
		case "parse":
			_, err = parser.ParseToProtobuf(sql)
		case "normalize":
			_, err = pg_query.Normalize(sql)
		default:
			err = errors.New("unknown mode")
		}
		done <- err
	}()
	if err := <-done; err != nil {
		fmt.Println(err)
		return 3
	}
	return 0
}

// TestMeasureCrashThresholds finds, for each family and for Parse and
// Normalize, the repetition count at which libpg_query fails (to 1%), by
// bisection over child processes. It takes minutes, so it runs only with
// GATEHOUSE_SQLCLASS_MEASURE=1; its output is the table in
// DefaultMaxNesting's comment.
func TestMeasureCrashThresholds(t *testing.T) {
	if os.Getenv(measureEnv) == "" {
		t.Skip("set " + measureEnv + "=1 to measure libpg_query's crash thresholds (minutes)")
	}
	probe := func(mode, family string, n int) string {
		out, ok := runChild(t, fmt.Sprintf("%s=%s:%s:%d", probeEnv, mode, family, n))
		switch {
		case ok:
			return "ok"
		case strings.Contains(out, "SIGSEGV") || strings.Contains(out, "signal"):
			return "crash"
		}
		return "error: " + strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
	}
	for _, family := range sortedKeys(deepFamilies) {
		for _, mode := range []string{"parse", "normalize"} {
			lo, hi, last := 0, 0, ""
			for n := 500; n <= 512_000; n *= 2 {
				if r := probe(mode, family, n); r != "ok" {
					hi, last = n, r
					break
				}
				lo = n
			}
			if hi == 0 {
				t.Logf("%-10s %-9s no failure up to %d", family, mode, lo)
				continue
			}
			for hi-lo > max(1, lo/100) {
				mid := (lo + hi) / 2
				if r := probe(mode, family, mid); r == "ok" {
					lo = mid
				} else {
					hi, last = mid, r
				}
			}
			t.Logf("%-10s %-9s ok at %d, fails at %d: %s", family, mode, lo, hi, last)
		}
	}
}
