package sim

import (
	"fmt"
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/dafnet/daf/config"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/round"
)

// TestChaos drives a cluster through random dropouts, crashes, restarts,
// partitions and stragglers, then heals everything. Whatever happened:
// no node logs a round twice or applies a non-finite model, a running node
// is always in the round its clock says, and after the heal and three clean
// rounds every node completes with every other and all models agree
// (the Byzantine detector is off: see below).
func TestChaos(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		rc, err := round.FromConfig(config.Default(), "template", true)
		if err != nil {
			rt.Fatal(err)
		}
		rc.Interval = time.Duration(rapid.SampledFrom([]int{2, 10, 120}).Draw(rt, "interval_s")) * time.Second
		rc.PeerTimeout = 3 * rc.Interval
		// Each node's detector judges from its own history and may weigh an
		// update differently; without it every node that completes a round
		// with the same participants must compute the same aggregate.
		rc.ByzantineDetection = false
		const nodes = 5
		c, err := NewCluster(ClusterConfig{Nodes: nodes, Round: rc, Params: 6, Seed: rapid.Uint64().Draw(rt, "seed"),
			Latency: 5 * time.Millisecond, TrainTime: rc.Interval / 20})
		if err != nil {
			rt.Fatal(err)
		}
		pick := func(label string) gossip.PeerID {
			return gossip.PeerID(fmt.Sprintf("n%d", rapid.IntRange(1, nodes).Draw(rt, label)))
		}
		steps := rapid.IntRange(1, 8).Draw(rt, "steps")
		for range steps {
			id := pick("node")
			n, _ := c.Node(id)
			switch rapid.IntRange(0, 6).Draw(rt, "op") {
			case 0:
				c.SetDown(id, true)
			case 1:
				if !n.Crashed {
					c.SetDown(id, false)
				}
			case 2:
				if !n.Crashed {
					c.Crash(id)
				}
			case 3:
				if n.Crashed {
					if err := c.Restart(id); err != nil {
						rt.Fatal(err)
					}
				}
			case 4:
				c.Net.Partition([]gossip.PeerID{id, pick("other")})
			case 5:
				c.Net.Heal()
				c.heartbeat()
			case 6:
				n.TrainTime = time.Duration(rapid.IntRange(1, 150).Draw(rt, "train_pct")) * rc.Interval / 100
			}
			c.RunUntil(c.Now.Add(time.Duration(rapid.Int64Range(1, int64(2*rc.Interval)).Draw(rt, "run"))))
			check(rt, c)
		}
		// Heal everything and let three clean rounds pass.
		c.Net.Heal()
		for _, n := range c.Nodes {
			n.TrainTime = rc.Interval / 20
			if n.Crashed {
				if err := c.Restart(n.ID); err != nil {
					rt.Fatal(err)
				}
			} else {
				c.SetDown(n.ID, false)
			}
		}
		c.heartbeat()
		sched := c.Schedule()
		c.RunUntil(sched.Start(sched.RoundAt(c.Now) + 4).Add(time.Millisecond))
		check(rt, c)
		last := sched.RoundAt(c.Now) - 1
		for _, n := range c.Nodes {
			rec := n.Store.Log[len(n.Store.Log)-1]
			if rec.Round != last || !rec.Completed || len(rec.Participants) != nodes {
				rt.Fatalf("%s: last round log %+v, want round %d completed by all %d nodes", n.ID, rec, last, nodes)
			}
		}
		if s := c.Spread(); s > 1e-6 {
			rt.Fatalf("models still %v apart after healing", s)
		}
		c.TakeLog()
	})
}

func check(rt *rapid.T, c *Cluster) {
	for _, n := range c.Nodes {
		seen := map[uint64]bool{}
		for _, r := range n.Store.Log {
			if seen[r.Round] {
				rt.Fatalf("%s logged round %d twice", n.ID, r.Round)
			}
			seen[r.Round] = true
		}
		for _, v := range n.Model {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				rt.Fatalf("%s model is not finite", n.ID)
			}
		}
		if !n.Crashed && c.up(n) {
			if want := n.M.Schedule().RoundAt(c.Now); n.M.Round() != want && c.Now.After(n.M.Schedule().Start(want)) {
				// A machine advances on its next event; its deadline must
				// be no later than the slot start it has not seen yet.
				if n.M.NextDeadline().After(n.M.Schedule().Start(want)) {
					rt.Fatalf("%s in round %d at %v (clock says %d), next deadline %v", n.ID, n.M.Round(), c.Now, want, n.M.NextDeadline())
				}
			}
		}
	}
}
