package defense_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/defense"
	"github.com/dafnet/daf/defense/attack"
)

// The evaluation federation: honest non-IID nodes plus attackers that
// behave honestly (as "established" nodes with a history) until
// switchRound, or that appear only at switchRound ("newcomers").
const (
	evalHonest   = 16
	evalAttack   = 4
	evalRounds   = 30
	switchRound  = 10
	evalSybils   = 6
	evalSeedBase = 20260
)

type scenario struct {
	name      string
	newcomers bool
	// craft returns the round's malicious updates, attacker ids set.
	craft func(rng *rand.Rand, own []*adapter.Update, honest []*adapter.Update, ids []string) []*adapter.Update
}

// littleIsEnoughZ is Baruch et al.'s z_max for n nodes of which f collude:
// the largest z for which s = ⌊n/2+1⌋ − f honest nodes still lie further
// from the mean than the attackers, z = Φ⁻¹((n − s)/n).
func littleIsEnoughZ(n, f int) float64 {
	s := n/2 + 1 - f
	p := float64(n-s) / float64(n)
	return math.Sqrt2 * math.Erfinv(2*p-1)
}

func rms(u *adapter.Update) float64 { return u.L2() / math.Sqrt(float64(u.NumParams())) }

func withIDs(us []*adapter.Update, ids []string) []*adapter.Update {
	for i, u := range us {
		u.Meta.Node = ids[i]
	}
	return us
}

func evalAttacks() []scenario {
	each := func(f func(rng *rand.Rand, u *adapter.Update) *adapter.Update) func(*rand.Rand, []*adapter.Update, []*adapter.Update, []string) []*adapter.Update {
		return func(rng *rand.Rand, own, _ []*adapter.Update, ids []string) []*adapter.Update {
			out := make([]*adapter.Update, len(own))
			for i, u := range own {
				out[i] = f(rng, u)
			}
			return withIDs(out, ids)
		}
	}
	same := func(f func(honest []*adapter.Update) *adapter.Update) func(*rand.Rand, []*adapter.Update, []*adapter.Update, []string) []*adapter.Update {
		return func(_ *rand.Rand, own, honest []*adapter.Update, ids []string) []*adapter.Update {
			all := append(append([]*adapter.Update(nil), honest...), own...)
			base := f(all)
			out := make([]*adapter.Update, len(ids))
			for i := range out {
				out[i] = base.Clone()
			}
			return withIDs(out, ids)
		}
	}
	z := littleIsEnoughZ(evalHonest+evalAttack, evalAttack)
	base := []scenario{
		{name: "sign_flip", craft: each(func(_ *rand.Rand, u *adapter.Update) *adapter.Update { return attack.SignFlip(u) })},
		{name: "scale_x10", craft: each(func(_ *rand.Rand, u *adapter.Update) *adapter.Update { return attack.Scale(u, 10) })},
		{name: "gaussian_noise_10x", craft: each(func(rng *rand.Rand, u *adapter.Update) *adapter.Update {
			return attack.GaussianNoise(u, 10*rms(u), rng)
		})},
		{name: "gaussian_noise_30x", craft: each(func(rng *rand.Rand, u *adapter.Update) *adapter.Update {
			return attack.GaussianNoise(u, 30*rms(u), rng)
		})},
		{name: fmt.Sprintf("little_is_enough_z%.2f", z), craft: same(func(h []*adapter.Update) *adapter.Update { return attack.LittleIsEnough(h, z) })},
		{name: "inner_product_eps0.5", craft: same(func(h []*adapter.Update) *adapter.Update { return attack.InnerProduct(h, 0.5) })},
		{name: "sybil_clones", craft: func(rng *rand.Rand, own, _ []*adapter.Update, ids []string) []*adapter.Update {
			return withIDs(attack.SybilClones(attack.SignFlip(own[0]), len(ids), 0.01, rng), ids)
		}},
	}
	var out []scenario
	for _, s := range base {
		for _, nc := range []bool{false, true} {
			s := s
			s.newcomers = nc
			out = append(out, s)
		}
	}
	return out
}

type rates struct {
	attackUpdates, attackRejected, attackFlagged int
	honestUpdates, honestRejected, honestFlagged int
}

func (r rates) detection() float64       { return frac(r.attackFlagged, r.attackUpdates) }
func (r rates) rejection() float64       { return frac(r.attackRejected, r.attackUpdates) }
func (r rates) falsePositive() float64   { return frac(r.honestFlagged, r.honestUpdates) }
func (r rates) honestRejection() float64 { return frac(r.honestRejected, r.honestUpdates) }

func frac(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// evaluate runs one scenario over several seeds. An attack update counts as
// detected when the detector does not accept it or DetectSybil flags its
// sender that round; an honest update counts as a false positive on the
// same terms. Attack updates are counted from switchRound on; honest ones
// in every round.
func evaluate(sc *scenario, seeds int) (rates, error) {
	var r rates
	cfg := defense.DefaultConfig()
	for seed := range seeds {
		rounds := honestRounds(seed)
		rng := rand.New(rand.NewPCG(evalSeedBase+1, uint64(seed)))
		det := defense.NewDetector(cfg, defense.NewMemoryStatsStore())
		for round, updates := range rounds {
			honest := updates[:evalHonest]
			own := updates[evalHonest:]
			var batch []*adapter.Update
			batch = append(batch, honest...)
			malicious := map[string]bool{}
			switch {
			case sc == nil:
				batch = append(batch, own...)
			case round < switchRound:
				if !sc.newcomers {
					batch = append(batch, own...)
				}
			default:
				n := evalAttack
				if strings.HasPrefix(sc.name, "sybil") {
					n = evalSybils
				}
				ids := make([]string, n)
				for i := range ids {
					ids[i] = fmt.Sprintf("attacker-%02d", i)
					if sc.newcomers {
						ids[i] = fmt.Sprintf("newcomer-%02d", i)
					}
					malicious[ids[i]] = true
				}
				if !sc.newcomers && n > evalAttack {
					// Established attackers own the first ids; extra Sybils
					// are new.
					for i := evalAttack; i < n; i++ {
						ids[i] = fmt.Sprintf("sybil-%02d", i)
						malicious[ids[i]] = true
					}
				}
				for i := range own {
					if !sc.newcomers {
						own[i].Meta.Node = ids[i]
					}
				}
				batch = append(batch, sc.craft(rng, own, honest, ids)...)
			}
			if sc == nil || round < switchRound {
				for i, u := range own {
					u.Meta.Node = fmt.Sprintf("attacker-%02d", i)
				}
			}
			flagged := map[string]bool{}
			for _, id := range defense.DetectSybil(batch, cfg) {
				flagged[id] = true
			}
			for _, u := range batch {
				v, err := det.Validate(u)
				if err != nil {
					return r, fmt.Errorf("seed %d round %d node %s: %w", seed, round, u.Meta.Node, err)
				}
				notAccepted := v.Outcome != defense.Accepted || flagged[u.Meta.Node]
				switch {
				case malicious[u.Meta.Node]:
					r.attackUpdates++
					if v.Outcome == defense.Rejected || flagged[u.Meta.Node] {
						r.attackRejected++
					}
					if notAccepted {
						r.attackFlagged++
					}
				case strings.HasPrefix(u.Meta.Node, "honest"):
					r.honestUpdates++
					if v.Outcome == defense.Rejected || flagged[u.Meta.Node] {
						r.honestRejected++
					}
					if notAccepted {
						r.honestFlagged++
					}
				}
			}
		}
	}
	return r, nil
}

var (
	honestCacheMu sync.Mutex
	honestCache   = map[int][][]*adapter.Update{}
)

// honestRounds returns a fresh copy of seed's honest federation; it is
// generated once and cloned, since scenarios rename the attackers.
func honestRounds(seed int) [][]*adapter.Update {
	honestCacheMu.Lock()
	defer honestCacheMu.Unlock()
	rounds, ok := honestCache[seed]
	if !ok {
		rng := rand.New(rand.NewPCG(evalSeedBase, uint64(seed)))
		rounds = attack.HonestNonIID(rng, evalHonest+evalAttack, evalRounds, evalParams())
		honestCache[seed] = rounds
	}
	out := make([][]*adapter.Update, len(rounds))
	for r, us := range rounds {
		out[r] = make([]*adapter.Update, len(us))
		for i, u := range us {
			out[r][i] = u.Clone()
		}
	}
	return out
}

// evalSeeds is how many federations each rate is averaged over. With 3, one
// base seed in ten put a rate below its bound (an unlucky draw of honest
// norms, not a change in the filters); with 6 the bounds below held for
// every one of ten base seeds tried, with a margin of at least 3 points.
const evalSeeds = 6

// evalParams are the default honest statistics on a narrower model
// (rank 4, width 16: 1536 values per update), which keeps the evaluation
// fast; the rates depend on the geometry (relative norms, cosines), not on
// the width.
func evalParams() attack.HonestParams {
	p := attack.DefaultHonestParams()
	p.Dim = 16
	return p
}

type scenarioRates struct {
	scenario
	rates
}

var (
	ratesOnce  sync.Once
	ratesErr   error
	cleanRates rates
	allRates   []scenarioRates
)

// computeRates evaluates every scenario once for both tests below, the
// scenarios side by side on the available cores (each has its own detector
// and random source, so the results do not depend on the schedule).
func computeRates(t testing.TB) (rates, []scenarioRates) {
	ratesOnce.Do(func() {
		scenarios := evalAttacks()
		results := make([]rates, len(scenarios)+1)
		errs := make([]error, len(scenarios)+1)
		slots := make(chan struct{}, runtime.GOMAXPROCS(0))
		var wg sync.WaitGroup
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				slots <- struct{}{}
				defer func() { <-slots }()
				var sc *scenario // nil: no attack
				if i > 0 {
					sc = &scenarios[i-1]
				}
				results[i], errs[i] = evaluate(sc, evalSeeds)
			}()
		}
		wg.Wait()
		ratesErr = errors.Join(errs...)
		cleanRates = results[0]
		for i, sc := range scenarios {
			allRates = append(allRates, scenarioRates{sc, results[i+1]})
		}
	})
	if ratesErr != nil {
		t.Fatal(ratesErr)
	}
	return cleanRates, allRates
}

func (s scenario) who() string {
	if s.newcomers {
		return "newcomers"
	}
	return "established"
}

// TestReportRates prints each attack's detection and false-positive rate
// (go test -run TestReportRates -v ./defense).
func TestReportRates(t *testing.T) {
	clean, all := computeRates(t)
	t.Logf("%d honest + %d attackers, %d rounds, attacks from round %d, %d seeds; Sybil runs use %d identities",
		evalHonest, evalAttack, evalRounds, switchRound, evalSeeds, evalSybils)
	t.Logf("detected = not accepted (rejected or suspicious) or Sybil-flagged; rejected = rejected or Sybil-flagged")
	t.Logf("%-28s %-12s %9s %9s %9s %9s", "attack", "attackers", "detected", "rejected", "honest-FP", "honest-rej")
	t.Logf("%-28s %-12s %9s %9s %8.2f%% %8.2f%%", "none", "-", "-", "-", 100*clean.falsePositive(), 100*clean.honestRejection())
	for _, r := range all {
		t.Logf("%-28s %-12s %8.1f%% %8.1f%% %8.2f%% %8.2f%%", r.name, r.who(),
			100*r.detection(), 100*r.rejection(), 100*r.falsePositive(), 100*r.honestRejection())
	}
}

// TestFilterRates holds the filters to the rates they reach on honest
// non-IID updates. Bounds sit below the measured values with a margin;
// attacks the filters cannot see by design (a sign flip from an identity
// with no history) are reported above, not bounded.
func TestFilterRates(t *testing.T) {
	clean, all := computeRates(t)
	if fp := clean.falsePositive(); fp > 0.05 {
		t.Errorf("no attack: honest false-positive rate %.3f > 0.05", fp)
	}
	if rej := clean.honestRejection(); rej > 0 {
		t.Errorf("no attack: %.3f of honest updates rejected, want none", rej)
	}
	minDetection := map[string]float64{
		"sign_flip/established": 0.70, // the first 5 flips pass (direction_flip_threshold)
		// ×10 sits on max_magnitude_multiplier: Check 1 fires only when the
		// attacker's honest norm this round is above its reference mean,
		// which is rare (rejected ≈ 0 % for established attackers), so
		// detection is mostly Check 3's Suspicious, and its range in a
		// spread-out round can reach ×10. Measured 93.5–100 % over ten
		// base seeds.
		"scale_x10/established":            0.90,
		"scale_x10/newcomers":              0.90,
		"gaussian_noise_10x/established":   0.95,
		"gaussian_noise_10x/newcomers":     0.95,
		"gaussian_noise_30x/established":   0.95,
		"gaussian_noise_30x/newcomers":     0.95,
		"inner_product_eps0.5/established": 0.80,
		"inner_product_eps0.5/newcomers":   0.70,
		"sybil_clones/established":         0.80, // all but one clone flagged: 5/6
		"sybil_clones/newcomers":           0.80,
	}
	minRejection := map[string]float64{
		"gaussian_noise_30x/established": 0.95,
	}
	checked := 0
	for _, r := range all {
		name := r.name + "/" + r.who()
		if strings.HasPrefix(r.name, "little_is_enough") {
			// The colluders send one vector: Sybil clustering flags all
			// but one of the four.
			name = "little_is_enough/" + r.who()
			minDetection[name] = 0.70
		}
		if fp := r.falsePositive(); fp > 0.08 {
			t.Errorf("%s: honest false-positive rate %.3f > 0.08", name, fp)
		}
		if rej := r.honestRejection(); rej > 0.01 {
			t.Errorf("%s: honest rejection rate %.3f > 0.01", name, rej)
		}
		if want, ok := minDetection[name]; ok {
			checked++
			if got := r.detection(); got < want {
				t.Errorf("%s: detection rate %.3f < %.2f", name, got, want)
			}
		}
		if want, ok := minRejection[name]; ok {
			if got := r.rejection(); got < want {
				t.Errorf("%s: rejection rate %.3f < %.2f", name, got, want)
			}
		}
	}
	if checked != len(minDetection) {
		t.Errorf("bounded %d scenarios, want %d: a scenario name changed", checked, len(minDetection))
	}
}
