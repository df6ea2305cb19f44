//go:build !amd64 || purego

package aggregate

// Only amd64 has the vector assembly (-tags purego leaves it out there
// too). Without it the scalar kernels of kernel_order.go beat the network
// run lane by lane in Go, so useNetworks stays off; tests still run the
// networks through orderBlocksGo.
const haveNetworkAsm = false
