package aggregate

import (
	"math"
	"testing"

	"github.com/dafnet/daf/adapter"
)

// Sample counts that are each finite but sum past the float64 range would
// give the aggregate daf.samples = +Inf, which no writer accepts: every
// strategy aggregated, and only writing the result failed. They are
// refused up front as a bad option naming the sum, by every strategy.
func TestSampleCountsOverflowingTheirSumAreRefused(t *testing.T) {
	huge := math.MaxFloat64
	us := []*adapter.Update{vecUpdate("a", huge, 1, 2), vecUpdate("b", huge, 3, 4), vecUpdate("c", 1, 5, 6)}
	for _, s := range Strategies() {
		_, err := Aggregate(s, us, Options{KrumF: KrumFAuto})
		if !contains(err, ErrBadOption, "daf.samples", "+Inf") {
			t.Errorf("%s: %v, want ErrBadOption naming the samples sum", s, err)
		}
	}
	// Large counts whose sum is finite are fine.
	us[0].Meta.Samples, us[1].Meta.Samples = huge/4, huge/4
	for _, s := range Strategies() {
		out, err := Aggregate(s, us, Options{KrumF: KrumFAuto})
		if err != nil || !(out.Meta.Samples < math.Inf(1)) {
			t.Errorf("%s: %v", s, err)
		}
	}
}
