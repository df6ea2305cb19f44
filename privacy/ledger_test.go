package privacy

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func newTestLedger(t testing.TB, store LedgerStore, budget float64) *Ledger {
	t.Helper()
	l, err := NewLedger(store, budget, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func composed(t testing.TB, releases ...[2]float64) float64 {
	t.Helper()
	a := NewAccountant(nil)
	for _, r := range releases {
		if err := a.Compose(r[0], r[1], 1); err != nil {
			t.Fatal(err)
		}
	}
	eps, _ := a.Epsilon(1e-5)
	return eps
}

func TestLedgerComposesAcrossTiers(t *testing.T) {
	l := newTestLedger(t, &MemoryLedgerStore{}, 0)
	for r := uint64(1); r <= 3; r++ {
		if err := l.Charge(Public, r, 1.1, 0.5); err != nil {
			t.Fatal(err)
		}
	}
	// The same data released, noised, to a group as well: composes with
	// the public releases.
	if err := l.Charge(Group, 3, 2.0, 1); err != nil {
		t.Fatal(err)
	}
	want := composed(t, [2]float64{1.1, 0.5}, [2]float64{1.1, 0.5}, [2]float64{1.1, 0.5}, [2]float64{2.0, 1})
	if got := l.Spent(); math.Abs(got-want) > 1e-12 {
		t.Errorf("spent %v, want %v", got, want)
	}
	by := l.SpentByTier()
	if wantPub := composed(t, [2]float64{1.1, 0.5}, [2]float64{1.1, 0.5}, [2]float64{1.1, 0.5}); math.Abs(by[Public]-wantPub) > 1e-12 {
		t.Errorf("public %v, want %v", by[Public], wantPub)
	}
	if wantGroup := composed(t, [2]float64{2.0, 1}); math.Abs(by[Group]-wantGroup) > 1e-12 {
		t.Errorf("group %v, want %v", by[Group], wantGroup)
	}
	if !(l.Spent() > by[Public] && l.Spent() > by[Group]) {
		t.Errorf("total %v must exceed each tier %v", l.Spent(), by)
	}
}

func TestLedgerUnprotectedReleases(t *testing.T) {
	l := newTestLedger(t, &MemoryLedgerStore{}, 1)
	for r := uint64(1); r <= 4; r++ {
		if err := l.Charge(Tenant, r, 0, 1); err != nil {
			t.Fatal(err)
		}
	}
	if l.Spent() != 0 || len(l.SpentByTier()) != 0 || l.Unprotected()[Tenant] != 4 {
		t.Errorf("spent %v, by tier %v, unprotected %v", l.Spent(), l.SpentByTier(), l.Unprotected())
	}
	rep := l.Report()
	if len(rep.Tiers) != 1 || rep.Tiers[0].Tier != "tenant" || rep.Tiers[0].DPProtected || rep.Tiers[0].UnprotectedReleases != 4 || rep.Tiers[0].LastRound != 4 {
		t.Errorf("report %+v", rep)
	}
	if err := l.Charge(Public, 5, 0, 1); !errors.Is(err, ErrBadParameter) {
		t.Errorf("unnoised public release: %v", err)
	}
	if err := l.Charge(Private, 5, 1, 1); !errors.Is(err, ErrScope) {
		t.Errorf("private release: %v", err)
	}
	for _, c := range [][2]float64{{-1, 1}, {math.NaN(), 1}, {1, 0}, {1, 2}} {
		if err := l.Charge(Public, 5, c[0], c[1]); !errors.Is(err, ErrBadParameter) {
			t.Errorf("z=%v q=%v: %v", c[0], c[1], err)
		}
	}
	if err := l.Charge(Public, 5, 1e-200, 1); !errors.Is(err, ErrBadParameter) {
		t.Errorf("noise multiplier 1e-200: %v", err)
	}
	if l.Spent() != 0 || len(l.SpentByTier()) != 0 {
		t.Errorf("refused charges changed the ledger: %v %v", l.Spent(), l.SpentByTier())
	}
}

func TestLedgerBudget(t *testing.T) {
	store := &MemoryLedgerStore{}
	one := composed(t, [2]float64{3, 1})
	two := composed(t, [2]float64{3, 1}, [2]float64{3, 1})
	budget := (one + two) / 2 // room for one release, not two
	l := newTestLedger(t, store, budget)
	if err := l.Charge(Public, 1, 3, 1); err != nil {
		t.Fatal(err)
	}
	if l.Exhausted() {
		t.Fatal("exhausted after one release")
	}
	err := l.Charge(Public, 2, 3, 1)
	if !errors.Is(err, ErrBudgetExceeded) || !strings.Contains(err.Error(), "round 2") || !strings.Contains(err.Error(), "budget") {
		t.Fatalf("second release: %v", err)
	}
	if got := l.Spent(); math.Abs(got-one) > 1e-12 {
		t.Errorf("refused release was charged: spent %v, want %v", got, one)
	}
	if !l.Exhausted() {
		t.Error("not exhausted after a refusal")
	}
	// Even a much noisier release is refused now: the node has stopped.
	if err := l.Charge(Public, 3, 1000, 0.001); !errors.Is(err, ErrBudgetExceeded) {
		t.Errorf("release after exhaustion: %v", err)
	}
	// Unnoised releases to trusted members do not touch the DP budget.
	if err := l.Charge(Tenant, 3, 0, 1); err != nil {
		t.Errorf("tenant release after exhaustion: %v", err)
	}

	// Restart: same spent ε, still exhausted at the same budget.
	again := newTestLedger(t, store, budget)
	if again.Spent() != l.Spent() || !again.Exhausted() || again.Unprotected()[Tenant] != 1 {
		t.Errorf("after restart: spent %v exhausted %v unprotected %v", again.Spent(), again.Exhausted(), again.Unprotected())
	}
	if err := again.Charge(Public, 4, 3, 1); !errors.Is(err, ErrBudgetExceeded) {
		t.Errorf("after restart: %v", err)
	}
	// An operator raising the budget lets the node release again.
	raised := newTestLedger(t, store, 10)
	if raised.Exhausted() {
		t.Error("still exhausted under a raised budget")
	}
	if err := raised.Charge(Public, 5, 3, 1); err != nil {
		t.Errorf("under a raised budget: %v", err)
	}
	// Lowering the budget below what is spent exhausts it at once.
	lowered := newTestLedger(t, store, one/2)
	if !lowered.Exhausted() {
		t.Error("budget below spent ε is not exhausted")
	}
}

// failingStore refuses to save after a number of successful saves.
type failingStore struct {
	MemoryLedgerStore
	okSaves int
}

func (f *failingStore) SaveLedger(data []byte) error {
	if f.okSaves == 0 {
		return errors.New("disk full")
	}
	f.okSaves--
	return f.MemoryLedgerStore.SaveLedger(data)
}

func TestLedgerChargeIsUndoneWhenPersistFails(t *testing.T) {
	store := &failingStore{okSaves: 1}
	l := newTestLedger(t, store, 0)
	if err := l.Charge(Public, 1, 1, 1); err != nil {
		t.Fatal(err)
	}
	before := l.Spent()
	if err := l.Charge(Public, 2, 1, 1); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("charge with a failing store: %v", err)
	}
	if l.Spent() != before || l.Report().Tiers[0].NoisedReleases != 1 {
		t.Errorf("failed charge kept: spent %v → %v", before, l.Spent())
	}
}

// Spent ε never goes down: over any sequence of charges, restarts, and δ
// changes between restarts.
func TestLedgerMonotonic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		store := &MemoryLedgerStore{}
		delta := 1e-5
		l, err := NewLedger(store, 0, delta)
		if err != nil {
			t.Fatal(err)
		}
		last := 0.0
		lastByTier := map[Tier]float64{}
		for i := 0; i < rapid.IntRange(1, 12).Draw(t, "ops"); i++ {
			switch rapid.IntRange(0, 3).Draw(t, "op") {
			case 0, 1:
				tier := rapid.SampledFrom([]Tier{Group, Tenant, Public}).Draw(t, "tier")
				z := rapid.SampledFrom([]float64{0, 0.8, 1.5, 5}).Draw(t, "z")
				if tier == Public && z == 0 {
					z = 1
				}
				q := rapid.SampledFrom([]float64{0.01, 0.3, 1}).Draw(t, "q")
				if err := l.Charge(tier, uint64(i), z, q); err != nil {
					t.Fatal(err)
				}
			case 2:
				delta = rapid.SampledFrom([]float64{1e-7, 1e-5, 1e-3}).Draw(t, "delta")
				if l, err = NewLedger(store, 0, delta); err != nil {
					t.Fatal(err)
				}
			case 3:
				if l, err = NewLedger(store, 0, delta); err != nil {
					t.Fatal(err)
				}
			}
			if s := l.Spent(); s < last {
				t.Fatalf("spent went down: %v → %v", last, s)
			}
			last = l.Spent()
			for tier, e := range l.SpentByTier() {
				if e < lastByTier[tier] {
					t.Fatalf("%v went down: %v → %v", tier, lastByTier[tier], e)
				}
				lastByTier[tier] = e
			}
		}
	})
}

func TestLedgerRejectsCorruptState(t *testing.T) {
	store := &MemoryLedgerStore{}
	l := newTestLedger(t, store, 0)
	_ = l.Charge(Public, 1, 1, 0.5)
	_ = l.Charge(Tenant, 1, 0, 1)
	good, _, _ := store.LoadLedger()
	mutate := func(f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(good, &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	total := func(m map[string]any) map[string]any { return m["total"].(map[string]any) }
	cases := map[string][]byte{
		"truncated":      good[:len(good)/2],
		"trailing":       append(append([]byte(nil), good...), []byte(`{}`)...),
		"unknown field":  mutate(func(m map[string]any) { m["extra"] = 1 }),
		"version":        mutate(func(m map[string]any) { m["version"] = 2 }),
		"orders":         mutate(func(m map[string]any) { m["orders"].([]any)[3] = 2.1 }),
		"short rdp":      mutate(func(m map[string]any) { total(m)["rdp"] = []any{0.1} }),
		"negative rdp":   mutate(func(m map[string]any) { total(m)["rdp"].([]any)[5] = -0.5 }),
		"negative steps": mutate(func(m map[string]any) { total(m)["steps"] = -1 }),
		"steps mismatch": mutate(func(m map[string]any) { total(m)["steps"] = 7 }),
		"private tier":   mutate(func(m map[string]any) { m["tiers"].(map[string]any)["private"] = m["tiers"].(map[string]any)["tenant"] }),
		"bad tier":       mutate(func(m map[string]any) { m["tiers"].(map[string]any)["galaxy"] = m["tiers"].(map[string]any)["tenant"] }),
		"high water":     mutate(func(m map[string]any) { m["epsilon_high_water"] = -1 }),
		"null tier":      mutate(func(m map[string]any) { m["tiers"].(map[string]any)["group"] = nil }),
	}
	for name, data := range cases {
		bad := &MemoryLedgerStore{}
		_ = bad.SaveLedger(data)
		if _, err := NewLedger(bad, 0, 1e-5); !errors.Is(err, ErrCorruptLedger) {
			t.Errorf("%s: err %v, want ErrCorruptLedger", name, err)
		}
	}
	if _, err := NewLedger(store, 0, 1e-5); err != nil {
		t.Errorf("good state rejected: %v", err)
	}
	for _, c := range [][2]float64{{-1, 1e-5}, {math.NaN(), 1e-5}, {math.Inf(1), 1e-5}, {1, 0}, {1, 1}} {
		if _, err := NewLedger(&MemoryLedgerStore{}, c[0], c[1]); !errors.Is(err, ErrBadParameter) {
			t.Errorf("budget %v delta %v: %v", c[0], c[1], err)
		}
	}
}

// FuzzDecodeLedger: stored bytes never panic the decoder, and whatever it
// accepts re-encodes to a state it accepts again, with the same ε.
func FuzzDecodeLedger(f *testing.F) {
	store := &MemoryLedgerStore{}
	l := newTestLedger(f, store, 0)
	// Without sampling (q = 1) the setup stays cheap under coverage
	// instrumentation.
	_ = l.Charge(Public, 1, 1, 1)
	_ = l.Charge(Group, 2, 2, 1)
	_ = l.Charge(Tenant, 2, 0, 1)
	good, _, _ := store.LoadLedger()
	f.Add(good)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := decodeLedger(data)
		if err != nil {
			return
		}
		again, err := json.Marshal(&st)
		if err != nil {
			t.Fatal(err)
		}
		st2, err := decodeLedger(again)
		if err != nil {
			t.Fatalf("re-encoded state rejected: %v", err)
		}
		e1, _ := st.Total.accountant(st.Orders).Epsilon(1e-5)
		e2, _ := st2.Total.accountant(st2.Orders).Epsilon(1e-5)
		if e1 != e2 && !(math.IsNaN(e1) && math.IsNaN(e2)) {
			t.Fatalf("ε changed in a round trip: %v → %v", e1, e2)
		}
	})
}

// A stored ledger that cannot be read stops the node with one clear line
// and loses nothing: the bytes stay in the store exactly as they were (for
// repair or a backup restore), and nothing is charged or written.
func TestLedgerCorruptStateKeptAndExplained(t *testing.T) {
	for _, c := range []struct{ data, want string }{
		{"", "empty"},
		{"{", "unexpected EOF"},
		{"\x00garbage", "invalid character"},
		{`{"version":1}`, "0 orders"},
	} {
		store := &MemoryLedgerStore{}
		_ = store.SaveLedger([]byte(c.data))
		_, err := NewLedger(store, 1, 1e-5)
		if !errors.Is(err, ErrCorruptLedger) {
			t.Fatalf("%q: err %v, want ErrCorruptLedger", c.data, err)
		}
		msg := err.Error()
		if !strings.Contains(msg, c.want) || !strings.Contains(msg, "privacy ledger") ||
			!strings.Contains(msg, "kept") || strings.Contains(msg, "\n") {
			t.Errorf("%q: error %q should be one line saying what is wrong (%s) and that the bytes are kept", c.data, msg, c.want)
		}
		if got, ok, _ := store.LoadLedger(); !ok || string(got) != c.data {
			t.Errorf("%q: stored bytes changed to %q", c.data, got)
		}
	}
}

// A tier whose releases were all unnoised has no ε: the report says null,
// never 0 (which reads as perfect privacy); a noised tier reports its ε.
func TestLedgerReportUnnoisedTierHasNoEpsilon(t *testing.T) {
	l := newTestLedger(t, &MemoryLedgerStore{}, 0)
	if err := l.Charge(Tenant, 1, 0, 1); err != nil {
		t.Fatal(err)
	}
	if err := l.Charge(Public, 1, 2, 1); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(l.Report())
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Tiers []map[string]any `json:"tiers"`
	}
	if err := json.Unmarshal(data, &rep); err != nil || len(rep.Tiers) != 2 {
		t.Fatalf("%s: %v", data, err)
	}
	if rep.Tiers[0]["tier"] != "tenant" || rep.Tiers[0]["epsilon"] != nil {
		t.Errorf("unnoised tenant tier: %v, want epsilon null", rep.Tiers[0])
	}
	if e, ok := rep.Tiers[1]["epsilon"].(float64); !ok || math.Abs(e-composed(t, [2]float64{2, 1})) > 1e-12 {
		t.Errorf("public tier: %v", rep.Tiers[1])
	}
}
