package sim

import (
	"fmt"
	"testing"
	"time"

	"github.com/dafnet/daf/config"
	"github.com/dafnet/daf/round"
)

// BenchmarkRound measures one full round (Init → Done at every node) of a
// federation on the in-memory network: all nodes' training, packing,
// signing, verifying, decoding, relaying and aggregation, in one process.
// It reports the bytes a node sends per round against the minimum: each
// update reaching each other node exactly once, (N−1)·size on average.
func BenchmarkRound(b *testing.B) {
	for _, nodes := range []int{16} {
		for _, params := range []int{100_000, 1_000_000} {
			b.Run(fmt.Sprintf("nodes=%d/params=%d", nodes, params), func(b *testing.B) {
				if params >= 1_000_000 && testing.Short() {
					b.Skip("1M parameters in -short mode")
				}
				benchRound(b, nodes, params)
			})
		}
	}
}

func benchRound(b *testing.B, nodes, params int) {
	rc, err := round.FromConfig(config.Default(), "template", true)
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewCluster(ClusterConfig{Nodes: nodes, Round: rc, Params: params, Seed: 1, Latency: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	sched := c.Nodes[0].M.Schedule()
	next := func() { c.RunUntil(sched.Start(sched.RoundAt(c.Now) + 1).Add(time.Millisecond)) }
	next() // round 0: warm-up, peers meet
	var sent0 uint64
	for _, n := range c.Nodes {
		sent0 += c.Net.BytesSent(n.ID)
	}
	rounds0 := c.Nodes[0].M.Stats().RoundsCompleted
	b.ResetTimer()
	for range b.N {
		next()
	}
	b.StopTimer()
	var sent uint64
	for _, n := range c.Nodes {
		sent += c.Net.BytesSent(n.ID)
	}
	done := c.Nodes[0].M.Stats().RoundsCompleted - rounds0
	if done != uint64(b.N) {
		b.Fatalf("%d of %d rounds completed", done, b.N)
	}
	msgSize := float64(len(encodeUpdate(TrainUpdate(c.Nodes[0].Model, c.Nodes[0].Target, 1, 1))))
	perNode := float64(sent-sent0) / float64(b.N) / float64(nodes)
	b.ReportMetric(perNode, "bytes_sent/node/round")
	b.ReportMetric(perNode/(float64(nodes-1)*msgSize), "x_minimum")
}
