package seal

import (
	"fmt"
	"sort"
)

// ScopeKeyring holds a node's scope keys by (tier, scope, epoch). Senders
// seal with Latest; receivers open with the envelope's epoch via Get, so an
// update sealed just before a rotation still opens. It is plain data: one
// goroutine owns it.
type ScopeKeyring struct {
	keys map[scopeID]map[uint32]*ScopeKey
}

type scopeID struct{ tier, scope string }

// NewScopeKeyring returns an empty keyring.
func NewScopeKeyring() *ScopeKeyring {
	return &ScopeKeyring{keys: map[scopeID]map[uint32]*ScopeKey{}}
}

// Add stores k. Adding the same key again is a no-op; a different key for an
// epoch already held is refused, since two members sealing under different
// keys for one epoch could not read each other.
func (r *ScopeKeyring) Add(k *ScopeKey) error {
	if err := checkScope(k.Tier, k.Scope); err != nil {
		return err
	}
	id := scopeID{k.Tier, k.Scope}
	epochs := r.keys[id]
	if epochs == nil {
		epochs = map[uint32]*ScopeKey{}
		r.keys[id] = epochs
	}
	if old, ok := epochs[k.Epoch]; ok {
		if old.Key != k.Key {
			return fmt.Errorf("%w: %s already holds a different key", ErrBadScopeKey, k)
		}
		return nil
	}
	c := *k
	epochs[k.Epoch] = &c
	return nil
}

// Get returns the key of (tier, scope) at epoch.
func (r *ScopeKeyring) Get(tier, scope string, epoch uint32) (*ScopeKey, error) {
	if k, ok := r.keys[scopeID{tier, scope}][epoch]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("%w: %s/%s epoch %d", ErrNoScopeKey, tier, scope, epoch)
}

// Latest returns the key of (tier, scope) with the highest epoch.
func (r *ScopeKeyring) Latest(tier, scope string) (*ScopeKey, error) {
	var best *ScopeKey
	for _, k := range r.keys[scopeID{tier, scope}] {
		if best == nil || k.Epoch > best.Epoch {
			best = k
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: %s/%s (no epoch held)", ErrNoScopeKey, tier, scope)
	}
	return best, nil
}

// Epochs lists the epochs held for (tier, scope), ascending.
func (r *ScopeKeyring) Epochs(tier, scope string) []uint32 {
	var out []uint32
	for e := range r.keys[scopeID{tier, scope}] {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// Prune keeps the keep newest epochs of (tier, scope) and forgets the rest,
// so content sealed under old epochs can no longer be opened here.
func (r *ScopeKeyring) Prune(tier, scope string, keep int) {
	epochs := r.Epochs(tier, scope)
	for i := 0; i < len(epochs)-keep; i++ {
		delete(r.keys[scopeID{tier, scope}], epochs[i])
	}
}
