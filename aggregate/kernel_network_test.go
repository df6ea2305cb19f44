package aggregate

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// forEachKernelPath runs fn on the scalar kernels (the order statistics
// of kernel_order.go, weightedSumGo) and on the vector ones (the network
// kernels, the assembly where the CPU has it and orderBlocksGo elsewhere;
// the FMA weightedSum where the CPU has it), so every property test covers
// both.
func forEachKernelPath(t *testing.T, fn func(t *testing.T)) {
	t.Helper()
	savedNetworks, savedSum := useNetworks, useSumAsm
	defer func() { useNetworks, useSumAsm = savedNetworks, savedSum }()
	for _, path := range []struct {
		name   string
		vector bool
	}{{"scalar", false}, {"vector", true}} {
		useNetworks = path.vector
		useSumAsm = path.vector && haveSumAsm
		t.Run(path.name, fn)
	}
}

// orderConfigs lists every (lo, hi) the kernels ask of n values: the
// median and each trimmed mean with k ≥ 1 cut per side.
func orderConfigs(n int) [][2]int {
	nw := medianNetwork(n)
	out := [][2]int{{nw.lo, nw.hi}}
	for k := 1; n-2*k >= 1; k++ {
		out = append(out, [2]int{k, n - k})
	}
	return out
}

// zeroOneInputs returns, for every wire, a bit-sliced word per 64 inputs:
// bit b of word w of wire i is bit i of the input number 64·w + b, so the
// 2^n 0-1 inputs are all there.
func zeroOneInputs(n int) [][]uint64 {
	words := max(1, (1<<n)/64)
	wires := make([][]uint64, n)
	for i := range wires {
		wires[i] = make([]uint64, words)
		for w := range wires[i] {
			var v uint64
			for b := 0; b < 64; b++ {
				if x := uint64(w*64 + b); x < 1<<n && x>>i&1 == 1 {
					v |= 1 << b
				}
			}
			wires[i][w] = v
		}
	}
	return wires
}

// By the 0-1 principle, a comparator network leaves the multiset of the
// sorted positions lo..hi-1 on wires lo..hi-1 for every input if it does
// for every 0-1 input: thresholding at any c commutes with the network,
// and multisets with equal counts above every c are equal. For a 0-1
// input with ones ones, the output wires must hold
// |[lo, hi) ∩ [n−ones, n)| ones. Every n ≤ 20 is checked exhaustively,
// bit-sliced, with the pruned networks the kernels use and with the full
// sort (which must sort).
func TestNetworksZeroOne(t *testing.T) {
	maxN := 20
	if testing.Short() {
		maxN = 14
	}
	for n := 1; n <= maxN; n++ {
		inputs := zeroOneInputs(n)
		words := len(inputs[0])
		run := func(comps [][2]int) [][]uint64 {
			out := make([][]uint64, n)
			for i := range out {
				out[i] = slices.Clone(inputs[i])
			}
			for _, c := range comps {
				a, b := out[c[0]], out[c[1]]
				for w := range a {
					a[w], b[w] = a[w]&b[w], a[w]|b[w]
				}
			}
			return out
		}
		ones := make([]int, words*64) // ones in input number x
		for x := range ones {
			ones[x] = bits.OnesCount(uint(x))
		}
		full := batcherNetwork(n)
		sorted := run(full)
		for i := 0; i+1 < n; i++ {
			for w := range sorted[i] {
				if sorted[i][w]&^sorted[i+1][w] != 0 {
					t.Fatalf("n=%d: the full network leaves a 1 on wire %d above a 0 on wire %d", n, i, i+1)
				}
			}
		}
		for _, c := range orderConfigs(n) {
			lo, hi := c[0], c[1]
			nw := orderNetwork(n, lo, hi)
			comps := make([][2]int, 0, len(nw.pairs)/2)
			for p := 0; p < len(nw.pairs); p += 2 {
				comps = append(comps, [2]int{int(nw.pairs[p]) / netRowBytes, int(nw.pairs[p+1]) / netRowBytes})
			}
			out := run(comps)
			for x := 0; x < 1<<n; x++ {
				got := 0
				for i := lo; i < hi; i++ {
					got += int(out[i][x/64] >> (x % 64) & 1)
				}
				if want := max(0, hi-max(lo, n-ones[x])); got != want {
					t.Fatalf("n=%d rows %d..%d (%d comparators): input %0*b leaves %d ones, want %d", n, lo, hi-1, len(comps), n, x, got, want)
				}
			}
		}
	}
}

// Larger n: random inputs with many ties through the pruned networks (as
// the Go version of the kernel), against sorting.
func TestNetworksRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for n := 1; n <= 64; n++ {
		xs := make([][]float32, n)
		for i := range xs {
			xs[i] = make([]float32, 4*netBlock)
			for j := range xs[i] {
				xs[i][j] = float32(rng.IntN(1 + j%9*n))
			}
		}
		col := make([]float64, n)
		for _, c := range orderConfigs(n) {
			nw := orderNetwork(n, c[0], c[1])
			dst := make([]float32, len(xs[0]))
			orderBlocksGo(dst, xs, make([]float32, n*netRow), nw.pairs, nw.lo, nw.hi, nw.scale, 0)
			for j := range dst {
				for i := range xs {
					col[i] = float64(xs[i][j])
				}
				slices.Sort(col)
				var s float64
				for _, v := range col[c[0]:c[1]] {
					s += v
				}
				if want := float32(s * (1 / float64(c[1]-c[0]))); dst[j] != want {
					t.Fatalf("n=%d rows %d..%d: coordinate %d = %v, want %v", n, c[0], c[1]-1, j, dst[j], want)
				}
			}
		}
	}
}

// Pruning must pay: the kernels' networks are well below a full sort.
func TestNetworkSizes(t *testing.T) {
	for _, c := range []struct{ n, k, full, trim, median int }{
		{5, 1, 9, 8, 8},
		{50, 10, 403, 340, 330},
	} {
		if got := len(batcherNetwork(c.n)); got != c.full {
			t.Errorf("n=%d: full network %d comparators, want %d", c.n, got, c.full)
		}
		if got := len(trimNetwork(c.n, c.k).pairs) / 2; got != c.trim {
			t.Errorf("n=%d k=%d: trimmed-mean network %d comparators, want %d", c.n, c.k, got, c.trim)
		}
		if got := len(medianNetwork(c.n).pairs) / 2; got != c.median {
			t.Errorf("n=%d: median network %d comparators, want %d", c.n, got, c.median)
		}
	}
}

// orderValue draws the values that stress the kernels: ties, signed
// zeros, attackers' huge magnitudes next to small honest values.
func orderValue(kind, r uint64) float32 {
	switch kind % 6 {
	case 0:
		return float32(int(r%5)-2) / 4 // few distinct values: ties
	case 1:
		return float32(math.Copysign(0, float64(int(r%2)*2-1)))
	case 2:
		return float32(math.Copysign(1e30, float64(int(r%2)*2-1)))
	case 3:
		return float32(int64(r%2001)-1000) * 1e-7
	case 4:
		return float32(int64(r%(1<<24))-(1<<23)) * 3e30 // up to ±2.5e37, and 0
	}
	return math.Float32frombits(uint32(r)&^(0xff<<23) | uint32(r>>32%254+1)<<23) // any normal
}

// checkNetworkKernel runs the network kernel for n inputs (the median, or
// k cut per side) on xs with orderBlocks = orderBlocksGo and with the
// assembly, and fails unless the Go version agrees with the slow float64
// reference and the assembly with the Go version, bit for bit.
func checkNetworkKernel(t failer, xs [][]float32, k int, median bool) {
	t.Helper()
	n, length := len(xs), len(xs[0])
	xs64 := make([][]float64, n)
	for i, x := range xs {
		xs64[i] = make([]float64, length)
		for j, v := range x {
			xs64[i][j] = float64(v)
		}
	}
	nw := trimNetwork(n, k)
	want := slowTrimmedMean(xs64, float64(k)/float64(n))
	if median {
		nw = medianNetwork(n)
		want = slowMedian(xs64)
	}
	saved := orderBlocks
	defer func() { orderBlocks = saved }()
	orderBlocks = orderBlocksGo
	slow := make([]float32, length)
	nw.run(slow, xs, &networkScratch{})
	got := make([]float64, length)
	for j, v := range slow {
		got[j] = float64(v)
	}
	what := fmt.Sprintf("n=%d k=%d median=%v length=%d", n, k, median, length)
	// Both sum the kept values in float64, in different orders: each sum
	// is within 64·2⁻⁵³ of the largest magnitude of the coordinate, and the
	// kernel's is rounded once more to float32 (2⁻²⁴, or 2⁻¹⁵⁰ absolute
	// among subnormals).
	for j := range got {
		var colMax float64
		for i := range xs64 {
			colMax = max(colMax, math.Abs(xs64[i][j]))
		}
		if d := math.Abs(got[j] - want[j]); !(d <= 6e-8*math.Abs(want[j])+2e-14*colMax+1e-45) {
			t.Fatalf("%s: network in Go: element %d = %v, want %v", what, j, got[j], want[j])
		}
	}
	if !haveNetworkAsm {
		return
	}
	orderBlocks = saved
	fast := make([]float32, length)
	nw.run(fast, xs, &networkScratch{})
	// orderBlocksGo mirrors VMINPS/VMAXPS on ties, so even the signs of
	// zeros agree.
	for j := range fast {
		if math.Float32bits(fast[j]) != math.Float32bits(slow[j]) {
			t.Fatalf("%s: element %d: assembly %v, Go %v", what, j, fast[j], slow[j])
		}
	}
}

// The assembly against its Go twin and the slow reference: any n in
// [1, 64], any k, lengths that are and are not multiples of 8 and of the
// block, with ties, ±0 and 1e30 mixed with small values.
func TestNetworkKernelMatchesGoAndSlow(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 64).Draw(t, "n")
		length := rapid.OneOf(rapid.IntRange(1, 3*netBlock+9), rapid.SampledFrom([]int{8, netBlock, 2 * netBlock, 16 << 10})).Draw(t, "length")
		median := n < 3 || rapid.Bool().Draw(t, "median")
		k := 0
		if !median {
			k = rapid.IntRange(1, (n-1)/2).Draw(t, "k")
		}
		kinds := rapid.SliceOfN(rapid.Uint64(), 1, 3).Draw(t, "kinds")
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 0))
		xs := make([][]float32, n)
		for i := range xs {
			xs[i] = make([]float32, length)
			for j := range xs[i] {
				xs[i][j] = orderValue(kinds[rng.IntN(len(kinds))], rng.Uint64())
			}
		}
		checkNetworkKernel(t, xs, k, median)
	})
}

// FuzzNetworkKernel: the first bytes choose n, k and the mode, the rest
// are the values (finite float32 bit patterns; others are mapped to
// finite ones, as the kernels never see NaN or infinity).
func FuzzNetworkKernel(f *testing.F) {
	f.Add(uint8(5), uint8(1), false, []byte("\x00\x00\x80\x3f\x00\x00\x00\x80\x00\x00\x00\x00\xca\xf2\x49\x71"))
	f.Add(uint8(50), uint8(10), false, make([]byte, 4*50*70))
	f.Add(uint8(4), uint8(0), true, []byte("\x00\x00\x00\x80\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, nb, kb uint8, median bool, data []byte) {
		n := 1 + int(nb)%64
		k := 0
		if !median && n >= 3 {
			k = 1 + int(kb)%((n-1)/2)
		} else {
			median = true
		}
		length := max(1, len(data)/4/n)
		xs := make([][]float32, n)
		for i := range xs {
			xs[i] = make([]float32, length)
			for j := range xs[i] {
				var v float32
				if p := 4 * (i*length + j); p+4 <= len(data) {
					v = math.Float32frombits(binary.LittleEndian.Uint32(data[p:]))
				}
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					v = float32(math.Copysign(3.4e38, float64(v)))
				}
				xs[i][j] = v
			}
		}
		checkNetworkKernel(t, xs, k, median)
	})
}

// The checked-in assembly is what its generator writes.
func TestNetworkAssemblyGenerated(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator with go run")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out := filepath.Join(t.TempDir(), "kernel_network_amd64.s")
	if msg, err := exec.Command(goTool, "run", "gen_network_amd64.go", "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("gen_network_amd64.go: %v\n%s", err, msg)
	}
	want, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("kernel_network_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("kernel_network_amd64.s differs from what gen_network_amd64.go writes: run go generate ./aggregate")
	}
}
