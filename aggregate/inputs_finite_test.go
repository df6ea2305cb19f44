package aggregate

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/dafnet/daf/adapter"
)

// Options.InputsFinite skips only the scan of the inputs: with it the same
// finite inputs give the same aggregate, and a NaN that reaches the
// aggregate (the caller's promise broken) is still refused on the way out.
func TestInputsFiniteSkipsOnlyTheInputScan(t *testing.T) {
	us := []*adapter.Update{vecUpdate("a", 1, 1, 2, 3), vecUpdate("b", 3, 5, 6, 7), vecUpdate("c", 2, -1, 0, 4), vecUpdate("d", 1, 2, 2, 2)}
	for _, s := range Strategies() {
		checked, err := Aggregate(s, us, Options{})
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		trusted, err := Aggregate(s, us, Options{InputsFinite: true})
		if err != nil {
			t.Fatalf("%s with InputsFinite: %v", s, err)
		}
		assertClose(t, s, flat(trusted, "g"), flat(checked, "g"), 0, 1)
	}

	nan := []*adapter.Update{vecUpdate("a", 1, 1, 2), vecUpdate("b", 1, float32(math.NaN()), 4)}
	if _, err := Aggregate("weighted_average", nan, Options{}); !errors.Is(err, adapter.ErrNonFinite) || !strings.Contains(err.Error(), `node "b"`) {
		t.Errorf("input scan: got %v, want node b named", err)
	}
	if _, err := Aggregate("weighted_average", nan, Options{InputsFinite: true}); !errors.Is(err, adapter.ErrNonFinite) || !strings.Contains(err.Error(), "aggregate of 2 updates") {
		t.Errorf("output check: got %v", err)
	}
}
