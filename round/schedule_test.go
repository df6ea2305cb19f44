package round

import (
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestScheduleSeedTimeline(t *testing.T) {
	g := time.Unix(0, 0)
	s := Schedule{Genesis: g, Interval: 120 * time.Second, PropagationTimeout: 30 * time.Second}
	r := s.RoundAt(time.Unix(1_000_000, 0)) // ⌊1e6/120⌋
	if r != 8333 {
		t.Fatalf("RoundAt = %d, want 8333", r)
	}
	start := s.Start(r)
	for name, c := range map[string]struct {
		got  time.Time
		want time.Duration
	}{
		"gossip":     {s.GossipAt(r), 10 * time.Second},
		"collect":    {s.CollectAt(r), 30 * time.Second},
		"collectEnd": {s.CollectEnd(r), 60 * time.Second},
		"aggregate":  {s.AggregateAt(r), 60 * time.Second},
		"apply":      {s.ApplyAt(r), 90 * time.Second},
		"end":        {s.End(r), 120 * time.Second},
	} {
		if d := c.got.Sub(start); d != c.want {
			t.Errorf("%s at +%v, want +%v", name, d, c.want)
		}
	}
	// A short propagation timeout closes Collect before the Aggregate mark.
	s.PropagationTimeout = 10 * time.Second
	if d := s.CollectEnd(r).Sub(start); d != 40*time.Second {
		t.Errorf("collect end with a 10 s timeout at +%v, want +40s", d)
	}
	// Demo scale: 2 s rounds, a 30 s timeout; the fractions govern.
	d := Schedule{Genesis: g, Interval: 2 * time.Second, PropagationTimeout: 30 * time.Second}
	r = d.RoundAt(time.Unix(101, 0))
	if r != 50 {
		t.Fatalf("2 s rounds: RoundAt(101 s) = %d, want 50", r)
	}
	if got := d.GossipAt(r).Sub(d.Start(r)); got != 166666666*time.Nanosecond {
		t.Errorf("2 s rounds: gossip at +%v", got)
	}
	if got := d.CollectEnd(r).Sub(d.Start(r)); got != time.Second {
		t.Errorf("2 s rounds: collect ends at +%v, want +1s", got)
	}
	if s.RoundAt(time.Unix(-5, 0)) != 0 {
		t.Error("a time before genesis must be round 0")
	}
	if p := s.NominalPhase(s.Start(9).Add(45 * time.Second)); p != PhaseAggregate {
		t.Errorf("nominal phase at +45 s with Collect ending at +40 s: %v", p)
	}
}

func TestScheduleProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := Schedule{
			Genesis:            time.Unix(rapid.Int64Range(0, 1e9).Draw(t, "genesis"), 0),
			Interval:           time.Duration(rapid.Int64Range(int64(time.Millisecond), int64(time.Hour)).Draw(t, "interval")),
			PropagationTimeout: time.Duration(rapid.Int64Range(0, int64(time.Hour)).Draw(t, "prop")),
		}
		now := s.Genesis.Add(time.Duration(rapid.Int64Range(0, int64(1000*time.Hour)).Draw(t, "offset")))
		r := s.RoundAt(now)
		if now.Before(s.Start(r)) || !now.Before(s.End(r)) {
			t.Fatalf("now %v outside its round %d [%v, %v)", now, r, s.Start(r), s.End(r))
		}
		marks := []time.Time{s.Start(r), s.GossipAt(r), s.CollectAt(r), s.CollectEnd(r), s.AggregateAt(r), s.ApplyAt(r), s.End(r)}
		for i := 1; i < len(marks); i++ {
			if marks[i].Before(marks[i-1]) {
				t.Fatalf("mark %d (%v) before mark %d (%v)", i, marks[i], i-1, marks[i-1])
			}
		}
		if s.RoundAt(s.Start(r)) != r || s.RoundAt(s.End(r)) != r+1 {
			t.Fatalf("slot boundaries of round %d misnumbered", r)
		}
	})
}
