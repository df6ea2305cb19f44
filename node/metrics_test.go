package node

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// metricValue reads one series from the registry: name plus label pairs
// ("reason", "too_few_updates"); -1 if it does not exist.
func metricValue(t *testing.T, m *Metrics, name string, labels ...string) float64 {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	next:
		for _, s := range f.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range s.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case s.Counter != nil:
				return s.Counter.GetValue()
			case s.Gauge != nil:
				return s.Gauge.GetValue()
			case s.Histogram != nil:
				return float64(s.Histogram.GetSampleCount())
			}
		}
	}
	return -1
}

func TestMetricsNamesAsDocumented(t *testing.T) {
	m := NewMetrics()
	m.RoundCurrent.Set(7)
	m.RoundsCompleted.Inc()
	m.RoundsSkipped.WithLabelValues("too_few_updates").Inc()
	m.UpdatesReceived.WithLabelValues("rejected_signature").Add(2)
	m.PeersConnected.Set(3)
	m.EpsilonSpent.WithLabelValues("public").Set(0.5)
	m.BindBytes(func() uint64 { return 10 }, func() uint64 { return 20 })
	m.RoundDuration.Observe(1.5)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"daf_round_current 7", "daf_rounds_completed_total 1", `daf_rounds_skipped_total{reason="too_few_updates"} 1`,
		`daf_updates_received_total{result="rejected_signature"} 2`, "daf_peers_connected 3",
		`daf_privacy_epsilon_spent{tier="public"} 0.5`, "daf_bytes_sent_total 10", "daf_bytes_received_total 20",
		"daf_round_duration_seconds_count 1",
	} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if strings.Contains(string(body), "go_goroutines") {
		t.Error("per-node registry carries the global process collectors")
	}
}
