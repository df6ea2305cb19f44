package dlm

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/dafnet/daf/adapter"
)

// Every block's adapted projections, in flat order. Q, K, V and O are the
// classic LoRA targets; the MLP's up and down projections are where a
// small model keeps what distinguishes one text domain's byte statistics
// from another's, and with the attention projections alone a bank moved the
// held-out loss by hundredths of a nat only (doc.go has the numbers).
const (
	modQ = iota
	modK
	modV
	modO
	modUp
	modDown
	blockModules
)

var loraModules = [blockModules]string{"q", "k", "v", "o", "up", "down"}

// loraModulePath is the base model's name of one adapted projection.
func loraModulePath(layer int, module string) string {
	switch module {
	case "up", "down":
		return fmt.Sprintf("layers.%d.mlp.%s", layer, module)
	case "head":
		return "head"
	}
	return fmt.Sprintf("layers.%d.attn.%s_proj", layer, module)
}

// loraKey is the PEFT name of one factor, e.g.
// base_model.model.layers.0.attn.q_proj.lora_A.weight,
// base_model.model.layers.1.mlp.down.lora_B.weight or
// base_model.model.head.lora_A.weight (layer is ignored for the head).
func loraKey(layer int, module, factor string) string {
	return "base_model.model." + loraModulePath(layer, module) + ".lora_" + factor + ".weight"
}

// loraFactor is one adapted projection of a bank in the layout the kernels
// want: a = A (r×in, as PEFT stores it) and bt = Bᵀ (r×out), so every
// product of the forward and backward pass runs along rows of length in or
// out rather than r. The update keeps PEFT's A (r×in) and B (out×r);
// bankFromUpdate and storeInto convert.
type loraFactor struct {
	layer   int
	module  string
	idx     int // position in loraParams.all
	in, out int
	a, bt   []float32
}

// loraParams is one bank: a factor per projection of every block plus one
// on the output head, all views of one flat vector.
type loraParams struct {
	flat   []float32
	blocks [][blockModules]*loraFactor
	head   *loraFactor
	all    []*loraFactor // flat order
}

// moduleDims gives (in, out) of an adapted projection.
func moduleDims(c ModelConfig, module string) (int, int) {
	switch module {
	case "up":
		return c.DModel, c.FF
	case "down":
		return c.FF, c.DModel
	case "head":
		return c.DModel, ByteVocab
	}
	return c.DModel, c.DModel
}

func newLoRA(c ModelConfig, flat []float32) *loraParams {
	r := c.Rank
	if flat == nil {
		flat = make([]float32, loraSize(c))
	}
	lp := &loraParams{flat: flat, blocks: make([][blockModules]*loraFactor, c.Layers)}
	off := 0
	add := func(layer int, module string) *loraFactor {
		in, out := moduleDims(c, module)
		f := &loraFactor{layer: layer, module: module, in: in, out: out, idx: len(lp.all)}
		f.a = flat[off : off+r*in : off+r*in]
		off += r * in
		f.bt = flat[off : off+r*out : off+r*out]
		off += r * out
		lp.all = append(lp.all, f)
		return f
	}
	for l := 0; l < c.Layers; l++ {
		for m, mod := range loraModules {
			lp.blocks[l][m] = add(l, mod)
		}
	}
	lp.head = add(0, "head")
	return lp
}

func loraSize(c ModelConfig) int {
	n := 0
	for _, mod := range loraModules {
		in, out := moduleDims(c, mod)
		n += c.Layers * c.Rank * (in + out)
	}
	in, out := moduleDims(c, "head")
	return n + c.Rank*(in+out)
}

// bLRScale returns a vector over the bank's flat layout holding 1 on the A
// factors and ratio on the B factors: LoRA+'s separate learning rate for B.
func (lp *loraParams) bLRScale(ratio float32) []float32 {
	s := make([]float32, len(lp.flat))
	off := 0
	for _, f := range lp.all {
		for i := range f.a {
			s[off+i] = 1
		}
		off += len(f.a)
		for i := range f.bt {
			s[off+i] = ratio
		}
		off += len(f.bt)
	}
	return s
}

// bankFromUpdate copies one group of u into kernel layout, checking that
// every factor is present, has the PEFT shape and is finite.
func bankFromUpdate(c ModelConfig, u *adapter.Update, group string) (*loraParams, error) {
	ts, ok := u.Groups[group]
	if !ok {
		return nil, fmt.Errorf("%w: group %q missing", ErrBanks, group)
	}
	r := c.Rank
	lp := newLoRA(c, nil)
	for _, f := range lp.all {
		ka, kb := loraKey(f.layer, f.module, "A"), loraKey(f.layer, f.module, "B")
		a, b := ts[ka], ts[kb]
		if a == nil || b == nil {
			missing := ka
			if a != nil {
				missing = kb
			}
			return nil, fmt.Errorf("%w: %s/%s missing", ErrBanks, group, missing)
		}
		if !shapeIs(a, r, f.in) {
			return nil, fmt.Errorf("%w: %s/%s has shape %v, want [%d %d]", ErrBanks, group, ka, a.Shape, r, f.in)
		}
		if !shapeIs(b, f.out, r) {
			return nil, fmt.Errorf("%w: %s/%s has shape %v, want [%d %d]", ErrBanks, group, kb, b.Shape, f.out, r)
		}
		for i, v := range a.Data {
			if !finite32(v) {
				return nil, fmt.Errorf("%w: %s/%s holds a non-finite value", ErrBanks, group, ka)
			}
			f.a[i] = v
		}
		for j := 0; j < f.out; j++ {
			for i := 0; i < r; i++ {
				v := b.Data[j*r+i]
				if !finite32(v) {
					return nil, fmt.Errorf("%w: %s/%s holds a non-finite value", ErrBanks, group, kb)
				}
				f.bt[i*f.out+j] = v
			}
		}
	}
	return lp, nil
}

// storeInto writes the bank back into u's group in PEFT layout.
func (lp *loraParams) storeInto(c ModelConfig, u *adapter.Update, group string) {
	r := c.Rank
	for _, f := range lp.all {
		a, b := adapter.NewTensor(r, f.in), adapter.NewTensor(f.out, r)
		copy(a.Data, f.a)
		for i := 0; i < r; i++ {
			for j := 0; j < f.out; j++ {
				b.Data[j*r+i] = f.bt[i*f.out+j]
			}
		}
		u.Set(group, loraKey(f.layer, f.module, "A"), a)
		u.Set(group, loraKey(f.layer, f.module, "B"), b)
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
	for _, g := range groups {
		lp := newLoRA(c, nil)
		for _, f := range lp.all {
			bound := 1 / math.Sqrt(float64(f.in))
			for i := range f.a {
				f.a[i] = float32((2*rng.Float64() - 1) * bound)
			}
		}
		lp.storeInto(c, u, g.Name)
	}
	return u
}

// factor returns lp's counterpart of f, a factor of another bank of the
// same shape.
func (lp *loraParams) factor(f *loraFactor) *loraFactor { return lp.all[f.idx] }
