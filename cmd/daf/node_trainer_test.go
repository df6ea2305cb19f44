package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/config"
	"github.com/dafnet/daf/dlm"
	"github.com/dafnet/daf/node"
)

// initialOf builds the --train-data trainer on text and returns the banks
// it hands the node before the first round.
func initialOf(t *testing.T, text, federationID string) *adapter.Update {
	t.Helper()
	path := filepath.Join(t.TempDir(), "corpus.txt")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	tr, err := buildTrainer(config.Default(), path, "", federationID)
	if err != nil {
		t.Fatalf("buildTrainer: %v", err)
	}
	init, ok := tr.(node.Initializer)
	if !ok {
		t.Fatalf("--train-data trainer %T does not implement node.Initializer", tr)
	}
	u, err := init.InitialAdapter()
	if err != nil {
		t.Fatalf("InitialAdapter: %v", err)
	}
	return u
}

// maxAbsDiff is the largest element difference over every tensor of a and
// b, which must hold the same keys and shapes.
func maxAbsDiff(t *testing.T, a, b *adapter.Update) float64 {
	t.Helper()
	worst, n := 0.0, 0
	for _, g := range a.GroupNames() {
		for _, k := range a.Keys(g) {
			ta, tb := a.Groups[g][k], b.Groups[g][k]
			if tb == nil || len(ta.Data) != len(tb.Data) {
				t.Fatalf("group %s tensor %s: missing or reshaped in the other adapter", g, k)
			}
			for i := range ta.Data {
				d := float64(ta.Data[i] - tb.Data[i])
				if d < 0 {
					d = -d
				}
				worst = max(worst, d)
				n++
			}
		}
	}
	if n == 0 {
		t.Fatal("adapter has no elements")
	}
	return worst
}

// Averaging LoRA factors only makes sense when every node starts from the
// same A and B, so the built-in trainer's initial banks depend on the
// federation alone: not on the node's data, nor on its training seed.
func TestTrainDataInitialBanksAreFederationWide(t *testing.T) {
	const textA = "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. "
	const textB = "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse, and nothing particular. "
	a := initialOf(t, strings.Repeat(textA, 60), "fed-one")
	b := initialOf(t, strings.Repeat(textB, 60), "fed-one")
	if d := maxAbsDiff(t, a, b); d != 0 {
		t.Fatalf("two nodes of federation fed-one with different data start from different banks (max |diff| %g)", d)
	}
	other := initialOf(t, strings.Repeat(textA, 60), "fed-two")
	if d := maxAbsDiff(t, a, other); d == 0 {
		t.Fatal("federations fed-one and fed-two start from identical banks; the seed ignores the federation id")
	}

	base, err := dlm.DefaultBase()
	if err != nil {
		t.Fatal(err)
	}
	want := dlm.NewBanks(base, groupsOf(config.Default()), initialBanksSeed("fed-one"))
	if d := maxAbsDiff(t, a, want); d != 0 {
		t.Fatalf("initial banks differ from NewBanks(initialBanksSeed(fed-one)) by %g", d)
	}
	// The training seed drives per-round sampling; the start must not be
	// tied to it, or changing how nodes sample would fork the federation.
	fromTrainSeed := dlm.NewBanks(base, groupsOf(config.Default()), dlm.DefaultTrainConfig().Seed)
	if d := maxAbsDiff(t, a, fromTrainSeed); d == 0 {
		t.Fatal("initial banks are the training seed's banks, not a federation-wide start")
	}
}

// The seed is a fixed function of the id: a change would make upgraded and
// older nodes of one federation start apart.
func TestInitialBanksSeedVector(t *testing.T) {
	// sha256("daf/initial-banks/v1\x00daf")[:8], computed independently.
	if got, want := initialBanksSeed("daf"), uint64(0x430cb862e98c3a50); got != want {
		t.Fatalf("initialBanksSeed(daf) = %#x, want %#x", got, want)
	}
	if initialBanksSeed("daf") == initialBanksSeed("daf2") {
		t.Fatal("initialBanksSeed ignores the federation id")
	}
}
