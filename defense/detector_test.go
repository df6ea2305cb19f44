package defense

import (
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/dafnet/daf/adapter"
)

func mustValidate(t *testing.T, d *Detector, u *adapter.Update) Verdict {
	t.Helper()
	v, err := d.Validate(u)
	if err != nil {
		t.Fatalf("Validate(%s): %v", u.Meta.Node, err)
	}
	return v
}

func wantOutcome(t *testing.T, v Verdict, o Outcome, r Reason) {
	t.Helper()
	if v.Outcome != o || v.Reason != r {
		t.Fatalf("verdict %v, want %s (%s)", v, o, r)
	}
}

func TestMagnitudeAgainstOwnHistory(t *testing.T) {
	store := NewMemoryStatsStore()
	d := NewDetector(DefaultConfig(), store)
	for range 3 {
		wantOutcome(t, mustValidate(t, d, vec("a", 1, 0, 0, 0)), Accepted, NoReason)
	}
	v := mustValidate(t, d, vec("a", 10.5, 0, 0, 0))
	wantOutcome(t, v, Rejected, ExcessiveMagnitude)
	if v.Weight != 0 || !strings.Contains(v.Detail, "historical mean") || !strings.Contains(v.Detail, `"a"`) {
		t.Errorf("verdict %+v: want weight 0 and a detail naming node and reference", v)
	}
	wantOutcome(t, mustValidate(t, d, vec("a", 9.5, 0, 0, 0)), Accepted, NoReason)
	s, _, _ := store.LoadStats("a")
	if s.Accepted != 4 || math.Abs(s.MeanMagnitude-(1+1+1+9.5)/4) > 1e-12 {
		t.Errorf("stats %+v: want 4 accepted, mean 3.125", s)
	}
}

func TestMagnitudeMeanIsExponentialAfterHorizon(t *testing.T) {
	store := NewMemoryStatsStore()
	d := NewDetector(DefaultConfig(), store)
	// Slow reference: exact mean for 20 norms, then weight 1/20.
	norms := []float64{}
	for i := range 30 {
		norms = append(norms, 1+float64(i%4)*0.5)
	}
	var want float64
	for i, n := range norms {
		mustValidate(t, d, vec("a", float32(n), 0))
		k := float64(min(i+1, magnitudeHorizon))
		want = want + (n-want)/k
	}
	var exact float64
	for _, n := range norms[:20] {
		exact += n
	}
	exact /= 20
	for _, n := range norms[20:] {
		exact = exact*(19.0/20) + n/20
	}
	s, _, _ := store.LoadStats("a")
	if math.Abs(s.MeanMagnitude-exact) > 1e-5 || math.Abs(want-exact) > 1e-9 {
		t.Errorf("mean %v, want %v", s.MeanMagnitude, exact)
	}
}

func TestNewNodeUsesEstablishedPopulation(t *testing.T) {
	d := NewDetector(DefaultConfig(), NewMemoryStatsStore())
	for _, n := range []string{"b", "c", "d"} {
		for range 3 {
			wantOutcome(t, mustValidate(t, d, vec(n, 2, 0)), Accepted, NoReason)
		}
	}
	// A group nobody else sends keeps Check 3 out of the way.
	v := mustValidate(t, d, groupVec("new", "solo", 21, 0))
	wantOutcome(t, v, Rejected, ExcessiveMagnitude)
	if !strings.Contains(v.Detail, "established nodes") {
		t.Errorf("detail %q should name the population reference", v.Detail)
	}
	wantOutcome(t, mustValidate(t, d, groupVec("new", "solo", 19, 0)), Accepted, NoReason)
	// Still warming up (1 accepted < 3): the population reference, not its
	// own mean of 19, limits it.
	wantOutcome(t, mustValidate(t, d, groupVec("new", "solo", 25, 0)), Rejected, ExcessiveMagnitude)
}

func TestFirstUpdateWithoutAnyReferencePasses(t *testing.T) {
	d := NewDetector(DefaultConfig(), NewMemoryStatsStore())
	wantOutcome(t, mustValidate(t, d, vec("a", 1e6, 0)), Accepted, NoReason)
	// Its second update is held to its own short history.
	wantOutcome(t, mustValidate(t, d, vec("a", 1e8, 0)), Rejected, ExcessiveMagnitude)
}

func TestDirectionFlips(t *testing.T) {
	store := NewMemoryStatsStore()
	cfg := DefaultConfig()
	d := NewDetector(cfg, store)
	up, down := vec("a", 1, 0, 0, 0), vec("a", -1, 0, 0, 0)
	wantOutcome(t, mustValidate(t, d, up), Accepted, NoReason)
	for i := range cfg.DirectionFlipThreshold {
		wantOutcome(t, mustValidate(t, d, down), Accepted, NoReason)
		if s, _, _ := store.LoadStats("a"); s.Flips() != i+1 {
			t.Fatalf("after %d flips the stats count %d", i+1, s.Flips())
		}
	}
	v := mustValidate(t, d, down)
	wantOutcome(t, v, Rejected, DirectionAnomaly)
	if !strings.Contains(v.Detail, "6 flips") {
		t.Errorf("detail %q should give the flip count", v.Detail)
	}
	// Flips did not move the reference: a node that keeps flipping stays
	// rejected.
	wantOutcome(t, mustValidate(t, d, down), Rejected, DirectionAnomaly)
	// Non-flipped updates age the flips out of the window.
	for range FlipWindow - 1 {
		wantOutcome(t, mustValidate(t, d, up), Accepted, NoReason)
	}
	if s, _, _ := store.LoadStats("a"); s.Flips() != 1 {
		t.Errorf("after %d aligned updates %d flips remain, want 1", FlipWindow-1, s.Flips())
	}
	wantOutcome(t, mustValidate(t, d, up), Accepted, NoReason)
	wantOutcome(t, mustValidate(t, d, down), Accepted, NoReason)
}

func TestFlipThresholdZeroRejectsFirstFlip(t *testing.T) {
	cfg := DefaultConfig()
	cfg.DirectionFlipThreshold = 0
	d := NewDetector(cfg, NewMemoryStatsStore())
	mustValidate(t, d, vec("a", 1, 1))
	wantOutcome(t, mustValidate(t, d, vec("a", -1, -0.5)), Rejected, DirectionAnomaly)
	// Orthogonal is not a flip.
	wantOutcome(t, mustValidate(t, d, vec("a", -1, 1)), Accepted, NoReason)
}

// logRange is the slow statement of Check 3's range.
func logRange(norms []float64, k float64) (lo, hi float64) {
	logs := make([]float64, len(norms))
	for i, n := range norms {
		logs[i] = math.Log(n)
	}
	med := func(xs []float64) float64 {
		s := append([]float64(nil), xs...)
		for i := range s {
			for j := i + 1; j < len(s); j++ {
				if s[j] < s[i] {
					s[i], s[j] = s[j], s[i]
				}
			}
		}
		if len(s)%2 == 1 {
			return s[len(s)/2]
		}
		return (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	m := med(logs)
	dev := make([]float64, len(logs))
	for i := range logs {
		dev[i] = math.Abs(logs[i] - m)
	}
	half := math.Max(k*1.4826*med(dev), math.Ln2)
	return math.Exp(m - half), math.Exp(m + half)
}

func TestGroupNormRange(t *testing.T) {
	d := NewDetector(DefaultConfig(), NewMemoryStatsStore())
	for _, n := range []string{"b", "c", "d", "e"} {
		wantOutcome(t, mustValidate(t, d, vec(n, 1, 0)), Accepted, NoReason)
	}
	// Identical norms: the ln 2 floor gives [0.5, 2].
	for _, c := range []struct {
		norm    float32
		outcome Outcome
		weight  float64
	}{
		{5, Suspicious, 2.0 / 5},
		{3, Suspicious, 0.5},
		{0.3, Suspicious, 0.5},
		{1.9, Accepted, 1},
	} {
		v := mustValidate(t, d, vec("x", c.norm, 0))
		if v.Outcome != c.outcome || math.Abs(v.Weight-c.weight) > 1e-6 {
			t.Errorf("norm %v: verdict %v weight %v, want %s weight %v", c.norm, v, v.Weight, c.outcome, c.weight)
		}
		if c.outcome == Suspicious && (v.Reason != GroupNormOutOfRange || !strings.Contains(v.Detail, "coarse")) {
			t.Errorf("norm %v: %v should name the group", c.norm, v)
		}
	}
}

func TestGroupNormRangeMatchesSlowReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for trial := range 20 {
		d := NewDetector(DefaultConfig(), NewMemoryStatsStore())
		var norms []float64
		for i := range 3 + trial%5 {
			n := math.Exp(rng.NormFloat64())
			norms = append(norms, n)
			d.pop.record(string(rune('a'+i)), NodeStats{Accepted: 1, MeanMagnitude: n, GroupNorms: map[string]float64{"g": n}}, 3)
		}
		lo, hi, ok := d.pop.normRange("g", "x", 4)
		wlo, whi := logRange(norms, 4)
		if !ok || math.Abs(lo-wlo) > 1e-9*wlo || math.Abs(hi-whi) > 1e-9*whi {
			t.Fatalf("trial %d: range [%v, %v], slow reference [%v, %v]", trial, lo, hi, wlo, whi)
		}
	}
}

func TestStatsUntouchedUnlessAccepted(t *testing.T) {
	store := newTestStore()
	d := NewDetector(DefaultConfig(), store)
	for _, n := range []string{"b", "c", "d"} {
		mustValidate(t, d, vec(n, 1, 0))
	}
	for range 3 {
		mustValidate(t, d, vec("a", 1, 0))
	}
	before, _, _ := store.LoadStats("a")
	saves := store.saves
	for _, u := range []*adapter.Update{vec("a", 50, 0), vec("a", 5, 0), vec("a", float32(math.NaN()), 0), vec("a")} {
		if v := mustValidate(t, d, u); v.Outcome == Accepted {
			t.Fatalf("%v accepted", u.Groups)
		}
	}
	after, _, _ := store.LoadStats("a")
	if !reflect.DeepEqual(before, after) || store.saves != saves {
		t.Errorf("stats changed without an accepted update:\n before %+v\n after  %+v", before, after)
	}
}

func TestNonFiniteAndEmptyRejectedEvenWhenDisabled(t *testing.T) {
	for _, enabled := range []bool{true, false} {
		cfg := DefaultConfig()
		cfg.Enabled = enabled
		d := NewDetector(cfg, NewMemoryStatsStore())
		v := mustValidate(t, d, vec("a", 1, float32(math.Inf(1))))
		wantOutcome(t, v, Rejected, NonFinite)
		if !strings.Contains(v.Detail, "coarse/") {
			t.Errorf("detail %q should name the tensor", v.Detail)
		}
		wantOutcome(t, mustValidate(t, d, vec("a")), Rejected, EmptyUpdate)
	}
}

func TestDisabledAcceptsWithoutStatistics(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Enabled = false
	store := newTestStore()
	d := NewDetector(cfg, store)
	mustValidate(t, d, vec("a", 1, 0))
	for _, x := range []float32{1e6, -1e6, 1e-9} {
		wantOutcome(t, mustValidate(t, d, vec("a", x, 0)), Accepted, NoReason)
	}
	if _, ok, _ := store.LoadStats("a"); ok || store.saves != 0 {
		t.Errorf("disabled detector saved statistics")
	}
}

func TestValidateErrors(t *testing.T) {
	d := NewDetector(DefaultConfig(), NewMemoryStatsStore())
	if _, err := d.Validate(nil); !errors.Is(err, ErrBadUpdate) {
		t.Errorf("nil update: %v, want ErrBadUpdate", err)
	}
	if _, err := d.Validate(vec("", 1)); !errors.Is(err, ErrBadUpdate) || !strings.Contains(err.Error(), "source") {
		t.Errorf("no source: %v", err)
	}
	bad := DefaultConfig()
	bad.MaxMagnitudeMultiplier = math.NaN()
	if _, err := NewDetector(bad, NewMemoryStatsStore()).Validate(vec("a", 1)); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "max_magnitude_multiplier") {
		t.Errorf("bad config: %v", err)
	}
	if _, err := NewDetector(DefaultConfig(), nil).Validate(vec("a", 1)); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("nil store: %v", err)
	}
	boom := errors.New("disk on fire")
	store := newTestStore()
	store.loadErr = boom
	if _, err := NewDetector(DefaultConfig(), store).Validate(vec("a", 1)); !errors.Is(err, ErrStore) || !errors.Is(err, boom) || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("load failure: %v", err)
	}
	store = newTestStore()
	store.saveErr = boom
	if _, err := NewDetector(DefaultConfig(), store).Validate(vec("a", 1)); !errors.Is(err, ErrStore) || !errors.Is(err, boom) {
		t.Errorf("save failure: %v", err)
	}
}

func TestCorruptStatsReported(t *testing.T) {
	unit := make([]float64, SketchDims)
	unit[3] = 1
	for name, s := range map[string]NodeStats{
		"nan mean":        {Accepted: 1, MeanMagnitude: math.NaN()},
		"negative mean":   {Accepted: 1, MeanMagnitude: -1},
		"short direction": {Accepted: 1, MeanMagnitude: 1, Direction: []float64{1}},
		"long direction":  {Accepted: 1, MeanMagnitude: 1, Direction: []float64{2, 0, 0}},
		"not unit":        {Accepted: 1, MeanMagnitude: 1, Direction: make([]float64, SketchDims)},
		"inf norm":        {Accepted: 1, MeanMagnitude: 1, Direction: unit, GroupNorms: map[string]float64{"coarse": math.Inf(1)}},
		"ghost history":   {Accepted: 0, MeanMagnitude: 1},
	} {
		store := NewMemoryStatsStore()
		store.SaveStats("a", s)
		_, err := NewDetector(DefaultConfig(), store).Validate(vec("a", 1))
		if !errors.Is(err, ErrCorruptStats) || !strings.Contains(err.Error(), `"a"`) {
			t.Errorf("%s: %v, want ErrCorruptStats naming the node", name, err)
		}
	}
}

// The daemon persists NodeStats as JSON; a detector restarted on the
// decoded statistics must judge exactly like the one that kept running.
func TestRestartFromJSONStats(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	live := NewMemoryStatsStore()
	d := NewDetector(DefaultConfig(), live)
	nodes := []string{"a", "b", "c", "d", "e"}
	for range 5 {
		for _, n := range nodes {
			mustValidate(t, d, randomVec(rng, n, 64, 1))
		}
	}
	restored := NewMemoryStatsStore()
	for _, n := range nodes {
		s, _, _ := live.LoadStats(n)
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		var back NodeStats
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		restored.SaveStats(n, back)
	}
	d2 := NewDetector(DefaultConfig(), restored)
	if err := d2.Prime(nodes); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		n := nodes[i%len(nodes)]
		u := randomVec(rng, n, 64, []float64{1, 0.2, 6, 30}[i%4])
		if i%7 == 0 {
			u = vec(n, make([]float32, 64)...)
			u.Groups["coarse"]["layers.0.q_proj.lora_A.weight"].Data[0] = -1
		}
		v1, v2 := mustValidate(t, d, u), mustValidate(t, d2, u)
		if v1 != v2 {
			t.Fatalf("update %d: running detector %v, restarted %v", i, v1, v2)
		}
	}
}

func TestZeroUpdateHasNoDirection(t *testing.T) {
	store := NewMemoryStatsStore()
	d := NewDetector(DefaultConfig(), store)
	wantOutcome(t, mustValidate(t, d, vec("a", 0, 0)), Accepted, NoReason)
	s, _, _ := store.LoadStats("a")
	if len(s.Direction) != 0 || s.Accepted != 1 {
		t.Errorf("zero update stats %+v: want no direction", s)
	}
	wantOutcome(t, mustValidate(t, d, vec("a", 1, 1)), Accepted, NoReason)
}

func TestVerdictStrings(t *testing.T) {
	if Rejected.String() != "rejected" || DirectionAnomaly.String() != "direction_anomaly" || Outcome(9).String() != "outcome(9)" {
		t.Error("names changed: metrics labels and logs depend on them")
	}
	v := Verdict{Outcome: Suspicious, Reason: GroupNormOutOfRange, Detail: "x"}
	if v.String() != "suspicious (group_norm_out_of_range): x" {
		t.Errorf("%q", v.String())
	}
}
