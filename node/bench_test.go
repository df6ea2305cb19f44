package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/seal"
)

// fixedTrainer returns the same random delta of about params values every
// round: the benchmark measures the network and aggregation, not training.
type fixedTrainer struct{ delta *adapter.Update }

func newFixedTrainer(params int, seed uint64) *fixedTrainer {
	rng := mrand.New(mrand.NewPCG(seed, 1))
	in := max(1, params/(3*16))
	u := adapter.New()
	u.Meta.Samples = 100
	for _, g := range adapter.DefaultGroups {
		a, b := adapter.NewTensor(8, in), adapter.NewTensor(in, 8)
		for _, t := range []*adapter.Tensor{a, b} {
			for i := range t.Data {
				t.Data[i] = float32(rng.NormFloat64() * 1e-3)
			}
		}
		u.Set(g.Name, "base_model.model.layers.0.attn.q_proj.lora_A.weight", a)
		u.Set(g.Name, "base_model.model.layers.0.attn.q_proj.lora_B.weight", b)
	}
	return &fixedTrainer{delta: u}
}

func (f *fixedTrainer) Train(context.Context, uint64, *adapter.Update) (*adapter.Update, error) {
	return f.delta.Clone(), nil
}

func (f *fixedTrainer) Evaluate(context.Context, *adapter.Update) (map[string]float64, error) {
	return map[string]float64{}, nil
}

// BenchmarkRound runs 16 nodes over loopback libp2p in one process and
// reports, per completed round, the time from the slot's start to the
// aggregate being applied (Init → Done), the process's CPU time, the DAF
// bytes each node sent (every byte written, whether the peer took the
// message or refused it), and the minimum a node must send on average,
// for updates of 100 k and 1 M parameters. Run with -benchtime=Nx (N
// rounds).
//
// The minimum: every node must take in each other node's release once,
// N(N−1) copies in a round, and every copy taken in was sent by someone,
// so the nodes send at least (N−1) releases each on average (the source
// sends fan-out copies, relays the rest). sent/min above 1 is duplicates
// and offers; CPU per round is what the round costs the machine, which
// its wall time hides when other processes share the cores.
func BenchmarkRound(b *testing.B) {
	for _, tc := range []struct {
		nodes, params int
		interval      int64
	}{{16, 100_000, 4}, {16, 1_000_000, 20}, {8, 1_000_000, 12}} {
		b.Run(fmt.Sprintf("nodes=%d/params=%d", tc.nodes, tc.params), func(b *testing.B) {
			benchRound(b, tc.nodes, tc.params, tc.interval)
		})
	}
}

func benchRound(b *testing.B, size, params int, interval int64) {
	key, err := seal.NewScopeKey(rand.Reader, "tenant", "lab", 1)
	if err != nil {
		b.Fatal(err)
	}
	fed := testFed(3)
	fed.Federation.RoundIntervalSecs = interval
	fed.Federation.Gossip.PropagationTimeoutSecs = interval
	fed.Federation.Compression.QuantizationBits = 8
	fed.Federation.Privacy.ClipBound = 1e6

	var mu sync.Mutex
	durations := map[uint64][]time.Duration{}
	var nodes []*Node
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); wg.Wait() }()
	for i := range size {
		var boot []string
		if i > 0 {
			boot = nodes[0].Addrs()
		}
		n, err := New(Config{Fed: fed, DataDir: b.TempDir(), Bootstrap: boot, Trainer: newFixedTrainer(params, uint64(i)),
			ScopeKeys: []*seal.ScopeKey{key}, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: benchLogger(i),
			OnRoundDone: func(s RoundSummary) {
				if s.Completed {
					mu.Lock()
					durations[s.Round] = append(durations[s.Round], s.Duration)
					mu.Unlock()
				}
			}})
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, n)
		wg.Add(1)
		go func() { defer wg.Done(); _ = n.Run(ctx) }()
	}
	// Warm up until a round completes on most nodes (peers known,
	// connections open); then measure the next b.N rounds.
	var warm uint64
	deadline := time.Now().Add(time.Duration(interval*10) * time.Second)
	for warm == 0 {
		if time.Now().After(deadline) {
			b.Fatalf("no round completed on %d of %d nodes", size/2, size)
		}
		time.Sleep(100 * time.Millisecond)
		mu.Lock()
		for r, ds := range durations {
			if len(ds) >= size/2 && (warm == 0 || r < warm) {
				warm = r
			}
		}
		mu.Unlock()
	}
	sent0 := make([]uint64, size)
	for i, n := range nodes {
		sent0[i] = n.host.BytesSent()
	}
	sched := nodes[0].machine.Schedule()
	// CPU is counted over the measured rounds' slots, warm-up excluded.
	time.Sleep(time.Until(sched.Start(warm + 1)))
	cpu0 := cpuTime()
	b.ResetTimer()
	time.Sleep(time.Until(sched.End(warm + uint64(b.N))))
	b.StopTimer()
	cpu := cpuTime() - cpu0
	var worst, total time.Duration
	count := 0
	mu.Lock()
	for r, ds := range durations {
		if r <= warm || r > warm+uint64(b.N) {
			continue
		}
		for _, d := range ds {
			total += d
			count++
			worst = max(worst, d)
		}
	}
	mu.Unlock()
	var sent uint64
	for i, n := range nodes {
		sent += n.host.BytesSent() - sent0[i]
	}
	upd, _ := nodes[0].codec.Pack(0, nodes[0].releaseScopes()[0], fed.Federation.Gossip.MaxHops, nodes[0].cfg.Trainer.(*fixedTrainer).delta)
	least := float64(len(upd) * (size - 1))
	perNode := float64(sent) / float64(size) / float64(b.N)
	b.ReportMetric(total.Seconds()/float64(max(count, 1)), "s/round-mean")
	b.ReportMetric(worst.Seconds(), "s/round-max")
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/round")
	b.ReportMetric(perNode, "B-sent/node/round")
	b.ReportMetric(least, "B-min/node/round")
	b.ReportMetric(perNode/least, "sent/min")
	b.ReportMetric(float64(count)/float64(size*b.N), "completed-fraction")
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var benchLogger = func(int) *slog.Logger { return nil }
