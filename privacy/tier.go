package privacy

import "fmt"

// Tier is a privacy scope level, from closed to open. The order matters:
// a larger value is more open.
type Tier int

const (
	Private Tier = iota // never leaves the node
	Group               // members holding the group key
	Tenant              // nodes of one organisation
	Public              // everyone; updates are DP-noised before release
)

var tierNames = [...]string{"private", "group", "tenant", "public"}

func (t Tier) String() string {
	if t < 0 || int(t) >= len(tierNames) {
		return fmt.Sprintf("tier(%d)", int(t))
	}
	return tierNames[t]
}

// ParseTier accepts the names used in federation.toml and update metadata.
func ParseTier(s string) (Tier, error) {
	for i, n := range tierNames {
		if s == n {
			return Tier(i), nil
		}
	}
	return 0, fmt.Errorf("unknown tier %q (want private, group, tenant or public)", s)
}
