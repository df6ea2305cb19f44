package defense

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-12 }

func TestReputationSeedArithmetic(t *testing.T) {
	r := NewReputation(DefaultReputationParams())
	if g := r.Get("new"); g != 0.1 || !r.OnProbation("new") {
		t.Errorf("new identity at %v (probation %v), want 0.1 on probation", g, r.OnProbation("new"))
	}
	r.Reward("p")
	if g := r.Get("p"); !near(g, 0.11) {
		t.Errorf("after one valid delta %v, want 0.11", g)
	}
	r.Penalize("p")
	if g := r.Get("p"); !near(g, 0.01) {
		t.Errorf("after a penalty %v, want 0.01", g)
	}
	r.Penalize("p")
	if g := r.Get("p"); g != 0 {
		t.Errorf("clamped at %v, want 0", g)
	}
	for range 200 {
		r.Reward("q")
	}
	if g := r.Get("q"); g != 1 || r.OnProbation("q") {
		t.Errorf("after 200 valid deltas %v, want 1 and off probation", g)
	}
	s := r.Snapshot().Peers["p"]
	if s.Valid != 1 || s.Invalid != 2 {
		t.Errorf("counts %+v, want 1 valid 2 invalid", s)
	}
}

func TestReputationDecay(t *testing.T) {
	p := DefaultReputationParams()
	r := NewReputation(p)
	for range 40 {
		r.Reward("old") // 0.1 + 0.4 = 0.5, off probation after 20
	}
	for range 40 {
		r.Reward("old")
	}
	if g := r.Get("old"); !near(g, 0.9) {
		t.Fatalf("setup: %v, want 0.9", g)
	}
	r.Decay("old", p.DecayHalfLife)
	if g := r.Get("old"); !near(g, 0.7) {
		t.Errorf("one half-life from 0.9 towards 0.5: %v, want 0.7", g)
	}
	// Decay composes: two quarter... two halves of a half-life equal one.
	r.Decay("old", p.DecayHalfLife/2)
	r.Decay("old", p.DecayHalfLife/2)
	if g := r.Get("old"); !near(g, 0.6) {
		t.Errorf("two half half-lives from 0.7: %v, want 0.6", g)
	}
	r.Decay("old", 1000*p.DecayHalfLife)
	if g := r.Get("old"); !near(g, 0.5) {
		t.Errorf("long silence: %v, want neutral 0.5", g)
	}
	// A penalised established peer is forgiven towards neutral.
	for range 5 {
		r.Penalize("old")
	}
	r.Decay("old", p.DecayHalfLife)
	if g := r.Get("old"); !near(g, 0.25) {
		t.Errorf("0 after penalties, one half-life: %v, want 0.25", g)
	}
	// A new identity does not wait its way out of probation.
	r.Reward("fresh")
	r.Decay("fresh", 1000*p.DecayHalfLife)
	if g := r.Get("fresh"); !near(g, 0.1) {
		t.Errorf("silent probation peer: %v, want probation start 0.1", g)
	}
	// Unknown peers and non-positive durations are no-ops.
	r.Decay("ghost", time.Hour)
	if _, ok := r.Snapshot().Peers["ghost"]; ok {
		t.Error("Decay created a peer")
	}
	before := r.Get("old")
	r.Decay("old", -time.Hour)
	r.Decay("old", 0)
	if r.Get("old") != before {
		t.Error("non-positive silence changed the score")
	}
}

func TestReputationSnapshotJSONRoundTrip(t *testing.T) {
	r := NewReputation(DefaultReputationParams())
	r.Reward("a")
	r.Penalize("b")
	r.Reward("c")
	r.Decay("c", time.Hour)
	b, err := json.Marshal(r.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var s ReputationSnapshot
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	r2 := NewReputation(DefaultReputationParams())
	if err := r2.Restore(s); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "b", "c", "unknown"} {
		if r.Get(p) != r2.Get(p) || r.OnProbation(p) != r2.OnProbation(p) {
			t.Errorf("peer %s: %v → %v after restore", p, r.Get(p), r2.Get(p))
		}
	}
	r.Forget("a")
	if r.Get("a") != 0.1 {
		t.Error("forgotten peer should start on probation again")
	}
}

func TestReputationRestoreRejectsBadScores(t *testing.T) {
	for _, score := range []float64{math.NaN(), -0.1, 1.5, math.Inf(1)} {
		r := NewReputation(DefaultReputationParams())
		r.Reward("keep")
		err := r.Restore(ReputationSnapshot{Peers: map[string]PeerReputation{"ok": {Score: 0.5}, "bad": {Score: score}}})
		if !errors.Is(err, ErrCorruptReputation) || !strings.Contains(err.Error(), `"bad"`) {
			t.Errorf("score %v: %v, want ErrCorruptReputation naming the peer", score, err)
		}
		if !near(r.Get("keep"), 0.11) {
			t.Errorf("failed restore changed the table")
		}
	}
}

func TestReputationParams(t *testing.T) {
	if err := DefaultReputationParams().Validate(); err != nil {
		t.Fatal(err)
	}
	bad := ReputationParams{ValidReward: math.NaN(), InvalidPenalty: 2, Neutral: -1, ProbationStart: 0.2, DecayHalfLife: 0}
	err := bad.Validate()
	for _, field := range []string{"ValidReward", "InvalidPenalty", "Neutral", "DecayHalfLife"} {
		if !strings.Contains(fmt2(err), field) {
			t.Errorf("Validate does not name %s: %v", field, err)
		}
	}
	if strings.Contains(fmt2(err), "ProbationStart") || !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Validate: %v", err)
	}
	r := NewReputation(bad)
	got := r.Params()
	def := DefaultReputationParams()
	if got.ValidReward != def.ValidReward || got.InvalidPenalty != def.InvalidPenalty || got.Neutral != def.Neutral ||
		got.DecayHalfLife != def.DecayHalfLife || got.ProbationStart != 0.2 {
		t.Errorf("params in effect %+v", got)
	}
}

func fmt2(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
