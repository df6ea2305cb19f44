package sim

import (
	"testing"
	"time"

	"github.com/dafnet/daf/config"
	"github.com/dafnet/daf/round"
)

func TestSmoke(t *testing.T) {
	rc, err := round.FromConfig(config.Default(), "x", true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCluster(ClusterConfig{Nodes: 5, Round: rc, Params: 8, Seed: 1, Latency: 20 * time.Millisecond, TrainTime: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.RunUntil(c.Now.Add(4 * 120 * time.Second))
	for _, l := range c.TakeLog() {
		t.Log(l)
	}
	for _, n := range c.Nodes {
		t.Log(n.ID, n.M.Stats())
	}
	t.Log(c.Spread())
}
