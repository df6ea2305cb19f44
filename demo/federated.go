package demo

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/config"
	"github.com/dafnet/daf/dlm"
	"github.com/dafnet/daf/node"
	"github.com/dafnet/daf/seal"
)

// federatedRun is what one federated arm produced for one seed.
type federatedRun struct {
	history   [][]*adapter.Update // round → node → banks (round 0 = initial)
	epsilon   float64             // largest ε any node spent (Public tier only)
	completed int                 // rounds every node completed (aggregated and applied)
}

// armConfig is federation.toml for one federated arm: the shipped defaults
// with a short round interval, the arm's strategies and tier.
func (s *setup) armConfig(arm string) config.Config {
	c := config.Default()
	f := &c.Federation
	secs := int64(s.opts.RoundInterval / time.Second)
	if secs < 1 {
		secs = 1
	}
	f.RoundIntervalSecs = secs
	f.Gossip.PropagationTimeoutSecs = secs
	// A majority of the nodes, as the shipped default (3) is for five.
	f.MinNodesForAggregation = min(f.MinNodesForAggregation, s.opts.Nodes/2+1)
	f.Node.Tier, f.Node.Scope = "tenant", "demo"
	switch arm {
	case "fedavg":
		f.DAF.CoarseStrategy, f.DAF.DomainStrategy, f.DAF.FineStrategy = "weighted_average", "weighted_average", "weighted_average"
	case "daf_dp":
		f.Node.Tier, f.Node.Scope = "public", ""
	}
	return c
}

// demoTrainer is the reference-model trainer every node of an arm runs,
// starting from the banks the whole arm shares.
type demoTrainer struct {
	*dlm.Trainer
	initial *adapter.Update
}

// InitialAdapter makes every node start from the same banks: averaging
// LoRA factors is only meaningful from a common starting point.
func (t demoTrainer) InitialAdapter() (*adapter.Update, error) { return t.initial.Clone(), nil }

// trainFederated starts one full node per shard in this process, each with
// its own data dir, identity and libp2p host on 127.0.0.1, lets them
// federate for the configured number of rounds and records every node's
// banks after each round.
func (s *setup) trainFederated(ctx context.Context, arm string, seed uint64) (federatedRun, error) {
	var fr federatedRun
	n := len(s.shards)
	fed := s.armConfig(arm)
	if err := fed.Validate(); err != nil {
		return fr, fmt.Errorf("arm %s config: %w", arm, err)
	}
	root := filepath.Join(s.opts.Out, "nodes", fmt.Sprintf("%s-seed%d", arm, seed))
	if err := os.RemoveAll(root); err != nil {
		return fr, err
	}
	var keys []*seal.ScopeKey
	if fed.Federation.Node.Tier != "public" {
		k, err := seal.NewScopeKey(rand.Reader, fed.Federation.Node.Tier, fed.Federation.Node.Scope, 1)
		if err != nil {
			return fr, err
		}
		keys = append(keys, k)
	}
	initial := s.initialBanks(seed)
	interval := time.Duration(fed.Federation.RoundIntervalSecs) * time.Second

	// Rounds are time slots from a genesis every node shares. Leave time
	// for the hosts to connect before the first slot starts.
	genesis := time.Now().Add(2 * time.Second).Truncate(time.Millisecond)

	var (
		mu      sync.Mutex
		byRound = make([]map[uint64]*adapter.Update, n) // node → absolute round → banks
		eps     = make([]float64, n)
	)
	nodes := make([]*node.Node, n)
	var bootstrap []string
	for i := range nodes {
		i := i
		byRound[i] = map[uint64]*adapter.Update{}
		cfg := s.trainConfig(seed, i, 0)
		tr := dlm.NewTrainer(s.base, s.shards[i].Train, cfg)
		nd, err := node.New(node.Config{
			Fed:          fed,
			DataDir:      filepath.Join(root, fmt.Sprintf("node%d-%s", i, s.shards[i].Name)),
			Listen:       []string{"/ip4/127.0.0.1/tcp/0"},
			Bootstrap:    append([]string(nil), bootstrap...),
			Trainer:      demoTrainer{Trainer: tr, initial: initial},
			Genesis:      genesis,
			FederationID: fmt.Sprintf("daf-demo-%s-%d", arm, seed),
			ScopeKeys:    keys,
			PingInterval: time.Second,
			Logger:       s.nodeLogger(arm, i),
			OnRoundDone: func(sum node.RoundSummary) {
				mu.Lock()
				defer mu.Unlock()
				if sum.Completed && sum.Adapter != nil {
					byRound[i][sum.Round] = sum.Adapter
				}
				if sum.Completed {
					s.debugf("  %s node %d round %d: aggregated %d updates", arm, i, sum.Round, len(sum.Participants))
				} else {
					s.debugf("  %s node %d round %d skipped: %s %s", arm, i, sum.Round, sum.SkipReason, sum.Detail)
				}
			},
		})
		if err != nil {
			return fr, fmt.Errorf("starting node %d (%s): %w", i, s.shards[i].Name, err)
		}
		nodes[i] = nd
		bootstrap = append(bootstrap, nd.Addrs()...)
	}

	// Run owns a node's host and store and closes them when it returns;
	// wait for every node to stop before the next arm starts.
	runCtx, cancel := context.WithCancel(ctx)
	errs := make(chan error, n)
	var running sync.WaitGroup
	for _, nd := range nodes {
		nd := nd
		running.Add(1)
		go func() { defer running.Done(); errs <- nd.Run(runCtx) }()
	}
	defer func() { cancel(); running.Wait() }()
	deadline := time.Now().Add(time.Until(genesis) + time.Duration(s.opts.Rounds+4)*interval + 10*time.Second)
	for {
		mu.Lock()
		done := 0
		for i := range byRound {
			if len(byRound[i]) >= s.opts.Rounds {
				done++
			}
		}
		mu.Unlock()
		if done == n {
			break
		}
		select {
		case err := <-errs:
			if err != nil {
				return fr, fmt.Errorf("a node stopped: %w", err)
			}
		case <-ctx.Done():
			return fr, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			break
		}
	}
	for i, nd := range nodes {
		st := nd.Status()
		for _, e := range st.EpsilonSpent {
			eps[i] = max(eps[i], e)
		}
	}
	cancel()

	// The node's round numbers are absolute slots; the demo's rounds are
	// the first Rounds slots each node completed, in order.
	fr.history = [][]*adapter.Update{replicateBanks(initial, n)}
	mu.Lock()
	defer mu.Unlock()
	fr.completed = s.opts.Rounds
	last := make([]*adapter.Update, n)
	for i := range last {
		last[i] = initial
	}
	ordered := make([][]*adapter.Update, n)
	for i := range byRound {
		ordered[i] = sortedByRound(byRound[i])
		fr.completed = min(fr.completed, len(ordered[i]))
	}
	for r := 0; r < s.opts.Rounds; r++ {
		row := make([]*adapter.Update, n)
		for i := range row {
			if r < len(ordered[i]) {
				last[i] = ordered[i][r]
			}
			row[i] = last[i]
		}
		fr.history = append(fr.history, row)
	}
	for _, e := range eps {
		fr.epsilon = max(fr.epsilon, e)
	}
	return fr, nil
}

// nodeLogger sends a node's warnings to the progress output in verbose mode
// and discards them otherwise.
func (s *setup) nodeLogger(arm string, i int) *slog.Logger {
	if !s.opts.Verbose || s.opts.Progress == nil {
		return slog.New(slog.DiscardHandler)
	}
	h := slog.NewTextHandler(s.opts.Progress, &slog.HandlerOptions{Level: slog.LevelWarn})
	return slog.New(h).With("arm", arm, "node", i)
}

func replicateBanks(u *adapter.Update, n int) []*adapter.Update {
	out := make([]*adapter.Update, n)
	for i := range out {
		out[i] = u
	}
	return out
}

func sortedByRound(m map[uint64]*adapter.Update) []*adapter.Update {
	rounds := make([]uint64, 0, len(m))
	for r := range m {
		rounds = append(rounds, r)
	}
	for i := 1; i < len(rounds); i++ {
		for j := i; j > 0 && rounds[j] < rounds[j-1]; j-- {
			rounds[j], rounds[j-1] = rounds[j-1], rounds[j]
		}
	}
	out := make([]*adapter.Update, len(rounds))
	for i, r := range rounds {
		out[i] = m[r]
	}
	return out
}
