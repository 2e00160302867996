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
}

func newMetrics(reg prometheus.Registerer, depth func() float64) (*metrics, error) {
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
			Help: "Events refused by Record (queue full, store failing, closed) or not flushed at close.",
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
			Help: "Items waiting in the recorder queue.",
		}, depth),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.enqueued, m.written, m.failed, m.spooled, m.writeErrors, m.batch, m.depth} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register recorder metrics: %w", err)
		}
	}
	return m, nil
}
