package compress

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// RawBits as QuantizationBits selects the lossless float32 codec.
const RawBits = 32

// Options are [federation.compression] plus the rounding mode.
type Options struct {
	// SparsityThreshold: a tensor whose fraction of exact zeros is greater
	// than this is sent sparse (sparsity_threshold, seed default 0.9).
	SparsityThreshold float64
	// QuantizationBits: 1..16 bits per value, or RawBits for exact float32
	// (quantization_bits, seed default 8).
	QuantizationBits int
	// Stochastic selects unbiased stochastic rounding instead of round to
	// nearest; it draws from Rand, which is then required.
	Stochastic bool
	Rand       *rand.Rand
}

// DefaultOptions are the seed's values: threshold 0.9, 8 bits, nearest.
func DefaultOptions() Options {
	return Options{SparsityThreshold: 0.9, QuantizationBits: 8}
}

// Validate reports every problem with the options at once.
func (o Options) Validate() error {
	var problems []string
	if !(o.QuantizationBits >= 1 && o.QuantizationBits <= 16) && o.QuantizationBits != RawBits {
		problems = append(problems, fmt.Sprintf("quantization_bits = %d (want 1..16, or 32 for lossless)", o.QuantizationBits))
	}
	if math.IsNaN(o.SparsityThreshold) || o.SparsityThreshold < 0 || o.SparsityThreshold > 1 {
		problems = append(problems, fmt.Sprintf("sparsity_threshold = %v (want 0..1)", o.SparsityThreshold))
	}
	if o.Stochastic && o.Rand == nil {
		problems = append(problems, "stochastic rounding needs a random source (Options.Rand)")
	}
	if len(problems) == 0 {
		return nil
	}
	msg := problems[0]
	for _, p := range problems[1:] {
		msg += "; " + p
	}
	return fmt.Errorf("%w: %s", ErrBadOptions, msg)
}
