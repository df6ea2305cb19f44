package dlm

import (
	"errors"
	"math"
	"testing"

	"github.com/dafnet/daf/adapter"
)

func TestConsensusDistance(t *testing.T) {
	base, _ := randomModel(t, tinyConfig(), 1)
	a := NewBanks(base, adapter.DefaultGroups, 1)
	same, err := ConsensusDistance([]*adapter.Update{a, a.Clone(), a.Clone()})
	if err != nil || same.Factor != 0 || same.Effective != 0 {
		t.Fatalf("identical banks: %+v, %v", same, err)
	}
	// Fresh banks have B = 0: different A, same (zero) weight change.
	b := NewBanks(base, adapter.DefaultGroups, 2)
	fresh, err := ConsensusDistance([]*adapter.Update{a, b})
	if err != nil || fresh.Factor == 0 || fresh.Effective != 0 {
		t.Fatalf("fresh banks: %+v, %v", fresh, err)
	}
	// One B entry of 1 in one module: the effective distance is
	// (α/r)·‖A row‖ for that module.
	c := a.Clone()
	key := loraKey(0, "q", "B")
	c.Groups["fine"][key].Data[0] = 1 // row 0, rank column 0
	got, err := ConsensusDistance([]*adapter.Update{a, c})
	if err != nil {
		t.Fatal(err)
	}
	arow := a.Groups["fine"][loraKey(0, "q", "A")].Data[:tinyConfig().DModel]
	var n float64
	for _, v := range arow {
		n += float64(v) * float64(v)
	}
	want := tinyConfig().Alpha / float64(tinyConfig().Rank) * math.Sqrt(n)
	if math.Abs(got.Effective-want) > 1e-9 || math.Abs(got.Factor-1) > 1e-12 {
		t.Fatalf("got %+v, want effective %v and factor 1", got, want)
	}
	// Three nodes: the mean over the three pairs.
	three, _ := ConsensusDistance([]*adapter.Update{a, a.Clone(), c})
	if math.Abs(three.Factor-2.0/3) > 1e-12 {
		t.Fatalf("mean over pairs %v, want 2/3", three.Factor)
	}
	if _, err := ConsensusDistance([]*adapter.Update{a, dropKey(a, "fine", key)}); !errors.Is(err, ErrBanks) {
		t.Fatalf("mismatched banks: %v", err)
	}
}
