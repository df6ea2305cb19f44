package privacy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
)

// LedgerStore persists the ledger's bytes. The node backs it with its bbolt
// store; MemoryLedgerStore is the in-memory twin. LoadLedger returns
// ok=false when nothing was saved yet.
type LedgerStore interface {
	LoadLedger() (data []byte, ok bool, err error)
	SaveLedger(data []byte) error
}

// MemoryLedgerStore keeps the ledger in memory (tests, simulation).
type MemoryLedgerStore struct {
	mu   sync.Mutex
	data []byte
	ok   bool
}

// LoadLedger returns a copy of the saved bytes.
func (m *MemoryLedgerStore) LoadLedger() ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.data...), m.ok, nil
}

// SaveLedger keeps a copy of data.
func (m *MemoryLedgerStore) SaveLedger(data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data, m.ok = append([]byte(nil), data...), true
	return nil
}

// Ledger is a node's privacy ledger: one RDP accountant composing every
// noised release the node makes, whatever its tier (the same data released
// to two tiers composes), plus one accountant per tier for the per-tier
// report. It is persisted through a LedgerStore on every change, before
// the release it records may happen, so spent ε never goes down, across
// restarts included.
//
// Releases without noise (Group and Tenant, whose members are trusted)
// have no DP guarantee at all against those members: they are counted per
// tier as unprotected and do not consume the DP budget, which is only
// meaningful for noised releases. A Public release must be noised.
//
// When a noised release would take the composed ε over the budget it is
// refused (ErrBudgetExceeded) before anything is charged, the ledger
// becomes exhausted and refuses every later noised release. A budget of 0
// accounts and reports without refusing.
//
// A Ledger is safe for concurrent use.
type Ledger struct {
	mu     sync.Mutex
	store  LedgerStore
	budget float64
	delta  float64
	st     ledgerState
	// stepCache holds the one-step RDP of recent (noise multiplier,
	// sampling rate) pairs: a node charges the same pair every round, and
	// fractional orders cost thousands of series terms.
	stepCache map[[2]float64][]float64
}

const stepCacheSize = 16

func (l *Ledger) stepRDP(noiseMultiplier, samplingRate float64) []float64 {
	k := [2]float64{noiseMultiplier, samplingRate}
	if r, ok := l.stepCache[k]; ok {
		return r
	}
	if len(l.stepCache) >= stepCacheSize {
		clear(l.stepCache)
	}
	r := stepRDP(l.st.Orders, noiseMultiplier, samplingRate)
	l.stepCache[k] = r
	return r
}

// ledgerState is what is persisted (JSON, versioned).
type ledgerState struct {
	Version   int                   `json:"version"`
	Orders    []float64             `json:"orders"`
	Total     accountantState       `json:"total"`
	Tiers     map[string]*tierState `json:"tiers"`
	HighWater float64               `json:"epsilon_high_water"`
	Exhausted bool                  `json:"exhausted"`
	// ExhaustedAt is the budget in force when a release was refused: an
	// operator who raises epsilon_budget above it (or sets it to 0, report
	// only) lets the node release again.
	ExhaustedAt float64 `json:"exhausted_at_budget,omitempty"`
	Reason      string  `json:"reason,omitempty"`
}

type accountantState struct {
	RDP   []float64 `json:"rdp"`
	Steps int64     `json:"steps"`
}

type tierState struct {
	Noised      accountantState `json:"noised"`
	Unprotected int64           `json:"unprotected"`
	LastRound   uint64          `json:"last_round"`
	HighWater   float64         `json:"epsilon_high_water"`
}

const ledgerVersion = 1

// NewLedger loads the ledger from store, or starts an empty one. budget is
// the node's lifetime ε (epsilon_budget; 0 = report only), delta the δ at
// which ε is reported (the config's delta).
func NewLedger(store LedgerStore, budget, delta float64) (*Ledger, error) {
	if store == nil {
		return nil, fmt.Errorf("%w: no ledger store", ErrBadParameter)
	}
	if math.IsNaN(budget) || math.IsInf(budget, 0) || budget < 0 {
		return nil, fmt.Errorf("%w: epsilon_budget = %v (want a finite value ≥ 0)", ErrBadParameter, budget)
	}
	if !(delta > 0 && delta < 1) {
		return nil, fmt.Errorf("%w: delta = %v (want 0 < δ < 1)", ErrBadParameter, delta)
	}
	l := &Ledger{store: store, budget: budget, delta: delta, stepCache: map[[2]float64][]float64{}}
	data, ok, err := store.LoadLedger()
	if err != nil {
		return nil, fmt.Errorf("load privacy ledger: %w", err)
	}
	if ok {
		st, err := decodeLedger(data)
		if err != nil {
			// Nothing is written back: the bytes stay for repair or a
			// restore, and the node must not release meanwhile.
			return nil, fmt.Errorf("%w (%d stored bytes kept unchanged; no release until the ledger is repaired or restored)", err, len(data))
		}
		l.st = st
		if l.st.Exhausted && (budget == 0 || budget > l.st.ExhaustedAt) {
			l.st.Exhausted, l.st.ExhaustedAt, l.st.Reason = false, 0, ""
		}
	} else {
		l.st = ledgerState{
			Version: ledgerVersion,
			Orders:  append([]float64(nil), DefaultOrders...),
			Total:   accountantState{RDP: make([]float64, len(DefaultOrders))},
			Tiers:   map[string]*tierState{},
		}
	}
	// ε at a smaller δ is also valid at a larger one, so the high-water
	// marks keep spent ε from going down when the configured δ changes.
	if l.raiseHighWater() {
		if err := l.persist(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// raiseHighWater lifts the stored high-water marks to the ε computed at the
// ledger's δ and reports whether any moved.
func (l *Ledger) raiseHighWater() bool {
	moved := false
	if eps, _ := l.st.Total.accountant(l.st.Orders).Epsilon(l.delta); eps > l.st.HighWater {
		l.st.HighWater, moved = eps, true
	}
	for _, ts := range l.st.Tiers {
		if ts.Noised.Steps == 0 {
			continue
		}
		if eps, _ := ts.Noised.accountant(l.st.Orders).Epsilon(l.delta); eps > ts.HighWater {
			ts.HighWater, moved = eps, true
		}
	}
	return moved
}

// decodeLedger parses and checks stored ledger bytes: nothing in them is
// trusted, since a ledger that reads back lower than it was would let a
// node overspend.
func decodeLedger(data []byte) (ledgerState, error) {
	var st ledgerState
	if len(bytes.TrimSpace(data)) == 0 {
		return st, fmt.Errorf("%w: stored state is empty", ErrCorruptLedger)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return st, fmt.Errorf("%w: %v", ErrCorruptLedger, err)
	}
	if dec.More() {
		return st, fmt.Errorf("%w: trailing data", ErrCorruptLedger)
	}
	if st.Version != ledgerVersion {
		return st, fmt.Errorf("%w: version %d (this build reads %d)", ErrCorruptLedger, st.Version, ledgerVersion)
	}
	if len(st.Orders) != len(DefaultOrders) {
		return st, fmt.Errorf("%w: %d orders, want %d", ErrCorruptLedger, len(st.Orders), len(DefaultOrders))
	}
	for i, a := range st.Orders {
		if a != DefaultOrders[i] {
			return st, fmt.Errorf("%w: order #%d = %v, want %v", ErrCorruptLedger, i+1, a, DefaultOrders[i])
		}
	}
	if err := checkAccountantState("total", st.Total, len(st.Orders)); err != nil {
		return st, err
	}
	if !finiteNonNegative(st.HighWater) || !finiteNonNegative(st.ExhaustedAt) {
		return st, fmt.Errorf("%w: epsilon_high_water = %v, exhausted_at_budget = %v", ErrCorruptLedger, st.HighWater, st.ExhaustedAt)
	}
	if st.Tiers == nil {
		st.Tiers = map[string]*tierState{}
	}
	var tierSteps int64
	for name, ts := range st.Tiers {
		t, err := ParseTier(name)
		if err != nil || t == Private {
			return st, fmt.Errorf("%w: tier %q", ErrCorruptLedger, name)
		}
		if ts == nil {
			return st, fmt.Errorf("%w: tier %q: empty record", ErrCorruptLedger, name)
		}
		if err := checkAccountantState("tier "+name, ts.Noised, len(st.Orders)); err != nil {
			return st, err
		}
		if ts.Unprotected < 0 || !finiteNonNegative(ts.HighWater) {
			return st, fmt.Errorf("%w: tier %q: unprotected = %d, epsilon_high_water = %v", ErrCorruptLedger, name, ts.Unprotected, ts.HighWater)
		}
		tierSteps += ts.Noised.Steps
	}
	if tierSteps != st.Total.Steps {
		return st, fmt.Errorf("%w: tiers hold %d noised releases, total %d", ErrCorruptLedger, tierSteps, st.Total.Steps)
	}
	return st, nil
}

func checkAccountantState(what string, a accountantState, n int) error {
	if len(a.RDP) != n {
		return fmt.Errorf("%w: %s: %d RDP values for %d orders", ErrCorruptLedger, what, len(a.RDP), n)
	}
	for i, r := range a.RDP {
		if !finiteNonNegative(r) {
			return fmt.Errorf("%w: %s: RDP #%d = %v", ErrCorruptLedger, what, i+1, r)
		}
	}
	if a.Steps < 0 {
		return fmt.Errorf("%w: %s: steps = %d", ErrCorruptLedger, what, a.Steps)
	}
	return nil
}

func finiteNonNegative(x float64) bool { return x >= 0 && !math.IsInf(x, 1) }

func (a accountantState) accountant(orders []float64) *Accountant {
	return &Accountant{orders: append([]float64(nil), orders...), rdp: append([]float64(nil), a.RDP...), steps: a.Steps}
}

// stateOf stores an accountant; an RDP that overflowed to +Inf is kept as
// the largest float64 (JSON has no infinity), which reads back as no
// guarantee at that order just the same.
func stateOf(a *Accountant) accountantState {
	rdp := a.RDP()
	for i, r := range rdp {
		if math.IsInf(r, 1) || math.IsNaN(r) {
			rdp[i] = math.MaxFloat64
		}
	}
	return accountantState{RDP: rdp, Steps: a.steps}
}

// Charge records one release at tier in round. noiseMultiplier is σ divided
// by the clip bound (0 for a release without noise), samplingRate the
// node's probability of taking part in a round (1 if it always does).
//
// A samplingRate below 1 claims privacy amplification by sampling, which
// holds only if peers cannot tell whether the node's data went into a
// round: the node must decide each round by a secret coin of that
// probability and, when it sits out, still publish a noise-only update.
// A node whose releases show when it took part charges each release it
// makes with samplingRate 1.
//
// A noised release that would exceed the budget is refused with
// ErrBudgetExceeded before anything is charged; the ledger then stays
// exhausted. Every accepted charge is persisted before Charge returns; if
// persisting fails the charge is undone and the error returned, and the
// release must not happen. Each call is one release: a node that re-sends
// the same noised bytes need not charge again, one that draws new noise
// must.
func (l *Ledger) Charge(tier Tier, round uint64, noiseMultiplier, samplingRate float64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch tier {
	case Private:
		return fmt.Errorf("%w: round %d: tier private: private updates are never released", ErrScope, round)
	case Group, Tenant, Public:
	default:
		return fmt.Errorf("%w: round %d: unknown %v", ErrScope, round, tier)
	}
	prev := l.snapshot()
	ts := l.st.Tiers[tier.String()]
	if ts == nil {
		ts = &tierState{Noised: accountantState{RDP: make([]float64, len(l.st.Orders))}}
		l.st.Tiers[tier.String()] = ts
	}
	if noiseMultiplier == 0 {
		if tier == Public {
			l.restore(prev)
			return fmt.Errorf("%w: round %d: a public release must be noised (noise multiplier 0)", ErrBadParameter, round)
		}
		ts.Unprotected++
		ts.LastRound = max(ts.LastRound, round)
		return l.persistOrRestore(prev)
	}
	if err := checkMechanism(noiseMultiplier, samplingRate); err != nil {
		l.restore(prev)
		return fmt.Errorf("round %d, tier %v: %w", round, tier, err)
	}
	if l.st.Exhausted {
		l.restore(prev)
		return fmt.Errorf("%w: round %d, tier %v: %s", ErrBudgetExceeded, round, tier, l.st.Reason)
	}
	step := l.stepRDP(noiseMultiplier, samplingRate)
	total := l.st.Total.accountant(l.st.Orders)
	total.addSteps(step, 1)
	eps, _ := total.Epsilon(l.delta)
	if math.IsInf(eps, 1) {
		l.restore(prev)
		return fmt.Errorf("%w: round %d, tier %v: noise multiplier %v gives no finite ε at any order", ErrBadParameter, round, tier, noiseMultiplier)
	}
	eps = math.Max(eps, l.st.HighWater)
	if l.budget > 0 && eps > l.budget {
		l.restore(prev)
		l.st.Exhausted = true
		l.st.ExhaustedAt = l.budget
		l.st.Reason = fmt.Sprintf("a release at round %d (tier %v, noise multiplier %.4g, sampling rate %.4g) would bring the node's ε to %.4g over its budget %.4g (δ=%g); the node stops releasing noised updates",
			round, tier, noiseMultiplier, samplingRate, eps, l.budget, l.delta)
		err := fmt.Errorf("%w: %s", ErrBudgetExceeded, l.st.Reason)
		if perr := l.persist(); perr != nil {
			return errors.Join(err, perr)
		}
		return err
	}
	ta := ts.Noised.accountant(l.st.Orders)
	ta.addSteps(step, 1)
	tierEps, _ := ta.Epsilon(l.delta)
	l.st.Total = stateOf(total)
	l.st.HighWater = eps
	ts.Noised = stateOf(ta)
	ts.HighWater = math.Max(ts.HighWater, tierEps)
	ts.LastRound = max(ts.LastRound, round)
	return l.persistOrRestore(prev)
}

func (l *Ledger) persist() error {
	data, err := json.Marshal(&l.st)
	if err != nil {
		return fmt.Errorf("encode privacy ledger: %w", err)
	}
	if err := l.store.SaveLedger(data); err != nil {
		return fmt.Errorf("save privacy ledger: %w", err)
	}
	return nil
}

func (l *Ledger) persistOrRestore(prev []byte) error {
	if err := l.persist(); err != nil {
		l.restore(prev)
		return err
	}
	return nil
}

// snapshot and restore give Charge all-or-nothing semantics in memory.
func (l *Ledger) snapshot() []byte {
	data, _ := json.Marshal(&l.st)
	return data
}

func (l *Ledger) restore(prev []byte) {
	var st ledgerState
	if json.Unmarshal(prev, &st) == nil {
		if st.Tiers == nil {
			st.Tiers = map[string]*tierState{}
		}
		l.st = st
	}
}

// Spent is the node's composed ε over every noised release, at the
// ledger's δ. It never goes down.
func (l *Ledger) Spent() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.spentLocked()
}

func (l *Ledger) spentLocked() float64 {
	eps, _ := l.st.Total.accountant(l.st.Orders).Epsilon(l.delta)
	return math.Max(eps, l.st.HighWater)
}

// SpentByTier is, per tier with at least one noised release, the ε of that
// tier's noised releases alone: what an adversary who sees only that tier
// learns. Tiers whose releases were all unnoised are absent: they have no
// DP guarantee to report (see Unprotected), and 0 would read as perfect
// privacy.
func (l *Ledger) SpentByTier() map[Tier]float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[Tier]float64{}
	for name, ts := range l.st.Tiers {
		if ts.Noised.Steps == 0 {
			continue
		}
		t, _ := ParseTier(name)
		eps, _ := ts.Noised.accountant(l.st.Orders).Epsilon(l.delta)
		out[t] = math.Max(eps, ts.HighWater)
	}
	return out
}

// Unprotected is, per tier, the number of releases made without noise:
// releases that have no DP guarantee against that tier's members.
func (l *Ledger) Unprotected() map[Tier]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[Tier]int64{}
	for name, ts := range l.st.Tiers {
		if ts.Unprotected > 0 {
			t, _ := ParseTier(name)
			out[t] = ts.Unprotected
		}
	}
	return out
}

// Exhausted reports whether the node may no longer make noised releases:
// one was refused for exceeding the budget, or the spent ε has reached a
// budget lowered since.
func (l *Ledger) Exhausted() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.st.Exhausted || (l.budget > 0 && l.spentLocked() >= l.budget)
}

// Budget is the lifetime ε budget (0 = none) and Delta the δ of every ε
// the ledger reports.
func (l *Ledger) Budget() float64 { return l.budget }

// Delta is the δ at which the ledger reports ε.
func (l *Ledger) Delta() float64 { return l.delta }

// TierReport is one tier's line in a LedgerReport. Epsilon is nil (JSON
// null) for a tier without noised releases: it has no DP guarantee, and 0
// would read as perfect privacy.
type TierReport struct {
	Tier                string   `json:"tier"`
	Epsilon             *float64 `json:"epsilon"`
	NoisedReleases      int64    `json:"noised_releases"`
	UnprotectedReleases int64    `json:"unprotected_releases"`
	DPProtected         bool     `json:"dp_protected"`
	LastRound           uint64   `json:"last_round"`
}

// LedgerReport is the ledger as a user reads it (JSON-ready).
type LedgerReport struct {
	Epsilon   float64      `json:"epsilon"`
	Delta     float64      `json:"delta"`
	Budget    float64      `json:"budget"`
	Exhausted bool         `json:"exhausted"`
	Reason    string       `json:"reason,omitempty"`
	Tiers     []TierReport `json:"tiers"`
}

// Report returns the whole ledger, tiers from closed to open.
func (l *Ledger) Report() LedgerReport {
	byTier := l.SpentByTier()
	exhausted := l.Exhausted()
	l.mu.Lock()
	defer l.mu.Unlock()
	rep := LedgerReport{Epsilon: l.spentLocked(), Delta: l.delta, Budget: l.budget, Exhausted: exhausted, Reason: l.st.Reason, Tiers: []TierReport{}}
	for name, ts := range l.st.Tiers {
		t, _ := ParseTier(name)
		var eps *float64
		if e, ok := byTier[t]; ok {
			eps = &e
		}
		rep.Tiers = append(rep.Tiers, TierReport{
			Tier: name, Epsilon: eps, NoisedReleases: ts.Noised.Steps, UnprotectedReleases: ts.Unprotected,
			DPProtected: ts.Unprotected == 0 && ts.Noised.Steps > 0, LastRound: ts.LastRound,
		})
	}
	sort.Slice(rep.Tiers, func(i, j int) bool {
		a, _ := ParseTier(rep.Tiers[i].Tier)
		b, _ := ParseTier(rep.Tiers[j].Tier)
		return a < b
	})
	return rep
}
