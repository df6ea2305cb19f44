package sim

import (
	"maps"
	"slices"

	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/round"
)

// Store is the in-memory twin of the daemon's bbolt store: it keeps what
// the round machine asks to persist and gives back the State a restarted
// machine starts from. Adapters (the simulated model) are kept by the node.
type Store struct {
	peers       map[gossip.PeerID]gossip.PeerInfo
	released    uint64
	hasReleased bool
	finished    uint64
	hasFinished bool
	Log         []round.Record // round log, in order
}

// NewStore returns an empty store.
func NewStore() *Store { return &Store{peers: map[gossip.PeerID]gossip.PeerInfo{}} }

// Write applies persisted records.
func (s *Store) Write(recs []round.Record) {
	for _, r := range recs {
		switch r.Kind {
		case round.RecordPeer:
			s.peers[r.Peer.ID] = r.Peer
		case round.RecordReleased:
			if !s.hasReleased || r.Round > s.released {
				s.released, s.hasReleased = r.Round, true
			}
		case round.RecordRound:
			s.Log = append(s.Log, r)
			if !s.hasFinished || r.Round > s.finished {
				s.finished, s.hasFinished = r.Round, true
			}
		}
	}
}

// State is what a machine restarting from this store starts with.
func (s *Store) State() round.State {
	st := round.State{Released: s.released, HasReleased: s.hasReleased, Finished: s.finished, HasFinished: s.hasFinished}
	for _, id := range slices.Sorted(maps.Keys(s.peers)) {
		st.Peers = append(st.Peers, s.peers[id])
	}
	return st
}
