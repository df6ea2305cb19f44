package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/round"
)

// carry performs a Ready in the order the round package requires: persist
// before anything leaves the node, then send, apply, and start the
// off-loop work (aggregation, training).
func (n *Node) carry(ctx context.Context, rd round.Ready) error {
	if err := n.persist(rd.Persist); err != nil {
		// A node that cannot record what it does must not go on doing it:
		// after a restart it would contradict what its peers saw.
		return fmt.Errorf("persist: %w", err)
	}
	for _, o := range rd.Send {
		n.enqueueSend(ctx, o)
	}
	for _, a := range rd.Apply {
		if err := n.apply(a); err != nil {
			return fmt.Errorf("apply round %d %s: %w", a.Round, a.Scope, err)
		}
	}
	for _, s := range rd.Skipped {
		n.skipped(s)
	}
	for _, job := range rd.Aggregate {
		// When Collect ends relative to the slot tells whether a round is
		// bound by its deadline or by the work of receiving updates.
		n.log.Debug("collect ended", "round", job.Round, "updates", len(job.Contributions),
			"after", time.Since(n.machine.Schedule().Start(job.Round)).Round(time.Millisecond), "self", shortID(n.self))
		n.startAggregate(ctx, job)
	}
	for _, r := range rd.Train {
		n.startTraining(ctx, r)
	}
	return nil
}

func (n *Node) persist(recs []round.Record) error {
	var b Batch
	for _, r := range recs {
		switch r.Kind {
		case round.RecordPeer:
			b.Peers = append(b.Peers, r.Peer)
			if b.Reputations == nil {
				b.Reputations = map[string]float64{}
			}
			b.Reputations[string(r.Peer.ID)] = r.Peer.Reputation
		case round.RecordReleased:
			v := make([]byte, 8)
			binary.BigEndian.PutUint64(v, r.Round)
			if b.Meta == nil {
				b.Meta = map[string][]byte{}
			}
			b.Meta[metaReleased] = v
		case round.RecordRound:
			rec := RoundRecord{Round: r.Round, Scope: r.Scope.String(), Completed: r.Completed, SkipReason: r.Reason, Finished: time.Now().UTC()}
			for _, p := range r.Participants {
				rec.Contributors = append(rec.Contributors, string(p))
			}
			b.Rounds = append(b.Rounds, rec)
		}
	}
	// Detector statistics ride along with round records (not on every
	// delta): see statsCache.
	if len(b.Rounds) > 0 && n.stats != nil {
		n.stats.drain(&b)
	}
	return n.store.Commit(&b)
}

// enqueueSend hands one message to the send stage. A full send queue drops
// the message (counted): gossip reaches the peer through other relays, and
// a node must never stall its round loop on a slow link.
func (n *Node) enqueueSend(ctx context.Context, o gossip.Outbound) {
	err := n.send.TrySubmit(func() {
		sctx, cancel := context.WithTimeout(ctx, sendTimeout)
		defer cancel()
		err := n.host.SendOffered(sctx, o.To, o.Proto, o.Offer, o.Body)
		if err == nil || ctx.Err() != nil {
			return
		}
		lvl := n.log.Debug
		if !errors.Is(err, gossip.ErrRefused) {
			lvl = n.log.Info // a refusal (late, duplicate) is ordinary gossip
		}
		lvl("send failed", "to", shortID(o.To), "round", o.Round, "source", shortID(o.Source), "err", err)
		// The machine learns it: an offer declined as held goes to another
		// peer, a peer that could not be reached is offered it again later.
		n.submit(func(now time.Time) round.Ready { return n.machine.SendFailed(now, o, err) })
	})
	if err != nil {
		n.log.Warn("send dropped", "to", shortID(o.To), "round", o.Round, "err", err)
	}
}

// apply merges a round's aggregate into the model: a delta aggregate is
// added to the current adapter, an adapter aggregate replaces it. The file
// is written (atomically) before the node reports the round done.
func (n *Node) apply(a round.Apply) error {
	n.mu.Lock()
	next, err := merge(n.current, a.Update)
	n.mu.Unlock()
	if err != nil {
		return err
	}
	next.Meta.Kind = adapter.KindAdapter
	next.Meta.Round = a.Round
	next.Meta.Node = string(n.self)
	next.Meta.Tier = a.Scope.Tier.String()
	next.Meta.Scope = a.Scope.Scope
	if err := adapter.WriteFile(n.adapterPath(), next); err != nil {
		return err
	}
	n.mu.Lock()
	n.current, n.lastApplied = next, a.Round
	n.mu.Unlock()
	n.metrics.RoundsCompleted.Inc()
	dur := time.Since(n.machine.Schedule().Start(a.Round))
	n.metrics.RoundDuration.Observe(dur.Seconds())
	n.log.Info("round applied", "round", a.Round, "scope", a.Scope.String(), "participants", len(a.Participants), "duration", dur.Round(time.Millisecond))
	n.emit(RoundSummary{Round: a.Round, Scope: a.Scope.String(), Completed: true, Participants: a.Participants, Adapter: next.Clone(), Duration: dur})
	return nil
}

// merge returns current + delta (tensor-wise; a tensor current lacks is
// taken from the delta) or, for an adapter aggregate, the aggregate itself.
func merge(current, agg *adapter.Update) (*adapter.Update, error) {
	if agg == nil {
		return nil, errors.New("no aggregate")
	}
	if err := agg.CheckFinite(); err != nil {
		return nil, fmt.Errorf("aggregate: %w", err)
	}
	if agg.Meta.Kind == adapter.KindAdapter || current == nil {
		return agg.Clone(), nil
	}
	next := current.Clone()
	for _, g := range agg.GroupNames() {
		for _, k := range agg.Keys(g) {
			d := agg.Get(g, k)
			cur := next.Get(g, k)
			if cur == nil {
				next.Set(g, k, d.Clone())
				continue
			}
			if !cur.SameShape(d) {
				return nil, fmt.Errorf("aggregate %s/%s has shape %v, model %v", g, k, d.Shape, cur.Shape)
			}
			for i, v := range d.Data {
				cur.Data[i] += v
			}
		}
	}
	if err := next.CheckFinite(); err != nil {
		return nil, fmt.Errorf("model after applying the aggregate: %w", err)
	}
	return next, nil
}

func (n *Node) adapterPath() string {
	return n.cfg.DataDir + "/" + AdaptersDir + "/" + currentAdapter
}

func (n *Node) skipped(s round.Skip) {
	n.metrics.RoundsSkipped.WithLabelValues(s.Reason).Inc()
	n.log.Info("round skipped", "round", s.Round, "scope", s.Scope.String(), "reason", s.Reason, "detail", s.Detail)
	n.emit(RoundSummary{Round: s.Round, Scope: s.Scope.String(), SkipReason: s.Reason, Detail: s.Detail,
		Adapter: n.Adapters(), Duration: time.Since(n.machine.Schedule().Start(s.Round))})
}

// emit queues a summary for OnRoundDone without blocking the loop; a
// callback that falls more than the queue behind loses summaries (logged).
func (n *Node) emit(s RoundSummary) {
	if n.cfg.OnRoundDone == nil {
		return
	}
	select {
	case n.notify <- s:
	default:
		n.log.Warn("round summary dropped: OnRoundDone is too slow", "round", s.Round)
	}
}

func (n *Node) notifier() {
	defer n.bg.Done()
	for s := range n.notify {
		n.cfg.OnRoundDone(s)
	}
}

// startAggregate runs a job on the aggregate stage and feeds the result back.
func (n *Node) startAggregate(ctx context.Context, job round.AggregateJob) {
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		err := n.combine.Submit(ctx, func() {
			start := time.Now()
			agg, err := n.aggregate(job)
			n.log.Debug("aggregate computed", "round", job.Round, "took", time.Since(start).Round(time.Millisecond))
			n.submit(func(now time.Time) round.Ready {
				rd, serr := n.machine.AggregateDone(now, job.Round, job.Scope, agg, err)
				if serr != nil {
					n.log.Info("aggregate not applied", "round", job.Round, "err", serr)
				}
				return rd
			})
		})
		if err != nil && ctx.Err() == nil {
			n.log.Warn("aggregation not started", "round", job.Round, "err", err)
		}
	}()
}

// aggregate runs the DAF engine on exactly the contributions of the job.
func (n *Node) aggregate(job round.AggregateJob) (*adapter.Update, error) {
	ups := make([]*adapter.Update, 0, len(job.Contributions))
	for _, c := range job.Contributions {
		u := c.Update
		if u.Meta.Node != string(c.Source) {
			u = u.Clone()
			u.Meta.Node = string(c.Source)
		}
		ups = append(ups, u)
	}
	res, err := n.engine.Aggregate(ups)
	if err != nil {
		return nil, err
	}
	res.Update.Meta.Node = string(n.self)
	res.Update.Meta.Round = job.Round
	return res.Update, nil
}

// publishStatus copies the machine's counters into Status and metrics.
func (n *Node) publishStatus() {
	st := n.machine.Stats()
	n.metrics.RoundCurrent.Set(float64(st.Round))
	n.metrics.PeersConnected.Set(float64(len(n.host.Peers())))
	n.mu.Lock()
	prev := n.statsBase
	n.statsBase = st
	n.status.Round = st.Round
	n.status.Phase = st.Phase.String()
	n.status.RoundsCompleted = st.RoundsCompleted
	n.status.RoundsSkipped = st.RoundsSkipped
	n.status.KnownPeers = n.machine.Engine().Table().Len()
	n.status.Received = st.Gossip.Received
	eps := map[string]float64{"all": n.ledger.Spent()}
	for t, e := range n.ledger.SpentByTier() {
		eps[t.String()] = e
	}
	n.status.EpsilonSpent = eps
	n.mu.Unlock()
	for result, c := range st.Gossip.Received {
		if d := c - prev.Gossip.Received[result]; d > 0 {
			n.metrics.UpdatesReceived.WithLabelValues(result).Add(float64(d))
		}
	}
	if d := st.SybilRejected - prev.SybilRejected; d > 0 {
		n.metrics.UpdatesReceived.WithLabelValues("rejected_sybil").Add(float64(d))
	}
	for t, e := range eps {
		n.metrics.EpsilonSpent.WithLabelValues(t).Set(e)
	}
}
