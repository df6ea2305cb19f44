//go:build race

package node

// slowdown stretches round intervals and waits in tests: the race detector
// makes this package several times slower, and on two shared cores a 2 s
// round no longer fits its training and gossip.
const slowdown = 3
