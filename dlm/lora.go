package dlm

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/dafnet/daf/adapter"
)

// loraModules are the projections every bank adapts. Q and V are the
// classic LoRA targets; K and O are added because with a 2-layer model the
// attention projections are where a bank has room to move the output.
var loraModules = [4]string{"q", "k", "v", "o"}

// loraKey is the PEFT name of one factor, e.g.
// base_model.model.layers.0.attn.q_proj.lora_A.weight.
func loraKey(layer int, module, factor string) string {
	return fmt.Sprintf("base_model.model.layers.%d.attn.%s_proj.lora_%s.weight", layer, module, factor)
}

// loraParams is one bank in the layout the kernels want: a = A (r×d, as
// PEFT stores it) and bt = Bᵀ (r×d), so every product of the forward and
// backward pass runs along rows of length d rather than r. The update keeps
// PEFT's A (r×d) and B (d×r); bankFromUpdate and storeInto convert.
type loraParams struct {
	flat  []float32
	a, bt [][4][]float32 // [layer][module]
}

func newLoRA(c ModelConfig, flat []float32) *loraParams {
	d, r := c.DModel, c.Rank
	if flat == nil {
		flat = make([]float32, loraSize(c))
	}
	lp := &loraParams{flat: flat, a: make([][4][]float32, c.Layers), bt: make([][4][]float32, c.Layers)}
	off := 0
	for l := 0; l < c.Layers; l++ {
		for m := range loraModules {
			lp.a[l][m] = flat[off : off+d*r : off+d*r]
			off += d * r
			lp.bt[l][m] = flat[off : off+d*r : off+d*r]
			off += d * r
		}
	}
	return lp
}

func loraSize(c ModelConfig) int { return c.Layers * len(loraModules) * 2 * c.DModel * c.Rank }

// bankFromUpdate copies one group of u into kernel layout, checking that
// every factor is present, has the PEFT shape and is finite.
func bankFromUpdate(c ModelConfig, u *adapter.Update, group string) (*loraParams, error) {
	ts, ok := u.Groups[group]
	if !ok {
		return nil, fmt.Errorf("%w: group %q missing", ErrBanks, group)
	}
	d, r := c.DModel, c.Rank
	lp := newLoRA(c, nil)
	for l := 0; l < c.Layers; l++ {
		for m, mod := range loraModules {
			ka, kb := loraKey(l, mod, "A"), loraKey(l, mod, "B")
			a, b := ts[ka], ts[kb]
			if a == nil || b == nil {
				missing := ka
				if a != nil {
					missing = kb
				}
				return nil, fmt.Errorf("%w: %s/%s missing", ErrBanks, group, missing)
			}
			if !shapeIs(a, r, d) {
				return nil, fmt.Errorf("%w: %s/%s has shape %v, want [%d %d]", ErrBanks, group, ka, a.Shape, r, d)
			}
			if !shapeIs(b, d, r) {
				return nil, fmt.Errorf("%w: %s/%s has shape %v, want [%d %d]", ErrBanks, group, kb, b.Shape, d, r)
			}
			la, bt := lp.a[l][m], lp.bt[l][m]
			for i := 0; i < r; i++ {
				for j := 0; j < d; j++ {
					va, vb := a.Data[i*d+j], b.Data[j*r+i]
					if !finite32(va) || !finite32(vb) {
						return nil, fmt.Errorf("%w: %s layer %d %s_proj holds a non-finite value", ErrBanks, group, l, mod)
					}
					la[i*d+j] = va
					bt[i*d+j] = vb
				}
			}
		}
	}
	return lp, nil
}

// storeInto writes the bank back into u's group in PEFT layout.
func (lp *loraParams) storeInto(c ModelConfig, u *adapter.Update, group string) {
	d, r := c.DModel, c.Rank
	for l := 0; l < c.Layers; l++ {
		for m, mod := range loraModules {
			a, b := adapter.NewTensor(r, d), adapter.NewTensor(d, r)
			la, bt := lp.a[l][m], lp.bt[l][m]
			for i := 0; i < r; i++ {
				for j := 0; j < d; j++ {
					a.Data[i*d+j] = la[i*d+j]
					b.Data[j*r+i] = bt[i*d+j]
				}
			}
			u.Set(group, loraKey(l, mod, "A"), a)
			u.Set(group, loraKey(l, mod, "B"), b)
		}
	}
}

func shapeIs(t *adapter.Tensor, dims ...int) bool {
	if t == nil || len(t.Shape) != len(dims) || len(t.Data) != shapeSize(dims) {
		return false
	}
	for i, d := range dims {
		if t.Shape[i] != d {
			return false
		}
	}
	return true
}

func finite32(v float32) bool {
	f := float64(v)
	return !math.IsNaN(f) && !math.IsInf(f, 0)
}

// NewBanks returns fresh TALoRA banks, one per group, initialised as PEFT
// does: A ~ kaiming-uniform(a=√5), i.e. U(±1/√in), and B = 0, so a fresh
// bank leaves the base model's output unchanged.
func NewBanks(b *Base, groups []adapter.GroupRange, seed uint64) *adapter.Update {
	c := b.Config
	u := adapter.New()
	u.Meta.Kind = adapter.KindAdapter
	u.Meta.Groups = append([]adapter.GroupRange(nil), groups...)
	u.Meta.Rank = c.Rank
	u.Meta.LoraAlpha = c.Alpha
	u.Meta.Samples = 0
	rng := rand.New(rand.NewPCG(seed, 0x7a1075eed))
	bound := 1 / math.Sqrt(float64(c.DModel))
	for _, g := range groups {
		lp := newLoRA(c, nil)
		for l := 0; l < c.Layers; l++ {
			for m := range loraModules {
				for i := range lp.a[l][m] {
					lp.a[l][m][i] = float32((2*rng.Float64() - 1) * bound)
				}
			}
		}
		lp.storeInto(c, u, g.Name)
	}
	return u
}
