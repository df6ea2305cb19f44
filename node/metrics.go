package node

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the Prometheus series of DESIGN §3, on a registry of the
// node's own: several nodes in one process (the demo, tests) each export
// their own values, and nothing lands on the global registry.
type Metrics struct {
	Registry *prometheus.Registry

	RoundCurrent     prometheus.Gauge
	RoundsCompleted  prometheus.Counter
	RoundsSkipped    *prometheus.CounterVec // reason
	UpdatesReceived  *prometheus.CounterVec // result
	PeersConnected   prometheus.Gauge
	EpsilonSpent     *prometheus.GaugeVec // tier
	RoundDuration    prometheus.Histogram
	PipelineDropped  *prometheus.CounterVec // stage
	PipelineQueueLen *prometheus.GaugeVec   // stage
}

// Results of daf_updates_received_total beyond those the round engine names.
const (
	ResultAccepted = "accepted"
)

// NewMetrics registers every series on a fresh registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		RoundCurrent: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "daf_round_current", Help: "The round number the node is in.",
		}),
		RoundsCompleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "daf_rounds_completed_total", Help: "Rounds this process aggregated and applied.",
		}),
		RoundsSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "daf_rounds_skipped_total", Help: "Rounds this process skipped, by reason.",
		}, []string{"reason"}),
		UpdatesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "daf_updates_received_total", Help: "Updates received, by verdict (accepted or rejected_<why>).",
		}, []string{"result"}),
		PeersConnected: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "daf_peers_connected", Help: "Peers with an open connection.",
		}),
		EpsilonSpent: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "daf_privacy_epsilon_spent", Help: "Privacy loss spent so far (lifetime, from the ledger), by tier; tier=\"all\" is the composition over tiers.",
		}, []string{"tier"}),
		RoundDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "daf_round_duration_seconds", Help: "Wall time from a round's start to its apply.",
			Buckets: prometheus.ExponentialBuckets(0.25, 2, 12),
		}),
		PipelineDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "daf_pipeline_dropped_total", Help: "Work items dropped by a full pipeline queue, by stage.",
		}, []string{"stage"}),
		PipelineQueueLen: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "daf_pipeline_queue_length", Help: "Items waiting in a pipeline stage's queue.",
		}, []string{"stage"}),
	}
	m.Registry.MustRegister(m.RoundCurrent, m.RoundsCompleted, m.RoundsSkipped, m.UpdatesReceived,
		m.PeersConnected, m.EpsilonSpent, m.RoundDuration,
		m.PipelineDropped, m.PipelineQueueLen)
	return m
}

// BindBytes exports the transport's byte counters as daf_bytes_sent_total
// and daf_bytes_received_total; the transport owns the counts.
func (m *Metrics) BindBytes(sent, received func() uint64) {
	m.Registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "daf_bytes_sent_total", Help: "DAF message bytes sent."},
			func() float64 { return float64(sent()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "daf_bytes_received_total", Help: "DAF message bytes received."},
			func() float64 { return float64(received()) }),
	)
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
