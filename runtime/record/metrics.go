package record

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	enqueued    prometheus.Counter
	written     prometheus.Counter
	failed      prometheus.Counter
	spooled     prometheus.Counter
	writeErrors prometheus.Counter
	batch       prometheus.Histogram
	depth       prometheus.GaugeFunc
	reserved    prometheus.GaugeFunc
	// waits is indexed by waitGlobal and waitSession.
	waits       [2]prometheus.Counter
	waitSeconds prometheus.Histogram
	endsPastCap prometheus.Counter

	seals            prometheus.Counter
	sealErrors       prometheus.Counter
	checkpoints      prometheus.Counter
	checkpointErrors prometheus.Counter
}

// newMetrics builds the recorder's metrics; gauges reports the items queued
// (recorded, not yet written) and the slots reserved (not yet recorded).
func newMetrics(reg prometheus.Registerer, gauges func() (queued, reserved float64)) (*metrics, error) {
	waits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "gatehouse", Subsystem: "record", Name: "reserve_waits_total",
		Help: "Reserve (and StartSession, End) calls that had to wait for a slot, by the cap that made them wait: " +
			"\"session\" (the session's own outstanding events) or \"global\" (all sessions').",
	}, []string{"cap"})
	m := &metrics{
		enqueued: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "record", Name: "events_enqueued_total",
			Help: "Events accepted by the recorder.",
		}),
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "record", Name: "events_written_total",
			Help: "Events written to the store (directly or by spool replay).",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "record", Name: "events_failed_total",
			Help: "Events and session headers refused (queue full, store failing, closed) or not flushed at close.",
		}),
		spooled: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "record", Name: "events_spooled_total",
			Help: "Events written to the spool file while the store was failing.",
		}),
		writeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "record", Name: "store_write_errors_total",
			Help: "Failed batch writes to the store.",
		}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "record", Name: "batch_write_seconds",
			Help:    "Latency of successful batch writes to the store.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}),
		depth: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "gatehouse", Subsystem: "record", Name: "queue_depth",
			Help: "Session headers and events recorded and not yet written or spooled.",
		}, func() float64 { q, _ := gauges(); return q }),
		reserved: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "gatehouse", Subsystem: "record", Name: "reserved_slots",
			Help: "Slots reserved by sessions and not yet used by an event.",
		}, func() float64 { _, r := gauges(); return r }),
		waits: [2]prometheus.Counter{
			waitGlobal:  waits.WithLabelValues("global"),
			waitSession: waits.WithLabelValues("session"),
		},
		waitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "gatehouse", Subsystem: "record", Name: "reserve_wait_seconds",
			Help:    "Time spent waiting for a slot by the calls counted in reserve_waits_total.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		endsPastCap: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "record", Name: "ends_past_cap_total",
			Help: "Session end events queued past the caps, after waiting CloseTimeout or while the store was failing.",
		}),
		seals: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "record", Name: "seals_total",
			Help: "Session ends signed (seals).",
		}),
		sealErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "record", Name: "seal_errors_total",
			Help: "Session ends that could not be signed; those sessions stay unsigned.",
		}),
		checkpoints: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "record", Name: "checkpoints_total",
			Help: "Signed checkpoints stored.",
		}),
		checkpointErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "gatehouse", Subsystem: "record", Name: "checkpoint_errors_total",
			Help: "Checkpoints that could not be signed or stored (retried at the next one).",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.enqueued, m.written, m.failed, m.spooled, m.writeErrors, m.batch,
		m.depth, m.reserved, waits, m.waitSeconds, m.endsPastCap, m.seals, m.sealErrors, m.checkpoints, m.checkpointErrors} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register recorder metrics: %w", err)
		}
	}
	return m, nil
}
