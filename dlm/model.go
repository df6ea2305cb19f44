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
	smid  [blockModules][]float32 // (α/r)·x·Aᵀ per adapted module (L×r)
	probs []float32               // heads × L × L
	ctx   []float32               // attention output before o_proj (L×d)
	hmid  []float32               // residual stream after attention (L×d)
	nq    int                     // query rows: L, or the masked rows in the last block
	aq    []float32               // last block: ln1 output at the masked rows
	hinq  []float32               // last block: residual stream at the masked rows
	qT    []float32               // q, k, v transposed (d×rows), for the per-head products
	kT    []float32
	vT    []float32
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
	logits []float32 // M × ByteVocab; after lossAndGrad, ∂loss/∂logits
	smidH  []float32 // (α/r)·x·Aᵀ of the head's LoRA (M×r)

	// backward scratch
	dh, dhFull, da, daq        []float32
	dq, dk, dv, dctx           []float32
	dP                         []float32
	ctxT, dctxT, dqT, dkT, dvT []float32 // d×L
	dmid                       []float32
	dup                        []float32
	dzm                        []float32
	hasBank                    bool
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
		b.aq, b.hinq = make([]float32, L*d), make([]float32, L*d)
		b.qT, b.kT, b.vT = make([]float32, L*d), make([]float32, L*d), make([]float32, L*d)
		b.probs = make([]float32, c.Heads*L*L)
		b.ctx = make([]float32, L*d)
		b.hmid = make([]float32, L*d)
		b.ln2 = newNormCache(L, d)
		b.up = make([]float32, L*f)
		b.act = make([]float32, L*f)
	}
	w.hfin = make([]float32, L*d)
	w.lnf = newNormCache(L, d)
	w.logits = make([]float32, L*ByteVocab)
	w.smidH = make([]float32, L*c.Rank)
	w.dh, w.dhFull = make([]float32, L*d), make([]float32, L*d)
	w.da, w.daq = make([]float32, L*d), make([]float32, L*d)
	w.dq, w.dk, w.dv, w.dctx = make([]float32, L*d), make([]float32, L*d), make([]float32, L*d), make([]float32, L*d)
	w.dP = make([]float32, L*L)
	w.ctxT, w.dctxT = make([]float32, L*d), make([]float32, L*d)
	w.dqT, w.dkT, w.dvT = make([]float32, L*d), make([]float32, L*d), make([]float32, L*d)
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

// transpose writes the cols×rows transpose of src (rows×cols) into dst.
func transpose(dst, src []float32, rows, cols int) {
	for i := 0; i < rows; i++ {
		row := src[i*cols : (i+1)*cols]
		for j, v := range row {
			dst[j*rows+i] = v
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
//
// The loss only reads the masked positions, so the last block computes its
// output there alone: keys and values still come from every position, but
// its queries, output projection and MLP run on the masked rows, and so
// does the final norm.
func (w *seqWork) forward(p *params, bank *loraParams) {
	c := w.cfg
	L, d, H, hd := c.SeqLen, c.DModel, c.Heads, c.headDim()
	M := len(w.masked)
	if M == 0 {
		return
	}
	h := w.blocks[0].hin
	tb := p.time[w.bucket*d : (w.bucket+1)*d]
	for i, tok := range w.tokens {
		pv, nx := w.neighbours(i)
		te := p.tok[int(tok)*d : (int(tok)+1)*d]
		be := p.prev[pv*d : (pv+1)*d]
		ae := p.next[nx*d : (nx+1)*d]
		pe := p.pos[i*d : (i+1)*d]
		hr := h[i*d : (i+1)*d]
		for j := range hr {
			hr[j] = te[j] + be[j] + ae[j] + pe[j] + tb[j]
		}
	}
	scale := float32(1 / math.Sqrt(float64(hd)))
	for l := range w.blocks {
		bc, bp := &w.blocks[l], &p.blocks[l]
		layerNorm(&bc.ln1, bc.hin, bp.ln1.g, bp.ln1.b, L, d)
		a := bc.ln1.out
		nq, aq, hinq := L, a, bc.hin
		if l == len(w.blocks)-1 {
			nq = M
			gatherRows(bc.aq, a, w.masked, d)
			gatherRows(bc.hinq, bc.hin, w.masked, d)
			aq, hinq = bc.aq, bc.hinq
		}
		bc.nq = nq
		matmul(bc.q, aq, bp.q.w, nq, d, d, false)
		addBias(bc.q, bp.q.b, nq)
		matmul(bc.k, a, bp.k.w, L, d, d, false)
		addBias(bc.k, bp.k.b, L)
		matmul(bc.v, a, bp.v.w, L, d, d, false)
		addBias(bc.v, bp.v.b, L)
		if bank != nil {
			lb := &bank.blocks[l]
			w.loraForward(bc.smid[modQ], bc.q, aq, lb[modQ], nq)
			w.loraForward(bc.smid[modK], bc.k, a, lb[modK], L)
			w.loraForward(bc.smid[modV], bc.v, a, lb[modV], L)
		}
		// Heads work on transposed (d×rows) copies so that every product
		// runs along rows of length L or nq instead of the head width.
		transpose(bc.qT, bc.q, nq, d)
		transpose(bc.kT, bc.k, L, d)
		transpose(bc.vT, bc.v, L, d)
		for head := 0; head < H; head++ {
			off := head * hd
			P := bc.probs[head*L*L : head*L*L+nq*L]
			// S = Q_h·K_hᵀ (nq×L)
			mulAdd(false, false, nq, L, hd, bc.q[off:], d, bc.kT[off*L:], L, 0, P, L)
			for i := 0; i < nq; i++ {
				softmaxScaled(P[i*L:(i+1)*L], scale)
			}
			// ctx_hᵀ = V_hᵀ·Pᵀ (hd×nq)
			mulAdd(false, true, hd, nq, L, bc.vT[off*L:], L, P, L, 0, w.ctxT[off*nq:], nq)
		}
		transpose(bc.ctx, w.ctxT, d, nq)
		// o_proj output goes straight into the residual stream.
		copy(bc.hmid[:nq*d], hinq[:nq*d])
		matmul(bc.hmid, bc.ctx, bp.o.w, nq, d, d, true)
		addBias(bc.hmid, bp.o.b, nq)
		if bank != nil {
			w.loraForward(bc.smid[modO], bc.hmid, bc.ctx, bank.blocks[l][modO], nq)
		}
		layerNorm(&bc.ln2, bc.hmid, bp.ln2.g, bp.ln2.b, nq, d)
		matmul(bc.up, bc.ln2.out, bp.up.w, nq, d, c.FF, false)
		addBias(bc.up, bp.up.b, nq)
		if bank != nil {
			w.loraForward(bc.smid[modUp], bc.up, bc.ln2.out, bank.blocks[l][modUp], nq)
		}
		for i, v := range bc.up[:nq*c.FF] {
			bc.act[i] = max(v, 0)
		}
		next := w.hfin
		if l+1 < len(w.blocks) {
			next = w.blocks[l+1].hin
		}
		copy(next[:nq*d], bc.hmid[:nq*d])
		matmul(next, bc.act, bp.down.w, nq, c.FF, d, true)
		addBias(next, bp.down.b, nq)
		if bank != nil {
			w.loraForward(bc.smid[modDown], next, bc.act, bank.blocks[l][modDown], nq)
		}
	}
	layerNorm(&w.lnf, w.hfin, p.lnf.g, p.lnf.b, M, d)
	matmul(w.logits, w.lnf.out, p.head.w, M, d, ByteVocab, false)
	addBias(w.logits[:M*ByteVocab], p.head.b, M)
	if bank != nil {
		w.loraForward(w.smidH, w.logits, w.lnf.out, bank.head, M)
	}
}

// neighbours returns the input tokens before and after position i
// (EdgeToken beyond the window). Adding their embeddings to a position's
// own gives the first block the adjacent bytes for free — the strongest
// signal in byte-level text — instead of making attention discover
// "the position next to mine" from absolute positions, which a model this
// small learns only after many thousands of steps.
func (w *seqWork) neighbours(i int) (prev, next int) {
	prev, next = EdgeToken, EdgeToken
	if i > 0 {
		prev = int(w.tokens[i-1])
	}
	if i+1 < len(w.tokens) {
		next = int(w.tokens[i+1])
	}
	return prev, next
}

func gatherRows(dst, src []float32, rows []int32, d int) {
	for i, r := range rows {
		copy(dst[i*d:(i+1)*d], src[int(r)*d:(int(r)+1)*d])
	}
}

func scatterAddRows(dst, src []float32, rows []int32, d int) {
	for i, r := range rows {
		dr, sr := dst[int(r)*d:(int(r)+1)*d], src[i*d:(i+1)*d]
		for j, v := range sr {
			dr[j] += v
		}
	}
}

// loraForward adds (α/r)·x·Aᵀ·Bᵀ to out (rows×f.out) for x (rows×f.in)
// and keeps (α/r)·x·Aᵀ for backward.
func (w *seqWork) loraForward(smid, out, x []float32, f *loraFactor, rows int) {
	r := w.cfg.Rank
	mulAdd(false, true, rows, r, f.in, x, f.in, f.a, f.in, 0, smid, r)
	ls := w.cfg.loraScale()
	for i := range smid[:rows*r] {
		smid[i] *= ls
	}
	matmul(out, smid, f.bt, rows, r, f.out, true)
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
		// CE = log Σ exp(z − max) − (z_target − max): taken from the
		// logit, not from its exponential, which underflows to 0 for a
		// confidently wrong model and would make the loss +Inf.
		tgt := int(targets[pos])
		shifted := float64(row[tgt] - mx)
		var sum float32
		for j, v := range row {
			e := expf(v - mx)
			row[j] = e
			sum += e
		}
		total += math.Log(float64(sum)) - shifted
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
	L, d, H, hd := c.SeqLen, c.DModel, c.Heads, c.headDim()
	M := len(w.masked)
	if M == 0 {
		return
	}
	matmul(w.dzm, w.logits, p.head.wt, M, ByteVocab, d, false)
	if bank != nil {
		w.loraBack(w.smidH, w.logits, w.lnf.out, w.dzm, bank.head, dbank, M)
	}
	if dp != nil {
		matmulTA(dp.head.w, w.lnf.out, w.logits, M, d, ByteVocab)
		colSum(dp.head.b, w.logits, M)
	}
	dh := w.dh
	clear(dh[:M*d])
	var dg, db []float32
	if dp != nil {
		dg, db = dp.lnf.g, dp.lnf.b
	}
	layerNormBack(&w.lnf, w.dzm, p.lnf.g, dh, dg, db, M, d)
	scale := float32(1 / math.Sqrt(float64(hd)))
	for l := len(w.blocks) - 1; l >= 0; l-- {
		bc, bp := &w.blocks[l], &p.blocks[l]
		var gp *blockParams
		if dp != nil {
			gp = &dp.blocks[l]
		}
		nq := bc.nq
		last := l == len(w.blocks)-1
		// MLP: dh is ∂/∂(block output); the residual passes it to hmid unchanged.
		matmul(w.dup, dh, bp.down.wt, nq, d, c.FF, false)
		if gp != nil {
			matmulTA(gp.down.w, bc.act, dh, nq, c.FF, d)
			colSum(gp.down.b, dh, nq)
		}
		var lb *[blockModules]*loraFactor
		if bank != nil {
			lb = &bank.blocks[l]
			w.loraBack(bc.smid[modDown], dh, bc.act, w.dup, lb[modDown], dbank, nq)
		}
		for i, v := range bc.up[:nq*c.FF] {
			if v <= 0 {
				w.dup[i] = 0
			}
		}
		matmul(w.da, w.dup, bp.up.wt, nq, c.FF, d, false)
		if bank != nil {
			w.loraBack(bc.smid[modUp], w.dup, bc.ln2.out, w.da, lb[modUp], dbank, nq)
		}
		if gp != nil {
			matmulTA(gp.up.w, bc.ln2.out, w.dup, nq, d, c.FF)
			colSum(gp.up.b, w.dup, nq)
			layerNormBack(&bc.ln2, w.da, bp.ln2.g, dh, gp.ln2.g, gp.ln2.b, nq, d)
		} else {
			layerNormBack(&bc.ln2, w.da, bp.ln2.g, dh, nil, nil, nq, d)
		}
		// dh is now ∂/∂hmid. Attention output projection.
		matmul(w.dctx, dh, bp.o.wt, nq, d, d, false)
		if gp != nil {
			matmulTA(gp.o.w, bc.ctx, dh, nq, d, d)
			colSum(gp.o.b, dh, nq)
		}
		if bank != nil {
			w.loraBack(bc.smid[modO], dh, bc.ctx, w.dctx, lb[modO], dbank, nq)
		}
		transpose(w.dctxT, w.dctx, nq, d)
		for head := 0; head < H; head++ {
			off := head * hd
			P := bc.probs[head*L*L : head*L*L+nq*L]
			// ∂P = ∂ctx_h·V_hᵀ (nq×L); ∂V_hᵀ = ∂ctx_hᵀ·P (hd×L)
			mulAdd(false, false, nq, L, hd, w.dctx[off:], d, bc.vT[off*L:], L, 0, w.dP, L)
			mulAdd(false, false, hd, L, nq, w.dctxT[off*nq:], nq, P, L, 0, w.dvT[off*L:], L)
			// softmax backward, with the score scale folded in: ∂S
			for i := 0; i < nq; i++ {
				pr, dpr := P[i*L:(i+1)*L], w.dP[i*L:(i+1)*L]
				var dot float32
				for j, v := range pr {
					dot += v * dpr[j]
				}
				for j, v := range pr {
					dpr[j] = v * (dpr[j] - dot) * scale
				}
			}
			// ∂Q_hᵀ = K_hᵀ·∂Sᵀ (hd×nq); ∂K_hᵀ = Q_hᵀ·∂S (hd×L)
			mulAdd(false, true, hd, nq, L, bc.kT[off*L:], L, w.dP, L, 0, w.dqT[off*nq:], nq)
			mulAdd(false, false, hd, L, nq, bc.qT[off*nq:], nq, w.dP, L, 0, w.dkT[off*L:], L)
		}
		transpose(w.dq, w.dqT, d, nq)
		transpose(w.dk, w.dkT, d, L)
		transpose(w.dv, w.dvT, d, L)
		// Below the first block only the embeddings remain: with a frozen
		// base nothing there needs a gradient, so the input side stops here.
		needInput := l > 0 || dp != nil
		a, aq := bc.ln1.out, bc.ln1.out
		if last {
			aq = bc.aq
		}
		da, daq := w.da, w.da
		if last {
			daq = w.daq
		}
		var dxq, dx []float32
		if needInput {
			clear(da[:L*d])
			clear(daq[:nq*d])
			dxq, dx = daq, da
			matmul(daq, w.dq, bp.q.wt, nq, d, d, true)
			matmul(da, w.dk, bp.k.wt, L, d, d, true)
			matmul(da, w.dv, bp.v.wt, L, d, d, true)
		}
		if gp != nil {
			matmulTA(gp.q.w, aq, w.dq, nq, d, d)
			colSum(gp.q.b, w.dq, nq)
			matmulTA(gp.k.w, a, w.dk, L, d, d)
			colSum(gp.k.b, w.dk, L)
			matmulTA(gp.v.w, a, w.dv, L, d, d)
			colSum(gp.v.b, w.dv, L)
		}
		if bank != nil {
			w.loraBack(bc.smid[modQ], w.dq, aq, dxq, lb[modQ], dbank, nq)
			w.loraBack(bc.smid[modK], w.dk, a, dx, lb[modK], dbank, L)
			w.loraBack(bc.smid[modV], w.dv, a, dx, lb[modV], dbank, L)
		}
		if !needInput {
			break
		}
		// ∂hin = ∂hmid through the residual (scattered back to the masked
		// rows in the last block) + the layer norm's share.
		if last {
			scatterAddRows(da, daq, w.masked, d)
			clear(w.dhFull)
			scatterAddRows(w.dhFull, dh, w.masked, d)
			dh = w.dhFull
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
			pv, nx := w.neighbours(i)
			te := dp.tok[int(tok)*d : (int(tok)+1)*d]
			be := dp.prev[pv*d : (pv+1)*d]
			ae := dp.next[nx*d : (nx+1)*d]
			pe := dp.pos[i*d : (i+1)*d]
			hr := dh[i*d : (i+1)*d]
			for j, v := range hr {
				te[j] += v
				be[j] += v
				ae[j] += v
				pe[j] += v
				tb[j] += v
			}
		}
	}
}

// loraBack accumulates the gradient of factor f into its counterpart in
// dbank (when non-nil) and adds the LoRA path's contribution to dx (when
// non-nil). dy is ∂/∂(module output), rows×f.out; x the module input.
func (w *seqWork) loraBack(smid, dy, x, dx []float32, f *loraFactor, dbank *loraParams, rows int) {
	r := w.cfg.Rank
	ls := w.cfg.loraScale()
	// ∂/∂smid = dy·btᵀ; the chain rule through smid = (α/r)·x·Aᵀ adds α/r.
	dmid := w.dmid[:rows*r]
	mulAdd(false, true, rows, r, f.out, dy, f.out, f.bt, f.out, 0, dmid, r)
	for i := range dmid {
		dmid[i] *= ls
	}
	if dbank != nil {
		g := dbank.factor(f)
		matmulTA(g.bt, smid, dy, rows, r, f.out)
		// ∂A (r×in) = dmidᵀ·x
		mulAdd(true, false, r, f.in, rows, dmid, r, x, f.in, 1, g.a, f.in)
	}
	if dx != nil {
		matmul(dx, dmid, f.a, rows, r, f.in, true)
	}
}
