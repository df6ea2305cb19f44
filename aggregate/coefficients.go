package aggregate

import (
	"fmt"
	"math"
	"sort"

	"github.com/dafnet/daf/adapter"
)

// population is what a combining strategy sees of one group: who contributed,
// their sample counts and quality reports, and (on demand) the Gram matrix
// of their parameters, with the reference as one more item when hasRef.
type population struct {
	group   string
	nodes   []string
	samples []float64
	quality []adapter.GroupQuality
	hasRef  bool
	gramFn  func() (*gram, error)
	cached  *gram
}

func (p *population) n() int { return len(p.nodes) }

func (p *population) gram() (*gram, error) {
	if p.cached == nil {
		g, err := p.gramFn()
		if err != nil {
			return nil, err
		}
		p.cached = g
	}
	return p.cached, nil
}

// coefficientsFunc returns one coefficient per contributor; the aggregate
// is Σ c_i x_i. Every strategy's coefficients are finite and sum to 1.
type coefficientsFunc func(p *population, opts Options) ([]float64, error)

// sampleWeights are the sample counts normalised to sum 1.
func sampleWeights(p *population) ([]float64, error) {
	w := make([]float64, p.n())
	var sum float64
	for i, s := range p.samples {
		if !finite(s) || s < 0 {
			return nil, fmt.Errorf("%w: group %s: node %q reports daf.samples = %v", ErrBadOption, p.group, p.nodes[i], s)
		}
		w[i] = s
		sum += s
	}
	if !(sum > 0) || !finite(sum) {
		return nil, fmt.Errorf("%w: group %s: the sample counts of all %d updates sum to %v", ErrZeroWeights, p.group, p.n(), sum)
	}
	for i := range w {
		w[i] /= sum
	}
	return w, nil
}

func weightedAverageCoefficients(p *population, _ Options) ([]float64, error) {
	return sampleWeights(p)
}

func qualityWeightedCoefficients(p *population, opts Options) ([]float64, error) {
	scores := make([]float64, p.n())
	for i, q := range p.quality {
		scores[i] = qualityScore(q, opts)
	}
	return softmax(scores, opts.temperature()), nil
}

// learnedAttentionCoefficients: softmax over −d_i/(d̄·T), d_i the distance of
// update i to the reference (the previous aggregate, or the coordinate mean),
// d̄ the mean of those distances, so the weights do not depend on the scale
// of the parameters.
func learnedAttentionCoefficients(p *population, opts Options) ([]float64, error) {
	g, err := p.gram()
	if err != nil {
		return nil, err
	}
	n := p.n()
	var d2 []float64
	if p.hasRef {
		d2 = make([]float64, n)
		for i := range d2 {
			d2[i] = g.dist2(i, n)
		}
	} else {
		mean := make([]float64, n)
		for i := range mean {
			mean[i] = 1 / float64(n)
		}
		d2 = g.comboDist2(mean, n)
	}
	d := make([]float64, n)
	var mean float64
	for i, v := range d2 {
		d[i] = math.Sqrt(v)
		mean += d[i] / float64(n)
	}
	scores := make([]float64, n)
	if mean > 0 {
		for i := range scores {
			scores[i] = -d[i] / mean
		}
	}
	return softmax(scores, opts.temperature()), nil
}

// krumScores: for each update, the sum of squared distances to its n−f−2
// nearest other updates.
func krumScores(p *population, f int) ([]float64, error) {
	n := p.n()
	if n <= 2*f+2 {
		return nil, fmt.Errorf("%w: group %s has %d updates but krum with f = %d needs n > 2f+2 = %d", ErrTooFewForKrum, p.group, n, f, 2*f+2)
	}
	g, err := p.gram()
	if err != nil {
		return nil, err
	}
	scores := make([]float64, n)
	row := make([]float64, 0, n-1)
	for i := 0; i < n; i++ {
		row = row[:0]
		for j := 0; j < n; j++ {
			if j != i {
				row = append(row, g.dist2(i, j))
			}
		}
		sort.Float64s(row)
		for _, d := range row[:n-f-2] {
			scores[i] += d
		}
	}
	return scores, nil
}

// krumOrder is the contributors sorted by Krum score, ties by position.
func krumOrder(scores []float64) []int {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	return idx
}

func krumCoefficients(p *population, opts Options) ([]float64, error) {
	if p.n() == 1 {
		return []float64{1}, nil
	}
	scores, err := krumScores(p, opts.KrumF)
	if err != nil {
		return nil, err
	}
	c := make([]float64, p.n())
	c[krumOrder(scores)[0]] = 1
	return c, nil
}

func multiKrumCoefficients(p *population, opts Options) ([]float64, error) {
	if p.n() == 1 {
		return []float64{1}, nil
	}
	scores, err := krumScores(p, opts.KrumF)
	if err != nil {
		return nil, err
	}
	m := opts.MultiKrumM
	if m == 0 {
		m = p.n() - opts.KrumF
	}
	if m > p.n() {
		return nil, fmt.Errorf("%w: multi_krum m = %d exceeds the %d updates of group %s", ErrBadOption, m, p.n(), p.group)
	}
	c := make([]float64, p.n())
	for _, i := range krumOrder(scores)[:m] {
		c[i] = 1 / float64(m)
	}
	return c, nil
}

// typicalNorm is the median of the updates' norms, the scale the smoothing
// and stopping constants refer to. The median, not the mean: one update of
// norm 1e38 must not turn the smoothing into a radius that hides every
// honest update.
func typicalNorm(g *gram, n int) float64 {
	d := make([]float64, n)
	for i := range d {
		d[i] = g.at(i, i)
	}
	sort.Float64s(d)
	return math.Sqrt(d[n/2])
}

// geometricMedianCoefficients runs the smoothed Weiszfeld iteration of RFA
// (Pillutla, Kakade, Harchaoui 2022) on the coefficients: v = Σ c_i x_i,
// c_i ∝ α_i / max(ν, ‖v − x_i‖) with α the sample weights.
func geometricMedianCoefficients(p *population, opts Options) ([]float64, error) {
	alpha, err := sampleWeights(p)
	if err != nil {
		return nil, err
	}
	g, err := p.gram()
	if err != nil {
		return nil, err
	}
	n := p.n()
	scale := typicalNorm(g, n)
	nu := opts.nu() * max(scale, math.SmallestNonzeroFloat32)
	c := geometricMedianStart(g, alpha)
	next := make([]float64, n)
	diff := make([]float64, n)
	for it := 0; it < opts.maxIter(); it++ {
		d2 := g.comboDist2(c, n)
		var sum float64
		for i := range next {
			next[i] = alpha[i] / max(nu, math.Sqrt(d2[i]))
			sum += next[i]
		}
		for i := range next {
			next[i] /= sum
			diff[i] = next[i] - c[i]
		}
		copy(c, next)
		if math.Sqrt(g.quadForm(diff)) <= 1e-10*max(scale, math.SmallestNonzeroFloat32) {
			break
		}
	}
	return c, nil
}

// geometricMedianStart is where the Weiszfeld iteration begins: one
// Vardi–Zhang step from the weighted medoid (the update with the least
// Σ α_j‖x_i − x_j‖), or the medoid itself when it is already optimal. The
// mean would be the textbook start, but an attacker at 1e38 drags it there,
// and the iteration then only shrinks that distance by a constant factor
// per step; the medoid's objective is within twice the optimum, so the
// start is near the honest updates.
func geometricMedianStart(g *gram, alpha []float64) []float64 {
	n := len(alpha)
	k, best := 0, math.Inf(1)
	for i := 0; i < n; i++ {
		var s float64
		for j := 0; j < n; j++ {
			s += alpha[j] * math.Sqrt(g.dist2(i, j))
		}
		if s < best {
			k, best = i, s
		}
	}
	// R = Σ_{j: x_j ≠ x_k} α_j (x_j − x_k)/‖x_j − x_k‖ is the pull of the
	// others; updates equal to x_k add their weight to the medoid's.
	atK := 0.0
	r := make([]float64, n)
	var pull float64
	for j := 0; j < n; j++ {
		if d := math.Sqrt(g.dist2(k, j)); d > 0 {
			r[j] = alpha[j] / d
			pull += r[j]
		} else {
			atK += alpha[j]
		}
	}
	c := make([]float64, n)
	if pull == 0 {
		c[k] = 1
		return c
	}
	r[k] -= pull
	normR := math.Sqrt(g.quadForm(r))
	r[k] += pull
	if normR <= atK {
		c[k] = 1
		return c
	}
	// Weiszfeld's step over the others, pulled back towards x_k by α_k/‖R‖.
	theta := atK / normR
	for j := range c {
		c[j] = (1 - theta) * r[j] / pull
	}
	c[k] += theta
	return c
}

// medoid is the contributor with the least total distance to the others.
func medoid(g *gram, n int) int {
	best, bestSum := 0, math.Inf(1)
	for i := 0; i < n; i++ {
		var s float64
		for j := 0; j < n; j++ {
			s += math.Sqrt(g.dist2(i, j))
		}
		if s < bestSum {
			best, bestSum = i, s
		}
	}
	return best
}

// centeredClipCoefficients runs centered clipping (Karimireddy, He, Jaggi
// 2021): v ← v + (1/n) Σ (x_i − v)·min(1, τ/‖x_i − v‖), from the medoid,
// with τ the option or the median distance of the updates to the medoid.
func centeredClipCoefficients(p *population, opts Options) ([]float64, error) {
	g, err := p.gram()
	if err != nil {
		return nil, err
	}
	n := p.n()
	c := make([]float64, n)
	c[medoid(g, n)] = 1
	tau := opts.ClipRadius
	if tau == 0 {
		d2 := g.comboDist2(c, n)
		sort.Float64s(d2)
		tau = math.Sqrt(d2[n/2])
	}
	scale := typicalNorm(g, n)
	next := make([]float64, n)
	diff := make([]float64, n)
	for it := 0; it < opts.maxIter(); it++ {
		d2 := g.comboDist2(c, n)
		copy(next, c)
		for i := 0; i < n; i++ {
			f := 1.0
			if d := math.Sqrt(d2[i]); d > tau {
				f = tau / d
			}
			f /= float64(n)
			for k := range next {
				next[k] -= f * c[k]
			}
			next[i] += f
		}
		for i := range diff {
			diff[i] = next[i] - c[i]
		}
		copy(c, next)
		if math.Sqrt(g.quadForm(diff)) <= 1e-10*max(scale, math.SmallestNonzeroFloat32) {
			break
		}
	}
	return c, nil
}
