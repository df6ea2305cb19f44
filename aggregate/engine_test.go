package aggregate

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/config"
)

// talora is a three-group update whose groups hold one value each.
func talora(node string, samples float64, coarse, domain, fine float32, pplAfter float64) *adapter.Update {
	u := adapter.New()
	u.Meta.Node, u.Meta.Samples = node, samples
	u.Set("coarse", "w", &adapter.Tensor{Shape: []int{1}, Data: []float32{coarse}})
	u.Set("domain", "w", &adapter.Tensor{Shape: []int{1}, Data: []float32{domain}})
	u.Set("fine", "w", &adapter.Tensor{Shape: []int{1}, Data: []float32{fine}})
	u.Meta.Quality = map[string]adapter.GroupQuality{"domain": {PPLBefore: 10, PPLAfter: pplAfter}}
	return u
}

func TestEngineConfigFromDefaults(t *testing.T) {
	cfg := EngineConfigFromConfig(config.Default())
	want := []GroupStrategy{{"coarse", "weighted_average"}, {"domain", "quality_weighted"}, {"fine", "trimmed_mean"}}
	if fmt.Sprint(cfg.Groups) != fmt.Sprint(want) || cfg.MinNodes != 3 || cfg.MaxNodes != 50 || cfg.Options.TrimFraction != 0.1 {
		t.Fatalf("config %+v", cfg)
	}
	c := config.Default()
	c.Federation.DAF.FineStrategy = ""
	if got := EngineConfigFromConfig(c).Groups[2].Strategy; got != "trimmed_mean" {
		t.Fatalf("empty fine strategy became %q, want the seed's trimmed_mean", got)
	}
}

func TestEnginePerGroupStrategies(t *testing.T) {
	cfg := EngineConfigFromConfig(config.Default())
	cfg.Options.TrimFraction = 0.2
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	us := []*adapter.Update{
		talora("a", 1, 1, 1, 1, 9), talora("b", 3, 2, 2, 2, 5), talora("c", 1, 3, 3, 3, 9),
		talora("d", 1, 4, 4, 4, 9), talora("e", 2, 5, 5, 500, 9),
	}
	res, err := e.Aggregate(us)
	if err != nil {
		t.Fatal(err)
	}
	get := func(g string) float64 { return float64(res.Update.Get(g, "w").Data[0]) }
	if v := get("coarse"); v != (1+6+3+4+10)/8.0 {
		t.Errorf("coarse (weighted_average) = %v", v)
	}
	w := slowSoftmax([]float64{0.1, 0.5, 0.1, 0.1, 0.1}, 1)
	if v, want := get("domain"), w[0]*1+w[1]*2+w[2]*3+w[3]*4+w[4]*5; v-want > 1e-6 || want-v > 1e-6 {
		t.Errorf("domain (quality_weighted) = %v, want %v", v, want)
	}
	if v := get("fine"); v != 3 { // 0.2 of 5 trims 1 and 500 is cut
		t.Errorf("fine (trimmed_mean) = %v, want 3", v)
	}
	if fmt.Sprint(res.Contributors) != "map[coarse:5 domain:5 fine:5]" || res.Update.Meta.Extra[MetaStrategy] != "daf" {
		t.Errorf("contributors %v, extra %v", res.Contributors, res.Update.Meta.Extra)
	}
	if !strings.Contains(res.Update.Meta.Extra[MetaGroupStrategies], `"domain":"quality_weighted"`) {
		t.Errorf("group strategies %s", res.Update.Meta.Extra[MetaGroupStrategies])
	}
}

func TestEngineMinNodes(t *testing.T) {
	e, err := NewEngine(EngineConfigFromConfig(config.Default()))
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.Aggregate([]*adapter.Update{talora("a", 1, 1, 1, 1, 9), talora("b", 1, 1, 1, 1, 9)})
	if !errors.Is(err, ErrInsufficientNodes) || !strings.Contains(err.Error(), "group coarse has updates from 2 nodes") ||
		!strings.Contains(err.Error(), "min_nodes_for_aggregation is 3") {
		t.Fatalf("two nodes: %v, want the group and its count named", err)
	}
	// Updates that carry only the fine group: that group is the one named.
	fineOnly := []*adapter.Update{talora("a", 1, 1, 1, 1, 9)}
	delete(fineOnly[0].Groups, "coarse")
	delete(fineOnly[0].Groups, "domain")
	if _, err = e.Aggregate(fineOnly); !errors.Is(err, ErrInsufficientNodes) || !strings.Contains(err.Error(), "group fine has updates from 1 node") {
		t.Fatalf("one fine update: %v", err)
	}
	// Nothing left after the privacy filter: every group has 0.
	cfg := EngineConfigFromConfig(config.Default())
	cfg.Filter = func(*adapter.Update) bool { return false }
	refuseAll, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, err = refuseAll.Aggregate([]*adapter.Update{talora("a", 1, 1, 1, 1, 9)})
	if !errors.Is(err, ErrInsufficientNodes) || !strings.Contains(err.Error(), "groups coarse, domain, fine have updates from 0 nodes (1 refused") {
		t.Fatalf("all refused: %v", err)
	}
	us := []*adapter.Update{talora("a", 1, 1, 1, 1, 9), talora("b", 1, 1, 1, 1, 9), talora("c", 1, 1, 1, 1, 9)}
	delete(us[2].Groups, "fine")
	_, err = e.Aggregate(us)
	if !errors.Is(err, ErrInsufficientNodes) || !strings.Contains(err.Error(), "group fine has updates from 2 nodes") {
		t.Fatalf("group fine: %v", err)
	}
	us = []*adapter.Update{talora("a", 1, 1, 1, 1, 9), talora("a", 1, 1, 1, 1, 9), talora("c", 1, 1, 1, 1, 9)}
	if _, err = e.Aggregate(us); !errors.Is(err, ErrDuplicateNode) || !strings.Contains(err.Error(), `"a"`) {
		t.Fatalf("duplicate: %v", err)
	}
}

func TestEngineFilterAndMaxNodes(t *testing.T) {
	cfg := EngineConfigFromConfig(config.Default())
	cfg.MaxNodes = 3
	cfg.Filter = func(u *adapter.Update) bool { return u.Meta.Tier == "tenant" }
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var us []*adapter.Update
	for i, s := range []float64{5, 9, 1, 9, 7, 3} {
		u := talora(fmt.Sprint("n", i), s, float32(i), float32(i), float32(i), 9)
		u.Meta.Tier = "tenant"
		us = append(us, u)
	}
	us[4].Meta.Tier = "public"
	res, err := e.Aggregate(us)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Kept) != "[n1 n3 n0]" || fmt.Sprint(res.Filtered) != "[n4]" || fmt.Sprint(res.Dropped) != "[n5 n2]" {
		t.Fatalf("kept %v filtered %v dropped %v", res.Kept, res.Filtered, res.Dropped)
	}
	// The kept set, and so the aggregate, does not depend on arrival order.
	rev := make([]*adapter.Update, len(us))
	for i, u := range us {
		rev[len(us)-1-i] = u
	}
	res2, err := e.Aggregate(rev)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"coarse", "domain", "fine"} {
		if a, b := res.Update.Get(g, "w").Data[0], res2.Update.Get(g, "w").Data[0]; a != b {
			t.Errorf("group %s: %v vs %v after reordering", g, a, b)
		}
	}
}

// learned_attention attends to the coordinate mean in the first round and to
// the previous aggregate afterwards.
func TestEngineCarriesAttentionReference(t *testing.T) {
	e, err := NewEngine(EngineConfig{Groups: []GroupStrategy{{"g", "learned_attention"}}, MinNodes: 3})
	if err != nil {
		t.Fatal(err)
	}
	round := func(vals ...[]float32) ([]float64, [][]float64) {
		var us []*adapter.Update
		for i, v := range vals {
			us = append(us, vecUpdate(fmt.Sprint("n", i), 1, v...))
		}
		res, err := e.Aggregate(us)
		if err != nil {
			t.Fatal(err)
		}
		return flat(res.Update, "g"), flats(us, "g")
	}
	got1, xs1 := round([]float32{1, 0}, []float32{0, 1}, []float32{5, 5})
	assertClose(t, "round 1", got1, slowAttention(xs1, nil, 1), 1e-5, 5)
	got2, xs2 := round([]float32{2, 0}, []float32{0, 2}, []float32{-3, 4})
	assertClose(t, "round 2", got2, slowAttention(xs2, got1, 1), 1e-5, 5)
	if ref := e.Reference(); ref == nil || flat(ref, "g")[0] != got2[0] {
		t.Fatalf("reference after round 2: %v", ref)
	}
}

func TestNewEngineRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]EngineConfig{
		"unknown":   {Groups: []GroupStrategy{{"fine", "fedprox"}}},
		"daf":       {Groups: []GroupStrategy{{"fine", "daf"}}},
		"duplicate": {Groups: []GroupStrategy{{"fine", "median"}, {"fine", "krum"}}},
		"max<min":   {MinNodes: 5, MaxNodes: 3},
		"trim":      {Options: Options{TrimFraction: 0.7}},
	} {
		if _, err := NewEngine(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// federation.toml accepts exactly the strategies this package implements.
func TestConfigNamesEveryStrategy(t *testing.T) {
	names := append([]string(nil), config.StrategyNames...)
	sort.Strings(names)
	if fmt.Sprint(names) != fmt.Sprint(Strategies()) {
		t.Fatalf("config strategies %v, aggregate strategies %v", names, Strategies())
	}
}
