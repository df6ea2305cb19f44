package dlm

import (
	_ "embed"
	"fmt"
	"math"
	"math/rand/v2"
)

// Base is the frozen pretrained denoiser every bank adapts.
type Base struct {
	Config ModelConfig
	p      *params
}

//go:embed base.safetensors
var shippedBase []byte

// DefaultBase decodes the base model shipped inside the binary (regenerate
// it with `daf pretrain`; doc.go says how and why it has this shape).
func DefaultBase() (*Base, error) {
	b, err := decodeBase(shippedBase)
	if err != nil {
		return nil, fmt.Errorf("shipped base model dlm/base.safetensors: %w", err)
	}
	return b, nil
}

// NumParams is the number of float32 weights of the base.
func (b *Base) NumParams() int { return len(b.p.flat) }

// newBase returns a randomly initialised model: small normal weights
// (σ = 0.02, residual-output projections scaled by 1/√(2·layers) as in
// GPT-2), unit norm gains, zero biases.
func newBase(c ModelConfig, seed uint64) (*Base, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	p := newParams(c, nil)
	rng := rand.New(rand.NewPCG(seed, 0xba5e))
	fill := func(x []float32, std float64) {
		for i := range x {
			x[i] = float32(rng.NormFloat64() * std)
		}
	}
	ones := func(x []float32) {
		for i := range x {
			x[i] = 1
		}
	}
	const std = 0.02
	resid := std / math.Sqrt(2*float64(c.Layers))
	fill(p.tok, std)
	fill(p.prev, std)
	fill(p.next, std)
	fill(p.pos, std)
	fill(p.time, std)
	for l := range p.blocks {
		bp := &p.blocks[l]
		ones(bp.ln1.g)
		ones(bp.ln2.g)
		fill(bp.q.w, std)
		fill(bp.k.w, std)
		fill(bp.v.w, std)
		fill(bp.o.w, resid)
		fill(bp.up.w, std)
		fill(bp.down.w, resid)
	}
	ones(p.lnf.g)
	fill(p.head.w, std)
	p.refresh()
	return &Base{Config: c, p: p}, nil
}
