package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/privacy"
	"github.com/dafnet/daf/round"
)

// Initializer is implemented by trainers whose model starts from a fixed
// adapter, the same on every node (the reference model's freshly
// initialised banks). The node takes it as its model before the first
// round, so its first release is a small delta from that start rather than
// the whole adapter, which clipping would shrink.
type Initializer interface {
	InitialAdapter() (*adapter.Update, error)
}

// startTraining runs the trainer for round r off the loop and hands the
// released updates back. Training has until the round's Collect closes; a
// result after that is late and the machine drops it.
func (n *Node) startTraining(ctx context.Context, r uint64) {
	if n.cfg.Trainer == nil {
		return
	}
	deadline := n.machine.Schedule().CollectEnd(r)
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		tctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		ups, err := n.train(tctx, r)
		switch {
		case errors.Is(err, ErrNoUpdate):
			n.log.Info("no local update", "round", r, "reason", err)
		case err != nil && ctx.Err() == nil:
			n.log.Warn("local training failed", "round", r, "err", err)
		}
		n.submit(func(now time.Time) round.Ready {
			rd, err := n.machine.LocalUpdateReady(now, r, ups...)
			if err != nil {
				n.log.Info("local update not used", "round", r, "err", err)
			}
			return rd
		})
	}()
}

// train produces the node's releases for round r: train, turn the result
// into a delta from the current model, then for each scope clip (and for
// Public noise) the delta, charge the privacy ledger, and release the
// adapter current + delta.
//
// Why adapters travel rather than deltas: every node holds its own model,
// and a node that missed a round (a straggler, a restart) holds a
// different one. Averaging deltas would keep that offset forever, since a
// delta says nothing about the model it was made from; averaging adapters
// contracts the differences each round, so the nodes' models come
// together. Privacy is unchanged: only the delta is clipped and noised, and
// the current model is itself an aggregate of earlier releases
// (post-processing). The Byzantine and Sybil filters judge the delta of a
// received adapter from the receiver's own model (defense.GossipFilter.Base).
func (n *Node) train(ctx context.Context, r uint64) ([]round.LocalUpdate, error) {
	cur, err := n.currentOrInitial()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	u, err := n.cfg.Trainer.Train(ctx, r, cur)
	if err != nil {
		return nil, err
	}
	if err := checkTrained(u, r); err != nil {
		return nil, err
	}
	delta, err := deltaFrom(cur, u)
	if err != nil {
		return nil, fmt.Errorf("round %d: %w", r, err)
	}
	delta.Meta.Node = string(n.self)
	delta.Meta.Round = r
	n.log.Debug("local training done", "round", r, "samples", delta.Meta.Samples, "took", time.Since(start).Round(time.Millisecond))

	p := n.cfg.Fed.Federation.Privacy
	var ups []round.LocalUpdate
	for _, m := range n.releaseScopes() {
		rel := delta.Clone()
		rel.Meta.Scope = m.Scope
		rep, err := privacy.PrepareRelease(rel, m.Tier, p.Epsilon, p.Delta, p.ClipBound, n.noise)
		if err != nil {
			return ups, fmt.Errorf("round %d %s: %w", r, m, err)
		}
		// The ledger is charged (and persisted) before the release exists
		// anywhere but here; a refused charge means no release.
		if err := n.ledger.Charge(m.Tier, r, rep.NoiseMultiplier, 1); err != nil {
			n.log.Warn("release withheld", "round", r, "scope", m.String(), "err", err)
			continue
		}
		out, err := addDelta(cur, rel)
		if err != nil {
			return ups, fmt.Errorf("round %d %s: %w", r, m, err)
		}
		ups = append(ups, round.LocalUpdate{Scope: m, Update: out})
	}
	return ups, nil
}

// releaseScopes are the node's memberships that release (not Private).
func (n *Node) releaseScopes() []gossip.Membership {
	tier, err := privacy.ParseTier(n.cfg.Fed.Federation.Node.Tier)
	if err != nil || tier == privacy.Private {
		return nil
	}
	return []gossip.Membership{{Tier: tier, Scope: n.cfg.Fed.Federation.Node.Scope}}
}

// currentOrInitial is the model training starts from: the current adapter,
// else the trainer's initial adapter (adopted as the model), else nil.
func (n *Node) currentOrInitial() (*adapter.Update, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.current != nil {
		return n.current.Clone(), nil
	}
	init, ok := n.cfg.Trainer.(Initializer)
	if !ok {
		return nil, nil
	}
	u, err := init.InitialAdapter()
	if err != nil {
		return nil, fmt.Errorf("initial adapter: %w", err)
	}
	if u == nil {
		return nil, nil
	}
	u.Meta.Kind = adapter.KindAdapter
	n.current = u.Clone()
	return u, nil
}

// deltaFrom turns a trainer's result into a delta: a delta passes as is; an
// adapter becomes trained − current (current nil counts as zeros).
func deltaFrom(current, trained *adapter.Update) (*adapter.Update, error) {
	if trained.Meta.Kind != adapter.KindAdapter {
		d := trained.Clone()
		d.Meta.Kind = adapter.KindDelta
		return d, nil
	}
	d := trained.Clone()
	d.Meta.Kind = adapter.KindDelta
	if current == nil {
		return d, nil
	}
	for _, g := range d.GroupNames() {
		for _, k := range d.Keys(g) {
			t := d.Get(g, k)
			c := current.Get(g, k)
			if c == nil {
				continue
			}
			if !c.SameShape(t) {
				return nil, fmt.Errorf("trained %s/%s has shape %v, model %v", g, k, t.Shape, c.Shape)
			}
			for i := range t.Data {
				t.Data[i] -= c.Data[i]
			}
		}
	}
	return d, nil
}

// addDelta returns base + delta as an adapter (base nil counts as zeros).
func addDelta(base, delta *adapter.Update) (*adapter.Update, error) {
	out := delta.Clone()
	out.Meta.Kind = adapter.KindAdapter
	if base == nil {
		return out, nil
	}
	for _, g := range out.GroupNames() {
		for _, k := range out.Keys(g) {
			t := out.Get(g, k)
			b := base.Get(g, k)
			if b == nil {
				continue
			}
			if !b.SameShape(t) {
				return nil, fmt.Errorf("delta %s/%s has shape %v, model %v", g, k, t.Shape, b.Shape)
			}
			for i := range t.Data {
				t.Data[i] += b.Data[i]
			}
		}
	}
	// Tensors of the model the trainer left out travel unchanged, so the
	// aggregate keeps every tensor of every node.
	for _, g := range base.GroupNames() {
		for _, k := range base.Keys(g) {
			if out.Get(g, k) == nil {
				out.Set(g, k, base.Get(g, k).Clone())
			}
		}
	}
	return out, nil
}
