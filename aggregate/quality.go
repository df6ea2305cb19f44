package aggregate

import (
	"math"
	"sort"

	"github.com/dafnet/daf/adapter"
)

// qualityScore is the metric's score of one group report. Missing or
// non-finite inputs (ppl_before = 0, an accuracy of NaN) score 0: a node that
// cannot show an improvement gets the weight of one that made none.
func qualityScore(q adapter.GroupQuality, opts Options) float64 {
	var s float64
	switch opts.Metric {
	case PerplexityImprovement:
		s = pplImprovement(q)
	case TaskAccuracy:
		s = taskAccuracy(q, opts.Task)
	case Composite:
		w := opts.composite()
		s = w.PPL*pplImprovement(q) + w.Accuracy*taskAccuracy(q, opts.Task)
	}
	if !finite(s) {
		return 0
	}
	return s
}

func pplImprovement(q adapter.GroupQuality) float64 {
	if !(q.PPLBefore > 0) || !finite(q.PPLBefore) || !finite(q.PPLAfter) {
		return 0
	}
	s := (q.PPLBefore - q.PPLAfter) / q.PPLBefore
	if !finite(s) {
		return 0
	}
	return s
}

func taskAccuracy(q adapter.GroupQuality, task string) float64 {
	if task != "" {
		a := q.TaskAccuracy[task]
		if !finite(a) {
			return 0
		}
		return a
	}
	if len(q.TaskAccuracy) == 0 {
		return 0
	}
	names := make([]string, 0, len(q.TaskAccuracy))
	for t := range q.TaskAccuracy {
		names = append(names, t)
	}
	sort.Strings(names) // a fixed summation order keeps nodes bit-identical
	var s float64
	for _, t := range names {
		if a := q.TaskAccuracy[t]; finite(a) {
			s += a
		}
	}
	return s / float64(len(names))
}

// softmax returns exp(s/T)/Σ exp(s/T), shifted by the maximum so that no
// term overflows; the result is finite and sums to 1 for any finite input.
func softmax(scores []float64, temperature float64) []float64 {
	hi := math.Inf(-1)
	for _, s := range scores {
		hi = max(hi, s)
	}
	w := make([]float64, len(scores))
	var sum float64
	for i, s := range scores {
		w[i] = math.Exp((s - hi) / temperature)
		sum += w[i]
	}
	for i := range w {
		w[i] /= sum
	}
	return w
}
