package wire

import (
	"fmt"

	"github.com/dafnet/daf/adapter"
)

// CheckMatches refuses an update whose metadata disagrees with the signed
// envelope that carried it. The envelope's round, tier and scope are what the
// replay guard and the tier filter checked, so a payload claiming another
// round or scope inside a valid envelope must not be aggregated there.
// Meta.Node is informational; receivers identify the source by e.Source.
func CheckMatches(e *Envelope, m *adapter.Metadata) error {
	if m.Round != e.Round {
		return fmt.Errorf("%w: update says round %d, envelope round %d", ErrMismatch, m.Round, e.Round)
	}
	if m.Tier != e.TierName() {
		return fmt.Errorf("%w: update says tier %q, envelope tier %q", ErrMismatch, m.Tier, e.TierName())
	}
	if m.Scope != e.Scope {
		return fmt.Errorf("%w: update says scope %q, envelope scope %q", ErrMismatch, m.Scope, e.Scope)
	}
	return nil
}
