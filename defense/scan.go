package defense

import (
	"errors"
	"fmt"
	"hash/fnv"
	"math"

	"github.com/dafnet/daf/adapter"
)

// ErrShapeMismatch: an update holds a tensor whose shape differs from the
// same tensor in the model it is judged against, so no delta exists.
var ErrShapeMismatch = errors.New("tensor shape differs from the model's")

// scan is what Validate needs of an update's values, gathered in one pass:
// on a model of a million values, reading them once instead of once per
// check (finiteness, norm, sketch, group norms) is most of the cost.
type scan struct {
	finite  bool
	values  int
	groupSq map[string]float64 // squared L2 norm per timestep group
	dir     []float64          // count sketch (SketchDims); nil unless asked for
}

// magnitude is the joint L2 norm over every group.
func (s scan) magnitude() float64 {
	var sq float64
	for _, g := range sortedKeys(s.groupSq) {
		sq += s.groupSq[g]
	}
	return math.Sqrt(sq)
}

func (s scan) groupNorms() map[string]float64 {
	out := make(map[string]float64, len(s.groupSq))
	for g, sq := range s.groupSq {
		out[g] = math.Sqrt(sq)
	}
	return out
}

// deltaBase returns the tensor of base that u's tensor (g, k) is measured
// from: nil when base is nil or lacks the tensor (the values count as they
// are), an error when the shapes differ.
func deltaBase(base *adapter.Update, node, g, k string, t *adapter.Tensor) ([]float32, error) {
	if base == nil {
		return nil, nil
	}
	b := base.Get(g, k)
	if b == nil {
		return nil, nil
	}
	if !b.SameShape(t) || len(b.Data) != len(t.Data) {
		return nil, fmt.Errorf("%w: node %q %s/%s has shape %v, model %v", ErrShapeMismatch, node, g, k, t.Shape, b.Shape)
	}
	return b.Data, nil
}

// scanUpdate reads every value of u − base once (base nil: of u), tensor
// by tensor in sorted order; the difference is taken in float32, as a
// materialised delta would hold it.
func scanUpdate(u, base *adapter.Update, withSketch bool) (scan, error) {
	s := scan{finite: true, groupSq: make(map[string]float64, len(u.Groups))}
	if withSketch {
		s.dir = make([]float64, SketchDims)
	}
	var bad uint32
	for _, g := range u.GroupNames() {
		var gsq float64
		for _, k := range u.Keys(g) {
			t := u.Groups[g][k]
			b, err := deltaBase(base, u.Meta.Node, g, k, t)
			if err != nil {
				return scan{}, err
			}
			s.values += len(t.Data)
			var sq float64
			var tb uint32
			switch {
			case withSketch && len(t.Data) >= minCachedTable:
				sq, tb = sketchByTable(s.dir, sketchTables.get(g, k, len(t.Data)), t.Data, b)
			case withSketch:
				sq, tb = sketchTensor(s.dir, tensorSeed(g, k), t.Data, b)
			default:
				sq, tb = sumSquares(t.Data, b)
			}
			gsq += sq
			bad |= tb
		}
		s.groupSq[g] = gsq
	}
	s.finite = bad&nonFiniteFlag == 0
	return s, nil
}

// nonFiniteFlag is set in the accumulator of notFinite once any value had
// an exponent of all ones (an infinity or a NaN).
const nonFiniteFlag = 1 << 31

// notFinite maps a float32's bits to a word with nonFiniteFlag set exactly
// when the value is an infinity or a NaN: an all-ones exponent plus one
// carries into bit 31, any other exponent stays below it. OR-ing these
// words over a tensor checks it without a branch per value.
func notFinite(bits uint32) uint32 { return bits&0x7f800000 + 0x00800000 }

// tensorSeed is the sketch's hash seed for one tensor name, so buckets
// and signs depend on where a value sits, not on the node that sent it.
func tensorSeed(g, k string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(g))
	h.Write([]byte{'/'})
	h.Write([]byte(k))
	return h.Sum64()
}

// deltaChunk is how many values of data − base are formed at a time, in
// a buffer that stays in the first-level cache, for the kernels below.
const deltaChunk = 512

// eachDeltaChunk calls f on consecutive chunks of data − base (taken in
// float32, as a materialised delta would hold it), or of data itself when
// base is nil; off is the chunk's index in data.
func eachDeltaChunk(data, base []float32, f func(off int, chunk []float32)) {
	if base == nil {
		f(0, data)
		return
	}
	base = base[:len(data)]
	var buf [deltaChunk]float32
	for off := 0; off < len(data); off += deltaChunk {
		d, b := data[off:min(len(data), off+deltaChunk)], base[off:min(len(data), off+deltaChunk)]
		c := buf[:len(d)]
		for i := range c {
			c[i] = d[i] - b[i]
		}
		f(off, c)
	}
}

// sketchTensor adds the tensor data − base (base nil: data) into the count
// sketch out, hashing each value's bucket and sign, and returns its sum of
// squares and notFinite accumulator. The sign is applied by flipping the
// sign bit rather than branching (x − v and x + (−v) are the same IEEE
// operation, so the sketch is unchanged): with random signs a branch is
// mispredicted every other value. Large tensors go through sketchByTable.
func sketchTensor(out []float64, seed uint64, data, base []float32) (float64, uint32) {
	out = out[:SketchDims]
	var sq float64
	var bad uint32
	eachDeltaChunk(data, base, func(off int, c []float32) {
		s, b := sumSquares4(c)
		sq += s
		bad |= b
		for i, v := range c {
			r := splitmix64(seed + uint64(off+i)*0x9e3779b97f4a7c15)
			out[r%SketchDims] += math.Float64frombits(math.Float64bits(float64(v)) ^ (r>>63)<<63)
		}
	})
	return sq, bad
}

// sumSquares is the sum of squares of data − base (base nil: data) and its
// notFinite accumulator.
func sumSquares(data, base []float32) (float64, uint32) {
	var sq float64
	var bad uint32
	eachDeltaChunk(data, base, func(_ int, c []float32) {
		s, b := sumSquares4(c)
		sq += s
		bad |= b
	})
	return sq, bad
}

// sumSquares4 keeps four partial sums, so the additions do not wait on
// one another.
func sumSquares4(data []float32) (float64, uint32) {
	var s0, s1, s2, s3 float64
	var bad uint32
	n := len(data) &^ 3
	for i := 0; i < n; i += 4 {
		d := data[i : i+4 : i+4]
		bad |= notFinite(math.Float32bits(d[0])) | notFinite(math.Float32bits(d[1])) |
			notFinite(math.Float32bits(d[2])) | notFinite(math.Float32bits(d[3]))
		f0, f1, f2, f3 := float64(d[0]), float64(d[1]), float64(d[2]), float64(d[3])
		s0 += f0 * f0
		s1 += f1 * f1
		s2 += f2 * f2
		s3 += f3 * f3
	}
	for _, v := range data[n:] {
		bad |= notFinite(math.Float32bits(v))
		s0 += float64(v) * float64(v)
	}
	return (s0 + s1) + (s2 + s3), bad
}
