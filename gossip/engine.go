package gossip

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/privacy"
)

// EngineConfig holds the gossip keys of federation.toml as they apply to one node.
type EngineConfig struct {
	Self        PeerID
	Memberships []Membership  // (tier, scope) pairs this node belongs to
	FanOut      int           // [federation.gossip] fan_out: floor of the fan-out (see FanOut)
	MaxHops     int           // [federation.gossip] max_hops: links a release may travel
	PeerTimeout time.Duration // [federation] peer_timeout_secs: silent peers are not selected
	// ByzantineDetection is [federation.security] byzantine_detection: when
	// false, the Filter is not consulted.
	ByzantineDetection bool
}

// Validate reports every problem at once.
func (c EngineConfig) Validate() error {
	var errs []error
	if c.Self == "" {
		errs = append(errs, errors.New("gossip: Self is empty"))
	}
	if c.FanOut < 0 {
		errs = append(errs, fmt.Errorf("gossip: fan_out = %d, want >= 0", c.FanOut))
	}
	if c.MaxHops < 1 {
		errs = append(errs, fmt.Errorf("gossip: max_hops = %d, want >= 1", c.MaxHops))
	}
	if c.PeerTimeout < 0 {
		errs = append(errs, fmt.Errorf("gossip: peer_timeout = %v, want >= 0", c.PeerTimeout))
	}
	return errors.Join(errs...)
}

// Outbound is one message for the caller to send with Transport.Send.
type Outbound struct {
	To     PeerID
	Proto  string
	Msg    []byte
	Source PeerID // whose release it carries
	Round  uint64
	Scope  Membership
	Digest Digest
}

// Inbound is a received delta that passed verification, opening and the
// Byzantine filter: the round machine decides whether its round takes it.
type Inbound struct {
	From   PeerID // the peer on the connection
	Env    Envelope
	Update *adapter.Update
	Msg    []byte
}

// Window is the range of rounds [Lo, Hi] the node accepts deltas for.
type Window struct{ Lo, Hi uint64 }

// Engine is the seed's GossipProtocol without the network: it decides what
// to send and whether to take what was received, and keeps the peer table,
// de-duplication state and counters. It is driven by one goroutine (the
// round machine) and performs no I/O.
type Engine struct {
	cfg      EngineConfig
	table    *PeerTable
	codec    Codec
	filter   Filter
	selector Selector
	rng      *rand.Rand
	seen     *seenSet
	counters Counters
	// unreached: peers a send failed to on the network since they were
	// last seen; they are owed an offer when they reappear.
	unreached map[PeerID]bool
}

// NewEngine wires an engine. filter may be nil (no Byzantine check);
// selector nil means ReputationSelector (the seed's select_peers).
func NewEngine(cfg EngineConfig, table *PeerTable, codec Codec, filter Filter, selector Selector, rng *rand.Rand) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if table == nil || codec == nil || rng == nil {
		return nil, errors.New("gossip: NewEngine needs a peer table, a codec and a seeded rng")
	}
	if selector == nil {
		selector = ReputationSelector{}
	}
	return &Engine{cfg: cfg, table: table, codec: codec, filter: filter, selector: selector, rng: rng,
		seen: newSeenSet(), counters: newCounters(), unreached: map[PeerID]bool{}}, nil
}

// Table is the engine's peer table.
func (e *Engine) Table() *PeerTable { return e.table }

// Counters returns a copy of the running totals.
func (e *Engine) Counters() Counters { return e.counters.Clone() }

// Config returns the engine's configuration.
func (e *Engine) Config() EngineConfig { return e.cfg }

func (e *Engine) member(m Membership) bool {
	return m.Tier != privacy.Private && slices.Contains(e.cfg.Memberships, m)
}

// Release is a packed own update: kept by the caller to offer it to
// peers that turn up later in the round.
type Release struct {
	Env Envelope
	Msg []byte
}

// Publish packs the node's own update for round and scope and returns the
// release and the copies to send to FanOut peers among the scope's live
// members. Private-tier updates never leave the node.
func (e *Engine) Publish(now time.Time, round uint64, scope Membership, u *adapter.Update) (Release, []Outbound, error) {
	if !e.member(scope) {
		return Release{}, nil, fmt.Errorf("%w: node %s cannot release to %s", ErrNotMember, e.cfg.Self, scope)
	}
	msg, err := e.codec.Pack(round, scope, e.cfg.MaxHops, u)
	if err != nil {
		return Release{}, nil, fmt.Errorf("gossip: pack round %d %s: %w", round, scope, err)
	}
	env, err := e.codec.Unpack(msg)
	if err != nil {
		return Release{}, nil, fmt.Errorf("gossip: own envelope for round %d %s does not verify: %w", round, scope, err)
	}
	e.seen.record(env)
	return Release{Env: env, Msg: msg}, e.spread(now, env, msg), nil
}

// Offer sends a release to one peer if the peer is a live member of its
// scope and not known to hold it: used when a peer appears mid-round.
func (e *Engine) Offer(now time.Time, rel Release, to PeerID) []Outbound {
	p, ok := e.table.Get(to)
	if !ok || !p.MemberOf(rel.Env.Scope) || e.seen.holds(rel.Env.Digest, to) || !e.seen.has(rel.Env.Digest) {
		return nil
	}
	if e.cfg.PeerTimeout > 0 && now.Sub(p.LastSeen) > e.cfg.PeerTimeout {
		return nil
	}
	e.seen.addHolder(rel.Env.Digest, to)
	msg := e.withHints(rel.Env.Digest, rel.Msg, []PeerID{to})
	e.counters.DeltasSent++
	e.counters.BytesSent += uint64(len(msg))
	return []Outbound{{To: to, Proto: ProtoDelta, Msg: msg, Source: rel.Env.Source, Round: rel.Env.Round, Scope: rel.Env.Scope, Digest: rel.Env.Digest}}
}

// withHints writes the holder list into msg when the codec carries one:
// the targets of this send first, then the other known holders.
func (e *Engine) withHints(d Digest, msg []byte, targets []PeerID) []byte {
	hh, ok := e.codec.(HolderHints)
	if !ok {
		return msg
	}
	list := append([]PeerID(nil), targets...)
	for _, h := range e.seen.holderList(d) {
		if len(list) >= MaxHints {
			break
		}
		if !slices.Contains(targets, h) {
			list = append(list, h)
		}
	}
	if len(list) > MaxHints {
		list = list[:MaxHints]
	}
	out, err := hh.WithHints(msg, list)
	if err != nil {
		return msg // the hint only saves bandwidth; the delta itself is fine
	}
	return out
}

// learnHints marks the peers a message's holder list names.
func (e *Engine) learnHints(d Digest, msg []byte) {
	hh, ok := e.codec.(HolderHints)
	if !ok {
		return
	}
	hints, err := hh.Hints(msg)
	if err != nil {
		return
	}
	for i, h := range hints {
		if i >= MaxHints {
			break
		}
		e.seen.addHolder(d, h)
	}
}

// spread sends msg to fresh peers of the scope that are not known to hold it.
func (e *Engine) spread(now time.Time, env Envelope, msg []byte) []Outbound {
	members := e.table.LiveMembers(env.Scope, now, e.cfg.PeerTimeout)
	count := FanOut(len(members), e.cfg.FanOut)
	fresh := members[:0]
	for _, p := range members {
		if !e.seen.holds(env.Digest, p.ID) {
			fresh = append(fresh, p)
		}
	}
	chosen := e.selector.Select(fresh, count, now, e.rng)
	targets := make([]PeerID, len(chosen))
	for i, p := range chosen {
		targets[i] = p.ID
	}
	if len(targets) > 0 {
		msg = e.withHints(env.Digest, msg, targets)
	}
	out := make([]Outbound, 0, len(chosen))
	for _, p := range chosen {
		e.seen.addHolder(env.Digest, p.ID)
		out = append(out, Outbound{To: p.ID, Proto: ProtoDelta, Msg: msg, Source: env.Source, Round: env.Round, Scope: env.Scope, Digest: env.Digest})
		e.counters.DeltasSent++
		e.counters.BytesSent += uint64(len(msg))
	}
	return out
}

// Decode unpacks and opens a delta. It touches no engine state, so a daemon
// may run it on several cores and pass the result to Receive.
func Decode(codec Codec, from PeerID, msg []byte) (Inbound, error) {
	env, err := codec.Unpack(msg)
	if err != nil {
		return Inbound{From: from, Msg: msg}, err
	}
	u, err := codec.Open(env)
	if err != nil {
		return Inbound{From: from, Env: env, Msg: msg}, err
	}
	return Inbound{From: from, Env: env, Update: u, Msg: msg}, nil
}

// Receive runs the seed's handle_delta checks on a message from the peer
// on the connection: signature, scope membership (ours, the sender's and
// the source's as far as we know them), hop bound, round window,
// de-duplication, equivocation, opening, Byzantine filter. pre, if not nil,
// is the result of Decode done by the caller. A rejection is counted, and
// charged to the sender when it is the sender's fault; an Inbound returned
// without error must then be passed to Admit.
func (e *Engine) Receive(now time.Time, from PeerID, msg []byte, pre *Inbound, w Window) (Inbound, error) {
	e.counters.BytesReceived += uint64(len(msg))
	e.table.Seen(from, now)
	in, err := e.receive(from, msg, pre, w)
	if err != nil {
		e.Reject(from, in.Env.Source, err)
		return in, fmt.Errorf("delta from peer %s (source %q, round %d): %w", from, in.Env.Source, in.Env.Round, err)
	}
	return in, nil
}

func (e *Engine) receive(from PeerID, msg []byte, pre *Inbound, w Window) (Inbound, error) {
	var in Inbound
	var openErr error
	var verifiedKey *ReleaseKey
	if pre != nil && pre.Env.Size > 0 {
		in = *pre
		in.From = from
		if in.Update == nil {
			openErr = fmt.Errorf("%w: payload did not open", ErrSeal)
		}
	} else {
		if kr, ok := e.codec.(KeyReader); ok {
			key, err := kr.Key(msg)
			if err != nil {
				return Inbound{From: from, Msg: msg}, err
			}
			if d, ok := e.seen.byKey[key]; ok && e.seen.has(d) {
				e.seen.addHolder(d, from)
				e.learnHints(d, msg)
				return Inbound{From: from, Msg: msg, Env: Envelope{Source: key.Source, Round: key.Round, Scope: key.Scope, Digest: d}}, ErrDuplicate
			}
			verifiedKey = &key
		}
		env, err := e.codec.Unpack(msg)
		if err != nil {
			return Inbound{From: from, Msg: msg}, err
		}
		in = Inbound{From: from, Env: env, Msg: msg}
	}
	env := in.Env
	if !e.member(env.Scope) {
		return in, fmt.Errorf("%w: this node is not in %s", ErrNotMember, env.Scope)
	}
	if p, ok := e.table.Get(from); ok && p.Memberships != nil && !p.MemberOf(env.Scope) && from != env.Source {
		return in, fmt.Errorf("%w: relaying peer %s is not in %s", ErrNotMember, from, env.Scope)
	}
	if p, ok := e.table.Get(env.Source); ok && p.Memberships != nil && !p.MemberOf(env.Scope) {
		return in, fmt.Errorf("%w: source %s is not in %s", ErrNotMember, env.Source, env.Scope)
	}
	if env.HopsLeft < 0 || env.HopsLeft > e.cfg.MaxHops {
		return in, fmt.Errorf("%w: %d hops left, max_hops %d", ErrHops, env.HopsLeft, e.cfg.MaxHops)
	}
	if env.Round < w.Lo || env.Round > w.Hi {
		return in, fmt.Errorf("%w: round %d, accepting %d..%d", ErrReplay, env.Round, w.Lo, w.Hi)
	}
	if verifiedKey != nil {
		e.seen.byKey[*verifiedKey] = env.Digest
	}
	if e.seen.has(env.Digest) {
		e.seen.addHolder(env.Digest, from)
		e.learnHints(env.Digest, msg)
		return in, ErrDuplicate
	}
	if e.seen.equivocates(env) {
		return in, fmt.Errorf("%w: %s round %d", ErrEquivocation, env.Source, env.Round)
	}
	// From here on the release is genuine (signed by its source): remember it
	// so that further copies cost no more than a duplicate check.
	e.seen.record(env)
	e.seen.addHolder(env.Digest, from)
	e.learnHints(env.Digest, msg)
	if pre == nil || pre.Env.Size == 0 {
		in.Update, openErr = e.codec.Open(env)
	}
	if openErr != nil {
		return in, openErr
	}
	if e.cfg.ByzantineDetection && e.filter != nil {
		if err := e.filter.Check(env.Source, env.Round, env.Scope, in.Update); err != nil {
			if !errors.Is(err, ErrByzantine) {
				err = fmt.Errorf("%w: %w", ErrByzantine, err)
			}
			return in, err
		}
	}
	return in, nil
}

// Reject counts a refused delta under its result label and lowers the
// sending peer's reputation when the fault is the sender's.
func (e *Engine) Reject(from, source PeerID, err error) {
	e.counters.Received[ResultOf(err)]++
	if senderAtFault(err, from, source) {
		e.table.Adjust(from, -PenaltyBad)
	}
}

// Admit settles a delta that Receive let through. verdict is the round's
// decision: nil (stored for aggregation: the sender gains RewardAccepted),
// or ErrLate / ErrRoundFull (valid but not aggregated here). Valid deltas
// are relayed with one hop less while hops remain, to peers not known to
// hold them.
func (e *Engine) Admit(now time.Time, in Inbound, verdict error) ([]Outbound, error) {
	e.counters.Received[ResultOf(verdict)]++
	if verdict == nil {
		e.table.Adjust(in.From, RewardAccepted)
	}
	hops := in.Env.HopsLeft - 1
	if hops < 1 {
		return nil, nil
	}
	msg, err := e.codec.WithHops(in.Msg, hops)
	if err != nil {
		return nil, fmt.Errorf("gossip: relay of %s round %d: %w", in.Env.Source, in.Env.Round, err)
	}
	env := in.Env
	env.HopsLeft = hops
	return e.spread(now, env, msg), nil
}

// SendFailed takes back the assumption that a peer holds a release after a
// send to it failed on the network, so the release is offered again when
// the peer reappears. A refusal (ErrRefused) keeps the mark: the peer has
// it or will not take it.
func (e *Engine) SendFailed(out Outbound, err error) {
	e.counters.SendFailures++
	if errors.Is(err, ErrRefused) {
		return
	}
	if en, ok := e.seen.byDigest[out.Digest]; ok {
		delete(en.holders, out.To)
	}
	e.unreached[out.To] = true
}

// TakeUnreached reports whether a send to the peer failed on the network
// since the last call for it, and clears the mark.
func (e *Engine) TakeUnreached(id PeerID) bool {
	owed := e.unreached[id]
	delete(e.unreached, id)
	return owed
}

// PeerRestarted forgets which releases a peer was believed to hold: after
// a restart it holds none, and may be offered them again.
func (e *Engine) PeerRestarted(id PeerID) {
	for _, en := range e.seen.byDigest {
		delete(en.holders, id)
	}
}

// Holders lists the peers known to hold a release (for tests and logs).
func (e *Engine) Holders(d Digest) []PeerID { return e.seen.holderList(d) }

// ForgetBefore drops de-duplication state for rounds before round; the
// round window then rejects any copy that still arrives.
func (e *Engine) ForgetBefore(round uint64) { e.seen.forgetBefore(round) }
