package aggregate

import (
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// spanElems is the work unit handed to a worker: large enough to amortise
// scheduling, small enough that two cores stay busy on a 1 M-element tensor
// and that a span of 5–50 inputs stays within the L2 cache.
const spanElems = 16 << 10

// span is a contiguous element range [lo, hi) of tensor number t.
type span struct{ t, lo, hi int }

// splitSpans cuts tensors of the given lengths into spans.
func splitSpans(lengths []int) []span {
	var out []span
	for t, n := range lengths {
		for lo := 0; lo < n; lo += spanElems {
			out = append(out, span{t, lo, min(lo+spanElems, n)})
		}
	}
	return out
}

// runSpans hands spans to up to workers goroutines. Each worker gets its
// own index w (0 ≤ w < workers) so it can own scratch space without locks.
func runSpans(spans []span, workers int, fn func(w int, s span)) {
	if workers > len(spans) {
		workers = len(spans)
	}
	if workers <= 1 {
		for _, s := range spans {
			fn(0, s)
		}
		return
	}
	// The inputs may alias mapped files (adapter.ReadFileMapped), whose
	// pages fault when a file shrinks. The caller may guard against that
	// (adapter.Guard); the workers then fault the same way, and hand the
	// first panic back so that the caller's guard sees it instead of a
	// worker's fault crashing the process.
	faultPanics := debug.SetPanicOnFault(false)
	debug.SetPanicOnFault(faultPanics)
	var workerPanic atomic.Pointer[any]
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			debug.SetPanicOnFault(faultPanics)
			defer func() {
				r := recover()
				if r == nil {
					return
				}
				if _, fault := r.(interface{ Addr() uintptr }); !fault {
					panic(r) // a bug: crash here, with this worker's stack
				}
				workerPanic.CompareAndSwap(nil, &r)
				next.Store(int64(len(spans))) // the others stop at their next span
			}()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(spans) {
					return
				}
				fn(w, spans[i])
			}
		}(w)
	}
	wg.Wait()
	if r := workerPanic.Load(); r != nil {
		panic(*r)
	}
}

// effectiveWorkers never starts more goroutines than there are spans.
func effectiveWorkers(spans []span, workers int) int {
	return max(1, min(workers, len(spans)))
}
