package dlm

import "fmt"

// A linear map is stored as w (in×out, so the forward pass is x·w with
// contiguous rows) plus a transposed copy wt (out×in) that the backward pass
// multiplies by. The copy is derived, never saved: refresh rebuilds it.
type linear struct {
	in, out int
	w, b    []float32
	wt      []float32
}

func (l *linear) refresh() {
	for i := 0; i < l.in; i++ {
		row := l.w[i*l.out : (i+1)*l.out]
		for j, v := range row {
			l.wt[j*l.in+i] = v
		}
	}
}

type norm struct{ g, b []float32 }

type blockParams struct {
	ln1        norm
	q, k, v, o linear
	ln2        norm
	up, down   linear
}

// params is a view of one flat float32 vector as the model's tensors. The
// flat vector makes optimisers, gradient sums and file I/O one loop each.
type params struct {
	cfg     ModelConfig
	flat    []float32
	tok     []float32 // InputVocab × d
	prev    []float32 // ShiftVocab × d: embedding of the byte before
	next    []float32 // ShiftVocab × d: embedding of the byte after
	pos     []float32 // SeqLen × d
	time    []float32 // TimeBuckets × d
	blocks  []blockParams
	lnf     norm
	head    linear // d → ByteVocab
	tensors []namedTensor
}

type namedTensor struct {
	name  string
	shape []int
	data  []float32
}

// layout lists every tensor in file order; newParams and the file codec
// both follow it, so the two cannot disagree.
func layout(c ModelConfig) []namedTensor {
	d := c.DModel
	var ts []namedTensor
	add := func(name string, shape ...int) { ts = append(ts, namedTensor{name: name, shape: shape}) }
	add("embed.tokens", InputVocab, d)
	add("embed.prev_tokens", ShiftVocab, d)
	add("embed.next_tokens", ShiftVocab, d)
	add("embed.positions", c.SeqLen, d)
	add("embed.timesteps", TimeBuckets, d)
	for l := 0; l < c.Layers; l++ {
		p := fmt.Sprintf("layers.%d.", l)
		add(p+"ln1.weight", d)
		add(p+"ln1.bias", d)
		for _, m := range []string{"q", "k", "v", "o"} {
			add(p+"attn."+m+"_proj.weight", d, d)
			add(p+"attn."+m+"_proj.bias", d)
		}
		add(p+"ln2.weight", d)
		add(p+"ln2.bias", d)
		add(p+"mlp.up.weight", d, c.FF)
		add(p+"mlp.up.bias", c.FF)
		add(p+"mlp.down.weight", c.FF, d)
		add(p+"mlp.down.bias", d)
	}
	add("final_norm.weight", d)
	add("final_norm.bias", d)
	add("head.weight", d, ByteVocab)
	add("head.bias", ByteVocab)
	return ts
}

func numParams(c ModelConfig) int {
	n := 0
	for _, t := range layout(c) {
		n += shapeSize(t.shape)
	}
	return n
}

func shapeSize(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// newParams binds views onto flat (allocated when nil).
func newParams(c ModelConfig, flat []float32) *params {
	ts := layout(c)
	if flat == nil {
		flat = make([]float32, numParams(c))
	}
	off := 0
	for i := range ts {
		n := shapeSize(ts[i].shape)
		ts[i].data = flat[off : off+n : off+n]
		off += n
	}
	p := &params{cfg: c, flat: flat, tensors: ts}
	next := 0
	take := func() []float32 { t := ts[next].data; next++; return t }
	lin := func(in, out int) linear {
		w := take()
		b := take()
		return linear{in: in, out: out, w: w, b: b, wt: make([]float32, in*out)}
	}
	d := c.DModel
	p.tok, p.prev, p.next, p.pos, p.time = take(), take(), take(), take(), take()
	p.blocks = make([]blockParams, c.Layers)
	for l := range p.blocks {
		bp := &p.blocks[l]
		bp.ln1 = norm{take(), take()}
		bp.q, bp.k, bp.v, bp.o = lin(d, d), lin(d, d), lin(d, d), lin(d, d)
		bp.ln2 = norm{take(), take()}
		bp.up = lin(d, c.FF)
		bp.down = lin(c.FF, d)
	}
	p.lnf = norm{take(), take()}
	p.head = lin(d, ByteVocab)
	return p
}

// refresh rebuilds every derived transposed copy after the weights change.
func (p *params) refresh() {
	for l := range p.blocks {
		bp := &p.blocks[l]
		for _, lin := range []*linear{&bp.q, &bp.k, &bp.v, &bp.o, &bp.up, &bp.down} {
			lin.refresh()
		}
	}
	p.head.refresh()
}

// gradView binds the same tensor views onto a gradient vector; the
// transposed copies are not used for gradients.
func gradView(c ModelConfig, flat []float32) *params {
	return newParams(c, flat)
}
