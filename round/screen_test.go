package round_test

import (
	"testing"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/defense"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/round"
)

func vec(vals ...float32) *adapter.Update {
	u := adapter.New()
	u.Set("coarse", "m.lora_A.weight", &adapter.Tensor{Shape: []int{len(vals)}, Data: vals})
	return u
}

func TestSybilScreenDropsClones(t *testing.T) {
	// Four near-identical updates (clones, cosine > 0.99) and two honest ones.
	in := []round.Contribution{
		{Source: "honest1", Update: vec(1, 0, 0, 0)},
		{Source: "honest2", Update: vec(0, 1, 0, 0)},
		{Source: "s1", Update: vec(0, 0, 1, 1)},
		{Source: "s2", Update: vec(0, 0, 1, 1.001)},
		{Source: "s3", Update: vec(0, 0, 1.001, 1)},
		{Source: "s4", Update: vec(0, 0, 1, 1)},
	}
	// Metadata names must not matter: the signed source is what counts.
	for _, c := range in {
		c.Update.Meta.Node = "liar"
	}
	kept, err := round.SybilScreen{Config: defense.DefaultConfig()}.Screen(1, gossip.Membership{}, in)
	if err != nil {
		t.Fatal(err)
	}
	var got []gossip.PeerID
	for _, c := range kept {
		got = append(got, c.Source)
	}
	want := []gossip.PeerID{"honest1", "honest2", "s1"} // one clone is kept: the smallest id
	if len(got) != len(want) {
		t.Fatalf("kept %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("kept %v, want %v", got, want)
		}
	}
	if in[0].Update.Meta.Node != "liar" {
		t.Fatal("the screen changed the caller's update metadata")
	}
}
