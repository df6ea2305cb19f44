package wire

import (
	"fmt"
)

// DefaultReplayEntries bounds a ReplayGuard's memory: one entry (about 150
// bytes) per source, tier, scope and round inside the window.
const DefaultReplayEntries = 1 << 20

// ReplayGuard remembers, for every (source, tier, scope, round) inside the
// accepted round window, the hash of the payload accepted for it. It is pure:
// the caller passes its current round, there is no clock. One goroutine owns
// it.
//
// Call Check only after Verify: an unsigned envelope must not be able to
// occupy a source's slot for a round.
type ReplayGuard struct {
	window uint64
	// MaxEntries caps the entries held; past it Check refuses with
	// ErrReplayGuardFull rather than forgetting (forgetting would re-open
	// replays). Defaults to DefaultReplayEntries.
	MaxEntries int
	seen       map[replayKey][32]byte
	rounds     map[uint64][]replayKey
	// floor is the oldest round still accepted. It never decreases, even if
	// the caller's current round goes backwards, so a pruned round cannot
	// be replayed into.
	floor uint64
}

type replayKey struct {
	source string
	tier   uint8
	scope  string
	round  uint64
}

// NewReplayGuard accepts rounds from current−window to current+1 (a peer may
// have started the next round a moment earlier).
func NewReplayGuard(window uint64) *ReplayGuard {
	return &ReplayGuard{
		window:     window,
		MaxEntries: DefaultReplayEntries,
		seen:       map[replayKey][32]byte{},
		rounds:     map[uint64][]replayKey{},
	}
}

// Check accepts e for currentRound and records it, or returns
// ErrRoundOutOfWindow, ErrReplay (same source, tier, scope, round and
// payload), ErrEquivocation (same source, tier, scope and round, another
// payload) or ErrReplayGuardFull. A refused envelope is not recorded.
func (g *ReplayGuard) Check(e *Envelope, currentRound uint64) error {
	g.advance(currentRound)
	if e.Round < g.floor || (currentRound < ^uint64(0) && e.Round > currentRound+1) {
		return fmt.Errorf("%w: round %d, accepted %d..%d", ErrRoundOutOfWindow, e.Round, g.floor, currentRound+1)
	}
	key := replayKey{source: string(e.Source), tier: e.Tier, scope: e.Scope, round: e.Round}
	h := e.PayloadHash()
	if old, ok := g.seen[key]; ok {
		if old == h {
			return fmt.Errorf("%w: source %x round %d scope %q", ErrReplay, e.Source, e.Round, e.Scope)
		}
		return fmt.Errorf("%w: source %x round %d scope %q", ErrEquivocation, e.Source, e.Round, e.Scope)
	}
	limit := g.MaxEntries
	if limit <= 0 {
		limit = DefaultReplayEntries
	}
	if len(g.seen) >= limit {
		return fmt.Errorf("%w: %d entries for rounds %d..%d", ErrReplayGuardFull, len(g.seen), g.floor, currentRound+1)
	}
	g.seen[key] = h
	g.rounds[e.Round] = append(g.rounds[e.Round], key)
	return nil
}

// advance raises the window floor to currentRound−window and forgets the
// rounds below it.
func (g *ReplayGuard) advance(currentRound uint64) {
	floor := uint64(0)
	if currentRound > g.window {
		floor = currentRound - g.window
	}
	if floor <= g.floor {
		return
	}
	g.floor = floor
	for r, keys := range g.rounds {
		if r < floor {
			for _, k := range keys {
				delete(g.seen, k)
			}
			delete(g.rounds, r)
		}
	}
}

// Len is the number of remembered envelopes.
func (g *ReplayGuard) Len() int { return len(g.seen) }
