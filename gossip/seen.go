package gossip

import "slices"

// seenSet remembers every release the node has handled, who is known to
// hold it, and which release each source made per round and scope: the
// de-duplication, "no re-send to holders" and equivocation state of gossip.
// Entries are dropped by round once a round can no longer be accepted.
type seenSet struct {
	byDigest map[Digest]*seenEntry
	bySource map[sourceKey]Digest
	byKey    map[ReleaseKey]Digest // verified releases by their cheap key
}

type sourceKey struct {
	source PeerID
	round  uint64
	scope  Membership
}

type seenEntry struct {
	round   uint64
	holders map[PeerID]struct{}
	// replaced counts the offers this node made in place of declined ones.
	replaced int
}

func newSeenSet() *seenSet {
	return &seenSet{byDigest: map[Digest]*seenEntry{}, bySource: map[sourceKey]Digest{}, byKey: map[ReleaseKey]Digest{}}
}

func (s *seenSet) has(d Digest) bool { _, ok := s.byDigest[d]; return ok }

// record notes the release and returns its entry.
func (s *seenSet) record(env Envelope) *seenEntry {
	e, ok := s.byDigest[env.Digest]
	if !ok {
		e = &seenEntry{round: env.Round, holders: map[PeerID]struct{}{env.Source: {}}}
		s.byDigest[env.Digest] = e
		s.bySource[sourceKey{env.Source, env.Round, env.Scope}] = env.Digest
	}
	return e
}

// equivocates reports whether the source already made a different release
// for the same round and scope.
func (s *seenSet) equivocates(env Envelope) bool {
	d, ok := s.bySource[sourceKey{env.Source, env.Round, env.Scope}]
	return ok && d != env.Digest
}

func (s *seenSet) addHolder(d Digest, p PeerID) {
	if e, ok := s.byDigest[d]; ok {
		e.holders[p] = struct{}{}
	}
}

func (s *seenSet) holds(d Digest, p PeerID) bool {
	e, ok := s.byDigest[d]
	if !ok {
		return false
	}
	_, h := e.holders[p]
	return h
}

// forgetBefore drops everything about rounds older than round.
func (s *seenSet) forgetBefore(round uint64) {
	for d, e := range s.byDigest {
		if e.round < round {
			delete(s.byDigest, d)
		}
	}
	for k := range s.bySource {
		if k.round < round {
			delete(s.bySource, k)
		}
	}
	for k := range s.byKey {
		if k.Round < round {
			delete(s.byKey, k)
		}
	}
}

func (s *seenSet) holderList(d Digest) []PeerID {
	e, ok := s.byDigest[d]
	if !ok {
		return nil
	}
	out := make([]PeerID, 0, len(e.holders))
	for p := range e.holders {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
