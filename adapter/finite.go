package adapter

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// finiteChunk is how many values one goroutine of the finite check takes
// at a time: 1 MiB of float32, large enough that handing out chunks costs
// nothing next to scanning them, small enough that both cores stay busy on
// a file of a few million values.
const finiteChunk = 256 << 10

// Two float32s in one 64-bit word: their exponent fields, and what to add
// so that an all-ones field (NaN or infinity) carries into the bit above
// it, the sign bit of each half. Neither half's carry reaches the other.
const (
	exponentPair = 0x7f800000_7f800000
	carryPair    = 0x00800000_00800000
	signPair     = 0x80000000_80000000
)

// allFinite reports whether no value is a NaN or an infinity: those are
// exactly the floats whose exponent field is all ones. It works on the bit
// patterns, two values per 64-bit word with four independent accumulators,
// which keeps it at memory speed (about twice the speed of one float32 at a
// time); no float operation is involved, so signalling NaNs pass untouched.
func allFinite(xs []float32) bool {
	var f0, f1, f2, f3 uint64
	// Reading float32s as 64-bit words needs an 8-byte-aligned start; a
	// mapped tensor is only 4-byte aligned.
	if len(xs) > 0 && uintptr(unsafe.Pointer(&xs[0]))%8 != 0 {
		f0 = uint64(math.Float32bits(xs[0]))&exponentPair + carryPair
		xs = xs[1:]
	}
	if len(xs)%2 == 1 {
		f1 = uint64(math.Float32bits(xs[len(xs)-1]))&exponentPair + carryPair
		xs = xs[:len(xs)-1]
	}
	if len(xs) > 0 {
		ws := unsafe.Slice((*uint64)(unsafe.Pointer(&xs[0])), len(xs)/2)
		i := 0
		for ; i+8 <= len(ws); i += 8 {
			q := ws[i : i+8 : i+8]
			f0 |= (q[0]&exponentPair + carryPair) | (q[4]&exponentPair + carryPair)
			f1 |= (q[1]&exponentPair + carryPair) | (q[5]&exponentPair + carryPair)
			f2 |= (q[2]&exponentPair + carryPair) | (q[6]&exponentPair + carryPair)
			f3 |= (q[3]&exponentPair + carryPair) | (q[7]&exponentPair + carryPair)
		}
		for _, w := range ws[i:] {
			f0 |= w&exponentPair + carryPair
		}
	}
	return (f0|f1|f2|f3)&signPair == 0
}

// firstNonFinite returns the index of the first tensor (in the order
// given) holding a NaN or an infinity, or -1. Inputs of more than one chunk
// are scanned by up to GOMAXPROCS goroutines. guard, when not nil, wraps
// each goroutine's work so that a fault on mapped memory (the file shrank
// under the mapping) becomes an error rather than a crash; the first such
// error is returned.
func firstNonFinite(data [][]float32, guard func(func()) error) (int, error) {
	type chunk struct{ t, lo, hi int }
	var chunks []chunk
	for t, d := range data {
		for lo := 0; lo < len(d); lo += finiteChunk {
			chunks = append(chunks, chunk{t, lo, min(lo+finiteChunk, len(d))})
		}
	}
	if guard == nil {
		guard = func(fn func()) error { fn(); return nil }
	}
	// bad[t] is set by whichever goroutine finds tensor t non-finite; the
	// answer is the lowest such t, so it does not depend on scheduling.
	bad := make([]atomic.Bool, len(data))
	var next atomic.Int64
	scan := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(chunks) {
				return
			}
			c := chunks[i]
			if !bad[c.t].Load() && !allFinite(data[c.t][c.lo:c.hi]) {
				bad[c.t].Store(true)
			}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(chunks))
	var err error
	if workers <= 1 {
		err = guard(scan)
	} else {
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[w] = guard(scan)
			}()
		}
		wg.Wait()
		for _, e := range errs {
			if e != nil {
				err = e
				break
			}
		}
	}
	if err != nil {
		return -1, err
	}
	for t := range bad {
		if bad[t].Load() {
			return t, nil
		}
	}
	return -1, nil
}

// nonFiniteError names the first NaN or infinity of a tensor known to hold
// one. It runs only on the culprit, so it can afford to go value by value.
func nonFiniteError(file, tensor string, xs []float32) error {
	for i, v := range xs {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%s: %s: %w at index %d: %v", file, tensorPart(tensor), ErrNonFinite, i, v)
		}
	}
	return fmt.Errorf("%s: %s: %w (it changed while being read)", file, tensorPart(tensor), ErrNonFinite)
}
