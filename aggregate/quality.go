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
	// A perplexity cannot fall below 0, so the improvement is at most 1;
	// a report claiming more is a lever for taking the softmax's weight.
	return min(s, 1)
}

// accuracy reads one reported accuracy as the fraction it is: a claim
// outside [0, 1] (say 1e308) would otherwise take every bit of the
// softmax's weight for its sender.
func accuracy(a float64) float64 {
	if !finite(a) {
		return 0
	}
	return min(max(a, 0), 1)
}

func taskAccuracy(q adapter.GroupQuality, task string) float64 {
	if task != "" {
		return accuracy(q.TaskAccuracy[task])
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
		s += accuracy(q.TaskAccuracy[t])
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
