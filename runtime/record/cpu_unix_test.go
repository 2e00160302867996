//go:build unix

package record

import (
	"syscall"
	"testing"
	"time"
)

// cpuMeter reports the process's CPU time (user and system, every
// goroutine: the writer's wake-ups count too) per benchmark iteration, a
// figure that a busy shared machine distorts less than wall time.
type cpuMeter struct{ start time.Duration }

func cpuNow() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuMeter { return cpuMeter{start: cpuNow()} }

func (m cpuMeter) report(b *testing.B) {
	b.ReportMetric(float64(cpuNow()-m.start)/float64(b.N), "cpu-ns/op")
}
