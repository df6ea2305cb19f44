package demo

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestDemoEndToEnd runs the real thing at its smallest: three nodes over
// loopback libp2p for two rounds beside the local arm, and checks that the
// federated nodes really aggregated, ended close together, and that every
// output was written.
func TestDemoEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts libp2p nodes and trains the reference model")
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	res, err := Run(ctx, Options{
		Nodes: 3, Rounds: 2, Seeds: 1, Out: out, Arms: []string{"local", "daf"},
		StepsPerRound: 2, Batch: 4, EvalSamples: 4, RoundInterval: 3 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	daf, local := res.Arms["daf"], res.Arms["local"]
	if daf == nil || local == nil {
		t.Fatalf("arms = %v", res.Arms)
	}
	// A node's banks only change by applying an aggregate, so a final loss
	// that differs from the shared start shows that rounds completed. (On a
	// machine loaded by the rest of the test suite one node may miss every
	// deadline, so RoundsCompleted — the minimum over nodes — can be 0.)
	if daf.Overall.Global == daf.PerRound[0].Overall.Global && daf.Overall.Personal == daf.PerRound[0].Overall.Personal {
		t.Errorf("daf banks never changed (rounds completed at every node: %v)", daf.RoundsCompleted)
	}
	if len(daf.PerRound) != 3 || len(local.PerRound) != 3 {
		t.Errorf("per_round lengths %d, %d; want 3 (start + 2 rounds)", len(daf.PerRound), len(local.PerRound))
	}
	// Every arm starts from the same banks and is scored on the same draws.
	if daf.PerRound[0].Overall.Global != local.PerRound[0].Overall.Global {
		t.Errorf("round 0 differs between arms: %v vs %v", daf.PerRound[0].Overall.Global, local.PerRound[0].Overall.Global)
	}
	// Nodes that aggregate every round hold far closer models than nodes
	// that train alone.
	if !(daf.ConsensusDistance < local.ConsensusDistance) {
		t.Errorf("consensus distance daf %v not below local %v", daf.ConsensusDistance, local.ConsensusDistance)
	}
	for _, l := range []float64{daf.Overall.Global, daf.Overall.Personal, local.Overall.Global} {
		if !(l > 0 && l < 6) {
			t.Errorf("loss %v outside (0, ln 257)", l)
		}
	}
	raw, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Results
	if err := json.Unmarshal(raw, &back); err != nil || back.Nodes != 3 || back.Rounds != 2 {
		t.Fatalf("results.json: %+v, %v", back, err)
	}
}

func TestDemoRejectsMismatchedData(t *testing.T) {
	_, err := Run(context.Background(), Options{Nodes: 3, Out: t.TempDir(), Data: []string{"a", "b"}})
	if err == nil {
		t.Fatal("two --data paths for three nodes accepted")
	}
}
