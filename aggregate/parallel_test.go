package aggregate

import "testing"

// fakeFault is what a memory fault panics with under
// debug.SetPanicOnFault: a runtime.Error with the faulting address.
type fakeFault struct{ addr uintptr }

func (f fakeFault) Error() string { return "fault" }
func (f fakeFault) RuntimeError() {}
func (f fakeFault) Addr() uintptr { return f.addr }

// A fault in a worker is handed back to the goroutine that called
// runSpans, where the caller's guard (adapter.Guard) can recover it; the
// other workers stop at their next span.
func TestRunSpansHandsAFaultBackToTheCaller(t *testing.T) {
	spans := splitSpans([]int{64 * spanElems})
	var got any
	func() {
		defer func() { got = recover() }()
		runSpans(spans, 4, func(w int, s span) {
			if s.lo == 7*spanElems {
				panic(fakeFault{addr: 0x1234})
			}
		})
	}()
	if f, ok := got.(fakeFault); !ok || f.addr != 0x1234 {
		t.Fatalf("recovered %v, want the worker's fault", got)
	}
}
