package defense

import (
	"errors"
	"strings"
	"testing"

	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/privacy"
)

func TestGossipFilter(t *testing.T) {
	var seen []Verdict
	f := GossipFilter{
		Detector:  NewDetector(DefaultConfig(), NewMemoryStatsStore()),
		OnVerdict: func(_ gossip.PeerID, _ uint64, v Verdict) { seen = append(seen, v) },
	}
	scope := gossip.Membership{Tier: privacy.Tenant, Scope: "acme"}
	for _, n := range []string{"b", "c", "d"} {
		for range 3 {
			// The payload's own node name is not trusted: statistics go
			// to the envelope source.
			if err := f.Check(gossip.PeerID(n), 1, scope, vec("liar", 1, 0)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s, ok, _ := f.Detector.store.LoadStats("liar"); ok {
		t.Errorf("statistics kept under the payload's claimed node: %+v", s)
	}
	u := vec("x", 3, 0)
	u.Meta.Samples = 100
	if err := f.Check("x", 2, scope, u); err != nil {
		t.Fatalf("suspicious update refused: %v", err)
	}
	if u.Meta.Samples != 50 || u.Meta.Node != "x" {
		t.Errorf("suspicious update: samples %v, want 100 × 0.5", u.Meta.Samples)
	}
	err := f.Check("b", 3, scope, vec("b", 50, 0))
	if !errors.Is(err, gossip.ErrByzantine) || !strings.Contains(err.Error(), "excessive_magnitude") || !strings.Contains(err.Error(), "tenant/acme") {
		t.Errorf("boosted update: %v", err)
	}
	if len(seen) != 11 || seen[9].Outcome != Suspicious || seen[10].Outcome != Rejected {
		t.Errorf("OnVerdict saw %d verdicts: %v", len(seen), seen)
	}
	if err := f.Check("b", 3, scope, nil); !errors.Is(err, gossip.ErrByzantine) {
		t.Errorf("nil update: %v", err)
	}
}
