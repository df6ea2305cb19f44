package defense

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/dafnet/daf/adapter"
)

// Benchmarks over update size (values) and, for Sybil clustering, the
// number of updates in a round. Each grid has a baseline measured in the
// same run: one pass computing the update's L2 norm (BenchmarkL2Baseline),
// the least any check over every value must cost; report Validate and
// DetectSybil as multiples of it.

var benchSizes = []int{3 << 10, 64 << 10, 1 << 20}

func benchUpdates(rng *rand.Rand, nodes, size int) []*adapter.Update {
	us := make([]*adapter.Update, nodes)
	for i := range us {
		us[i] = randomVec(rng, fmt.Sprintf("n%03d", i), size, 1)
	}
	return us
}

func BenchmarkL2Baseline(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("values=%d", size), func(b *testing.B) {
			u := benchUpdates(rand.New(rand.NewPCG(1, 1)), 1, size)[0]
			b.SetBytes(int64(4 * size))
			for b.Loop() {
				_ = u.L2()
			}
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("values=%d", size), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			us := benchUpdates(rng, 8, size)
			d := NewDetector(DefaultConfig(), NewMemoryStatsStore())
			for _, u := range us {
				if _, err := d.Validate(u); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(4 * size))
			i := 0
			for b.Loop() {
				if _, err := d.Validate(us[i%len(us)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkValidateFrom is the daemon's path: an adapter judged by its
// difference from the node's model, taken on the fly.
func BenchmarkValidateFrom(b *testing.B) {
	for _, size := range benchSizes {
		b.Run(fmt.Sprintf("values=%d", size), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			us := benchUpdates(rng, 8, size)
			model := benchUpdates(rng, 1, size)[0]
			d := NewDetector(DefaultConfig(), NewMemoryStatsStore())
			for _, u := range us {
				if _, err := d.ValidateFrom(u, model); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(int64(4 * size))
			i := 0
			for b.Loop() {
				if _, err := d.ValidateFrom(us[i%len(us)], model); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkDetectSybil(b *testing.B) {
	for _, nodes := range []int{10, 50} {
		for _, size := range benchSizes[:2] {
			b.Run(fmt.Sprintf("nodes=%d/values=%d", nodes, size), func(b *testing.B) {
				us := benchUpdates(rand.New(rand.NewPCG(2, 2)), nodes, size)
				cfg := DefaultConfig()
				b.SetBytes(int64(4 * size * nodes))
				for b.Loop() {
					_ = DetectSybil(us, cfg)
				}
			})
		}
	}
}
