package peers

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cedar-policy/cedar-go"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/engine"
	"github.com/gatehouse/gatehouse/runtime/engine/enginetest"
)

// fixture holds the three engines and the same requests in each engine's
// native form.
type fixture struct {
	gh    *engine.Engine
	opa   *OPA
	cedar *Cedar
	// cases: one request per outcome, then "mixed".
	names []string
	reqs  map[string][]*engine.Request
	opaIn map[string][]ast.Value
	cedIn map[string][]cedar.Request
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  string
)

const mixedN = 1024

func outcome(d *engine.Decision) string {
	switch {
	case d.Effect == bundle.EffectAllow && len(d.Masks) > 0:
		return "mask"
	case d.Effect == bundle.EffectAllow:
		return "allow"
	case d.Effect == bundle.EffectApprove:
		return "approve"
	case len(d.RuleIDs) > 0:
		return "deny"
	}
	return "default-deny"
}

func getFixture(tb testing.TB) *fixture {
	tb.Helper()
	fixOnce.Do(func() { fix, fixErr = buildFixture() })
	if fixErr != "" {
		tb.Fatal(fixErr)
	}
	return fix
}

func buildFixture() (*fixture, string) {
	ctx := context.Background()
	b := enginetest.Generate(enginetest.DefaultConfig)
	gh, err := engine.New(b)
	if err != nil {
		return nil, "gatehouse: " + err.Error()
	}
	o, err := NewOPA(ctx, b, enginetest.Time)
	if err != nil {
		return nil, "opa: " + err.Error()
	}
	c, err := NewCedar(b, enginetest.Time)
	if err != nil {
		return nil, "cedar: " + err.Error()
	}
	f := &fixture{gh: gh, opa: o, cedar: c,
		names: []string{"allow", "mask", "deny", "default-deny", "approve", "mixed"},
		reqs:  map[string][]*engine.Request{}, opaIn: map[string][]ast.Value{}, cedIn: map[string][]cedar.Request{}}
	var d engine.Decision
	for _, req := range enginetest.Requests(b, 11, 20000) {
		gh.Decide(req, &d)
		k := outcome(&d)
		if len(f.reqs[k]) == 0 {
			f.reqs[k] = []*engine.Request{req}
		}
	}
	f.reqs["mixed"] = enginetest.Requests(b, 5, mixedN)
	for _, name := range f.names {
		if len(f.reqs[name]) == 0 {
			return nil, "no generated request for case " + name
		}
		for _, req := range f.reqs[name] {
			in, err := OPAInput(req)
			if err != nil {
				return nil, "opa input: " + err.Error()
			}
			f.opaIn[name] = append(f.opaIn[name], in)
			f.cedIn[name] = append(f.cedIn[name], CedarRequest(req))
		}
	}
	if msg := f.agree(ctx, enginetest.Requests(b, 99, 3000)); msg != "" {
		return nil, msg
	}
	return f, ""
}

// agree checks that the three engines return the same effect for every
// request of the sample and of every benchmark case.
func (f *fixture) agree(ctx context.Context, sample []*engine.Request) string {
	for _, name := range f.names {
		sample = append(sample, f.reqs[name]...)
	}
	counts := map[bundle.Effect]int{}
	var d engine.Decision
	for i, req := range sample {
		f.gh.Decide(req, &d)
		in, err := OPAInput(req)
		if err != nil {
			return err.Error()
		}
		oe, err := f.opa.Decide(ctx, in)
		if err != nil {
			return "opa: " + err.Error()
		}
		ce, err := f.cedar.Decide(CedarRequest(req))
		if err != nil {
			return "cedar: " + err.Error()
		}
		if oe != d.Effect || ce != d.Effect {
			return "request " + itoa(i) + " (" + req.Identity + " " + req.SQL.Kind + " on " + req.Resource + "): gatehouse " +
				string(d.Effect) + " " + joinIDs(d.RuleIDs) + ", opa " + string(oe) + ", cedar " + string(ce)
		}
		counts[d.Effect]++
	}
	for _, e := range []bundle.Effect{bundle.EffectAllow, bundle.EffectDeny, bundle.EffectApprove} {
		if counts[e] == 0 {
			return "agreement sample has no " + string(e) + " decisions"
		}
	}
	return ""
}

func itoa(i int) string {
	return string(appendInt(nil, i))
}

func appendInt(b []byte, i int) []byte {
	if i >= 10 {
		b = appendInt(b, i/10)
	}
	return append(b, byte('0'+i%10))
}

func joinIDs(ids []string) string {
	s := "["
	for i, id := range ids {
		if i > 0 {
			s += " "
		}
		s += id
	}
	return s + "]"
}

// TestAgree fails when the engines disagree on any sampled request.
func TestAgree(t *testing.T) {
	f := getFixture(t)
	for _, name := range f.names {
		if len(f.reqs[name]) == 0 {
			t.Errorf("no requests for %s", name)
		}
	}
}

// BenchmarkPeers times one decision per case for each engine. Requests are
// converted to each engine's input form before timing.
func BenchmarkPeers(b *testing.B) {
	f := getFixture(b)
	ctx := context.Background()
	for _, name := range f.names {
		b.Run("engine=gatehouse/case="+name, func(b *testing.B) {
			reqs := f.reqs[name]
			var d engine.Decision
			b.ReportAllocs()
			defer cpuMeter(b)()
			i := 0
			for b.Loop() {
				f.gh.Decide(reqs[i%len(reqs)], &d)
				i++
			}
		})
		b.Run("engine=opa/case="+name, func(b *testing.B) {
			in := f.opaIn[name]
			b.ReportAllocs()
			defer cpuMeter(b)()
			i := 0
			for b.Loop() {
				if _, err := f.opa.Decide(ctx, in[i%len(in)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run("engine=cedar/case="+name, func(b *testing.B) {
			in := f.cedIn[name]
			b.ReportAllocs()
			defer cpuMeter(b)()
			i := 0
			for b.Loop() {
				if _, err := f.cedar.Decide(in[i%len(in)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// cpuMeter reports the benchmark goroutine's thread CPU time per operation
// as "cpu-ns/op" (call as `defer cpuMeter(b)()` before the loop).
func cpuMeter(b *testing.B) func() {
	lockThread()
	start, ok := threadCPU()
	return func() {
		end, ok2 := threadCPU()
		unlockThread()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64((end-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkPeersLatency records every decision's duration over the mixed
// requests and reports p50 and p99 (the clock's own median cost is
// subtracted).
func BenchmarkPeersLatency(b *testing.B) {
	f := getFixture(b)
	ctx := context.Background()
	var d engine.Decision
	run := map[string]func(i int){
		"gatehouse": func(i int) { f.gh.Decide(f.reqs["mixed"][i], &d) },
		"opa": func(i int) {
			if _, err := f.opa.Decide(ctx, f.opaIn["mixed"][i]); err != nil {
				b.Fatal(err)
			}
		},
		"cedar": func(i int) {
			if _, err := f.cedar.Decide(f.cedIn["mixed"][i]); err != nil {
				b.Fatal(err)
			}
		},
	}
	for _, name := range []string{"gatehouse", "opa", "cedar"} {
		b.Run("engine="+name, func(b *testing.B) {
			fn := run[name]
			const samples = 1 << 16
			durs := make([]time.Duration, samples)
			clock := make([]time.Duration, 4096)
			for i := range clock {
				t0 := time.Now()
				clock[i] = time.Since(t0)
			}
			slices.Sort(clock)
			overhead := clock[len(clock)/2]
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				t0 := time.Now()
				fn(n % mixedN)
				durs[n&(samples-1)] = time.Since(t0)
				n++
			}
			s := durs[:min(n, samples)]
			slices.Sort(s)
			pct := func(p float64) float64 {
				return float64(max(s[int(p*float64(len(s)-1))]-overhead, 0).Nanoseconds())
			}
			b.ReportMetric(pct(0.50), "p50-ns")
			b.ReportMetric(pct(0.99), "p99-ns")
		})
	}
}
