package dlm

import (
	"math"
)

const lnEps = 1e-5

// normCache keeps what a layer norm's backward pass needs.
type normCache struct {
	out, xhat, rstd []float32
}

func newNormCache(rows, d int) normCache {
	return normCache{out: make([]float32, rows*d), xhat: make([]float32, rows*d), rstd: make([]float32, rows)}
}

type blockCache struct {
	hin   []float32 // residual stream entering the block (L×d)
	ln1   normCache
	q     []float32
	k     []float32
	v     []float32
	smid  [4][]float32 // (α/r)·x·Aᵀ per adapted module (L×r)
	probs []float32    // heads × L × L
	ctx   []float32    // attention output before o_proj (L×d)
	hmid  []float32    // residual stream after attention (L×d)
	ln2   normCache
	up    []float32 // MLP pre-activation (L×FF)
	act   []float32 // ReLU(up)
}

// seqWork is one core's scratch for one sequence: the forward pass fills
// the caches, the backward pass reads them. Allocated once per worker.
type seqWork struct {
	cfg    ModelConfig
	tokens []int32 // input ids, MaskToken where masked
	bucket int
	masked []int32 // positions whose byte the loss predicts
	blocks []blockCache
	hfin   []float32 // residual stream after the last block
	lnf    normCache
	zm     []float32 // final-norm rows of the masked positions (M×d)
	logits []float32 // M × ByteVocab; after lossAndGrad, ∂loss/∂logits

	// backward scratch
	dh, dx, da, dq, dk, dv, dctx []float32
	dP                           []float32
	dmid                         []float32
	dup                          []float32
	dzm                          []float32
	hasBank                      bool
}

func newSeqWork(c ModelConfig) *seqWork {
	L, d, f := c.SeqLen, c.DModel, c.FF
	w := &seqWork{cfg: c, tokens: make([]int32, L), masked: make([]int32, 0, L)}
	w.blocks = make([]blockCache, c.Layers)
	for l := range w.blocks {
		b := &w.blocks[l]
		b.hin = make([]float32, L*d)
		b.ln1 = newNormCache(L, d)
		b.q, b.k, b.v = make([]float32, L*d), make([]float32, L*d), make([]float32, L*d)
		for m := range b.smid {
			b.smid[m] = make([]float32, L*c.Rank)
		}
		b.probs = make([]float32, c.Heads*L*L)
		b.ctx = make([]float32, L*d)
		b.hmid = make([]float32, L*d)
		b.ln2 = newNormCache(L, d)
		b.up = make([]float32, L*f)
		b.act = make([]float32, L*f)
	}
	w.hfin = make([]float32, L*d)
	w.lnf = newNormCache(L, d)
	w.zm = make([]float32, L*d)
	w.logits = make([]float32, L*ByteVocab)
	w.dh, w.dx, w.da = make([]float32, L*d), make([]float32, L*d), make([]float32, L*d)
	w.dq, w.dk, w.dv, w.dctx = make([]float32, L*d), make([]float32, L*d), make([]float32, L*d), make([]float32, L*d)
	w.dP = make([]float32, L*L)
	w.dmid = make([]float32, L*c.Rank)
	w.dup = make([]float32, L*f)
	w.dzm = make([]float32, L*d)
	return w
}

func layerNorm(nc *normCache, x, g, b []float32, rows, d int) {
	for i := 0; i < rows; i++ {
		xr := x[i*d : (i+1)*d]
		var mean float32
		for _, v := range xr {
			mean += v
		}
		mean /= float32(d)
		var varsum float32
		for _, v := range xr {
			dv := v - mean
			varsum += dv * dv
		}
		rstd := float32(1 / math.Sqrt(float64(varsum/float32(d))+lnEps))
		nc.rstd[i] = rstd
		xh := nc.xhat[i*d : (i+1)*d]
		out := nc.out[i*d : (i+1)*d]
		for j, v := range xr {
			h := (v - mean) * rstd
			xh[j] = h
			out[j] = h*g[j] + b[j]
		}
	}
}

// layerNormBack adds ∂loss/∂x to dx given dout; gradients of the gain and
// bias go to dg, db when non-nil.
func layerNormBack(nc *normCache, dout, g, dx, dg, db []float32, rows, d int) {
	inv := 1 / float32(d)
	for i := 0; i < rows; i++ {
		do := dout[i*d : (i+1)*d]
		xh := nc.xhat[i*d : (i+1)*d]
		var sum, sumxh float32
		for j, v := range do {
			gx := v * g[j]
			sum += gx
			sumxh += gx * xh[j]
		}
		if dg != nil {
			for j, v := range do {
				dg[j] += v * xh[j]
				db[j] += v
			}
		}
		rstd := nc.rstd[i]
		mean, meanxh := sum*inv, sumxh*inv
		dxr := dx[i*d : (i+1)*d]
		for j, v := range do {
			dxr[j] += rstd * (v*g[j] - mean - xh[j]*meanxh)
		}
	}
}

func addBias(y, b []float32, rows int) {
	n := len(b)
	for i := 0; i < rows; i++ {
		r := y[i*n : (i+1)*n]
		for j := range r {
			r[j] += b[j]
		}
	}
}

func colSum(db, dy []float32, rows int) {
	n := len(db)
	for i := 0; i < rows; i++ {
		r := dy[i*n : (i+1)*n]
		for j := range r {
			db[j] += r[j]
		}
	}
}

// forward runs the denoiser on w.tokens at time bucket w.bucket and leaves
// the logits of the masked positions in w.logits. bank may be nil.
func (w *seqWork) forward(p *params, bank *loraParams) {
	c := w.cfg
	L, d, H, dh, r := c.SeqLen, c.DModel, c.Heads, c.headDim(), c.Rank
	w.hasBank = bank != nil
	h := w.blocks[0].hin
	tb := p.time[w.bucket*d : (w.bucket+1)*d]
	for i, tok := range w.tokens {
		te := p.tok[int(tok)*d : (int(tok)+1)*d]
		pe := p.pos[i*d : (i+1)*d]
		hr := h[i*d : (i+1)*d]
		for j := range hr {
			hr[j] = te[j] + pe[j] + tb[j]
		}
	}
	scale := float32(1 / math.Sqrt(float64(dh)))
	ls := c.loraScale()
	for l := range w.blocks {
		bc, bp := &w.blocks[l], &p.blocks[l]
		layerNorm(&bc.ln1, bc.hin, bp.ln1.g, bp.ln1.b, L, d)
		a := bc.ln1.out
		for m, out := range [3][]float32{bc.q, bc.k, bc.v} {
			lin := [3]*linear{&bp.q, &bp.k, &bp.v}[m]
			matmul(out, a, lin.w, L, d, d, false)
			addBias(out, lin.b, L)
			if bank != nil {
				w.loraForward(bc.smid[m], out, a, bank.at[l][m], bank.bt[l][m], ls, L, d, r)
			}
		}
		for hd := 0; hd < H; hd++ {
			off := hd * dh
			P := bc.probs[hd*L*L : (hd+1)*L*L]
			mulAdd(false, true, L, L, dh, bc.q[off:], d, bc.k[off:], d, 0, P, L)
			for i := 0; i < L; i++ {
				softmaxScaled(P[i*L:(i+1)*L], scale)
			}
			mulAdd(false, false, L, dh, L, P, L, bc.v[off:], d, 0, bc.ctx[off:], d)
		}
		// o_proj output goes straight into the residual stream.
		copy(bc.hmid, bc.hin)
		matmul(bc.hmid, bc.ctx, bp.o.w, L, d, d, true)
		addBias(bc.hmid, bp.o.b, L)
		if bank != nil {
			w.loraForward(bc.smid[3], bc.hmid, bc.ctx, bank.at[l][3], bank.bt[l][3], ls, L, d, r)
		}
		layerNorm(&bc.ln2, bc.hmid, bp.ln2.g, bp.ln2.b, L, d)
		matmul(bc.up, bc.ln2.out, bp.up.w, L, d, c.FF, false)
		addBias(bc.up, bp.up.b, L)
		for i, v := range bc.up {
			bc.act[i] = max(v, 0)
		}
		next := w.hfin
		if l+1 < len(w.blocks) {
			next = w.blocks[l+1].hin
		}
		copy(next, bc.hmid)
		matmul(next, bc.act, bp.down.w, L, c.FF, d, true)
		addBias(next, bp.down.b, L)
	}
	layerNorm(&w.lnf, w.hfin, p.lnf.g, p.lnf.b, L, d)
	M := len(w.masked)
	for i, pos := range w.masked {
		copy(w.zm[i*d:(i+1)*d], w.lnf.out[int(pos)*d:(int(pos)+1)*d])
	}
	matmul(w.logits, w.zm, p.head.w, M, d, ByteVocab, false)
	addBias(w.logits[:M*ByteVocab], p.head.b, M)
}

// loraForward adds (α/r)·x·Aᵀ·Bᵀ to out and keeps (α/r)·x·Aᵀ for backward.
func (w *seqWork) loraForward(smid, out, x, at, bt []float32, ls float32, L, d, r int) {
	matmul(smid, x, at, L, d, r, false)
	for i := range smid {
		smid[i] *= ls
	}
	matmul(out, smid, bt, L, r, d, true)
}

// softmaxScaled turns a row of raw scores s into softmax(scale·s) in place.
func softmaxScaled(row []float32, scale float32) {
	mx := row[0]
	for _, v := range row[1:] {
		mx = max(mx, v)
	}
	var sum float32
	for j, v := range row {
		e := expf((v - mx) * scale)
		row[j] = e
		sum += e
	}
	inv := 1 / sum
	for j := range row {
		row[j] *= inv
	}
}

// lossAndGrad turns w.logits into ∂(weight·Σ CE)/∂logits in place and
// returns Σ CE (nats) over the masked positions, given their true bytes.
func (w *seqWork) lossAndGrad(targets []byte, weight float32, keepGrad bool) float64 {
	var total float64
	for i, pos := range w.masked {
		row := w.logits[i*ByteVocab : (i+1)*ByteVocab]
		mx := row[0]
		for _, v := range row[1:] {
			mx = max(mx, v)
		}
		var sum float32
		for j, v := range row {
			e := expf(v - mx)
			row[j] = e
			sum += e
		}
		tgt := int(targets[pos])
		total += float64(math.Log(float64(sum))) - math.Log(float64(row[tgt]))
		if keepGrad {
			inv := weight / sum
			for j := range row {
				row[j] *= inv
			}
			row[tgt] -= weight
		}
	}
	return total
}

// backward propagates w.logits (now ∂loss/∂logits) down the network. dbank
// receives the bank's gradient when non-nil; dp receives the base weights'
// gradient when non-nil (pretraining only, so the frozen-base path skips
// every weight-gradient product).
func (w *seqWork) backward(p *params, bank, dbank *loraParams, dp *params) {
	c := w.cfg
	L, d, H, hd, r := c.SeqLen, c.DModel, c.Heads, c.headDim(), c.Rank
	M := len(w.masked)
	// head
	matmul(w.dzm, w.logits, p.head.wt, M, ByteVocab, d, false)
	if dp != nil {
		matmulTA(dp.head.w, w.zm, w.logits, M, d, ByteVocab)
		colSum(dp.head.b, w.logits, M)
	}
	dz := w.dx
	clear(dz)
	for i, pos := range w.masked {
		copy(dz[int(pos)*d:(int(pos)+1)*d], w.dzm[i*d:(i+1)*d])
	}
	dh := w.dh
	clear(dh)
	var dg, db []float32
	if dp != nil {
		dg, db = dp.lnf.g, dp.lnf.b
	}
	layerNormBack(&w.lnf, dz, p.lnf.g, dh, dg, db, L, d)
	scale := float32(1 / math.Sqrt(float64(hd)))
	for l := len(w.blocks) - 1; l >= 0; l-- {
		bc, bp := &w.blocks[l], &p.blocks[l]
		var gp *blockParams
		if dp != nil {
			gp = &dp.blocks[l]
		}
		// MLP: dh is ∂/∂(block output); the residual passes it to hmid unchanged.
		matmul(w.dup, dh, bp.down.wt, L, d, c.FF, false)
		if gp != nil {
			matmulTA(gp.down.w, bc.act, dh, L, c.FF, d)
			colSum(gp.down.b, dh, L)
		}
		for i, v := range bc.up {
			if v <= 0 {
				w.dup[i] = 0
			}
		}
		da := w.da
		matmul(da, w.dup, bp.up.wt, L, c.FF, d, false)
		if gp != nil {
			matmulTA(gp.up.w, bc.ln2.out, w.dup, L, d, c.FF)
			colSum(gp.up.b, w.dup, L)
			layerNormBack(&bc.ln2, da, bp.ln2.g, dh, gp.ln2.g, gp.ln2.b, L, d)
		} else {
			layerNormBack(&bc.ln2, da, bp.ln2.g, dh, nil, nil, L, d)
		}
		// dh is now ∂/∂hmid. Attention output projection.
		matmul(w.dctx, dh, bp.o.wt, L, d, d, false)
		if gp != nil {
			matmulTA(gp.o.w, bc.ctx, dh, L, d, d)
			colSum(gp.o.b, dh, L)
		}
		if bank != nil {
			w.loraBack(bc.smid[3], dh, bc.ctx, w.dctx, bank.at[l][3], bank.bt[l][3], dbank, l, 3, L, d, r)
		}
		for head := 0; head < H; head++ {
			off := head * hd
			P := bc.probs[head*L*L : (head+1)*L*L]
			mulAdd(false, true, L, L, hd, w.dctx[off:], d, bc.v[off:], d, 0, w.dP, L)
			mulAdd(true, false, L, hd, L, P, L, w.dctx[off:], d, 0, w.dv[off:], d)
			for i := 0; i < L; i++ {
				pr, dpr := P[i*L:(i+1)*L], w.dP[i*L:(i+1)*L]
				var dot float32
				for j, v := range pr {
					dot += v * dpr[j]
				}
				for j, v := range pr {
					dpr[j] = v * (dpr[j] - dot) * scale
				}
			}
			mulAdd(false, false, L, hd, L, w.dP, L, bc.k[off:], d, 0, w.dq[off:], d)
			mulAdd(true, false, L, hd, L, w.dP, L, bc.q[off:], d, 0, w.dk[off:], d)
		}
		da = w.da
		clear(da)
		a := bc.ln1.out
		for m, dy := range [3][]float32{w.dq, w.dk, w.dv} {
			lin := [3]*linear{&bp.q, &bp.k, &bp.v}[m]
			matmul(da, dy, lin.wt, L, d, d, true)
			if gp != nil {
				glin := [3]*linear{&gp.q, &gp.k, &gp.v}[m]
				matmulTA(glin.w, a, dy, L, d, d)
				colSum(glin.b, dy, L)
			}
			if bank != nil {
				w.loraBack(bc.smid[m], dy, a, da, bank.at[l][m], bank.bt[l][m], dbank, l, m, L, d, r)
			}
		}
		if gp != nil {
			layerNormBack(&bc.ln1, da, bp.ln1.g, dh, gp.ln1.g, gp.ln1.b, L, d)
		} else {
			layerNormBack(&bc.ln1, da, bp.ln1.g, dh, nil, nil, L, d)
		}
	}
	if dp != nil {
		tb := dp.time[w.bucket*d : (w.bucket+1)*d]
		for i, tok := range w.tokens {
			te := dp.tok[int(tok)*d : (int(tok)+1)*d]
			pe := dp.pos[i*d : (i+1)*d]
			hr := dh[i*d : (i+1)*d]
			for j, v := range hr {
				te[j] += v
				pe[j] += v
				tb[j] += v
			}
		}
	}
}

// loraBack accumulates the bank gradient of one adapted module and adds the
// LoRA path's contribution to dx. dy is ∂/∂(module output).
func (w *seqWork) loraBack(smid, dy, x, dx, at, bt []float32, dbank *loraParams, l, m, L, d, r int) {
	ls := w.cfg.loraScale()
	// ∂/∂smid = dy·btᵀ; the chain rule through smid = (α/r)·x·at adds α/r.
	mulAdd(false, true, L, r, d, dy, d, bt, d, 0, w.dmid, r)
	for i := range w.dmid {
		w.dmid[i] *= ls
	}
	if dbank != nil {
		matmulTA(dbank.bt[l][m], smid, dy, L, r, d)
		matmulTA(dbank.at[l][m], x, w.dmid, L, d, r)
	}
	mulAdd(false, true, L, d, r, w.dmid, r, at, r, 1, dx, d)
}
