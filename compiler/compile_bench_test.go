package compiler

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time this process has used, so the benchmark can
// report cost independently of other load on the machine.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS resets the process's peak resident set size (VmHWM), where
// the kernel allows it.
func resetPeakRSS() {
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// peakRSS returns the process's peak resident set size in bytes since
// start or the last resetPeakRSS, or 0 when /proc is not available.
func peakRSS() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				return 0
			}
			return kb * 1024
		}
	}
	return 0
}

// generatedSource returns a policy with n rules over 100 identities, 10
// groups and 50 resources, mixing every effect and protocol.
func generatedSource(n int) *Source {
	var b strings.Builder
	b.WriteString("package gen\n\nidentities: {\n")
	for i := 0; i < 100; i++ {
		fmt.Fprintf(&b, "\t\"agent-%03d\": {kind: \"agent\", owner: \"team-%d\", match: {issuer: \"https://issuer.example\", subject: \"sub-%d\"}}\n", i, i%10, i)
	}
	b.WriteString("}\ngroups: {\n")
	for g := 0; g < 10; g++ {
		fmt.Fprintf(&b, "\t\"team-%d\": members: [", g)
		for i := g; i < 100; i += 10 {
			fmt.Fprintf(&b, "\"agent-%03d\", ", i)
		}
		b.WriteString("]\n")
	}
	b.WriteString("}\nresources: {\n")
	types := []string{"postgres", "mysql", "ssh", "http", "kubernetes"}
	for r := 0; r < 50; r++ {
		fmt.Fprintf(&b, "\t\"res-%02d\": {type: %q, address: \"host-%d:1\", tags: [\"env-%d\"], credential: \"env:CRED_%d\"}\n", r, types[r%5], r, r%3, r)
	}
	b.WriteString("}\nrules: [\n")
	for i := 0; i < n; i++ {
		subj := fmt.Sprintf("\"agent-%03d\"", i%100)
		if i%3 == 0 {
			subj = fmt.Sprintf("\"group:team-%d\"", i%10)
		}
		res := fmt.Sprintf("\"res-%02d\"", i%50)
		switch i % 6 {
		case 0:
			fmt.Fprintf(&b, "\t{id: \"r%d\", subjects: [%s], resources: [%s], effect: \"allow\", sql: {statements: [\"select\"], tables: [\"public.t%d\"]}, conditions: max_rows: 100, expires: \"2027-03-01\", review: {owner: \"team-1\", every: \"90d\"}},\n", i, subj, res, i)
		case 1:
			fmt.Fprintf(&b, "\t{id: \"r%d\", subjects: [%s], resources: [\"tag:env-1\"], effect: \"deny\", sql: {statements: [\"update\", \"delete\"], without_where: true}},\n", i, subj)
		case 2:
			fmt.Fprintf(&b, "\t{id: \"r%d\", subjects: [%s], resources: [%s], effect: \"approve\", sql: statements: [\"alter\"], approval: {group: \"team-%d\", count: 1, timeout: \"30m\"}, conditions: time_windows: [{days: [\"mon\", \"fri\"], start: \"08:00\", end: \"18:00\", timezone: \"Europe/Berlin\"}]},\n", i, subj, res, i%10)
		case 3:
			fmt.Fprintf(&b, "\t{id: \"r%d\", subjects: [%s], resources: [%s], effect: \"mask\", mask: {columns: [\"t.c%d\"], classifiers: [\"email\"], style: \"hash\"}},\n", i, subj, res, i)
		case 4:
			fmt.Fprintf(&b, "\t{id: \"r%d\", subjects: [%s], resources: [%s], effect: \"allow\", ssh: commands: [\"git *\"], record: {results: \"masked\", max_result_rows: 10}},\n", i, subj, res)
		case 5:
			fmt.Fprintf(&b, "\t{id: \"r%d\", subjects: [%s], resources: [%s], effect: \"allow\", kubernetes: {verbs: [\"get\"], resources: [\"pods\"], namespaces: [\"ns-%d\"]}},\n", i, subj, res, i)
		}
	}
	b.WriteString("]\n")
	return &Source{Dir: ".", Time: fixedTime, Files: map[string][]byte{"gen.cue": []byte(b.String())}}
}

// BenchmarkCompile10000Rules reports, besides wall time, the CPU time of
// the whole process per compile (cpu-s/op: all threads, garbage
// collection included, waiting for a CPU excluded) and the peak resident
// set size during the benchmark (peak-MB).
func BenchmarkCompile10000Rules(b *testing.B) {
	src := generatedSource(10000)
	b.ReportAllocs()
	resetPeakRSS()
	b.ResetTimer()
	start := cpuTime()
	defer func() {
		b.ReportMetric((cpuTime()-start).Seconds()/float64(b.N), "cpu-s/op")
		b.ReportMetric(peakRSS()/(1<<20), "peak-MB")
	}()
	for i := 0; i < b.N; i++ {
		res, err := Compile(src, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if len(res.Bundle.Policy.Rules) != 10000 {
			b.Fatalf("%d rules", len(res.Bundle.Policy.Rules))
		}
	}
}
