package privacy

import (
	"errors"
	"strings"
	"testing"

	"github.com/dafnet/daf/adapter"
)

func scoped(node string, tier Tier, id string, v float32) *adapter.Update {
	u := testUpdate(map[string][]float32{"coarse": {v}})
	u.Meta.Node, u.Meta.Tier, u.Meta.Scope = node, tier.String(), id
	return u
}

// meanAggregator averages the single coarse value; it fails on request.
func meanAggregator(fail bool) Aggregator {
	return AggregatorFunc(func(us []*adapter.Update) (*adapter.Update, error) {
		if fail {
			return nil, errors.New("too few nodes")
		}
		var sum float32
		for _, u := range us {
			sum += u.Get("coarse", key).Data[0]
		}
		return testUpdate(map[string][]float32{"coarse": {sum / float32(len(us))}}), nil
	})
}

func TestTieredFederationRoutesByScope(t *testing.T) {
	g1, acme, pub := Scope{Group, "g1"}, Scope{Tenant, "acme"}, Scope{Tier: Public}
	f, err := NewTieredFederation([]Scope{g1, acme, pub, {Tier: Private}, g1}, func(s Scope) (Aggregator, error) {
		return meanAggregator(false), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m := f.Memberships(); len(m) != 3 {
		t.Fatalf("memberships %v", m)
	}
	local := scoped("me", Private, "", 100)
	own := map[Scope]*adapter.Update{
		{Tier: Private}: local,
		g1:              scoped("me", Group, "g1", 1),
		acme:            scoped("me", Tenant, "acme", 10),
		pub:             scoped("me", Public, "", 20),
	}
	received := []*adapter.Update{
		scoped("a", Group, "g1", 3),
		scoped("b", Group, "g2", 1000),  // not our group
		scoped("c", Tenant, "acme", 30), // our tenant
		scoped("d", Tenant, "evil", 1000),
		scoped("e", Public, "", 40),
		scoped("f", Private, "", 1000), // must never arrive
		{Meta: adapter.Metadata{Node: "g", Tier: "bogus"}},
		scoped("me", Group, "g1", 1000), // our own release, relayed back
		scoped("a", Group, "g1", 1000),  // a second copy of a's
	}
	res := f.Federate(own, received)
	if res.Private != local {
		t.Error("private result is not the local update")
	}
	want := map[Scope]struct {
		mean   float32
		inputs int
	}{g1: {2, 2}, acme: {20, 2}, pub: {30, 2}}
	for s, w := range want {
		r := res.Scope(s)
		if r == nil || r.Err != nil || r.Inputs != w.inputs || r.Aggregate.Get("coarse", key).Data[0] != w.mean {
			t.Errorf("scope %v: %+v, want mean %v of %d", s, r, w.mean, w.inputs)
		}
	}
	dropped := map[string]string{}
	for _, d := range res.Dropped {
		dropped[d.Node] = d.Reason
	}
	for node, reason := range map[string]string{"b": "group:g2", "d": "tenant:evil", "f": "private", "g": "daf.tier"} {
		if !strings.Contains(dropped[node], reason) {
			t.Errorf("node %s: dropped reason %q, want it to mention %q", node, dropped[node], reason)
		}
	}
	if len(res.Dropped) != 6 || !strings.Contains(res.Dropped[4].Reason, "duplicate") || !strings.Contains(res.Dropped[5].Reason, "duplicate") {
		t.Errorf("dropped %v", res.Dropped)
	}
	if res.Scope(Scope{Group, "g2"}) != nil {
		t.Error("result for a scope the node is not in")
	}
}

func TestTieredFederationIsolatesFailures(t *testing.T) {
	g1, pub := Scope{Group, "g1"}, Scope{Tier: Public}
	f, err := NewTieredFederation([]Scope{g1, pub}, func(s Scope) (Aggregator, error) {
		return meanAggregator(s == g1), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	res := f.Federate(map[Scope]*adapter.Update{pub: scoped("me", Public, "", 4)}, nil)
	if r := res.Scope(g1); r.Err == nil || !strings.Contains(r.Err.Error(), "group:g1") {
		t.Errorf("group result %+v, want an error naming the scope", r)
	}
	if r := res.Scope(pub); r.Err != nil || r.Aggregate.Get("coarse", key).Data[0] != 4 {
		t.Errorf("public result %+v", r)
	}
	if _, err := NewTieredFederation([]Scope{{Tier: Tenant}}, nil); !errors.Is(err, ErrScope) {
		t.Errorf("tenant without id: %v", err)
	}
	if _, err := NewTieredFederation([]Scope{g1}, func(Scope) (Aggregator, error) { return nil, nil }); !errors.Is(err, ErrBadParameter) {
		t.Errorf("nil aggregator: %v", err)
	}
}
