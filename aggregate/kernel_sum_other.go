//go:build !amd64 || purego

package aggregate

// Only amd64 has the vector assembly (-tags purego leaves it out there
// too); weightedSumGo runs everywhere else.
const haveSumAsm = false

// sumPass is never called without the assembly (useSumAsm is off and
// tests skip the vector path).
var sumPass func(d []float32, xs [][]float32, w []float32, off int, first bool)
