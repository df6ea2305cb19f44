package aggregate

import "fmt"

// Flat kernels for callers that hold raw parameter vectors (the simulator,
// benchmarks): the same code the strategies run, split over workers
// goroutines (0 = GOMAXPROCS). Every xs[i] must be as long as dst; inputs
// must be finite (Aggregate checks that; these do not).

// WeightedSumInto sets dst = Σ w[i]·xs[i].
func WeightedSumInto(dst []float32, xs [][]float32, w []float32, workers int) error {
	if err := checkFlat(dst, xs); err != nil {
		return err
	}
	if len(w) != len(xs) {
		return fmt.Errorf("%w: %d weights for %d inputs", ErrMismatch, len(w), len(xs))
	}
	c := make([]float64, len(w))
	for i, v := range w {
		c[i] = float64(v)
	}
	runCombination(c, [][][]float32{xs}, [][]float32{dst}, Options{Workers: workers}.workers())
	return nil
}

// TrimmedMeanInto sets dst to the coordinate-wise mean after cutting the k
// smallest and k largest values (n − 2k ≥ 1).
func TrimmedMeanInto(dst []float32, xs [][]float32, k int, workers int) error {
	if err := checkFlat(dst, xs); err != nil {
		return err
	}
	if k < 0 || len(xs)-2*k < 1 {
		return fmt.Errorf("%w: cutting %d from each side of %d inputs", ErrTrimAll, k, len(xs))
	}
	runCoordinate(orderKernel(len(xs), k, false), [][][]float32{xs}, [][]float32{dst}, Options{Workers: workers}.workers())
	return nil
}

// MedianInto sets dst to the coordinate-wise median (the mean of the two
// middle values for an even count).
func MedianInto(dst []float32, xs [][]float32, workers int) error {
	if err := checkFlat(dst, xs); err != nil {
		return err
	}
	runCoordinate(orderKernel(len(xs), 0, true), [][][]float32{xs}, [][]float32{dst}, Options{Workers: workers}.workers())
	return nil
}

func checkFlat(dst []float32, xs [][]float32) error {
	if len(xs) == 0 {
		return ErrNoUpdates
	}
	for i, x := range xs {
		if len(x) != len(dst) {
			return fmt.Errorf("%w: input %d has %d values, the output %d", ErrMismatch, i, len(x), len(dst))
		}
	}
	return nil
}
