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

// Outbound is one release for the caller to send with
// Transport.SendOffered: Offer first, Body if the peer asks for it.
type Outbound struct {
	To     PeerID
	Proto  string
	Offer  []byte
	Body   []byte
	Source PeerID // whose release it carries
	Round  uint64
	Scope  Membership
	Digest Digest
}

// Inbound is a received delta: from Decode or DecodeBody (possibly with
// Err), and once Receive let it through, one that passed verification,
// opening and the Byzantine filter, for the round machine to rule on.
type Inbound struct {
	From   PeerID // the peer on the connection
	Env    Envelope
	Update *adapter.Update
	// Err is why Update is nil: the payload did not open or decode, or
	// (ErrBodyMismatch) the body was not the one its offer announced.
	Err error
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
	// inflight: releases whose body a peer is sending us right now (we
	// answered its offer "send it"); other offers of them wait.
	inflight map[Digest]transfer
}

// transfer is a body being received.
type transfer struct {
	from  PeerID
	round uint64
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
		seen: newSeenSet(), counters: newCounters(), unreached: map[PeerID]bool{}, inflight: map[Digest]transfer{}}, nil
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
	return Release{Env: env}, e.spread(now, env), nil
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
	offer := e.withHints(rel.Env.Digest, rel.Env.Offer, []PeerID{to})
	e.counters.DeltasSent++
	e.counters.BytesSent += uint64(len(offer) + len(rel.Env.Body))
	return []Outbound{{To: to, Proto: ProtoDelta, Offer: offer, Body: rel.Env.Body, Source: rel.Env.Source, Round: rel.Env.Round, Scope: rel.Env.Scope, Digest: rel.Env.Digest}}
}

// withHints writes the holder list into an offer when the codec carries
// one: the targets of this send first, then the other known holders.
func (e *Engine) withHints(d Digest, offer []byte, targets []PeerID) []byte {
	hh, ok := e.codec.(HolderHints)
	if !ok {
		return offer
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
	out, err := hh.WithHints(offer, list)
	if err != nil {
		return offer // the hint only saves bandwidth; the delta itself is fine
	}
	return out
}

// learnHints marks the peers an offer's holder list names.
func (e *Engine) learnHints(d Digest, offer []byte) {
	hh, ok := e.codec.(HolderHints)
	if !ok {
		return
	}
	hints, err := hh.Hints(offer)
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

// spread offers env to fresh peers of the scope that are not known to hold it.
func (e *Engine) spread(now time.Time, env Envelope) []Outbound {
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
	offer := env.Offer
	if len(targets) > 0 {
		offer = e.withHints(env.Digest, offer, targets)
	}
	out := make([]Outbound, 0, len(chosen))
	for _, p := range chosen {
		e.seen.addHolder(env.Digest, p.ID)
		out = append(out, Outbound{To: p.ID, Proto: ProtoDelta, Offer: offer, Body: env.Body, Source: env.Source, Round: env.Round, Scope: env.Scope, Digest: env.Digest})
		e.counters.DeltasSent++
		e.counters.BytesSent += uint64(len(offer) + len(env.Body))
	}
	return out
}

// Decode unpacks and opens a whole message. It touches no engine state,
// so a daemon may run it on several cores and pass the result to Receive.
// An envelope that does not verify comes back with a zero Env (Receive
// then classifies the failure); one that verifies but does not open has
// its Env and Err.
func Decode(codec Codec, from PeerID, msg []byte) (Inbound, error) {
	env, err := codec.Unpack(msg)
	if err != nil {
		return Inbound{From: from}, err
	}
	u, err := codec.Open(env)
	return Inbound{From: from, Env: env, Update: u, Err: err}, err
}

// DecodeBody joins a body to the envelope of its offer (from
// Engine.Offered) and opens it, off the engine's goroutine like Decode.
// The result always carries env, for Receive to rule on.
func DecodeBody(codec Codec, from PeerID, env Envelope, body []byte) Inbound {
	full, err := codec.WithBody(env, body)
	if err != nil {
		return Inbound{From: from, Env: env, Err: fmt.Errorf("%w: %w", ErrBodyMismatch, err)}
	}
	u, err := codec.Open(full)
	return Inbound{From: from, Env: full, Update: u, Err: err}
}

// Offered rules on the first frame of a delta from the peer on the
// connection, before its body is sent: the checks of Receive that need no
// payload (signature, scope membership, hop bound, round window,
// de-duplication, equivocation). nil means "send the body": the release is
// new here, and the returned envelope goes with the body to DecodeBody,
// then Receive. ErrDuplicate means this node holds it; the sender is now
// known to hold it too. ErrInFlight means another peer is sending the same
// body right now: the caller asks again once that transfer ends (Receive
// or OfferAbandoned for its digest, the returned envelope's), and the
// sender's body is never needed if it succeeds. Other errors are refusals,
// counted and charged like Receive's.
func (e *Engine) Offered(now time.Time, from PeerID, offer []byte, w Window) (Envelope, error) {
	e.counters.BytesReceived += uint64(len(offer))
	e.table.Seen(from, now)
	env, err := e.offered(from, offer, w)
	if err != nil && !errors.Is(err, ErrInFlight) {
		e.Reject(from, env.Source, err)
		return env, fmt.Errorf("offer from peer %s (source %q, round %d): %w", from, env.Source, env.Round, err)
	}
	return env, err
}

func (e *Engine) offered(from PeerID, offer []byte, w Window) (Envelope, error) {
	var key *ReleaseKey
	if kr, ok := e.codec.(KeyReader); ok {
		k, err := kr.Key(offer)
		if err != nil {
			return Envelope{}, err
		}
		if d, ok := e.seen.byKey[k]; ok && e.seen.has(d) {
			e.seen.addHolder(d, from)
			e.learnHints(d, offer)
			return Envelope{Source: k.Source, Round: k.Round, Scope: k.Scope, Digest: d}, ErrDuplicate
		}
		key = &k
	}
	env, err := e.codec.UnpackOffer(offer)
	if err != nil {
		return Envelope{}, err
	}
	if err := e.check(from, env, w); err != nil {
		return env, err
	}
	if key != nil {
		e.seen.byKey[*key] = env.Digest
	}
	if e.seen.has(env.Digest) {
		e.seen.addHolder(env.Digest, from)
		e.learnHints(env.Digest, offer)
		return env, ErrDuplicate
	}
	if e.seen.equivocates(env) {
		return env, fmt.Errorf("%w: %s round %d", ErrEquivocation, env.Source, env.Round)
	}
	if t, ok := e.inflight[env.Digest]; ok && t.from != from {
		return env, ErrInFlight
	}
	e.inflight[env.Digest] = transfer{from: from, round: env.Round}
	return env, nil
}

// OfferAbandoned ends a transfer Offered started whose body will not come
// (the sender went away, the body could not be read): the next offer of
// the release is answered "send it" again.
func (e *Engine) OfferAbandoned(from PeerID, d Digest) {
	if t, ok := e.inflight[d]; ok && t.from == from {
		delete(e.inflight, d)
	}
}

// check runs the checks of a verified envelope that need no payload.
func (e *Engine) check(from PeerID, env Envelope, w Window) error {
	if !e.member(env.Scope) {
		return fmt.Errorf("%w: this node is not in %s", ErrNotMember, env.Scope)
	}
	if p, ok := e.table.Get(from); ok && p.Memberships != nil && !p.MemberOf(env.Scope) && from != env.Source {
		return fmt.Errorf("%w: relaying peer %s is not in %s", ErrNotMember, from, env.Scope)
	}
	if p, ok := e.table.Get(env.Source); ok && p.Memberships != nil && !p.MemberOf(env.Scope) {
		return fmt.Errorf("%w: source %s is not in %s", ErrNotMember, env.Source, env.Scope)
	}
	if env.HopsLeft < 0 || env.HopsLeft > e.cfg.MaxHops {
		return fmt.Errorf("%w: %d hops left, max_hops %d", ErrHops, env.HopsLeft, e.cfg.MaxHops)
	}
	if env.Round < w.Lo || env.Round > w.Hi {
		return fmt.Errorf("%w: round %d, accepting %d..%d", ErrReplay, env.Round, w.Lo, w.Hi)
	}
	return nil
}

// Receive runs the seed's handle_delta checks on a delta from the peer on
// the connection: signature, scope membership (ours, the sender's and the
// source's as far as we know them), hop bound, round window,
// de-duplication, equivocation, opening, Byzantine filter. msg is a whole
// message; or pre, if not nil, is the result of Decode or DecodeBody done
// by the caller (msg is then not needed). A body from DecodeBody ends the
// transfer its offer started, whatever the verdict. A rejection is
// counted, and charged to the sender when it is the sender's fault; an
// Inbound returned without error must then be passed to Admit.
func (e *Engine) Receive(now time.Time, from PeerID, msg []byte, pre *Inbound, w Window) (Inbound, error) {
	if pre != nil && msg == nil {
		e.counters.BytesReceived += uint64(len(pre.Env.Body))
	} else {
		e.counters.BytesReceived += uint64(len(msg))
	}
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
	if pre != nil && pre.Env.Size > 0 {
		in = *pre
		in.From = from
		e.OfferAbandoned(from, in.Env.Digest) // the transfer is over, whatever follows
		if errors.Is(in.Err, ErrBodyMismatch) {
			// Not the source's release: nothing about it is recorded, and
			// the next offer of it is taken.
			return in, in.Err
		}
		if in.Update == nil && in.Err == nil {
			in.Err = fmt.Errorf("%w: payload did not open", ErrSeal)
		}
	} else {
		if kr, ok := e.codec.(KeyReader); ok {
			key, err := kr.Key(msg)
			if err != nil {
				return Inbound{From: from}, err
			}
			if d, ok := e.seen.byKey[key]; ok && e.seen.has(d) {
				e.seen.addHolder(d, from)
				e.learnHints(d, msg)
				return Inbound{From: from, Env: Envelope{Source: key.Source, Round: key.Round, Scope: key.Scope, Digest: d}}, ErrDuplicate
			}
		}
		env, err := e.codec.Unpack(msg)
		if err != nil {
			return Inbound{From: from}, err
		}
		in = Inbound{From: from, Env: env}
	}
	env := in.Env
	if err := e.check(from, env, w); err != nil {
		return in, err
	}
	if kr, ok := e.codec.(KeyReader); ok {
		if key, err := kr.Key(env.Offer); err == nil {
			e.seen.byKey[key] = env.Digest
		}
	}
	if e.seen.has(env.Digest) {
		e.seen.addHolder(env.Digest, from)
		e.learnHints(env.Digest, env.Offer)
		return in, ErrDuplicate
	}
	if e.seen.equivocates(env) {
		return in, fmt.Errorf("%w: %s round %d", ErrEquivocation, env.Source, env.Round)
	}
	// From here on the release is genuine (signed by its source): remember it
	// so that further copies cost no more than a duplicate check.
	e.seen.record(env)
	e.seen.addHolder(env.Digest, from)
	e.learnHints(env.Digest, env.Offer)
	if pre == nil || pre.Env.Size == 0 {
		in.Update, in.Err = e.codec.Open(env)
	}
	if in.Err != nil {
		return in, in.Err
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
	offer, err := e.codec.OfferWithHops(in.Env.Offer, hops)
	if err != nil {
		return nil, fmt.Errorf("gossip: relay of %s round %d: %w", in.Env.Source, in.Env.Round, err)
	}
	env := in.Env
	env.HopsLeft, env.Offer = hops, offer
	return e.spread(now, env), nil
}

// SendFailed handles an Outbound that was not taken. A network failure
// takes back the assumption that the peer holds the release, so it is
// offered again when the peer reappears. A refusal (ErrRefused) keeps the
// mark: the peer has it or will not take it. An offer refused because the
// peer already holds the release delivered nothing, so the release is
// offered to one more live member not known to hold it, as many times per
// release as the fan-out: a release keeps spreading where gossip had sent
// it to nodes that had it already, which otherwise now and then leaves a
// node without it, and once nearly every node holds it a node stops after
// a fan-out's worth of declined offers instead of asking every peer.
func (e *Engine) SendFailed(now time.Time, out Outbound, err error) []Outbound {
	var r *Refusal
	switch {
	case errors.As(err, &r) && r.Label == ResultDuplicate:
		e.counters.Declined++
		return e.replace(now, out)
	case errors.Is(err, ErrRefused):
		e.counters.SendFailures++
		return nil
	}
	e.counters.SendFailures++
	if en, ok := e.seen.byDigest[out.Digest]; ok {
		delete(en.holders, out.To)
	}
	e.unreached[out.To] = true
	return nil
}

// replace offers out's release, as it was offered, to one live member of
// its scope not known to hold it.
func (e *Engine) replace(now time.Time, out Outbound) []Outbound {
	en, ok := e.seen.byDigest[out.Digest]
	if !ok {
		return nil // its round is over here
	}
	members := e.table.LiveMembers(out.Scope, now, e.cfg.PeerTimeout)
	if en.replaced >= FanOut(len(members), e.cfg.FanOut) {
		return nil
	}
	var fresh []PeerInfo
	for _, p := range members {
		if !e.seen.holds(out.Digest, p.ID) {
			fresh = append(fresh, p)
		}
	}
	chosen := e.selector.Select(fresh, 1, now, e.rng)
	if len(chosen) == 0 {
		return nil
	}
	to := chosen[0].ID
	en.replaced++
	e.seen.addHolder(out.Digest, to)
	next := out
	next.To = to
	next.Offer = e.withHints(out.Digest, out.Offer, []PeerID{to})
	e.counters.DeltasSent++
	e.counters.BytesSent += uint64(len(next.Offer) + len(next.Body))
	return []Outbound{next}
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
func (e *Engine) ForgetBefore(round uint64) {
	e.seen.forgetBefore(round)
	for d, t := range e.inflight {
		if t.round < round {
			delete(e.inflight, d)
		}
	}
}
