package aggregate

import (
	"sync"
	"unsafe"
)

// Order statistics as comparator networks run across coordinates. Go does
// not vectorise the per-coordinate kernels of kernel_order.go, and a
// per-coordinate selection branches on data. A comparator network does the
// same fixed work for every coordinate, so netBlock coordinates go through
// it side by side: each input's slice of the block is copied into its own
// scratch row (the inputs are not modified), every comparator (i, j) sets
// row i to the lane-wise minimum and row j to the maximum, and the kept
// rows are then summed in float64. On amd64 with AVX2 one assembly call
// runs the gather, the whole comparator list and the sum for a span of
// blocks, 8 lanes per instruction; orderBlocksGo is the same computation
// in Go, bit for bit, for tests and other architectures.
//
// The trimmed sum adds the kept rows directly (never "total minus the
// extremes", see kernel_order.go).

// netBlock is how many coordinates go through the network at once: a row
// is 8 AVX2 vectors, and 64 rows of scratch (16 KiB) stay in L1.
const netBlock = 64

// netRowBytes is a scratch row's length in bytes; comparators name rows by
// byte offset so that the assembly adds them to the base directly. (Rows
// one cache line further apart, against 4 KiB aliasing between rows 16
// apart, measured no faster.)
const netRowBytes = netBlock * 4

// netRow is a scratch row's length in float32s.
const netRow = netRowBytes / 4

// network is a compiled selection: after the comparators, rows lo..hi-1
// hold the (lo+1)-th to hi-th smallest values of each lane, in some order;
// the kernel writes their mean, float32(Σ those rows · 1/(hi−lo)). For the
// median of an even count that is (a+b)·0.5, the same as (a+b)/2.
type network struct {
	n      int
	pairs  []uint32 // comparator c is rows pairs[2c]/netRowBytes (min) and pairs[2c+1]/netRowBytes (max)
	lo, hi int
	scale  float64
}

// batcherNetwork is Batcher's odd–even merge sort on n wires (any n ≥ 1):
// comparators (i, j), i < j, leave the minimum on i. For n = 5 it has 9
// comparators, for 50 it has 403, for 64 it has 543.
func batcherNetwork(n int) [][2]int {
	var out [][2]int
	for p := 1; p < n; p <<= 1 {
		for k := p; k >= 1; k >>= 1 {
			for j := k % p; j+k < n; j += 2 * k {
				for i := 0; i < min(k, n-j-k); i++ {
					// Only wires within the same merged run of 2p are compared.
					if (i+j)/(2*p) == (i+j+k)/(2*p) {
						out = append(out, [2]int{i + j, i + j + k})
					}
				}
			}
		}
	}
	return out
}

// pruneNetwork drops the comparators that cannot change the multiset of
// values left on wires lo..hi-1. Walking backwards, a wire is unread (no
// later comparator or output reads it), kept (it goes to the output set
// untouched by any later comparator) or live. A comparator between two
// unread wires changes nothing read; one between two kept wires only
// swaps two members of the output set, which is summed, so its order does
// not matter. Any other comparator stays, and its wires become live.
func pruneNetwork(comps [][2]int, n, lo, hi int) [][2]int {
	const (
		unread = iota
		kept
		live
	)
	state := make([]int, n)
	for w := lo; w < hi; w++ {
		state[w] = kept
	}
	var rev [][2]int
	for c := len(comps) - 1; c >= 0; c-- {
		i, j := comps[c][0], comps[c][1]
		if state[i] == state[j] && state[i] != live {
			continue
		}
		state[i], state[j] = live, live
		rev = append(rev, comps[c])
	}
	out := make([][2]int, len(rev))
	for c, p := range rev {
		out[len(rev)-1-c] = p
	}
	return out
}

// maxNetworkInputs bounds the networks' use: a network costs O(n log² n)
// comparators per coordinate, quickselect O(n). Measured per coordinate
// on one core of the shared 2-core machine at n = 1024 (20 % trimmed / median): 4.7 / 4.6 µs against
// 18.9 / 12.2 µs for the scalar kernels; at n = 64, 0.05 against 0.65 /
// 1.1 µs. Larger n are not measured and stay on the scalar kernels.
const maxNetworkInputs = 1024

// orderBlocks runs whole blocks: orderBlocksAVX2 where the CPU has it.
var orderBlocks = orderBlocksGo

// useNetworks routes order statistics to the network kernels. It is on
// only where they are vectorised; tests switch it to run both paths.
var useNetworks = haveNetworkAsm

type networkKey struct{ n, lo, hi int }

// networks caches compiled networks: a federation sees the same few n
// round after round.
var networks sync.Map // networkKey → *network

// orderNetwork returns the network that averages the (lo+1)-th to hi-th
// smallest of n values.
func orderNetwork(n, lo, hi int) *network {
	key := networkKey{n, lo, hi}
	if nw, ok := networks.Load(key); ok {
		return nw.(*network)
	}
	comps := pruneNetwork(batcherNetwork(n), n, lo, hi)
	pairs := make([]uint32, 0, 2*len(comps))
	for _, c := range comps {
		pairs = append(pairs, uint32(c[0]*netRowBytes), uint32(c[1]*netRowBytes))
	}
	nw, _ := networks.LoadOrStore(key, &network{n: n, pairs: pairs, lo: lo, hi: hi, scale: 1 / float64(hi-lo)})
	return nw.(*network)
}

// trimNetwork is the trimmed mean with k cut per side (n − 2k ≥ 1).
func trimNetwork(n, k int) *network {
	return orderNetwork(n, k, n-k)
}

// medianNetwork is the median: the middle row, or half the sum of the two
// middle rows for even n (what medianGeneralKernel computes).
func medianNetwork(n int) *network {
	if n%2 == 1 {
		return orderNetwork(n, n/2, n/2+1)
	}
	return orderNetwork(n, n/2-1, n/2+1)
}

// networkScratch is a worker's private buffers for the network kernels.
type networkScratch struct {
	rows  []float32   // n rows of netRow, from a cache-line boundary
	pad   []float32   // the last, partial block of every input, zero-padded
	padXs [][]float32 // pad cut into rows
	out   [netBlock]float32
}

// run applies nw to every coordinate: whole blocks in one call, then the
// partial last block through zero-padded copies, so that every coordinate,
// wherever it falls, goes through the same arithmetic.
func (nw *network) run(dst []float32, xs [][]float32, sc *networkScratch) {
	n := nw.n
	if cap(sc.rows) < n*netRow {
		sc.rows = cacheAligned(n * netRow)
		sc.pad = make([]float32, n*netBlock)
		sc.padXs = make([][]float32, n)
	}
	rows := sc.rows[:n*netRow]
	// Prefetch about 32 KiB ahead over all inputs, at least two blocks:
	// L1 holds that and the rows. Against no prefetch at N = 50, P = 4 M
	// (best of 10, shared 2-core machine): median 82 ms against 135 ms,
	// trimmed mean 103 against 109.
	ahead := max(2, 128/n) * netBlock * 4
	whole := len(dst) / netBlock * netBlock
	if whole > 0 {
		orderBlocks(dst[:whole], xs, rows, nw.pairs, nw.lo, nw.hi, nw.scale, ahead)
	}
	if whole == len(dst) {
		return
	}
	padXs := sc.padXs[:n]
	for i := range padXs {
		row := sc.pad[i*netBlock : (i+1)*netBlock]
		m := copy(row, xs[i][whole:len(dst)])
		clear(row[m:])
		padXs[i] = row
	}
	orderBlocks(sc.out[:], padXs, rows, nw.pairs, nw.lo, nw.hi, nw.scale, 0)
	copy(dst[whole:], sc.out[:])
}

// cacheAligned returns n float32s starting on a 64-byte boundary: no
// 32-byte load or store of a row then straddles two cache lines.
func cacheAligned(n int) []float32 {
	buf := make([]float32, n+16)
	skip := int(-uintptr(unsafe.Pointer(&buf[0])) % 64 / 4)
	return buf[skip : skip+n : skip+n]
}

// orderBlocksGo is what the assembly computes, in the same order and with
// the same rounding: for each whole block of dst, gather the block of
// every input into rows, apply the comparators with the minimum and
// maximum of VMINPS and VMAXPS (the second operand on ties, which only
// matters for ±0), sum rows lo..hi-1 from 0 in float64 in row order, and
// store float32(sum · scale). ahead is the assembly's prefetch distance,
// which changes no result.
func orderBlocksGo(dst []float32, xs [][]float32, rows []float32, pairs []uint32, lo, hi int, scale float64, ahead int) {
	for b := 0; b+netBlock <= len(dst); b += netBlock {
		for i, x := range xs {
			copy(rows[i*netRow:i*netRow+netBlock], x[b:b+netBlock])
		}
		for c := 0; c+1 < len(pairs); c += 2 {
			ri := rows[pairs[c]/4 : pairs[c]/4+netBlock]
			rj := rows[pairs[c+1]/4 : pairs[c+1]/4+netBlock]
			for l, a := range ri {
				v := rj[l]
				lowV, highV := v, v
				if a < v {
					lowV = a
				}
				if a > v {
					highV = a
				}
				ri[l], rj[l] = lowV, highV
			}
		}
		for l := 0; l < netBlock; l++ {
			var s float64
			for r := lo; r < hi; r++ {
				s += float64(rows[r*netRow+l])
			}
			dst[b+l] = float32(s * scale)
		}
	}
}
