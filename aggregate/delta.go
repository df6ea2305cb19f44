package aggregate

import (
	"fmt"

	"github.com/dafnet/daf/adapter"
)

// DeltaWeight is the dense weight change ΔW = (α/r)·B·A of one LoRA module
// of a group, shaped like the base layer's stored weight: out×in, or in×out
// when the adapter says fan_in_fan_out (GPT-2's Conv1D stores weights
// transposed, and PEFT applies (α/r)·(B·A)ᵀ there). Aggregation itself
// never needs the orientation: transposing commutes with every strategy and
// with re-factorisation, so factors are aggregated as they are stored.
func DeltaWeight(u *adapter.Update, group, module string) (*adapter.Tensor, error) {
	ts := u.Groups[group]
	a, b := ts[module+".lora_A.weight"], ts[module+".lora_B.weight"]
	if a == nil {
		a = ts[module+".lora_A"]
	}
	if b == nil {
		b = ts[module+".lora_B"]
	}
	if a == nil || b == nil {
		return nil, fmt.Errorf("%w: group %s has no lora_A/lora_B pair for module %s", ErrNeedFactors, group, module)
	}
	if len(a.Shape) != 2 || len(b.Shape) != 2 || a.Shape[0] != b.Shape[1] {
		return nil, fmt.Errorf("%w: group %s module %s: lora_A %v and lora_B %v do not form B·A", ErrMismatch, group, module, a.Shape, b.Shape)
	}
	r, out, in := a.Shape[0], b.Shape[0], a.Shape[1]
	scale := effectiveAlpha(u, r) / float64(r)
	m := make([]float64, out*in)
	for row := 0; row < out; row++ {
		for p := 0; p < r; p++ {
			c := float64(b.Data[row*r+p])
			if c == 0 {
				continue
			}
			for col, v := range a.Data[p*in : (p+1)*in] {
				m[row*in+col] += c * float64(v)
			}
		}
	}
	if !u.Meta.FanInFanOut {
		t := adapter.NewTensor(out, in)
		for i, v := range m {
			t.Data[i] = float32(scale * v)
		}
		return t, nil
	}
	t := adapter.NewTensor(in, out)
	for row := 0; row < out; row++ {
		for col := 0; col < in; col++ {
			t.Data[col*out+row] = float32(scale * m[row*in+col])
		}
	}
	return t, nil
}

// WithBase turns a delta into full factors: base + delta, tensor by tensor,
// as kind adapter. The base carries the same groups as the delta, or a single
// group (a plain PEFT adapter's "all") that serves every group of the delta.
// The delta keeps its own metadata; rank, lora_alpha and fan_in_fan_out come
// from the base where the delta does not set them.
func WithBase(delta, base *adapter.Update) (*adapter.Update, error) {
	if kindOf(delta) != adapter.KindDelta {
		return nil, fmt.Errorf("%w: node %q is already daf.kind=%s; --base applies to deltas", ErrMismatch, delta.Meta.Node, kindOf(delta))
	}
	out := delta.Clone()
	out.Meta.Kind = adapter.KindAdapter
	if out.Meta.Rank == 0 {
		out.Meta.Rank = base.Meta.Rank
	}
	if out.Meta.LoraAlpha == 0 {
		out.Meta.LoraAlpha = base.Meta.LoraAlpha
	}
	out.Meta.FanInFanOut = out.Meta.FanInFanOut || base.Meta.FanInFanOut
	var only map[string]*adapter.Tensor
	if len(base.Groups) == 1 {
		for _, ts := range base.Groups {
			only = ts
		}
	}
	for _, g := range out.GroupNames() {
		bts := base.Groups[g]
		if bts == nil {
			bts = only
		}
		if bts == nil {
			return nil, fmt.Errorf("%w: the base has no group %s for node %q", ErrMismatch, g, delta.Meta.Node)
		}
		for _, k := range out.Keys(g) {
			t, bt := out.Groups[g][k], bts[k]
			if bt == nil {
				return nil, fmt.Errorf("%w: the base lacks tensor %s of node %q group %s", ErrMismatch, k, delta.Meta.Node, g)
			}
			if !bt.SameShape(t) {
				return nil, fmt.Errorf("%w: group %s tensor %s: node %q has shape %v, the base %v", ErrMismatch, g, k, delta.Meta.Node, t.Shape, bt.Shape)
			}
			for i := range t.Data {
				t.Data[i] += bt.Data[i]
			}
		}
	}
	return out, nil
}
