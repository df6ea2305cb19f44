package seal

import (
	"fmt"
	"sort"
)

// ScopeKeyring holds a node's scope keys by (tier, scope, epoch). Senders
// seal with Latest; receivers open with the envelope's epoch via Get, so an
// update sealed just before a rotation still opens, until Retire forgets the
// older epochs. It is plain data: one goroutine owns it.
type ScopeKeyring struct {
	keys map[scopeID]map[uint32]*ScopeKey
	// floor is, per scope, the lowest epoch still accepted: Retire raises
	// it, so a retired key offered again (an old grant pushed back) stays out.
	floor map[scopeID]uint32
}

type scopeID struct{ tier, scope string }

// NewScopeKeyring returns an empty keyring.
func NewScopeKeyring() *ScopeKeyring {
	return &ScopeKeyring{keys: map[scopeID]map[uint32]*ScopeKey{}, floor: map[scopeID]uint32{}}
}

// Add stores k. Adding the same key again is a no-op; a different key for an
// epoch already held is refused, since two members sealing under different
// keys for one epoch could not read each other; so is a key of an epoch
// Retire has retired.
func (r *ScopeKeyring) Add(k *ScopeKey) error {
	if err := checkScope(k.Tier, k.Scope); err != nil {
		return err
	}
	id := scopeID{k.Tier, k.Scope}
	if k.Epoch < r.floor[id] {
		return fmt.Errorf("%w: %s (epochs below %d are retired)", ErrRetiredScopeKey, k, r.floor[id])
	}
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

// Retire forgets the epochs of (tier, scope) below epoch and refuses them
// from now on, so what is sealed under them (by a member a rotation removed)
// no longer opens here. It never retires the newest epoch held, and never
// lowers what an earlier call retired.
func (r *ScopeKeyring) Retire(tier, scope string, epoch uint32) {
	id := scopeID{tier, scope}
	if newest, err := r.Latest(tier, scope); err == nil && newest.Epoch < epoch {
		epoch = newest.Epoch
	}
	if epoch <= r.floor[id] {
		return
	}
	r.floor[id] = epoch
	for e := range r.keys[id] {
		if e < epoch {
			delete(r.keys[id], e)
		}
	}
}
