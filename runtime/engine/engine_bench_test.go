package engine_test

import (
	"slices"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/runtime/bundle"
	"github.com/gatehouse/gatehouse/runtime/engine"
	"github.com/gatehouse/gatehouse/runtime/engine/enginetest"
)

type benchCase struct {
	name string
	req  *engine.Request
}

// benchCases builds the generated 1,000-rule engine and picks one request
// per outcome: allow, allow with masks, deny by a rule, default deny and
// approve.
func benchCases(tb testing.TB) (*engine.Engine, []benchCase) {
	tb.Helper()
	b := enginetest.Generate(enginetest.DefaultConfig)
	e, err := engine.New(b)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	want := []string{"allow", "mask", "deny", "default-deny", "approve"}
	found := map[string]*engine.Request{}
	var d engine.Decision
	for _, req := range enginetest.Requests(b, 11, 20000) {
		e.Decide(req, &d)
		var k string
		switch {
		case d.Effect == bundle.EffectAllow && len(d.Masks) > 0:
			k = "mask"
		case d.Effect == bundle.EffectAllow:
			k = "allow"
		case d.Effect == bundle.EffectApprove:
			k = "approve"
		case len(d.RuleIDs) > 0:
			k = "deny"
		default:
			k = "default-deny"
		}
		if found[k] == nil {
			found[k] = req
		}
	}
	var cases []benchCase
	for _, k := range want {
		if found[k] == nil {
			tb.Fatalf("generated requests contain no %s case", k)
		}
		cases = append(cases, benchCase{k, found[k]})
	}
	return e, cases
}

// BenchmarkDecide measures one decision on the generated 1,000-rule policy
// (100 identities, 50 resources) per outcome, and over a mix of 4,096
// requests.
func BenchmarkDecide(b *testing.B) {
	e, cases := benchCases(b)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var d engine.Decision
			e.Decide(c.req, &d)
			defer cpuMeter(b)()
			for b.Loop() {
				e.Decide(c.req, &d)
			}
		})
	}
	b.Run("mixed", func(b *testing.B) {
		reqs := enginetest.Requests(e.Bundle(), 5, 4096)
		b.ReportAllocs()
		var d engine.Decision
		for _, r := range reqs {
			e.Decide(r, &d)
		}
		defer cpuMeter(b)()
		i := 0
		for b.Loop() {
			e.Decide(reqs[i&4095], &d)
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		reqs := enginetest.Requests(e.Bundle(), 5, 4096)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var d engine.Decision
			i := 0
			for pb.Next() {
				e.Decide(reqs[i&4095], &d)
				i++
			}
		})
	})
}

// BenchmarkDecideLatency records the duration of every decision over the
// mixed requests in a preallocated slice and reports p50 and p99. The cost
// of reading the clock (its own median) is subtracted.
func BenchmarkDecideLatency(b *testing.B) {
	e, _ := benchCases(b)
	reqs := enginetest.Requests(e.Bundle(), 5, 4096)
	var d engine.Decision
	for _, r := range reqs {
		e.Decide(r, &d)
	}
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
		r := reqs[n&4095]
		t0 := time.Now()
		e.Decide(r, &d)
		durs[n&(samples-1)] = time.Since(t0)
		n++
	}
	if n > samples {
		n = samples
	}
	s := durs[:n]
	slices.Sort(s)
	pct := func(p float64) float64 {
		v := s[int(p*float64(len(s)-1))] - overhead
		if v < 0 {
			v = 0
		}
		return float64(v.Nanoseconds())
	}
	b.ReportMetric(pct(0.50), "p50-ns")
	b.ReportMetric(pct(0.99), "p99-ns")
	b.ReportMetric(float64(overhead.Nanoseconds()), "clock-ns")
}

// BenchmarkDecideCPULatency reports percentiles of the per-thread CPU time
// of one decision over the mixed requests, which a loaded machine does not
// inflate. Each iteration decides one request cpuBatch times in a row and
// records the thread CPU time of the batch divided by cpuBatch (the clock's
// resolution is too coarse for single decisions); ns/op is per batch.
func BenchmarkDecideCPULatency(b *testing.B) {
	e, _ := benchCases(b)
	reqs := enginetest.Requests(e.Bundle(), 5, 4096)
	var d engine.Decision
	for _, r := range reqs {
		e.Decide(r, &d)
	}
	if _, ok := threadCPU(); !ok {
		b.Skip("no per-thread CPU clock on this platform")
	}
	const cpuBatch = 64
	const samples = 1 << 14
	per := make([]float64, samples)
	lockThread()
	defer unlockThread()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		r := reqs[n&4095]
		t0, _ := threadCPU()
		for range cpuBatch {
			e.Decide(r, &d)
		}
		t1, _ := threadCPU()
		per[n&(samples-1)] = float64((t1 - t0).Nanoseconds()) / cpuBatch
		n++
	}
	s := per[:min(n, samples)]
	slices.Sort(s)
	b.ReportMetric(s[len(s)/2], "cpu-p50-ns")
	b.ReportMetric(s[int(0.99*float64(len(s)-1))], "cpu-p99-ns")
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
