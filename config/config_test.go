package config

import (
	"errors"
	"math"
	"os"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

func TestShippedExampleDecodesToDefaults(t *testing.T) {
	cfg, err := Load("../federation.toml")
	if err != nil {
		t.Fatalf("shipped federation.toml: %v", err)
	}
	if cfg != Default() {
		t.Fatalf("shipped example differs from Default():\n got %+v\nwant %+v", cfg, Default())
	}
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default() is invalid: %v", err)
	}
}

func TestOmittedKeysKeepDefaults(t *testing.T) {
	cfg, err := Decode([]byte("[federation.privacy]\nepsilon = 2.5\nepsilon_budget = 40\n[federation.node]\ntier = \"tenant\"\nscope = \"acme\"\n"), "partial.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Federation.Privacy.Epsilon = 2.5
	want.Federation.Privacy.EpsilonBudget = 40
	want.Federation.Node = Node{Tier: "tenant", Scope: "acme"}
	if cfg != want {
		t.Fatalf("got %+v\nwant %+v", cfg, want)
	}
}

func TestIntegerAcceptedForFloatKey(t *testing.T) {
	cfg, err := Decode([]byte("[federation.security]\nmax_magnitude_multiplier = 7\n"), "x.toml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Federation.Security.MaxMagnitudeMultiplier != 7 {
		t.Fatalf("got %v", cfg.Federation.Security.MaxMagnitudeMultiplier)
	}
}

// A file with unknown keys, wrong types, wrong array lengths and bad values:
// every one of them must come back from a single Decode call.
func TestBrokenFileReportsEveryProblemAtOnce(t *testing.T) {
	doc := `[federation]
round_interval_secs = 0
min_nodes_for_aggregation = 4
max_nodes_per_round = 2
bogus = true
peer_timeout_secs = "soon"

[federation.node]
tier = "galactic"

[federation.gossip]
fan_out = 0
max_hops = 0
propagation_timeout_secs = -1

[federation.daf]
coarse_range = [650, 1000]
domain_range = [300, 600]
fine_range = [0, 300, 5]
coarse_strategy = "fedavg"
trim_fraction = 0.5
colour = "blue"

[federation.privacy]
epsilon = nan
delta = 1.0
clip_bound = -inf
epsilon_budget = -1

[federation.compression]
sparsity_threshold = 1.5
quantization_bits = 17

[federation.extra]
x = 1
`
	_, err := Decode([]byte(doc), "broken.toml")
	var probs *Problems
	if !errors.As(err, &probs) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("want *Problems wrapping ErrInvalid, got %T %v", err, err)
	}
	wantLines := map[string]int{
		"federation.bogus":             5,
		"federation.peer_timeout_secs": 6,
		"federation.daf.fine_range":    19,
		"federation.daf.colour":        22,
		"federation.extra":             34,
	}
	for key, line := range wantLines {
		found := false
		for _, p := range probs.List {
			if p.Key == key && p.Line == line {
				found = true
			}
		}
		if !found {
			t.Errorf("no problem for %s at line %d in:\n%v", key, line, err)
		}
	}
	wantKeys := []string{
		"federation.round_interval_secs",
		"federation.max_nodes_per_round",
		"federation.node.tier",
		"federation.gossip.fan_out",
		"federation.gossip.max_hops",
		"federation.gossip.propagation_timeout_secs",
		"federation.daf.coarse_strategy",
		"federation.daf.trim_fraction",
		"federation.daf.coarse_range", // the gap [600, 650) between domain and coarse
		"federation.privacy.epsilon",
		"federation.privacy.delta",
		"federation.privacy.clip_bound",
		"federation.privacy.epsilon_budget",
		"federation.compression.sparsity_threshold",
		"federation.compression.quantization_bits",
	}
	keys := probs.Keys()
	for _, k := range wantKeys {
		if !slices.Contains(keys, k) {
			t.Errorf("missing problem for %s in:\n%v", k, err)
		}
	}
	if !strings.Contains(err.Error(), "federation.daf.domain_range and federation.daf.coarse_range") {
		t.Errorf("gap problem must name both keys:\n%v", err)
	}
	if got := len(probs.List); got != len(wantLines)+len(wantKeys) {
		t.Errorf("got %d problems, want %d:\n%v", got, len(wantLines)+len(wantKeys), err)
	}
	for _, p := range probs.List {
		if p.Line == 0 {
			t.Errorf("problem without a line: %v", p)
		}
	}
}

func TestSyntaxErrorHasLine(t *testing.T) {
	_, err := Decode([]byte("[federation]\nfan_out = = 3\n"), "syntax.toml")
	var probs *Problems
	if !errors.As(err, &probs) || len(probs.List) != 1 || probs.List[0].Line != 2 {
		t.Fatalf("want one problem on line 2, got %v", err)
	}
	if !strings.HasPrefix(err.Error(), "syntax.toml: line 2:") {
		t.Fatalf("error does not lead with file and line: %q", err)
	}
}

func TestLoadMissingFileNamesIt(t *testing.T) {
	_, err := Load("/nonexistent/federation.toml")
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/federation.toml") || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v", err)
	}
}

func TestInlineTableKeysAreChecked(t *testing.T) {
	_, err := Decode([]byte("[federation]\ngossip = { fan_out = 2, hops = 3 }\n"), "inline.toml")
	var probs *Problems
	if !errors.As(err, &probs) || len(probs.List) != 1 || probs.List[0].Key != "federation.gossip.hops" || probs.List[0].Line != 2 {
		t.Fatalf("got %v", err)
	}
}

// Each rule of Validate on its own: exactly one problem, naming the key.
func TestValidateRules(t *testing.T) {
	cases := []struct {
		key    string
		mutate func(f *Federation)
	}{
		{"federation.round_interval_secs", func(f *Federation) { f.RoundIntervalSecs = 0 }},
		{"federation.min_nodes_for_aggregation", func(f *Federation) { f.MinNodesForAggregation = 0; f.MaxNodesPerRound = 0 }},
		{"federation.max_nodes_per_round", func(f *Federation) { f.MaxNodesPerRound = 2 }},
		{"federation.peer_timeout_secs", func(f *Federation) { f.PeerTimeoutSecs = 0 }},
		{"federation.node.tier", func(f *Federation) { f.Node.Tier = "Public" }},
		{"federation.node.scope", func(f *Federation) { f.Node.Tier = "group" }},
		{"federation.gossip.fan_out", func(f *Federation) { f.Gossip.FanOut = 0 }},
		{"federation.gossip.max_hops", func(f *Federation) { f.Gossip.MaxHops = -1 }},
		{"federation.gossip.propagation_timeout_secs", func(f *Federation) { f.Gossip.PropagationTimeoutSecs = -5 }},
		{"federation.daf.fine_strategy", func(f *Federation) { f.DAF.FineStrategy = "daf" }},
		{"federation.daf.trim_fraction", func(f *Federation) { f.DAF.TrimFraction = -0.01 }},
		{"federation.daf.trim_fraction", func(f *Federation) { f.DAF.TrimFraction = math.NaN() }},
		{"federation.security.max_magnitude_multiplier", func(f *Federation) { f.Security.MaxMagnitudeMultiplier = 0 }},
		{"federation.security.max_magnitude_multiplier", func(f *Federation) { f.Security.MaxMagnitudeMultiplier = math.Inf(1) }},
		{"federation.security.direction_flip_threshold", func(f *Federation) { f.Security.DirectionFlipThreshold = 0 }},
		{"federation.privacy.epsilon", func(f *Federation) { f.Privacy.Epsilon = 0 }},
		{"federation.privacy.epsilon", func(f *Federation) { f.Privacy.Epsilon = math.Inf(1) }},
		{"federation.privacy.delta", func(f *Federation) { f.Privacy.Delta = 0 }},
		{"federation.privacy.delta", func(f *Federation) { f.Privacy.Delta = 1 }},
		{"federation.privacy.clip_bound", func(f *Federation) { f.Privacy.ClipBound = 0 }},
		{"federation.privacy.min_k_anonymity", func(f *Federation) { f.Privacy.MinKAnonymity = 0 }},
		{"federation.privacy.epsilon_budget", func(f *Federation) { f.Privacy.EpsilonBudget = -0.5 }},
		{"federation.privacy.epsilon_budget", func(f *Federation) { f.Privacy.EpsilonBudget = math.NaN() }},
		{"federation.compression.sparsity_threshold", func(f *Federation) { f.Compression.SparsityThreshold = 1.01 }},
		{"federation.compression.sparsity_threshold", func(f *Federation) { f.Compression.SparsityThreshold = -0.1 }},
		{"federation.compression.quantization_bits", func(f *Federation) { f.Compression.QuantizationBits = 0 }},
		{"federation.compression.quantization_bits", func(f *Federation) { f.Compression.QuantizationBits = 17 }},
		{"federation.daf.coarse_range", func(f *Federation) { f.DAF.CoarseRange = [2]int{700, 1001} }},
		{"federation.daf.fine_range", func(f *Federation) { f.DAF.FineRange = [2]int{300, 0}; f.DAF.DomainRange = [2]int{0, 700} }},
	}
	for _, tc := range cases {
		cfg := Default()
		tc.mutate(&cfg.Federation)
		err := cfg.Validate()
		var probs *Problems
		if !errors.As(err, &probs) {
			t.Errorf("%s: want *Problems, got %v", tc.key, err)
			continue
		}
		if len(probs.List) != 1 || probs.List[0].Key != tc.key {
			t.Errorf("%s: got %v", tc.key, err)
		}
	}
	for _, tier := range []string{"private", "public"} {
		cfg := Default()
		cfg.Federation.Node.Tier = tier
		if err := cfg.Validate(); err != nil {
			t.Errorf("tier %s without scope: %v", tier, err)
		}
	}
	cfg := Default()
	cfg.Federation.Privacy.EpsilonBudget = 0
	cfg.Federation.DAF.TrimFraction = 0
	cfg.Federation.Compression.SparsityThreshold = 1
	cfg.Federation.Compression.QuantizationBits = 16
	for _, s := range StrategyNames {
		cfg.Federation.DAF.DomainStrategy = s
		if err := cfg.Validate(); err != nil {
			t.Errorf("boundary values %s: %v", s, err)
		}
	}
}

func TestOverlapNamesBothKeys(t *testing.T) {
	cfg := Default()
	cfg.Federation.DAF.DomainRange = [2]int{250, 750}
	err := cfg.Validate()
	msg := err.Error()
	for _, want := range []string{
		"federation.daf.coarse_range: overlaps federation.daf.domain_range on t in [700, 750)",
		"federation.daf.domain_range: overlaps federation.daf.fine_range on t in [250, 300)",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

func TestGapAtEitherEnd(t *testing.T) {
	cfg := Default()
	cfg.Federation.DAF.FineRange = [2]int{10, 300}
	cfg.Federation.DAF.CoarseRange = [2]int{700, 990}
	msg := cfg.Validate().Error()
	for _, want := range []string{"t in [0, 10) belongs to no group (between t=0 and federation.daf.fine_range)", "t in [990, 1000] belongs to no group (between federation.daf.coarse_range and t=1000)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("missing %q in:\n%s", want, msg)
		}
	}
}

// The range rules against the obvious check: every integer t in [0, 1000)
// must lie in exactly one range and every range must be a non-empty piece
// of [0, 1000].
func TestRangeRulesMatchBruteForce(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		gen := rapid.IntRange(-20, 1020)
		if rapid.Bool().Draw(rt, "snap") {
			gen = rapid.SampledFrom([]int{0, 300, 700, 1000, 500})
		}
		var r [3][2]int
		for i := range r {
			r[i] = [2]int{gen.Draw(rt, "start"), gen.Draw(rt, "end")}
		}
		cfg := Default()
		cfg.Federation.DAF.CoarseRange, cfg.Federation.DAF.DomainRange, cfg.Federation.DAF.FineRange = r[0], r[1], r[2]
		ok := true
		for _, x := range r {
			if x[0] < 0 || x[1] > 1000 || x[0] >= x[1] {
				ok = false
			}
		}
		for ts := 0; ts < 1000 && ok; ts++ {
			n := 0
			for _, x := range r {
				if x[0] <= ts && ts < x[1] {
					n++
				}
			}
			ok = n == 1
		}
		err := cfg.Validate()
		if ok != (err == nil) {
			rt.Fatalf("ranges %v: brute force ok=%v, Validate: %v", r, ok, err)
		}
	})
}

func FuzzDecode(f *testing.F) {
	example, err := os.ReadFile("../federation.toml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("[federation]\ngossip = { fan_out = 2 }\n"))
	f.Add([]byte("[federation.daf]\ncoarse_range = [1]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Decode(data, "fuzz.toml")
		if err == nil {
			if verr := cfg.Validate(); verr != nil {
				t.Fatalf("Decode accepted a config Validate rejects: %v", verr)
			}
			return
		}
		var probs *Problems
		if !errors.As(err, &probs) || len(probs.List) == 0 {
			t.Fatalf("error is not a non-empty *Problems: %T %v", err, err)
		}
	})
}
