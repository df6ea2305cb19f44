package compress

import (
	"math"

	"github.com/dafnet/daf/adapter"
	"math/rand/v2"
	"testing"
)

const fuzzMaxElems = 1 << 12

func FuzzDecodeTensor(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 5))
	dense := make([]float32, 37)
	sparse := make([]float32, 200)
	for i := range dense {
		dense[i] = float32(rng.NormFloat64())
	}
	for i := 0; i < 5; i++ {
		sparse[rng.IntN(200)] = float32(rng.NormFloat64())
	}
	for _, bits := range []int{1, 3, 8, 11, 16, RawBits} {
		for _, data := range [][]float32{dense, sparse, {2, 2, 2}, {}} {
			enc, err := EncodeTensor(data, Options{SparsityThreshold: 0.9, QuantizationBits: bits})
			if err != nil {
				f.Fatal(err)
			}
			f.Add(enc, uint16(len(data)))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, maxElems uint16) {
		limit := int(maxElems) % (fuzzMaxElems + 1)
		out, err := DecodeTensor(b, limit)
		if err != nil {
			return
		}
		if len(out) > limit {
			t.Fatalf("decoded %d elements over a limit of %d", len(out), limit)
		}
		for i, v := range out {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("decoded non-finite %v at %d", v, i)
			}
		}
		// Whatever decodes re-encodes losslessly to the same values.
		again, err := EncodeTensor(out, Options{SparsityThreshold: 0.5, QuantizationBits: RawBits})
		if err != nil {
			t.Fatalf("decoded tensor does not re-encode: %v", err)
		}
		back, err := DecodeTensor(again, limit)
		if err != nil || len(back) != len(out) {
			t.Fatalf("re-decode: %v", err)
		}
		for i := range out {
			if back[i] != out[i] && !(back[i] == 0 && out[i] == 0) {
				t.Fatalf("element %d: %v then %v", i, out[i], back[i])
			}
		}
	})
}

func FuzzDecodeUpdate(f *testing.F) {
	rng := rand.New(rand.NewPCG(6, 6))
	u := sampleUpdate(rng)
	for _, opt := range []Options{DefaultOptions(), {SparsityThreshold: 0.5, QuantizationBits: 3}, {SparsityThreshold: 1, QuantizationBits: RawBits}} {
		b, err := EncodeUpdate(u, opt, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// A minimal update too, so mutations reach every field quickly.
	small := adapter.New()
	small.Set("g", "k", &adapter.Tensor{Shape: []int{2, 2}, Data: []float32{1, 0, -1, 0.5}})
	small.Meta.Quality = map[string]adapter.GroupQuality{"g": {PPLAfter: 2, TaskAccuracy: map[string]float64{"t": 0.5}}}
	small.Meta.Extra = map[string]string{"x": "y"}
	for _, bits := range []int{2, RawBits} {
		b, err := EncodeUpdate(small, Options{SparsityThreshold: 0.9, QuantizationBits: bits}, nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	lim := DefaultLimits()
	lim.MaxTotalElems = fuzzMaxElems
	lim.MaxElemsPerTensor = fuzzMaxElems
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := DecodeUpdate(b, lim)
		if err != nil {
			return
		}
		if u.NumParams() > lim.MaxTotalElems {
			t.Fatalf("decoded %d values over a limit of %d", u.NumParams(), lim.MaxTotalElems)
		}
		if err := u.CheckFinite(); err != nil {
			t.Fatal(err)
		}
		for _, g := range u.GroupNames() {
			for _, k := range u.Keys(g) {
				if tt := u.Get(g, k); tt.NumElements() != len(tt.Data) {
					t.Fatalf("%s/%s: shape %v with %d values", g, k, tt.Shape, len(tt.Data))
				}
			}
		}
		// A decoded update is a valid one: it encodes again and decodes to
		// the same tensors.
		enc, err := EncodeUpdate(u, Options{SparsityThreshold: 1, QuantizationBits: RawBits}, nil)
		if err != nil {
			t.Fatalf("decoded update does not re-encode: %v", err)
		}
		back, err := DecodeUpdate(enc, lim)
		if err != nil || back.NumParams() != u.NumParams() || back.Meta.Round != u.Meta.Round {
			t.Fatalf("re-decode: %v", err)
		}
	})
}
