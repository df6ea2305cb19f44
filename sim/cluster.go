package sim

import (
	"container/heap"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/aggregate"
	"github.com/dafnet/daf/config"
	"github.com/dafnet/daf/defense"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/round"
)

// ClusterConfig describes a simulated federation.
type ClusterConfig struct {
	Nodes  int // named n1 … nN
	Round  round.Config
	Params int // model parameters per node
	Seed   uint64
	// Latency is the one-way delay of every message; Bandwidth (bytes per
	// second, 0 = unlimited) adds transfer time proportional to size.
	Latency   time.Duration
	Bandwidth float64
	TrainTime time.Duration // default local training time
	// Defense configures every node's Byzantine detector and the Sybil
	// screen; Aggregate every node's DAF engine. Zero values take
	// federation.toml's defaults.
	Defense   defense.Config
	Aggregate aggregate.EngineConfig
}

// Node is one simulated node: its round machine, identity, store and model.
type Node struct {
	ID        gossip.PeerID
	M         *round.Machine
	Codec     *Codec
	Detector  *defense.Detector // kept across restarts, as the daemon keeps it in its store
	Engine    *aggregate.Engine
	Store     *Store
	Model     []float32
	Target    []float32
	Samples   float64
	TrainTime time.Duration
	// Scale multiplies every update the node releases (a Byzantine node
	// uses a large one); ForgeAs makes it also send garbage in another
	// node's name each round.
	Scale   float32
	ForgeAs gossip.PeerID
	Crashed bool

	gen        int
	nextTick   time.Time
	tickQueued bool
	rng        *rand.Rand
}

// Cluster is a deterministic multi-node harness: every node's round machine
// runs on one goroutine against a virtual clock and a queue of timed
// events (ticks, message deliveries, training and aggregation results).
// The same seed gives the same run, message for message.
type Cluster struct {
	Cfg   ClusterConfig
	Now   time.Time
	Net   *Network
	Keys  *Keyring
	Nodes []*Node

	byID map[gossip.PeerID]*Node
	// parked: offers answered gossip.ErrInFlight, waiting for the transfer
	// of the same release to the same node to end, as a daemon's stream
	// handler waits.
	parked map[parkKey][]*event
	// delivered counts the steps carried out (offers, bodies, offers
	// parked), for tests of the protocol's traffic.
	delivered struct{ offers, bodies, parked int }
	// latency is the measured round-trip matrix (the daemon's libp2p ping),
	// here the link model's: every node's adaptive selector reads it.
	latency *gossip.LatencyMatrix
	queue   eventQueue
	seq     uint64
	started bool
	out     []string
}

type eventKind int

const (
	evTick    eventKind = iota
	evOffer             // a delta's offer reaches its receiver
	evBody              // the body it asked for arrives
	evRefused           // the receiver's refusal reaches the sender
	evTrained
	evAggregated
	evHeartbeat
)

type event struct {
	at    time.Time
	seq   uint64
	kind  eventKind
	node  gossip.PeerID
	gen   int
	from  gossip.PeerID
	msg   []byte
	round uint64
	scope gossip.Membership
	upd   *adapter.Update
	err   error
	out   gossip.Outbound // evOffer, evBody: what the sender asked for
	body  []byte          // evOffer, evBody: the body (msg is the offer)
	env   gossip.Envelope // evBody: the offer as the receiver accepted it
}

type parkKey struct {
	node   gossip.PeerID
	digest gossip.Digest
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// NewCluster builds the federation at the round config's genesis; every
// node knows every other (as after bootstrap and peer exchange).
func NewCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Nodes < 1 || cfg.Params < 1 {
		return nil, fmt.Errorf("sim: need at least one node and one parameter (nodes=%d params=%d)", cfg.Nodes, cfg.Params)
	}
	if cfg.Round.Genesis.IsZero() {
		cfg.Round.Genesis = time.Unix(0, 0)
	}
	if cfg.Defense == (defense.Config{}) {
		cfg.Defense = defense.ConfigFromFederation(config.Default())
		cfg.Defense.Enabled = cfg.Round.ByzantineDetection
	}
	if cfg.Aggregate.Groups == nil {
		cfg.Aggregate = aggregate.EngineConfigFromConfig(config.Default())
		cfg.Aggregate.MinNodes, cfg.Aggregate.MaxNodes = cfg.Round.MinNodes, cfg.Round.MaxNodes
	}
	c := &Cluster{Cfg: cfg, Now: cfg.Round.Genesis, Net: NewNetwork(), Keys: NewKeyring(), byID: map[gossip.PeerID]*Node{},
		latency: gossip.NewLatencyMatrix(), parked: map[parkKey][]*event{}}
	scopeKeys := map[gossip.Membership][]byte{}
	for _, m := range cfg.Round.Memberships {
		k := sha256.Sum256(fmt.Appendf(nil, "daf-sim-scope/%s/%d", m, cfg.Seed))
		scopeKeys[m] = k[:]
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	for i := 1; i <= cfg.Nodes; i++ {
		id := gossip.PeerID(fmt.Sprintf("n%d", i))
		priv := NewIdentity(id, cfg.Seed)
		c.Keys.Add(id, priv.Public().(ed25519.PublicKey))
		n := &Node{
			ID:        id,
			Codec:     &Codec{Self: id, Priv: priv, Keys: c.Keys, ScopeKeys: scopeKeys},
			Detector:  defense.NewDetector(cfg.Defense, defense.NewMemoryStatsStore()),
			Store:     NewStore(),
			Model:     make([]float32, cfg.Params),
			Target:    make([]float32, cfg.Params),
			Samples:   float64(50 + 10*i),
			TrainTime: cfg.TrainTime,
			Scale:     1,
			rng:       rand.New(rand.NewPCG(cfg.Seed, uint64(i))),
		}
		for j := range n.Target {
			n.Target[j] = float32(rng.NormFloat64())
		}
		c.Net.Join(id)
		c.Nodes = append(c.Nodes, n)
		c.byID[id] = n
	}
	for i, a := range c.Nodes {
		for _, b := range c.Nodes[i+1:] {
			c.latency.Observe(a.ID, b.ID, 2*cfg.Latency)
		}
	}
	for _, n := range c.Nodes {
		if err := c.boot(n); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// start runs the first tick of every node and the first heartbeat; it is
// deferred to the first RunUntil so a scenario can set nodes up first.
func (c *Cluster) start() {
	c.started = true
	for _, n := range c.Nodes {
		if !n.Crashed {
			c.handle(n, n.M.Tick(c.Now))
		}
	}
	c.heartbeat()
	c.push(&event{at: c.nextSlot(), kind: evHeartbeat})
}

// Node returns a node by ID.
func (c *Cluster) Node(id gossip.PeerID) (*Node, error) {
	n, ok := c.byID[id]
	if !ok {
		return nil, fmt.Errorf("sim: no node %q", id)
	}
	return n, nil
}

func (c *Cluster) boot(n *Node) error {
	rc := c.Cfg.Round
	rc.Self = n.ID
	eng, err := aggregate.NewEngine(c.Cfg.Aggregate)
	if err != nil {
		return fmt.Errorf("sim: node %s: %w", n.ID, err)
	}
	n.Engine = eng
	m, err := round.New(rc, round.Deps{
		Codec: n.Codec, Filter: defense.GossipFilter{Detector: n.Detector, OnVerdict: func(src gossip.PeerID, r uint64, v defense.Verdict) {
			if v.Outcome != defense.Accepted {
				c.logf("r%d %s %s", r, n.ID, v)
			}
		}}, Screen: round.SybilScreen{Config: c.Cfg.Defense}, Rand: rand.New(rand.NewPCG(c.Cfg.Seed, uint64(n.gen)<<32|uint64(len(n.ID)))),
		Selector: &gossip.AdaptiveSelector{Self: n.ID, Latency: c.latency},
	}, n.Store.State())
	if err != nil {
		return fmt.Errorf("sim: node %s: %w", n.ID, err)
	}
	n.M = m
	return nil
}

func (c *Cluster) info(n *Node) gossip.PeerInfo {
	idx := strings.TrimPrefix(string(n.ID), "n")
	return gossip.PeerInfo{
		ID:          n.ID,
		Addrs:       []string{"/ip4/10.0." + idx + ".1/tcp/4001"},
		SignKey:     n.Codec.Priv.Public().(ed25519.PublicKey),
		Memberships: c.Cfg.Round.Memberships,
		Contributes: c.Cfg.Round.Contributes,
		Incarnation: uint64(n.gen + 1),
		LastSeen:    c.Now,
	}
}

func (c *Cluster) push(e *event) {
	c.seq++
	e.seq = c.seq
	heap.Push(&c.queue, e)
}

func (c *Cluster) logf(format string, args ...any) {
	c.out = append(c.out, fmt.Sprintf(format, args...))
}

// TakeLog returns and clears the lines logged since the last call.
func (c *Cluster) TakeLog() []string {
	out := c.out
	c.out = nil
	return out
}

// Schedule is the federation's round schedule (every node shares it).
func (c *Cluster) Schedule() round.Schedule {
	return round.Schedule{Genesis: c.Cfg.Round.Genesis, Interval: c.Cfg.Round.Interval, PropagationTimeout: c.Cfg.Round.PropagationTimeout}
}

func (c *Cluster) nextSlot() time.Time {
	s := c.Schedule()
	return s.End(s.RoundAt(c.Now))
}

// heartbeat tells every node about every peer it can reach, as libp2p
// connection events and peer exchange do in the daemon.
func (c *Cluster) heartbeat() {
	for _, a := range c.Nodes {
		if a.Crashed || !c.up(a) {
			continue
		}
		for _, b := range c.Nodes {
			if a == b || b.Crashed || !c.Net.Reachable(a.ID, b.ID) {
				continue
			}
			rd, err := a.M.PeerSeen(c.Now, c.info(b))
			if err != nil {
				c.logf("%s peer record of %s refused: %v", a.ID, b.ID, err)
			}
			c.handle(a, rd)
		}
	}
}

func (c *Cluster) up(n *Node) bool {
	c.Net.mu.RLock()
	defer c.Net.mu.RUnlock()
	return !c.Net.down[n.ID]
}

func (c *Cluster) scheduleTick(n *Node) {
	d := n.M.NextDeadline()
	if n.tickQueued && d.Equal(n.nextTick) {
		return
	}
	n.nextTick, n.tickQueued = d, true
	c.push(&event{at: d, kind: evTick, node: n.ID, gen: n.gen})
}

func (c *Cluster) transfer(size int) time.Duration {
	d := c.Cfg.Latency
	if c.Cfg.Bandwidth > 0 {
		d += time.Duration(float64(size) / c.Cfg.Bandwidth * float64(time.Second))
	}
	return d
}

// handle carries out a Ready the way the daemon does.
func (c *Cluster) handle(n *Node, rd round.Ready) {
	n.Store.Write(rd.Persist)
	for _, s := range rd.Send {
		c.push(&event{at: c.Now.Add(c.transfer(len(s.Offer))), kind: evOffer, node: s.To, from: n.ID, msg: s.Offer, body: s.Body, out: s, gen: n.gen})
	}
	for _, a := range rd.Apply {
		if t := a.Update.Get(modelGroup, modelKey); t != nil && len(t.Data) == len(n.Model) {
			copy(n.Model, t.Data)
		}
		c.logf("r%d %s applied %d updates [%s] at +%s", a.Round, n.ID, len(a.Participants), joinIDs(a.Participants), c.sinceStart(n, a.Round))
	}
	for _, s := range rd.Skipped {
		c.logf("r%d %s skipped %s at +%s: %s", s.Round, n.ID, s.Reason, c.sinceStart(n, s.Round), s.Detail)
	}
	for _, j := range rd.Aggregate {
		ups := make([]*adapter.Update, len(j.Contributions))
		for i, ct := range j.Contributions {
			ups[i] = ct.Update
		}
		var agg *adapter.Update
		res, err := n.Engine.Aggregate(ups)
		if err == nil {
			agg = res.Update
		}
		c.push(&event{at: c.Now, kind: evAggregated, node: n.ID, gen: n.gen, round: j.Round, scope: j.Scope, upd: agg, err: err})
	}
	for _, r := range rd.Train {
		u := TrainUpdate(n.Model, n.Target, n.Samples, n.Scale)
		u.Meta.Round, u.Meta.Node = r, string(n.ID)
		c.push(&event{at: c.Now.Add(n.TrainTime), kind: evTrained, node: n.ID, gen: n.gen, round: r, upd: u})
	}
	c.scheduleTick(n)
}

// RunUntil processes every event up to and including time t.
func (c *Cluster) RunUntil(t time.Time) {
	if !c.started {
		c.start()
	}
	for c.queue.Len() > 0 && !c.queue[0].at.After(t) {
		e := heap.Pop(&c.queue).(*event)
		if e.at.After(c.Now) {
			c.Now = e.at
		}
		c.dispatch(e)
	}
	if t.After(c.Now) {
		c.Now = t
	}
}

func (c *Cluster) dispatch(e *event) {
	if e.kind == evHeartbeat {
		c.heartbeat()
		c.push(&event{at: c.nextSlot(), kind: evHeartbeat})
		return
	}
	n := c.byID[e.node]
	if e.kind == evOffer || e.kind == evBody {
		c.deliver(n, e)
		return
	}
	if e.kind == evRefused {
		if !n.Crashed && e.gen == n.gen {
			c.handle(n, n.M.SendFailed(c.Now, e.out, e.err))
		}
		return
	}
	if n.Crashed || e.gen != n.gen || !c.up(n) {
		return
	}
	switch e.kind {
	case evTick:
		if !e.at.Equal(n.nextTick) {
			return
		}
		n.tickQueued = false
		c.handle(n, n.M.Tick(c.Now))
	case evTrained:
		scope := c.Cfg.Round.Memberships[0]
		rd, err := n.M.LocalUpdateReady(c.Now, e.round, round.LocalUpdate{Scope: scope, Update: e.upd})
		if err != nil {
			c.logf("r%d %s local update dropped: %v", e.round, n.ID, err)
		}
		c.handle(n, rd)
		if n.ForgeAs != "" {
			c.forge(n, e.round, scope)
		}
	case evAggregated:
		rd, err := n.M.AggregateDone(c.Now, e.round, e.scope, e.upd, e.err)
		if err != nil {
			c.logf("r%d %s aggregate dropped: %v", e.round, n.ID, err)
		}
		c.handle(n, rd)
	}
}

// forge sends every reachable peer a garbage update claiming to come from
// n.ForgeAs, signed with n's own key.
func (c *Cluster) forge(n *Node, r uint64, scope gossip.Membership) {
	fake := *n.Codec
	fake.SignAs = n.ForgeAs
	garbage := adapter.New()
	t := adapter.NewTensor(len(n.Model))
	for i := range t.Data {
		t.Data[i] = float32(n.rng.NormFloat64() * 1e3)
	}
	garbage.Set(modelGroup, modelKey, t)
	msg, err := fake.Pack(r, scope, c.Cfg.Round.MaxHops, garbage)
	if err == nil {
		var offer, body []byte
		offer, body, err = fake.Split(msg)
		for _, p := range c.Nodes {
			if err == nil && p != n && c.Net.Reachable(n.ID, p.ID) {
				c.push(&event{at: c.Now.Add(c.transfer(len(offer))), kind: evOffer, node: p.ID, from: n.ID, msg: offer, body: body, gen: n.gen})
			}
		}
	}
	if err != nil {
		c.logf("r%d %s forge failed: %v", r, n.ID, err)
	}
}

// deliver carries one step of the two-step delta protocol to node n, as a
// libp2p stream does: an offer the receiver rules on before the body
// travels; the body one more latency (the "send it" answer) plus its
// transfer time later, if asked for. A refusal reaches the sender one
// latency later. A step that cannot be delivered fails the send (the
// sender learns it, as from Transport.SendOffered) and, for a body, ends
// the receiver's transfer.
func (c *Cluster) deliver(n *Node, e *event) {
	sender := c.byID[e.from]
	alive := !sender.Crashed && sender.gen == e.gen
	var failed bool
	switch {
	case n.Crashed || !c.up(n):
		failed = true
		alive = alive && c.up(sender)
	case !c.Net.Reachable(e.from, e.node), e.kind == evBody && (!alive || !c.up(sender)):
		failed = true
	}
	if failed {
		if alive && e.out.Offer != nil {
			out := e.out
			out.To = e.node
			c.handle(sender, sender.M.SendFailed(c.Now, out, ErrUnreachable))
		}
		if e.kind == evBody {
			if !n.Crashed {
				c.handle(n, n.M.DeltaAbandoned(c.Now, e.from, e.env.Digest))
			}
			c.unpark(e.node, e.env.Digest)
		}
		return
	}
	c.Net.mu.Lock()
	size := len(e.msg)
	if e.kind == evBody {
		size = len(e.body)
	}
	c.Net.sent[e.from] += uint64(size)
	c.Net.received[e.node] += uint64(size)
	c.Net.mu.Unlock()
	if e.kind == evBody {
		c.delivered.bodies++
		in := gossip.DecodeBody(n.Codec, e.from, e.env, e.body)
		rd, err := n.M.DeltaReceived(c.Now, e.from, nil, &in)
		c.handle(n, rd)
		c.unpark(e.node, e.env.Digest)
		c.refused(e, err)
		return
	}
	c.delivered.offers++
	rd, env, err := n.M.DeltaOffered(c.Now, e.from, e.msg)
	c.handle(n, rd)
	switch {
	case err == nil:
		body := *e
		body.kind, body.env = evBody, env
		body.at = c.Now.Add(c.Cfg.Latency + c.transfer(len(e.body)))
		c.push(&body)
	case errors.Is(err, gossip.ErrInFlight):
		k := parkKey{e.node, env.Digest}
		c.parked[k] = append(c.parked[k], e)
		c.delivered.parked++
	default:
		c.refused(e, err)
	}
}

// refused sends a receiver's refusal back to the sender, one latency
// later, as its label and text (what a stream carries).
func (c *Cluster) refused(e *event, err error) {
	if err == nil || e.out.Offer == nil {
		return
	}
	c.push(&event{at: c.Now.Add(c.Cfg.Latency), kind: evRefused, node: e.from, gen: e.gen, out: e.out,
		err: gossip.ParseRefusal(gossip.RefusalReason(err))})
}

// unpark offers again, now, what waited for a transfer to node that ended.
func (c *Cluster) unpark(node gossip.PeerID, d gossip.Digest) {
	k := parkKey{node, d}
	for _, e := range c.parked[k] {
		again := *e
		again.at = c.Now
		c.push(&again)
	}
	delete(c.parked, k)
}

// SetDown takes a node off the network (a dropout: its state is kept) or
// brings it back.
func (c *Cluster) SetDown(id gossip.PeerID, down bool) error {
	n, err := c.Node(id)
	if err != nil {
		return err
	}
	c.Net.SetDown(id, down)
	if !down && !n.Crashed {
		n.tickQueued = false
		c.handle(n, n.M.Tick(c.Now))
		c.heartbeat()
	}
	return nil
}

// Crash kills a node: its machine and everything not persisted are lost.
func (c *Cluster) Crash(id gossip.PeerID) error {
	n, err := c.Node(id)
	if err != nil {
		return err
	}
	n.Crashed, n.M = true, nil
	n.gen++
	c.Net.SetDown(id, true)
	return nil
}

// Restart boots a crashed node from its store, as the daemon does after
// SIGKILL.
func (c *Cluster) Restart(id gossip.PeerID) error {
	n, err := c.Node(id)
	if err != nil {
		return err
	}
	if !n.Crashed {
		return fmt.Errorf("sim: node %s is running", id)
	}
	n.gen++
	if err := c.boot(n); err != nil {
		return err
	}
	n.Crashed, n.tickQueued = false, false
	c.Net.SetDown(id, false)
	c.handle(n, n.M.Tick(c.Now))
	c.heartbeat()
	return nil
}

// MeanTarget is the sample-weighted mean of the nodes' targets: where
// federated averaging drives the models.
func (c *Cluster) MeanTarget() []float32 {
	out := make([]float32, c.Cfg.Params)
	var total float64
	for _, n := range c.Nodes {
		total += n.Samples
	}
	for _, n := range c.Nodes {
		w := float32(n.Samples / total)
		for i, v := range n.Target {
			out[i] += w * v
		}
	}
	return out
}

// Spread is the largest distance between two nodes' models.
func (c *Cluster) Spread(ids ...gossip.PeerID) float64 {
	var s float64
	for i, a := range c.Nodes {
		for _, b := range c.Nodes[i+1:] {
			if len(ids) > 0 && (!slices.Contains(ids, a.ID) || !slices.Contains(ids, b.ID)) {
				continue
			}
			s = max(s, distance(a.Model, b.Model))
		}
	}
	return s
}

// sinceStart is how far into round r's slot the cluster clock is.
func (c *Cluster) sinceStart(n *Node, r uint64) time.Duration {
	return c.Now.Sub(c.Schedule().Start(r)).Round(time.Millisecond)
}

func joinIDs(ids []gossip.PeerID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = string(id)
	}
	return strings.Join(s, " ")
}
