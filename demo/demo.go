package demo

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/dlm"
)

// Options are the flags of `daf demo`.
type Options struct {
	Nodes  int      // number of federated nodes (one data domain each)
	Rounds int      // federation rounds per arm
	Seeds  int      // independent repetitions; results give mean and spread
	Out    string   // output directory (results.json, results.md, plots)
	Data   []string // user's text files or directories, one per node; empty = default corpus
	Quick  bool     // small smoke-test run (≤ 60 s)
	Arms   []string // which arms to run; empty = all

	// Training budget per node per round, and evaluation effort. Zero means
	// "choose from Quick".
	StepsPerRound int
	Batch         int
	EvalSamples   int
	RoundInterval time.Duration

	Progress io.Writer // human progress lines; nil = silent
	Verbose  bool      // also log every node's rounds
}

// AllArms is every arm the demo knows, in run order.
var AllArms = []string{"local", "central", "fedavg", "daf", "daf_dp"}

// ErrBadOptions marks options the demo cannot run with.
var ErrBadOptions = errors.New("bad demo options")

func (o *Options) fill() error {
	if o.Nodes == 0 {
		o.Nodes = 5
	}
	if o.Seeds == 0 {
		o.Seeds = 3
		if o.Quick {
			o.Seeds = 1
		}
	}
	if o.Rounds == 0 {
		o.Rounds = 6
		if o.Quick {
			o.Rounds = 3
		}
	}
	if o.StepsPerRound == 0 {
		o.StepsPerRound = 12
		if o.Quick {
			o.StepsPerRound = 8
		}
	}
	if o.Batch == 0 {
		o.Batch = dlm.DefaultTrainConfig().Batch
	}
	if o.EvalSamples == 0 {
		o.EvalSamples = 16
		if o.Quick {
			o.EvalSamples = 8
		}
	}
	if o.RoundInterval == 0 {
		// Three federated arms of five nodes each train at the start of
		// every round on two cores; the interval leaves room for that,
		// for the local and central arms and for gossip.
		o.RoundInterval = 4 * time.Second
	}
	if len(o.Arms) == 0 {
		o.Arms = AllArms
	}
	switch {
	case o.Nodes < 2:
		return fmt.Errorf("%w: --nodes %d: a federation needs at least 2 nodes", ErrBadOptions, o.Nodes)
	case o.Nodes > 64:
		return fmt.Errorf("%w: --nodes %d: the demo runs every node in one process; use at most 64", ErrBadOptions, o.Nodes)
	case o.Rounds < 1:
		return fmt.Errorf("%w: --rounds %d: need at least 1", ErrBadOptions, o.Rounds)
	case o.Seeds < 1:
		return fmt.Errorf("%w: --seeds %d: need at least 1", ErrBadOptions, o.Seeds)
	case o.Out == "":
		return fmt.Errorf("%w: --out is empty", ErrBadOptions)
	}
	known := map[string]bool{}
	for _, a := range AllArms {
		known[a] = true
	}
	for _, a := range o.Arms {
		if !known[a] {
			return fmt.Errorf("%w: --arms: unknown arm %q (known: %v)", ErrBadOptions, a, AllArms)
		}
	}
	return nil
}

// setup is what every arm of every seed shares.
type setup struct {
	opts      Options
	base      *dlm.Base
	shards    []dlm.Shard
	global    []byte
	groups    []string
	logf      func(format string, args ...any)
	debugf    func(format string, args ...any)
	evalMu    sync.Mutex
	evalCache map[evalKey]*dlm.EvalResult
	started   time.Time
}

// Run executes the demo and writes its outputs to opts.Out.
func Run(ctx context.Context, opts Options) (*Results, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	s := &setup{opts: opts, started: time.Now(), evalCache: map[evalKey]*dlm.EvalResult{}}
	s.logf = func(format string, args ...any) {
		if opts.Progress != nil {
			fmt.Fprintf(opts.Progress, "[%5.1fs] "+format+"\n", append([]any{time.Since(s.started).Seconds()}, args...)...)
		}
	}
	s.debugf = func(string, ...any) {}
	if opts.Verbose {
		s.debugf = s.logf
	}
	var err error
	if len(opts.Data) > 0 {
		if len(opts.Data) != opts.Nodes {
			return nil, fmt.Errorf("%w: --data given %d paths for --nodes %d: pass one path per node", ErrBadOptions, len(opts.Data), opts.Nodes)
		}
		s.shards, err = dlm.LoadShards(opts.Data)
	} else {
		s.shards, err = dlm.DefaultCorpus(opts.Nodes)
	}
	if err != nil {
		return nil, err
	}
	s.global = dlm.GlobalHeldout(s.shards)
	if s.base, err = dlm.DefaultBase(); err != nil {
		return nil, fmt.Errorf("loading the shipped base model: %w", err)
	}
	if err := os.MkdirAll(opts.Out, 0o755); err != nil {
		return nil, fmt.Errorf("--out %s: %w", opts.Out, err)
	}
	for _, g := range adapter.DefaultGroups {
		s.groups = append(s.groups, g.Name)
	}
	var domains []string
	for _, sh := range s.shards {
		domains = append(domains, sh.Name)
	}
	s.logf("%d nodes on domains %v; %d rounds × %d steps; %d seed(s); arms %v", opts.Nodes, domains, opts.Rounds, opts.StepsPerRound, opts.Seeds, opts.Arms)

	res := &Results{
		Nodes: opts.Nodes, Rounds: opts.Rounds, Arms: map[string]*Arm{}, EpsilonSpent: map[string]float64{},
		Groups: s.groups, Domains: domains,
		Machine: fmt.Sprintf("%s/%s, %d CPUs, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), runtime.Version()),
	}
	runs := map[string][]armRun{}
	for k := 0; k < opts.Seeds; k++ {
		seed := uint64(1000 + k)
		res.Seeds = append(res.Seeds, seed)
		// The federated arms are separate federations whose rounds are
		// wall-clock slots, so they run side by side.
		type outcome struct {
			arm string
			run armRun
			err error
		}
		results := make(chan outcome, len(opts.Arms))
		var federated sync.WaitGroup
		for _, arm := range opts.Arms {
			if arm == "local" || arm == "central" {
				continue
			}
			federated.Add(1)
			go func(arm string) {
				defer federated.Done()
				s.logf("seed %d: arm %s started", seed, arm)
				run, err := s.runArm(ctx, arm, seed)
				results <- outcome{arm, run, err}
			}(arm)
		}
		// The local and central arms start once the federations are done,
		// so they do not take the cores the nodes need to train inside
		// their rounds.
		federated.Wait()
		for _, arm := range opts.Arms {
			if arm != "local" && arm != "central" {
				continue
			}
			s.logf("seed %d: arm %s started", seed, arm)
			run, err := s.runArm(ctx, arm, seed)
			results <- outcome{arm, run, err}
		}
		close(results)
		var firstErr error
		for o := range results {
			if o.err != nil {
				if firstErr == nil {
					firstErr = fmt.Errorf("arm %s, seed %d: %w", o.arm, seed, o.err)
				}
				continue
			}
			last := o.run.perRound[len(o.run.perRound)-1]
			s.logf("seed %d: arm %s: global %.4f personal %.4f nats/token, %d rounds at every node", seed, o.arm, last.overallG, last.overallP, o.run.completed)
			runs[o.arm] = append(runs[o.arm], o.run)
		}
		if firstErr != nil {
			return nil, firstErr
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
	for arm, rs := range runs {
		res.Arms[arm] = summarise(rs, s.groups)
		res.EpsilonSpent[arm] = res.Arms[arm].EpsilonSpent
	}
	if a, ok := res.Arms["daf"]; ok {
		res.ConsensusDistance = a.ConsensusDistance
	}
	res.DurationSecs = time.Since(s.started).Seconds()
	if err := writeOutputs(opts.Out, res); err != nil {
		return nil, err
	}
	return res, nil
}

// runArm trains one arm for one seed and evaluates it after every round.
func (s *setup) runArm(ctx context.Context, arm string, seed uint64) (armRun, error) {
	var (
		history [][]*adapter.Update // round → node → banks
		run     armRun
		err     error
	)
	switch arm {
	case "local":
		history, err = s.trainLocal(seed)
	case "central":
		history, err = s.trainCentral(seed)
	default:
		var fr federatedRun
		fr, err = s.trainFederated(ctx, arm, seed)
		history, run.epsilon, run.completed = fr.history, fr.epsilon, fr.completed
	}
	if err != nil {
		return run, err
	}
	if arm == "local" || arm == "central" {
		run.completed = len(history) - 1
	}
	for r, banks := range history {
		e, err := s.evaluate(banks, seed)
		if err != nil {
			return run, fmt.Errorf("evaluating round %d: %w", r, err)
		}
		run.perRound = append(run.perRound, e)
	}
	// Distance on the factors as exchanged: the quantity the nodes'
	// aggregation drives together (dlm also reports it on ΔW).
	cons, err := dlm.ConsensusDistance(history[len(history)-1])
	if err != nil {
		return run, fmt.Errorf("consensus distance: %w", err)
	}
	run.consensus = cons.Factor
	return run, nil
}

// initialBanks are the same for every node of an arm and every arm of a
// seed: a federation of LoRA factors only makes sense from a shared start.
func (s *setup) initialBanks(seed uint64) *adapter.Update {
	groups := make([]adapter.GroupRange, len(adapter.DefaultGroups))
	copy(groups, adapter.DefaultGroups)
	return dlm.NewBanks(s.base, groups, seed)
}

func (s *setup) trainConfig(seed uint64, node, round int) dlm.TrainConfig {
	cfg := dlm.DefaultTrainConfig()
	cfg.Steps = s.opts.StepsPerRound
	cfg.Batch = s.opts.Batch
	cfg.Seed = seed*1_000_003 + uint64(node)*7919 + uint64(round)
	return cfg
}

// trainLocal: every node trains alone on its own shard.
func (s *setup) trainLocal(seed uint64) ([][]*adapter.Update, error) {
	n := len(s.shards)
	cur := make([]*adapter.Update, n)
	for i := range cur {
		cur[i] = s.initialBanks(seed)
	}
	history := [][]*adapter.Update{append([]*adapter.Update(nil), cur...)}
	for r := 1; r <= s.opts.Rounds; r++ {
		for i := range cur {
			res, err := dlm.Train(s.base, cur[i], s.shards[i].Train, s.trainConfig(seed, i, r))
			if err != nil {
				return nil, fmt.Errorf("node %d (%s), round %d: %w", i, s.shards[i].Name, r, err)
			}
			cur[i] = res.Banks
		}
		history = append(history, append([]*adapter.Update(nil), cur...))
	}
	return history, nil
}

// trainCentral: one model on the pooled data with the whole federation's
// compute (nodes × steps per round): the upper bound a federation can reach
// without moving data.
func (s *setup) trainCentral(seed uint64) ([][]*adapter.Update, error) {
	var pooled []byte
	for _, sh := range s.shards {
		pooled = append(pooled, sh.Train...)
	}
	cur := s.initialBanks(seed)
	n := len(s.shards)
	replicate := func(u *adapter.Update) []*adapter.Update {
		out := make([]*adapter.Update, n)
		for i := range out {
			out[i] = u
		}
		return out
	}
	history := [][]*adapter.Update{replicate(cur)}
	for r := 1; r <= s.opts.Rounds; r++ {
		cfg := s.trainConfig(seed, 0, r)
		cfg.Steps *= n
		res, err := dlm.Train(s.base, cur, pooled, cfg)
		if err != nil {
			return nil, fmt.Errorf("central, round %d: %w", r, err)
		}
		cur = res.Banks
		history = append(history, replicate(cur))
	}
	return history, nil
}

// evaluate measures every node's banks on its own held-out text (personal)
// and on the global mix. The evaluation seed depends only on the run seed,
// so every arm is scored on the same masks and timesteps; that also makes a
// result a pure function of (banks, text, seed), so identical banks — the
// shared start, the central model, nodes holding the same aggregate — are
// evaluated once.
func (s *setup) evaluate(banks []*adapter.Update, seed uint64) (evaluation, error) {
	e := evaluation{global: map[string]float64{}, personal: map[string]float64{}}
	n := float64(len(banks))
	for i, b := range banks {
		own, err := s.evalCached(b, i, s.shards[i].Heldout, seed+17)
		if err != nil {
			return e, fmt.Errorf("node %d (%s): %w", i, s.shards[i].Name, err)
		}
		glob, err := s.evalCached(b, -1, s.global, seed+29)
		if err != nil {
			return e, fmt.Errorf("node %d on the global mix: %w", i, err)
		}
		for _, g := range s.groups {
			e.personal[g] += own.Loss[g] / n
			e.global[g] += glob.Loss[g] / n
		}
		e.overallP += own.Overall / n
		e.overallG += glob.Overall / n
	}
	return e, nil
}

type evalKey struct {
	banks   [sha256.Size]byte
	dataset int // shard index, -1 for the global mix
	seed    uint64
}

func (s *setup) evalCached(b *adapter.Update, dataset int, text []byte, seed uint64) (*dlm.EvalResult, error) {
	key := evalKey{banks: fingerprint(b), dataset: dataset, seed: seed}
	s.evalMu.Lock()
	if r, ok := s.evalCache[key]; ok {
		s.evalMu.Unlock()
		return r, nil
	}
	s.evalMu.Unlock()
	r, err := dlm.Evaluate(s.base, b, text, s.opts.EvalSamples, seed)
	if err != nil {
		return nil, err
	}
	s.evalMu.Lock()
	s.evalCache[key] = r
	s.evalMu.Unlock()
	return r, nil
}

// fingerprint hashes every tensor's name, shape and bits in a fixed order.
func fingerprint(u *adapter.Update) [sha256.Size]byte {
	h := sha256.New()
	var buf [8]byte
	for _, g := range u.GroupNames() {
		for _, k := range u.Keys(g) {
			t := u.Get(g, k)
			h.Write([]byte(g + "/" + k + "\x00"))
			for _, d := range t.Shape {
				binary.LittleEndian.PutUint64(buf[:], uint64(d))
				h.Write(buf[:])
			}
			raw := make([]byte, 4*len(t.Data))
			for i, v := range t.Data {
				binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
			}
			h.Write(raw)
		}
	}
	var out [sha256.Size]byte
	copy(out[:], h.Sum(nil))
	return out
}
