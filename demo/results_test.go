package demo

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMeanStd(t *testing.T) {
	m, s := meanStd([]float64{2, 4, 4, 4, 5, 5, 7, 9})
	if m != 5 || math.Abs(s-2.138089935299395) > 1e-12 {
		t.Fatalf("meanStd = %v, %v; want 5, 2.1380899353 (sample sd)", m, s)
	}
	if m, s := meanStd([]float64{3}); m != 3 || s != 0 {
		t.Fatalf("one value: %v, %v", m, s)
	}
	if m, s := meanStd(nil); m != 0 || s != 0 {
		t.Fatalf("no value: %v, %v", m, s)
	}
}

func eval(g, p float64) evaluation {
	return evaluation{
		global:   map[string]float64{"coarse": g, "domain": g + 1, "fine": g + 2},
		personal: map[string]float64{"coarse": p, "domain": p + 1, "fine": p + 2},
		overallG: g + 1, overallP: p + 1,
	}
}

func TestSummariseAveragesSeedsPerRound(t *testing.T) {
	groups := []string{"coarse", "domain", "fine"}
	runs := []armRun{
		{perRound: []evaluation{eval(4, 5), eval(3, 4)}, consensus: 1, epsilon: 2, completed: 1},
		{perRound: []evaluation{eval(4, 5), eval(1, 2)}, consensus: 3, epsilon: 4, completed: 1},
	}
	a := summarise(runs, groups)
	if len(a.PerRound) != 2 {
		t.Fatalf("per_round has %d points, want 2", len(a.PerRound))
	}
	if got := a.Groups["domain"]; got.Global != 3 || got.Personal != 4 || math.Abs(got.GlobalSpread-math.Sqrt2) > 1e-12 {
		t.Fatalf("domain = %+v, want global 3 (sd √2), personal 4", got)
	}
	if a.Overall.Global != 3 || a.Overall.Personal != 4 {
		t.Fatalf("overall = %+v", a.Overall)
	}
	if a.PerRound[0].Groups["fine"].Global != 6 || a.PerRound[0].Groups["fine"].GlobalSpread != 0 {
		t.Fatalf("round 0 fine = %+v", a.PerRound[0].Groups["fine"])
	}
	if a.ConsensusDistance != 2 || a.EpsilonSpent != 3 || a.RoundsCompleted != 1 {
		t.Fatalf("consensus %v ε %v completed %v", a.ConsensusDistance, a.EpsilonSpent, a.RoundsCompleted)
	}
}

func TestSummariseUsesTheShortestRun(t *testing.T) {
	runs := []armRun{
		{perRound: []evaluation{eval(4, 5), eval(3, 4), eval(2, 3)}},
		{perRound: []evaluation{eval(4, 5), eval(3, 4)}},
	}
	if a := summarise(runs, []string{"coarse"}); len(a.PerRound) != 2 {
		t.Fatalf("per_round has %d points, want the shorter run's 2", len(a.PerRound))
	}
}

func TestOutputsHaveTheContractShape(t *testing.T) {
	groups := []string{"coarse", "domain", "fine"}
	run := armRun{perRound: []evaluation{eval(4, 5), eval(3, 4)}, consensus: 0.5}
	res := &Results{
		Nodes: 5, Rounds: 1, Seeds: []uint64{1000}, Groups: groups, Domains: []string{"a", "b"},
		Arms:         map[string]*Arm{"daf": summarise([]armRun{run}, groups), "local": summarise([]armRun{run}, groups)},
		EpsilonSpent: map[string]float64{"daf": 0},
	}
	dir := t.TempDir()
	if err := writeOutputs(dir, res); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"nodes", "rounds", "seeds", "arms", "epsilon_spent", "consensus_distance"} {
		if _, ok := doc[k]; !ok {
			t.Errorf("results.json lacks %q", k)
		}
	}
	arm := doc["arms"].(map[string]any)["daf"].(map[string]any)
	for _, k := range []string{"groups", "overall", "per_round"} {
		if _, ok := arm[k]; !ok {
			t.Errorf("arm lacks %q", k)
		}
	}
	coarse := arm["groups"].(map[string]any)["coarse"].(map[string]any)
	if coarse["global"].(float64) != 3 || coarse["personal"].(float64) != 4 {
		t.Errorf("arms.daf.groups.coarse = %v", coarse)
	}
	for _, f := range []string{"results.md", "loss-coarse.png", "loss-domain.png", "loss-fine.png", "loss-overall.png"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Size() == 0 {
			t.Errorf("%s missing or empty: %v", f, err)
		}
	}
	var table bytes.Buffer
	WriteTable(&table, res)
	if !strings.Contains(table.String(), "daf") || !strings.Contains(table.String(), "3.0000±0.0000") {
		t.Errorf("table:\n%s", table.String())
	}
}

func TestOptionsRejectBadValues(t *testing.T) {
	for _, o := range []Options{
		{Nodes: 1, Out: "x"},
		{Nodes: 5, Rounds: -1, Out: "x"},
		{Nodes: 5, Seeds: -2, Out: "x"},
		{Nodes: 5, Out: ""},
		{Nodes: 5, Out: "x", Arms: []string{"fedprox"}},
	} {
		if err := o.fill(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	o := Options{Out: "x", Quick: true}
	if err := o.fill(); err != nil || o.Nodes != 5 || o.Seeds != 1 {
		t.Fatalf("quick defaults: %+v, %v", o, err)
	}
}
