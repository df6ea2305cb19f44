package gossip

import "math"

// FanOut is the number of peers a node sends each delta to when n peers are
// eligible: max(⌈√n⌉, configured), never more than n. The seed uses ⌈√n⌉,
// which keeps an epidemic reaching everyone in O(log n) hops as the
// federation grows; the configured fan_out is a floor, because in a small
// federation ⌈√n⌉ (2 of 4 peers) leaves a single dropped link able to cut a
// node out of a round. A configured value of 0 means ⌈√n⌉ alone.
func FanOut(n, configured int) int {
	if n <= 0 {
		return 0
	}
	k := int(math.Ceil(math.Sqrt(float64(n))))
	k = max(k, configured)
	return min(k, n)
}
