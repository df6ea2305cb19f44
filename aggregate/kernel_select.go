package aggregate

import "math"

// Selection on order-preserving integer keys. Comparing int32 keys is one
// CMP and a conditional move, against two MINSS and an OR for a float32
// min that must honour NaN and signed zeros; NaN never reaches a kernel
// (inputs are checked first), so the integer order is the float order.

// sortKey maps a float32 to an int32 with the same order: positive floats
// keep their bits, negative ones have their magnitude bits flipped so that
// a larger magnitude sorts lower. The map is its own inverse.
func sortKey(f float32) int32 {
	b := int32(math.Float32bits(f))
	return b ^ ((b >> 31) & 0x7fffffff)
}

func fromKey(k int32) float32 {
	return math.Float32frombits(uint32(k ^ ((k >> 31) & 0x7fffffff)))
}

// gatherKeys is gather into sort keys: t[(j-b)*n+i] = key(xs[i][j]).
func gatherKeys(t []int32, xs [][]float32, b, e int) {
	n := len(xs)
	for i, x := range xs {
		x = x[b:e]
		for j, v := range x {
			t[j*n+i] = sortKey(v)
		}
	}
}

// b2i compiles to SETcc: the partition loop below has no data-dependent
// branch, so it does not pay a misprediction on every other element.
func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// selectKey reorders v so that v[k] is its (k+1)-th smallest key with
// v[:k] ≤ v[k] ≤ v[k+1:], and returns it: quickselect with a median-of-3
// pivot and a branch-free Lomuto partition.
func selectKey(v []int32, k int) int32 {
	lo, hi := 0, len(v)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		a, b, c := v[lo], v[mid], v[hi]
		p := max(min(a, b), min(max(a, b), c))
		switch p {
		case b:
			v[mid], v[hi] = v[hi], v[mid]
		case a:
			v[lo], v[hi] = v[hi], v[lo]
		}
		store := lo
		w := v[lo:hi]
		for i, x := range w {
			// Always swap, advance only past keys below the pivot: the
			// region [store, i] holds keys ≥ p throughout.
			w[i] = v[store]
			v[store] = x
			store += b2i(x < p)
		}
		v[hi] = v[store]
		v[store] = p
		switch {
		case store == k:
			return p
		case k < store:
			hi = store - 1
		default:
			lo = store + 1
		}
	}
	return v[k]
}
