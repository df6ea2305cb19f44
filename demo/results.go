package demo

import (
	"math"
	"sort"
)

// Loss is a held-out denoising loss in nats per masked token. Global is
// measured on the mix of every node's held-out text, Personal is the mean
// over nodes of each node's loss on its own held-out text. The spreads are
// the standard deviations over seeds (0 with one seed).
type Loss struct {
	Global         float64 `json:"global"`
	Personal       float64 `json:"personal"`
	GlobalSpread   float64 `json:"global_spread"`
	PersonalSpread float64 `json:"personal_spread"`
}

// RoundLoss is one point of an arm's learning curve, averaged over seeds.
// Round 0 is the starting point (fresh banks) before any training.
type RoundLoss struct {
	Round   int             `json:"round"`
	Groups  map[string]Loss `json:"groups"`
	Overall Loss            `json:"overall"`
}

// Arm is one way of training, measured on the same seeds and data as the others.
type Arm struct {
	Groups            map[string]Loss `json:"groups"`
	Overall           Loss            `json:"overall"`
	PerRound          []RoundLoss     `json:"per_round"`
	ConsensusDistance float64         `json:"consensus_distance"`
	EpsilonSpent      float64         `json:"epsilon_spent"`
	RoundsCompleted   float64         `json:"rounds_completed"`
}

// Results is the shape shared by `daf demo --json` and OUT/results.json.
type Results struct {
	Nodes             int                `json:"nodes"`
	Rounds            int                `json:"rounds"`
	Seeds             []uint64           `json:"seeds"`
	Arms              map[string]*Arm    `json:"arms"`
	EpsilonSpent      map[string]float64 `json:"epsilon_spent"`
	ConsensusDistance float64            `json:"consensus_distance"`
	Groups            []string           `json:"groups"`
	Domains           []string           `json:"domains"`
	Machine           string             `json:"machine"`
	DurationSecs      float64            `json:"duration_secs"`
}

// evaluation is one arm's measurement for one seed at one round.
type evaluation struct {
	global   map[string]float64 // group → loss on the global mix (mean over nodes' models)
	personal map[string]float64 // group → mean over nodes of loss on own held-out
	overallG float64
	overallP float64
}

// armRun is everything one seed of one arm produced.
type armRun struct {
	perRound  []evaluation // index = round (0 = before training)
	consensus float64
	epsilon   float64
	completed int
}

// summarise averages an arm's runs over seeds.
func summarise(runs []armRun, groups []string) *Arm {
	arm := &Arm{Groups: map[string]Loss{}}
	if len(runs) == 0 {
		return arm
	}
	rounds := len(runs[0].perRound)
	for _, r := range runs {
		if len(r.perRound) < rounds {
			rounds = len(r.perRound)
		}
	}
	for round := 0; round < rounds; round++ {
		rl := RoundLoss{Round: round, Groups: map[string]Loss{}}
		for _, g := range groups {
			rl.Groups[g] = meanLoss(runs, func(e evaluation) (float64, float64) { return e.global[g], e.personal[g] }, round)
		}
		rl.Overall = meanLoss(runs, func(e evaluation) (float64, float64) { return e.overallG, e.overallP }, round)
		arm.PerRound = append(arm.PerRound, rl)
	}
	if rounds > 0 {
		last := arm.PerRound[rounds-1]
		arm.Groups = last.Groups
		arm.Overall = last.Overall
	}
	var cons, eps, done []float64
	for _, r := range runs {
		cons = append(cons, r.consensus)
		eps = append(eps, r.epsilon)
		done = append(done, float64(r.completed))
	}
	arm.ConsensusDistance, _ = meanStd(cons)
	arm.EpsilonSpent, _ = meanStd(eps)
	arm.RoundsCompleted, _ = meanStd(done)
	return arm
}

func meanLoss(runs []armRun, pick func(evaluation) (float64, float64), round int) Loss {
	var gs, ps []float64
	for _, r := range runs {
		g, p := pick(r.perRound[round])
		gs = append(gs, g)
		ps = append(ps, p)
	}
	var l Loss
	l.Global, l.GlobalSpread = meanStd(gs)
	l.Personal, l.PersonalSpread = meanStd(ps)
	return l
}

// meanStd returns the mean and the sample standard deviation (0 for n < 2).
func meanStd(xs []float64) (mean, std float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 {
		return mean, 0
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)-1))
}

// armOrder lists arms in the order tables and plots show them.
func armOrder(arms map[string]*Arm) []string {
	preferred := []string{"central", "daf", "fedavg", "daf_dp", "local"}
	var out []string
	seen := map[string]bool{}
	for _, a := range preferred {
		if _, ok := arms[a]; ok {
			out = append(out, a)
			seen[a] = true
		}
	}
	var rest []string
	for a := range arms {
		if !seen[a] {
			rest = append(rest, a)
		}
	}
	sort.Strings(rest)
	return append(out, rest...)
}
