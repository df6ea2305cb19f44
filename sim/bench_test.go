package sim

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/dafnet/daf/config"
	"github.com/dafnet/daf/round"
)

// BenchmarkRound measures one full round (Init → Done at every node) of a
// federation on the in-memory network: all nodes' training, packing,
// signing, verifying, decoding, relaying and aggregation, in one process.
// Reported besides ns/op:
//   - cpu_s/round: process CPU time per round (wall time on a shared
//     machine says more about the neighbours than about the code);
//   - bytes_sent/node/round and x_minimum, against each update reaching each
//     other node exactly once, (N−1)·size per node on average;
//   - x_baseline: the round's time over the "baseline" sub-benchmark of the
//     same size, measured in the same run: every node verifying and opening
//     every other node's update exactly once, the least work any gossip
//     design must do.
func BenchmarkRound(b *testing.B) {
	for _, nodes := range []int{16} {
		for _, params := range []int{100_000, 1_000_000} {
			var base float64
			b.Run(fmt.Sprintf("nodes=%d/params=%d/baseline", nodes, params), func(b *testing.B) {
				base = benchBaseline(b, nodes, params)
			})
			b.Run(fmt.Sprintf("nodes=%d/params=%d/round", nodes, params), func(b *testing.B) {
				if params >= 1_000_000 && testing.Short() {
					b.Skip("1M parameters in -short mode")
				}
				benchRound(b, nodes, params, base)
			})
		}
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchCluster(b *testing.B, nodes, params int) *Cluster {
	rc, err := round.FromConfig(config.Default(), "template", true)
	if err != nil {
		b.Fatal(err)
	}
	c, err := NewCluster(ClusterConfig{Nodes: nodes, Round: rc, Params: params, Seed: 1, Latency: time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func benchBaseline(b *testing.B, nodes, params int) float64 {
	c := benchCluster(b, nodes, params)
	msgs := make([][]byte, nodes)
	for i, n := range c.Nodes {
		u := TrainUpdate(n.Model, n.Target, n.Samples, 1)
		m, err := n.Codec.Pack(1, c.Cfg.Round.Memberships[0], 3, u)
		if err != nil {
			b.Fatal(err)
		}
		msgs[i] = m
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		for i, n := range c.Nodes {
			for j, m := range msgs {
				if i == j {
					continue
				}
				env, err := n.Codec.Unpack(m)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := n.Codec.Open(env); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	return float64(time.Since(start)) / float64(b.N)
}

func benchRound(b *testing.B, nodes, params int, base float64) {
	c := benchCluster(b, nodes, params)
	sched := c.Schedule()
	next := func() { c.RunUntil(sched.Start(sched.RoundAt(c.Now) + 1).Add(time.Millisecond)) }
	next() // round 0: warm-up, peers meet
	var sent0 uint64
	for _, n := range c.Nodes {
		sent0 += c.Net.BytesSent(n.ID)
	}
	rounds0 := c.Nodes[0].M.Stats().RoundsCompleted
	b.ResetTimer()
	start, cpu0 := time.Now(), cpuTime()
	for range b.N {
		next()
	}
	wall, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	var sent uint64
	for _, n := range c.Nodes {
		sent += c.Net.BytesSent(n.ID)
	}
	if done := c.Nodes[0].M.Stats().RoundsCompleted - rounds0; done != uint64(b.N) {
		b.Fatalf("%d of %d rounds completed", done, b.N)
	}
	msgSize := float64(len(encodeUpdate(TrainUpdate(c.Nodes[0].Model, c.Nodes[0].Target, 1, 1))))
	perNode := float64(sent-sent0) / float64(b.N) / float64(nodes)
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu_s/round")
	b.ReportMetric(perNode, "bytes_sent/node/round")
	b.ReportMetric(perNode/(float64(nodes-1)*msgSize), "x_minimum")
	if base > 0 {
		b.ReportMetric(float64(wall)/float64(b.N)/base, "x_baseline")
	}
}
