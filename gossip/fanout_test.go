package gossip

import "testing"

func TestFanOut(t *testing.T) {
	for _, c := range []struct{ n, configured, want int }{
		{0, 4, 0},
		{1, 4, 1},
		{3, 4, 3},    // never more than the eligible peers
		{4, 4, 4},    // ⌈√4⌉ = 2, the floor wins
		{16, 4, 4},   // ⌈√16⌉ = 4
		{17, 4, 5},   // ⌈√17⌉ = 5 grows past the floor
		{50, 0, 8},   // ⌈√50⌉ = 8
		{100, 0, 10}, // ⌈√100⌉ = 10
		{100, 12, 12},
	} {
		if got := FanOut(c.n, c.configured); got != c.want {
			t.Errorf("FanOut(%d, %d) = %d, want %d", c.n, c.configured, got, c.want)
		}
	}
}
