package aggregate

import (
	"fmt"

	"github.com/dafnet/daf/adapter"
	"math"
	"runtime"
)

// QualityMetric selects the score quality_weighted puts through its softmax.
type QualityMetric int

const (
	// PerplexityImprovement scores (ppl_before − ppl_after)/ppl_before of the group.
	PerplexityImprovement QualityMetric = iota
	// TaskAccuracy scores the update's reported accuracy on Options.Task
	// (the mean over its reported tasks when Task is empty).
	TaskAccuracy
	// Composite scores CompositeWeights.PPL·PerplexityImprovement +
	// CompositeWeights.Accuracy·TaskAccuracy.
	Composite
)

var metricNames = [...]string{"perplexity_improvement", "task_accuracy", "composite"}

func (m QualityMetric) String() string {
	if m < 0 || int(m) >= len(metricNames) {
		return fmt.Sprintf("metric(%d)", int(m))
	}
	return metricNames[m]
}

// ParseQualityMetric accepts the names String returns.
func ParseQualityMetric(s string) (QualityMetric, error) {
	for i, n := range metricNames {
		if s == n {
			return QualityMetric(i), nil
		}
	}
	return 0, fmt.Errorf("%w: quality metric %q (want perplexity_improvement, task_accuracy or composite)", ErrBadOption, s)
}

// CompositeWeights are the coefficients of the Composite metric.
type CompositeWeights struct {
	PPL      float64
	Accuracy float64
}

// LoRAMode says how LoRA factor pairs are combined.
type LoRAMode int

const (
	// Factor aggregates lora_A and lora_B separately, element by element (the
	// seed's behaviour). The product of the means is not the mean of the
	// products unless every node shares the same A.
	Factor LoRAMode = iota
	// Exact returns stacked factors whose product is exactly the aggregate of
	// the products (rank up to the sum of the input ranks).
	Exact
	// SVD re-factorises the exact aggregate to Options.Rank and reports the
	// truncation error.
	SVD
)

var modeNames = [...]string{"factor", "exact", "svd"}

func (m LoRAMode) String() string {
	if m < 0 || int(m) >= len(modeNames) {
		return fmt.Sprintf("lora_mode(%d)", int(m))
	}
	return modeNames[m]
}

// ParseLoRAMode accepts factor, exact and svd.
func ParseLoRAMode(s string) (LoRAMode, error) {
	for i, n := range modeNames {
		if s == n {
			return LoRAMode(i), nil
		}
	}
	return 0, fmt.Errorf("%w: LoRA mode %q (want factor, exact or svd)", ErrBadOption, s)
}

// Options of the named strategies. The zero value is usable: every zero
// field means the documented default.
type Options struct {
	// TrimFraction is trimmed_mean's fraction trimmed per side (config
	// trim_fraction); floor(TrimFraction·n) values go from each end. [0, 0.5).
	TrimFraction float64
	// Temperature of the quality_weighted and learned_attention softmax; 0 = 1.
	Temperature float64
	// KrumF is the number of Byzantine updates krum and multi_krum assume;
	// KrumFAuto takes, per group, the largest f its count n allows
	// (n > 2f+2), so a group thinned by max_nodes_per_round still runs.
	KrumF int
	// MultiKrumM is how many updates multi_krum averages; 0 = n − KrumF.
	MultiKrumM int
	// Metric of quality_weighted (default PerplexityImprovement).
	Metric QualityMetric
	// Task names the accuracy that TaskAccuracy and Composite read.
	Task string
	// Composite holds the Composite metric's coefficients; zero = {1, 1}.
	Composite CompositeWeights
	// Reference is learned_attention's query (the previous aggregate); nil,
	// or a group it lacks, means the coordinate mean of the round's updates.
	Reference *adapter.Update
	// Nu is geometric_median's smoothing, relative to the median norm of the
	// updates; 0 = 1e-6.
	Nu float64
	// MaxIter bounds the geometric_median and centered_clip iterations; 0 = 100.
	MaxIter int
	// ClipRadius is centered_clip's τ; 0 = the median distance of the updates
	// to the starting point (the medoid).
	ClipRadius float64
	// LoRAMode: Factor (default), Exact, SVD.
	LoRAMode LoRAMode
	// Rank is the SVD target rank; 0 = the largest input rank.
	Rank int
	// Seed drives the randomised range finder used when a coordinate-wise
	// strategy (trimmed_mean, median) runs in a product mode.
	Seed uint64
	// Workers is how many goroutines split the parameter range; 0 = GOMAXPROCS.
	Workers int
	// InputsFinite says the caller has already checked every value of the
	// updates for NaN and infinities (adapter's readers do, in one parallel
	// pass as they map the files), so the inputs are not scanned again.
	// The aggregate itself is still checked.
	InputsFinite bool
}

func (o Options) temperature() float64 {
	if o.Temperature == 0 {
		return 1
	}
	return o.Temperature
}

func (o Options) nu() float64 {
	if o.Nu == 0 {
		return 1e-6
	}
	return o.Nu
}

func (o Options) maxIter() int {
	if o.MaxIter == 0 {
		return 100
	}
	return o.MaxIter
}

func (o Options) workers() int {
	if o.Workers > 0 {
		return o.Workers
	}
	return runtime.GOMAXPROCS(0)
}

func (o Options) composite() CompositeWeights {
	if o.Composite == (CompositeWeights{}) {
		return CompositeWeights{PPL: 1, Accuracy: 1}
	}
	return o.Composite
}

// KrumFAuto as Options.KrumF: the largest f each group's count allows.
const KrumFAuto = -1

// krumF is the f used for a group of n updates.
func (o Options) krumF(n int) int {
	if o.KrumF == KrumFAuto {
		return max(0, (n-3)/2)
	}
	return o.KrumF
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// Validate reports the first option out of range, naming it.
func (o Options) Validate() error {
	switch {
	case !finite(o.TrimFraction) || o.TrimFraction < 0 || o.TrimFraction >= 0.5:
		return fmt.Errorf("%w: trim_fraction %v not in [0, 0.5)", ErrBadOption, o.TrimFraction)
	case !finite(o.Temperature) || o.Temperature < 0:
		return fmt.Errorf("%w: temperature %v must be a positive number", ErrBadOption, o.Temperature)
	case o.KrumF < KrumFAuto:
		return fmt.Errorf("%w: krum f %d is negative", ErrBadOption, o.KrumF)
	case o.MultiKrumM < 0:
		return fmt.Errorf("%w: multi_krum m %d is negative", ErrBadOption, o.MultiKrumM)
	case int(o.Metric) < 0 || int(o.Metric) >= len(metricNames):
		return fmt.Errorf("%w: quality metric %d", ErrBadOption, int(o.Metric))
	case !finite(o.Composite.PPL) || !finite(o.Composite.Accuracy):
		return fmt.Errorf("%w: composite weights must be finite", ErrBadOption)
	case !finite(o.Nu) || o.Nu < 0:
		return fmt.Errorf("%w: geometric median smoothing nu %v must be ≥ 0", ErrBadOption, o.Nu)
	case o.MaxIter < 0:
		return fmt.Errorf("%w: max iterations %d is negative", ErrBadOption, o.MaxIter)
	case !finite(o.ClipRadius) || o.ClipRadius < 0:
		return fmt.Errorf("%w: centered clip radius %v must be ≥ 0", ErrBadOption, o.ClipRadius)
	case int(o.LoRAMode) < 0 || int(o.LoRAMode) >= len(modeNames):
		return fmt.Errorf("%w: LoRA mode %d", ErrBadOption, int(o.LoRAMode))
	case o.Rank < 0:
		return fmt.Errorf("%w: rank %d is negative", ErrBadOption, o.Rank)
	}
	return nil
}
