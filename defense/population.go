package defense

import (
	"math"
	"slices"
)

// MaxPopulation bounds how many nodes the detector keeps in its population
// reference. Identities are cheap, so the index must not grow with them;
// when full, the node heard from least recently is dropped.
const MaxPopulation = 4096

// MinPopulation is how many other nodes must be known before a population
// reference (Check 3, and Check 1 for nodes in warm-up) is used: a median
// of one or two nodes says nothing about what is normal.
const MinPopulation = 3

// minLogHalfWidth is the narrowest Check 3 range, in log-norm units
// (ln 2: a factor of two either side of the median). Clipped updates
// often share one norm exactly, which would make the MAD zero and every
// rounding difference an anomaly.
var minLogHalfWidth = math.Ln2

// madToSigma turns a median absolute deviation into a standard deviation
// for normally distributed values.
const madToSigma = 1.4826

// population is the detector's view of what the other nodes' accepted
// updates look like: per node, its mean magnitude, whether it is past
// warm-up, and the group norms of its last accepted update. It is rebuilt
// from the persisted NodeStats as nodes are heard from, so it needs no
// storage of its own.
type population struct {
	nodes map[string]popEntry
	seq   uint64
}

type popEntry struct {
	seq           uint64
	established   bool
	meanMagnitude float64
	groupNorms    map[string]float64
}

func newPopulation() *population { return &population{nodes: map[string]popEntry{}} }

// record stores what the node's statistics say about it.
func (p *population) record(node string, s NodeStats, warmup int) {
	if s.Accepted == 0 {
		return
	}
	p.seq++
	if _, ok := p.nodes[node]; !ok && len(p.nodes) >= MaxPopulation {
		oldest, oldestSeq := "", uint64(math.MaxUint64)
		for n, e := range p.nodes {
			if e.seq < oldestSeq || (e.seq == oldestSeq && n < oldest) {
				oldest, oldestSeq = n, e.seq
			}
		}
		delete(p.nodes, oldest)
	}
	norms := make(map[string]float64, len(s.GroupNorms))
	for g, n := range s.GroupNorms {
		norms[g] = n
	}
	p.nodes[node] = popEntry{
		seq:           p.seq,
		established:   s.Accepted >= uint64(warmup),
		meanMagnitude: s.MeanMagnitude,
		groupNorms:    norms,
	}
}

func (p *population) has(node string) bool {
	_, ok := p.nodes[node]
	return ok
}

// magnitudeReference is the median mean magnitude of the established nodes
// other than exclude, or ok=false when fewer than MinPopulation exist.
func (p *population) magnitudeReference(exclude string) (float64, bool) {
	var xs []float64
	for n, e := range p.nodes {
		if n != exclude && e.established {
			xs = append(xs, e.meanMagnitude)
		}
	}
	if len(xs) < MinPopulation {
		return 0, false
	}
	return median(xs), true
}

// normRange is the accepted range [lo, hi] of the group's norm: the median
// of the other nodes' log norms ± max(k·1.4826·MAD, ln 2), or ok=false when
// fewer than MinPopulation other nodes reported the group with a non-zero
// norm.
func (p *population) normRange(group, exclude string, k float64) (lo, hi float64, ok bool) {
	var logs []float64
	for n, e := range p.nodes {
		if n == exclude {
			continue
		}
		if v, has := e.groupNorms[group]; has && v > 0 {
			logs = append(logs, math.Log(v))
		}
	}
	if len(logs) < MinPopulation {
		return 0, 0, false
	}
	m := median(logs)
	dev := make([]float64, len(logs))
	for i, l := range logs {
		dev[i] = math.Abs(l - m)
	}
	half := max(k*madToSigma*median(dev), minLogHalfWidth)
	return math.Exp(m - half), math.Exp(m + half), true
}

// median sorts xs in place.
func median(xs []float64) float64 {
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}
