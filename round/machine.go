package round

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/dafnet/daf/adapter"
	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/privacy"
)

// Screen runs over a round's collected updates before aggregation (Sybil
// detection: defense's clustering in the product) when byzantine_detection
// is on. It returns the updates to keep; every one it drops is counted.
type Screen interface {
	Screen(round uint64, scope gossip.Membership, in []Contribution) (kept []Contribution, err error)
}

// Deps are the machine's pure collaborators.
type Deps struct {
	Codec    gossip.Codec
	Filter   gossip.Filter   // nil: no Byzantine filter
	Screen   Screen          // nil: no Sybil screen
	Selector gossip.Selector // nil: the seed's reputation selector
	Rand     *rand.Rand      // seeded; peer selection jitter
}

// ErrStale marks an event about a round the machine has left, or a local
// update that came after its round's Collect closed.
var ErrStale = errors.New("too late for its round")

type scopeState int

const (
	collecting scopeState = iota
	aggregating
	settled
)

type scopeRound struct {
	state   scopeState
	updates map[gossip.PeerID]*adapter.Update
	// heard: sources whose genuine (signed) release for the round arrived
	// but was refused (Byzantine, equivocation): not waited for any longer.
	heard   map[gossip.PeerID]bool
	own     *adapter.Update // own update waiting for the Gossip phase
	release *gossip.Release // own release once published (to offer to newcomers)
}

// Machine is one node's round engine: the seed's Federation Round Protocol
// and GossipProtocol as a state machine. It owns no goroutine and reads no
// clock: every method takes the current time, returns a Ready, and must be
// called from one goroutine.
type Machine struct {
	cfg   Config
	sched Schedule
	eng   *gossip.Engine
	deps  Deps

	started      bool
	now          time.Time
	round        uint64
	phase        Phase
	collectEnded bool
	scopes       map[gossip.Membership]*scopeRound
	next         map[gossip.Membership]map[gossip.PeerID]*adapter.Update
	ownNext      map[gossip.Membership]*adapter.Update

	released    uint64
	hasReleased bool
	finished    uint64 // restored: the round the node last logged before a restart
	hasFinished bool
	trainOut    bool   // a Train request is out
	trainRound  uint64 // the round of the last Train request
	hasAsked    bool

	stats Stats
}

// New builds a machine from its config, collaborators and restored state
// (the zero State for a fresh node).
func New(cfg Config, deps Deps, st State) (*Machine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Rand == nil {
		return nil, errors.New("round: Deps.Rand (a seeded *rand.Rand) is required")
	}
	table := gossip.NewPeerTable(cfg.Self)
	for _, p := range st.Peers {
		if _, err := table.Upsert(p); err != nil {
			return nil, fmt.Errorf("round: restoring peer table: %w", err)
		}
	}
	eng, err := gossip.NewEngine(cfg.engineConfig(), table, deps.Codec, deps.Filter, deps.Selector, deps.Rand)
	if err != nil {
		return nil, err
	}
	return &Machine{
		cfg: cfg, sched: cfg.schedule(), eng: eng, deps: deps,
		released: st.Released, hasReleased: st.HasReleased, finished: st.Finished, hasFinished: st.HasFinished,
		stats: Stats{RoundsSkipped: map[string]uint64{}},
	}, nil
}

// Engine exposes the gossip engine (peer table, counters, latency-aware
// selection state) to the driver.
func (m *Machine) Engine() *gossip.Engine { return m.eng }

// Schedule is the machine's slot schedule.
func (m *Machine) Schedule() Schedule { return m.sched }

// Round and Phase are where the machine stands.
func (m *Machine) Round() uint64 { return m.round }
func (m *Machine) Phase() Phase  { return m.phase }

// Stats returns a copy of the running totals.
func (m *Machine) Stats() Stats {
	s := m.stats
	s.Round, s.Phase = m.round, m.phase
	s.Gossip = m.eng.Counters()
	s.RoundsSkipped = maps.Clone(m.stats.RoundsSkipped)
	return s
}

// NextDeadline is the next time at which Tick has something to do; the
// driver sleeps until then or until another event arrives.
func (m *Machine) NextDeadline() time.Time {
	if !m.started {
		return m.now
	}
	r := m.round
	for _, t := range []time.Time{m.sched.GossipAt(r), m.sched.CollectEnd(r), m.sched.End(r)} {
		if t.After(m.now) {
			return t
		}
	}
	return m.sched.End(r)
}

// Tick advances the machine to now.
func (m *Machine) Tick(now time.Time) Ready {
	var rd Ready
	m.advance(now, &rd)
	return rd
}

// PeerSeen records a peer's record (from peer exchange, its key record or
// a connection); call it for every connected peer at least once per round
// so that quiet peers stay live. While Collect is open, a member that comes
// back (new, silent past peer_timeout, restarted, or unreachable on our
// last send) is offered this round's own release, so a peer that joins,
// reconnects or restarts mid-round still receives it. A peer seen again
// without any of these gets nothing: calling PeerSeen often does not turn
// fan-out into a broadcast.
func (m *Machine) PeerSeen(now time.Time, info gossip.PeerInfo) (Ready, error) {
	var rd Ready
	m.advance(now, &rd)
	if info.LastSeen.IsZero() || info.LastSeen.After(now) {
		info.LastSeen = now
	}
	old, known := m.eng.Table().Get(info.ID)
	wasLive := known && (m.cfg.PeerTimeout <= 0 || now.Sub(old.LastSeen) <= m.cfg.PeerTimeout)
	restarted, err := m.eng.Table().Upsert(info)
	if err != nil {
		return rd, err
	}
	if restarted {
		m.eng.PeerRestarted(info.ID)
	}
	owed := m.eng.TakeUnreached(info.ID)
	if !m.cfg.Enabled || m.collectEnded || (wasLive && !restarted && !owed) {
		return rd, nil
	}
	for _, sc := range m.sortedScopes() {
		s := m.scopes[sc]
		if s.release != nil {
			rd.Send = append(rd.Send, m.eng.Offer(now, *s.release, info.ID)...)
		}
	}
	return rd, nil
}

// SendFailed reports that an Outbound was not taken (the error
// Transport.SendOffered returned). After a network failure the peer is
// offered the release again when it is next seen during the round; after
// an offer refused as a duplicate another peer is offered it now.
func (m *Machine) SendFailed(now time.Time, out gossip.Outbound, err error) Ready {
	var rd Ready
	m.advance(now, &rd)
	rd.Send = append(rd.Send, m.eng.SendFailed(now, out, err)...)
	return rd
}

// LocalUpdate is the node's own update for one of its scopes.
type LocalUpdate struct {
	Scope  gossip.Membership
	Update *adapter.Update
}

// LocalUpdateReady answers a Train request: the node's updates for round,
// one per scope (privacy processing for the scope's tier already done). No
// updates means training produced nothing this round. An update for a
// round whose Collect has closed is dropped and counted as late.
func (m *Machine) LocalUpdateReady(now time.Time, round uint64, ups ...LocalUpdate) (Ready, error) {
	var rd Ready
	m.advance(now, &rd)
	if m.trainOut && m.trainRound == round {
		m.trainOut = false
	}
	var err error
	switch {
	case len(ups) == 0:
	case round == m.round && !m.collectEnded && !m.releasedFor(round):
		for _, u := range ups {
			s, ok := m.scopes[u.Scope]
			if !ok {
				err = errors.Join(err, fmt.Errorf("round %d: %w: node is not in %s", round, gossip.ErrNotMember, u.Scope))
				continue
			}
			s.own = u.Update
		}
		m.step(&rd)
	case round == m.round+1:
		m.ownNext = map[gossip.Membership]*adapter.Update{}
		for _, u := range ups {
			m.ownNext[u.Scope] = u.Update
		}
	default:
		m.stats.OwnLate++
		err = fmt.Errorf("%w: local update for round %d arrived in round %d, phase %s", ErrStale, round, m.round, m.phase)
	}
	m.maybeTrain(&rd)
	return rd, err
}

// DeltaOffered rules on the offer of a delta from peer from (the
// connection), before its body is sent: nil asks for the body, which then
// goes with the returned envelope to gossip.DecodeBody and DeltaReceived
// (or, if it never comes, to DeltaAbandoned). gossip.ErrInFlight: the same
// release is arriving from another peer; ask again once that transfer
// ended. Any other error is the refusal to send back, gossip.ErrDuplicate
// the common one: the body is never sent.
func (m *Machine) DeltaOffered(now time.Time, from gossip.PeerID, offer []byte) (Ready, gossip.Envelope, error) {
	var rd Ready
	m.advance(now, &rd)
	if !m.cfg.Enabled {
		m.eng.Reject(from, "", gossip.ErrDisabled)
		return rd, gossip.Envelope{}, gossip.ErrDisabled
	}
	env, err := m.eng.Offered(now, from, offer, gossip.Window{Lo: m.round, Hi: m.round + 1})
	if errors.Is(err, gossip.ErrEquivocation) {
		if s := m.scopes[env.Scope]; s != nil && env.Round == m.round {
			s.heard[env.Source] = true
			m.step(&rd)
		}
	}
	return rd, env, err
}

// DeltaAbandoned ends the transfer DeltaOffered started when the body does
// not arrive (the sender went away, the stream broke): the release is then
// taken from the next peer that offers it.
func (m *Machine) DeltaAbandoned(now time.Time, from gossip.PeerID, d gossip.Digest) Ready {
	var rd Ready
	m.advance(now, &rd)
	m.eng.OfferAbandoned(from, d)
	return rd
}

// DeltaReceived handles a delta from peer from (the connection, not the
// claimed source): a whole message, or pre, a gossip.Decode or
// gossip.DecodeBody result computed off the machine's goroutine. The
// returned error is the refusal reason to send back (nil: accepted for this
// round).
func (m *Machine) DeltaReceived(now time.Time, from gossip.PeerID, msg []byte, pre *gossip.Inbound) (Ready, error) {
	var rd Ready
	m.advance(now, &rd)
	if !m.cfg.Enabled {
		m.eng.Reject(from, "", gossip.ErrDisabled)
		return rd, gossip.ErrDisabled
	}
	in, err := m.eng.Receive(now, from, msg, pre, gossip.Window{Lo: m.round, Hi: m.round + 1})
	if err != nil {
		if errors.Is(err, gossip.ErrByzantine) || errors.Is(err, gossip.ErrEquivocation) {
			if s := m.scopes[in.Env.Scope]; s != nil && in.Env.Round == m.round {
				s.heard[in.Env.Source] = true
				m.step(&rd)
			}
		}
		return rd, err
	}
	verdict := m.admit(in)
	sends, err := m.eng.Admit(now, in, verdict)
	rd.Send = append(rd.Send, sends...)
	m.step(&rd)
	if err != nil {
		return rd, err
	}
	return rd, verdict
}

// admit decides whether the round takes a verified delta.
func (m *Machine) admit(in gossip.Inbound) error {
	env := in.Env
	if env.Round == m.round+1 {
		b := m.next[env.Scope]
		if b == nil {
			b = map[gossip.PeerID]*adapter.Update{}
			m.next[env.Scope] = b
		}
		if len(b) >= m.cfg.MaxNodes {
			return fmt.Errorf("%w: round %d %s", gossip.ErrRoundFull, env.Round, env.Scope)
		}
		b[env.Source] = in.Update
		return nil
	}
	s := m.scopes[env.Scope]
	if s == nil || m.collectEnded || s.state != collecting {
		return fmt.Errorf("%w: round %d %s is %s here", gossip.ErrLate, env.Round, env.Scope, m.phase)
	}
	if len(s.updates) >= m.cfg.MaxNodes {
		return fmt.Errorf("%w: round %d %s", gossip.ErrRoundFull, env.Round, env.Scope)
	}
	s.updates[env.Source] = in.Update
	return nil
}

// AggregateDone answers an AggregateJob. A result for a round the machine
// has left is dropped (that round was recorded as timed out).
func (m *Machine) AggregateDone(now time.Time, round uint64, scope gossip.Membership, agg *adapter.Update, aggErr error) (Ready, error) {
	var rd Ready
	var err error
	s := m.scopes[scope]
	switch {
	case round != m.round || s == nil || s.state != aggregating:
		err = fmt.Errorf("%w: aggregate for round %d %s (now round %d)", ErrStale, round, scope, m.round)
	case aggErr != nil:
		m.skip(&rd, scope, SkipAggregateError, aggErr.Error())
	case agg == nil:
		m.skip(&rd, scope, SkipAggregateError, "aggregator returned no update")
	default:
		parts := slices.Sorted(maps.Keys(s.updates))
		s.state = settled
		m.stats.RoundsCompleted++
		rd.Apply = append(rd.Apply, Apply{Round: round, Scope: scope, Update: agg, Participants: parts})
		rd.Persist = append(rd.Persist, Record{Kind: RecordRound, Round: round, Scope: scope, Completed: true, Participants: parts})
		m.updatePhase()
	}
	m.advance(now, &rd)
	m.maybeTrain(&rd)
	return rd, err
}

// advance moves time forward, closing rounds whose slot ended and entering
// the round the clock is in. A node that was away enters the current round
// directly: missed slots are not replayed.
func (m *Machine) advance(now time.Time, rd *Ready) {
	if now.Before(m.now) {
		now = m.now // time never goes backwards inside the machine
	}
	m.now = now
	cur := m.sched.RoundAt(now)
	if !m.started {
		m.started = true
		m.enter(cur, rd)
	} else if cur > m.round {
		m.finish(rd)
		m.enter(cur, rd)
	}
	m.step(rd)
}

func (m *Machine) sortedScopes() []gossip.Membership {
	return slices.SortedFunc(maps.Keys(m.scopes), func(a, b gossip.Membership) int {
		if a.Tier != b.Tier {
			return int(a.Tier) - int(b.Tier)
		}
		switch {
		case a.Scope < b.Scope:
			return -1
		case a.Scope > b.Scope:
			return 1
		}
		return 0
	})
}

func (m *Machine) enter(r uint64, rd *Ready) {
	fresh := r != m.round+1 || m.scopes == nil
	m.round, m.phase, m.collectEnded = r, PhaseInit, false
	m.scopes = map[gossip.Membership]*scopeRound{}
	for _, sc := range m.cfg.Memberships {
		if sc.Tier == privacy.Private {
			continue
		}
		s := &scopeRound{updates: map[gossip.PeerID]*adapter.Update{}, heard: map[gossip.PeerID]bool{}}
		if !fresh {
			maps.Copy(s.updates, m.next[sc])
			s.own = m.ownNext[sc]
		}
		m.scopes[sc] = s
	}
	m.next = map[gossip.Membership]map[gossip.PeerID]*adapter.Update{}
	m.ownNext = nil
	if m.trainOut && m.trainRound < r {
		m.trainOut = false // that result, if it ever comes, is stale
	}
	if r > 0 {
		m.eng.ForgetBefore(r)
	}
	switch {
	case fresh && m.hasFinished && r <= m.finished:
		// Restarted in a round already settled before the crash.
		m.collectEnded = true
		for _, s := range m.scopes {
			s.state = settled
		}
	case !m.cfg.Enabled:
		m.skipAll(rd, SkipDisabled, "federation.enabled = false")
	case len(m.scopes) == 0:
		m.skipAll(rd, SkipPrivate, "private tier: updates never leave the node")
	case fresh && !m.now.Before(m.sched.CollectEnd(r)):
		m.collectEnded = true
		m.skipAll(rd, SkipJoinedLate, fmt.Sprintf("started at %s, after Collect", m.now.Sub(m.sched.Start(r))))
	}
}

// finish closes the current round at its slot's end.
func (m *Machine) finish(rd *Ready) {
	for _, sc := range m.sortedScopes() {
		if s := m.scopes[sc]; s.state == aggregating {
			m.skip(rd, sc, SkipAggregateLate, "no aggregate before the round ended")
		}
	}
	for _, p := range m.eng.Table().All() {
		rd.Persist = append(rd.Persist, Record{Kind: RecordPeer, Round: m.round, Peer: p})
	}
}

// step performs what the current time and state call for within the round.
func (m *Machine) step(rd *Ready) {
	if !m.cfg.Enabled || len(m.scopes) == 0 {
		m.updatePhase()
		return
	}
	r := m.round
	if !m.collectEnded && !m.now.Before(m.sched.GossipAt(r)) {
		m.publish(rd)
	}
	if !m.collectEnded && (!m.now.Before(m.sched.CollectEnd(r)) || m.allExpectedIn()) {
		m.endCollect(rd)
	}
	m.updatePhase()
	m.maybeTrain(rd)
}

func (m *Machine) publish(rd *Ready) {
	for _, sc := range m.sortedScopes() {
		s := m.scopes[sc]
		if s.own == nil || s.release != nil {
			continue
		}
		u := s.own
		s.own = nil
		rel, sends, err := m.eng.Publish(m.now, m.round, sc, u)
		if err != nil {
			m.skip(rd, sc, SkipAggregateError, err.Error())
			continue
		}
		s.updates[m.cfg.Self] = u
		s.release = &rel
		rd.Send = append(rd.Send, sends...)
		if !m.hasReleased || m.released < m.round {
			m.released, m.hasReleased = m.round, true
			rd.Persist = append(rd.Persist, Record{Kind: RecordReleased, Round: m.round, Scope: sc})
		}
	}
}

// allExpectedIn: every live contributing member of every scope, and this
// node if it contributes, has an update in; then Collect can end early.
// Before the Gossip mark it is never true, so a node does not close a round
// before releasing its own update.
func (m *Machine) allExpectedIn() bool {
	if m.now.Before(m.sched.GossipAt(m.round)) {
		return false
	}
	for sc, s := range m.scopes {
		if s.state != collecting {
			continue
		}
		if m.cfg.Contributes {
			if _, ok := s.updates[m.cfg.Self]; !ok && !m.releasedFor(m.round) {
				return false
			}
		}
		for _, p := range m.eng.Table().LiveMembers(sc, m.now, m.cfg.PeerTimeout) {
			if !p.Contributes {
				continue
			}
			if _, ok := s.updates[p.ID]; !ok && !s.heard[p.ID] {
				return false
			}
		}
	}
	return true
}

func (m *Machine) endCollect(rd *Ready) {
	m.collectEnded = true
	for _, sc := range m.sortedScopes() {
		s := m.scopes[sc]
		if s.state != collecting {
			continue
		}
		s.own = nil
		contribs := make([]Contribution, 0, len(s.updates))
		for _, src := range slices.Sorted(maps.Keys(s.updates)) {
			contribs = append(contribs, Contribution{Source: src, Update: s.updates[src]})
		}
		if m.deps.Screen != nil && m.cfg.ByzantineDetection && len(contribs) > 0 {
			kept, err := m.deps.Screen.Screen(m.round, sc, contribs)
			if err != nil {
				m.skip(rd, sc, SkipAggregateError, "sybil screen: "+err.Error())
				continue
			}
			m.stats.SybilRejected += uint64(len(contribs) - len(kept))
			contribs = kept
			s.updates = map[gossip.PeerID]*adapter.Update{}
			for _, c := range kept {
				s.updates[c.Source] = c.Update
			}
		}
		if len(contribs) < m.cfg.MinNodes {
			m.skip(rd, sc, SkipTooFew, fmt.Sprintf("%d updates, min_nodes_for_aggregation %d", len(contribs), m.cfg.MinNodes))
			continue
		}
		s.state = aggregating
		rd.Aggregate = append(rd.Aggregate, AggregateJob{Round: m.round, Scope: sc, Contributions: contribs})
	}
}

func (m *Machine) skip(rd *Ready, sc gossip.Membership, reason, detail string) {
	if s := m.scopes[sc]; s != nil {
		s.state = settled
	}
	m.stats.RoundsSkipped[reason]++
	rd.Skipped = append(rd.Skipped, Skip{Round: m.round, Scope: sc, Reason: reason, Detail: detail})
	rd.Persist = append(rd.Persist, Record{Kind: RecordRound, Round: m.round, Scope: sc, Reason: reason})
}

func (m *Machine) skipAll(rd *Ready, reason, detail string) {
	if len(m.scopes) == 0 {
		m.stats.RoundsSkipped[reason]++
		rd.Skipped = append(rd.Skipped, Skip{Round: m.round, Reason: reason, Detail: detail})
		rd.Persist = append(rd.Persist, Record{Kind: RecordRound, Round: m.round, Reason: reason})
		return
	}
	for _, sc := range m.sortedScopes() {
		m.skip(rd, sc, reason, detail)
	}
}

func (m *Machine) settled() bool {
	for _, s := range m.scopes {
		if s.state != settled {
			return false
		}
	}
	return true
}

func (m *Machine) updatePhase() {
	r := m.round
	switch {
	case m.collectEnded && m.settled():
		m.phase = PhaseDone
	case m.collectEnded:
		m.phase = PhaseAggregate
	case !m.now.Before(m.sched.CollectAt(r)):
		m.phase = PhaseCollect
	case !m.now.Before(m.sched.GossipAt(r)):
		m.phase = PhaseGossip
	default:
		m.phase = PhaseInit
	}
}

func (m *Machine) releasedFor(r uint64) bool { return m.hasReleased && m.released >= r }

// maybeTrain asks for local training when none is out. Training for round
// r+1 starts as soon as round r is settled here (its aggregate applied or
// the round skipped), so it runs from the current adapters and overlaps
// the rest of round r: with the seed's fractions it has 3/4 of an interval
// (from the Apply mark of r to the Aggregate mark of r+1), more when r ends
// early. A node that starts mid-round trains for the current round if its
// Collect is still open, joining late.
func (m *Machine) maybeTrain(rd *Ready) {
	if !m.cfg.Contributes || !m.cfg.Enabled || m.trainOut || len(m.scopes) == 0 {
		return
	}
	target, ok := uint64(0), false
	hasOwn := false
	for _, s := range m.scopes {
		if s.own != nil || s.release != nil {
			hasOwn = true
		}
	}
	switch {
	case !m.collectEnded && !hasOwn && !m.releasedFor(m.round):
		target, ok = m.round, true
	case m.collectEnded && m.settled() && m.ownNext == nil && !m.releasedFor(m.round+1):
		target, ok = m.round+1, true
	}
	if !ok || (m.hasAsked && m.trainRound == target) {
		return // one request per round: training that produced nothing is not retried
	}
	m.trainOut, m.trainRound, m.hasAsked = true, target, true
	rd.Train = append(rd.Train, target)
}
