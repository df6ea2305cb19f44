package privacy_test

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/aggregate"
	"github.com/dafnet/daf/config"
	"github.com/dafnet/daf/privacy"
)

// A node in a tenant and in the public tier, with the real DAF engine per
// scope: tenant releases are clipped only, public releases clipped and
// noised, each scope aggregates only its own releases, and the ledger
// charges only the noised ones.
func TestTieredFederationWithDAFEngine(t *testing.T) {
	acme, pub := privacy.Scope{Tier: privacy.Tenant, ID: "acme"}, privacy.Scope{Tier: privacy.Public}
	cfg := config.Default()
	cfg.Federation.MinNodesForAggregation = 3
	fed, err := privacy.NewTieredFederation([]privacy.Scope{acme, pub}, func(s privacy.Scope) (privacy.Aggregator, error) {
		ec := aggregate.EngineConfigFromConfig(cfg)
		ec.Filter = func(u *adapter.Update) bool {
			us, err := privacy.ScopeOf(u)
			return err == nil && privacy.AllowsAggregation(s, us)
		}
		eng, err := aggregate.NewEngine(ec)
		if err != nil {
			return nil, err
		}
		return privacy.AggregatorFunc(func(us []*adapter.Update) (*adapter.Update, error) {
			r, err := eng.Aggregate(us)
			if err != nil {
				return nil, err
			}
			return r.Update, nil
		}), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := privacy.NewLedger(&privacy.MemoryLedgerStore{}, 0, 1e-5)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	// Every node's local update is the same direction at norm 10, so the
	// tenant aggregate is that direction at the clip bound exactly.
	local := func(node string) *adapter.Update {
		u := adapter.New()
		u.Meta.Node = node
		for _, g := range []string{"coarse", "domain", "fine"} {
			tt := adapter.NewTensor(4, 8)
			for i := range tt.Data {
				tt.Data[i] = float32(10 / math.Sqrt(3*32))
			}
			u.Set(g, "m.lora_A.weight", tt)
		}
		return u
	}
	release := func(node string, s privacy.Scope) *adapter.Update {
		u := local(node)
		u.Meta.Scope = s.ID
		rep, err := privacy.PrepareRelease(u, s.Tier, 1, 1e-5, 1, rng)
		if err != nil {
			t.Fatal(err)
		}
		if node == "me" {
			if err := ledger.Charge(s.Tier, 1, rep.NoiseMultiplier, 1); err != nil {
				t.Fatal(err)
			}
		}
		return u
	}
	own := map[privacy.Scope]*adapter.Update{acme: release("me", acme), pub: release("me", pub), {Tier: privacy.Private}: local("me")}
	var received []*adapter.Update
	for _, n := range []string{"a", "b", "c"} {
		received = append(received, release(n, acme), release(n, pub))
	}
	res := fed.Federate(own, received)
	tenant, public := res.Scope(acme), res.Scope(pub)
	if tenant.Err != nil || public.Err != nil || tenant.Inputs != 4 || public.Inputs != 4 {
		t.Fatalf("tenant %+v public %+v", tenant, public)
	}
	if n := tenant.Aggregate.L2(); math.Abs(n-1) > 1e-5 {
		t.Errorf("tenant aggregate norm %v, want the clip bound 1", n)
	}
	// Public: mean of four noised updates, noise σ/2 per value over 96
	// values, so its norm is far above 1.
	sigma, _ := privacy.AnalyticGaussianSigma(1, 1e-5, 1)
	if n := public.Aggregate.L2(); n < sigma/2*math.Sqrt(96)*0.7 {
		t.Errorf("public aggregate norm %v: not noised (σ=%v)", n, sigma)
	}
	if got := ledger.Unprotected()[privacy.Tenant]; got != 1 {
		t.Errorf("tenant releases recorded %d", got)
	}
	if eps := ledger.SpentByTier()[privacy.Public]; !(eps > 1 && eps < 1.2) {
		t.Errorf("public ε after one release %v, want RDP's 1.09", eps)
	}
}
