package node

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dafnet/daf/gossip"
	"github.com/dafnet/daf/p2p"
	"github.com/dafnet/daf/seal"
)

// Files of a data directory (DESIGN §4, docs/FORMATS.md).
const (
	IdentityFile = "identity.key"
	StateFile    = "state.db"
	AdaptersDir  = "adapters"
)

// LoadOrCreateIdentity opens DIR/identity.key, creating DIR (0700) and a
// new identity if there is none, and returns the identity, its peer ID and
// whether it was created now.
func LoadOrCreateIdentity(dataDir string) (*seal.Identity, gossip.PeerID, bool, error) {
	if dataDir == "" {
		return nil, "", false, fmt.Errorf("data directory: empty path")
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, "", false, fmt.Errorf("data directory %s: %w", dataDir, err)
	}
	id, created, err := seal.LoadOrCreateIdentity(filepath.Join(dataDir, IdentityFile))
	if err != nil {
		return nil, "", false, err
	}
	pid, err := p2p.PeerIDFromPublicKey(id.Public())
	if err != nil {
		return nil, "", false, err
	}
	return id, pid, created, nil
}
