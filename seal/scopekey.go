package seal

import (
	"fmt"
	"io"
)

// MaxScopeLen bounds a scope name in bytes (it travels in every envelope).
const MaxScopeLen = 255

// ScopeKey is the symmetric key of one (tier, scope) at one epoch. Tier is
// "group" or "tenant": Public payloads are not sealed and Private ones never
// leave the node.
type ScopeKey struct {
	Tier  string
	Scope string
	Epoch uint32
	Key   [32]byte
}

// NewScopeKey draws a fresh key for (tier, scope) at epoch. Rotation is a new
// key with the next epoch.
func NewScopeKey(rand io.Reader, tier, scope string, epoch uint32) (*ScopeKey, error) {
	if err := checkScope(tier, scope); err != nil {
		return nil, err
	}
	k := &ScopeKey{Tier: tier, Scope: scope, Epoch: epoch}
	if _, err := io.ReadFull(rand, k.Key[:]); err != nil {
		return nil, fmt.Errorf("new scope key %s/%s epoch %d: %w", tier, scope, epoch, err)
	}
	return k, nil
}

// checkScope accepts the tiers whose payloads are sealed and a non-empty
// scope name of at most MaxScopeLen bytes.
func checkScope(tier, scope string) error {
	if tier != "group" && tier != "tenant" {
		return fmt.Errorf("%w: tier %q has no scope key (only group and tenant payloads are sealed)", ErrBadScopeKey, tier)
	}
	if scope == "" {
		return fmt.Errorf("%w: empty scope name for tier %s", ErrBadScopeKey, tier)
	}
	if len(scope) > MaxScopeLen {
		return fmt.Errorf("%w: scope name is %d bytes, at most %d", ErrBadScopeKey, len(scope), MaxScopeLen)
	}
	return nil
}

// String names the key without revealing it.
func (k *ScopeKey) String() string {
	return fmt.Sprintf("%s/%s epoch %d", k.Tier, k.Scope, k.Epoch)
}
