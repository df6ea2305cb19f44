package dlm

import (
	"context"
	"fmt"

	"github.com/dafnet/daf/adapter"
)

// Trainer is the built-in local trainer of a node (`daf node --train-data`):
// each round it trains the banks it is given on its own text and evaluates
// them on a held-out part of that text.
type Trainer struct {
	base    *Base
	train   []byte
	heldout []byte
	cfg     TrainConfig
	// EvalSamples is the number of held-out sequences per group Evaluate uses.
	EvalSamples int
}

// NewTrainer holds out the last eighth of data (at least 1 KiB) for
// Evaluate and trains on the rest. Data too short for that split is kept
// whole for both; LoadText is the place that rejects unusable data:
//
//	text, err := dlm.LoadText(path) // --train-data
//	...
//	trainer := dlm.NewTrainer(base, text, dlm.DefaultTrainConfig())
func NewTrainer(b *Base, data []byte, cfg TrainConfig) *Trainer {
	t := &Trainer{base: b, cfg: cfg, train: data, heldout: data, EvalSamples: 32}
	if s, err := split("train-data", data, "train-data"); err == nil {
		t.train, t.heldout = s.Train, s.Heldout
	}
	return t
}

// roundSeed gives every round its own windows, times and masks.
func roundSeed(seed, round uint64) uint64 {
	x := seed ^ (round+1)*0x9e3779b97f4a7c15
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return x
}

// Train runs one round of local training from current (fresh banks when
// nil) and returns the trained banks with Meta.Round, Meta.Samples and
// Meta.Quality set.
func (t *Trainer) Train(ctx context.Context, round uint64, current *adapter.Update) (*adapter.Update, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if current == nil {
		current = NewBanks(t.base, adapter.DefaultGroups, t.cfg.Seed)
	}
	cfg := t.cfg
	cfg.Seed = roundSeed(t.cfg.Seed, round)
	res, err := train(ctx, t.base, current, t.train, cfg)
	if err != nil {
		return nil, fmt.Errorf("local training in round %d: %w", round, err)
	}
	res.Banks.Meta.Round = round
	return res.Banks, nil
}

// Evaluate returns the held-out loss of current per group (nats per masked
// byte) plus "overall", the groups weighted by their share of the time axis.
func (t *Trainer) Evaluate(ctx context.Context, current *adapter.Update) (map[string]float64, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := Evaluate(t.base, current, t.heldout, t.EvalSamples, t.cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("evaluation: %w", err)
	}
	out := make(map[string]float64, len(res.Loss)+1)
	for g, l := range res.Loss {
		out[g] = l
	}
	out["overall"] = res.Overall
	return out, nil
}
