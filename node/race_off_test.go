//go:build !race

package node

// slowdown stretches round intervals and waits in tests (see race_on_test.go).
const slowdown = 1
