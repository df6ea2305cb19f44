package aggregate

import (
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"

	"github.com/dafnet/daf/adapter"
)

// loraModule names one LoRA pair of a group.
type loraModule struct{ name, keyA, keyB string }

// splitModules pairs lora_A/lora_B keys per module; other keys are plain
// tensors aggregated element-wise. A module missing a half is refused.
func splitModules(group string, keys []string) ([]loraModule, []string, error) {
	byName := map[string]*loraModule{}
	var plain []string
	for _, k := range keys {
		mod, factor, ok := adapter.SplitLoRAKey(k)
		if !ok {
			plain = append(plain, k)
			continue
		}
		m := byName[mod]
		if m == nil {
			m = &loraModule{name: mod}
			byName[mod] = m
		}
		if factor == "A" {
			m.keyA = k
		} else {
			m.keyB = k
		}
	}
	mods := make([]loraModule, 0, len(byName))
	for _, m := range byName {
		if m.keyA == "" || m.keyB == "" {
			missing := "lora_A"
			if m.keyB == "" {
				missing = "lora_B"
			}
			return nil, nil, fmt.Errorf("%w: group %s module %s has no %s", ErrNeedFactors, group, m.name, missing)
		}
		mods = append(mods, *m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].name < mods[j].name })
	return mods, plain, nil
}

// loraFactors is one item's factor pair of a module: ΔW = scale·B·A.
type loraFactors struct {
	a, b  []float32
	rank  int
	scale float64
}

// moduleFactors reads a module's factors from every member (and the
// reference, if any, as the last item), checking that the outer shapes
// agree. Ranks may differ between items.
func moduleFactors(group string, mod loraModule, ms []member, ref *adapter.Update) (items []loraFactors, out, in int, err error) {
	read := func(who string, u *adapter.Update, ts map[string]*adapter.Tensor) (loraFactors, error) {
		a, b := ts[mod.keyA], ts[mod.keyB]
		if a == nil || b == nil {
			return loraFactors{}, fmt.Errorf("%w: group %s: %s lacks a factor of module %s", ErrMismatch, group, who, mod.name)
		}
		if len(a.Shape) != 2 || len(b.Shape) != 2 || a.Shape[0] != b.Shape[1] {
			return loraFactors{}, fmt.Errorf("%w: group %s module %s: %s has lora_A %v and lora_B %v, which do not form B·A",
				ErrMismatch, group, mod.name, who, a.Shape, b.Shape)
		}
		r := a.Shape[0]
		return loraFactors{a: a.Data, b: b.Data, rank: r, scale: effectiveAlpha(u, r) / float64(r)}, nil
	}
	for i, m := range ms {
		f, err := read(fmt.Sprintf("node %q", m.node), m.u, m.tensors)
		if err != nil {
			return nil, 0, 0, err
		}
		a, b := m.tensors[mod.keyA], m.tensors[mod.keyB]
		if i == 0 {
			out, in = b.Shape[0], a.Shape[1]
		} else if b.Shape[0] != out || a.Shape[1] != in {
			first := ms[0]
			return nil, 0, 0, fmt.Errorf("%w: group %s module %s: node %q has B·A of shape [%d %d], node %q has [%d %d]",
				ErrMismatch, group, mod.name, m.node, b.Shape[0], a.Shape[1], first.node, out, in)
		}
		items = append(items, f)
	}
	if ref != nil {
		f, err := read("the learned_attention reference", ref, ref.Groups[group])
		if err != nil {
			return nil, 0, 0, err
		}
		if len(f.b)/f.rank != out || len(f.a)/f.rank != in {
			return nil, 0, 0, fmt.Errorf("%w: group %s module %s: the learned_attention reference's B·A is [%d %d], the updates' [%d %d]",
				ErrMismatch, group, mod.name, len(f.b)/f.rank, len(f.a)/f.rank, out, in)
		}
		items = append(items, f)
	}
	return items, out, in, nil
}

// productInner adds ⟨ΔW_i, ΔW_j⟩ for every item pair of one module:
// s_i s_j tr(A_iᵀ B_iᵀ B_j A_j) = s_i s_j Σ_pq (B_iᵀB_j)_pq (A_i A_jᵀ)_pq,
// which costs r_i·r_j·(out+in) instead of out·in.
func productInner(g *gram, items []loraFactors, out, in int) {
	bt := make([][]float32, len(items)) // Bᵀ, r × out, rows contiguous
	for i, f := range items {
		t := make([]float32, f.rank*out)
		for row := 0; row < out; row++ {
			for p := 0; p < f.rank; p++ {
				t[p*out+row] = f.b[row*f.rank+p]
			}
		}
		bt[i] = t
	}
	for i, fi := range items {
		for j := i; j < len(items); j++ {
			fj := items[j]
			var s float64
			for p := 0; p < fi.rank; p++ {
				bp := bt[i][p*out : (p+1)*out]
				ap := fi.a[p*in : (p+1)*in]
				for q := 0; q < fj.rank; q++ {
					bb := dot32(bp, bt[j][q*out:(q+1)*out])
					if bb == 0 {
						continue
					}
					s += bb * dot32(ap, fj.a[q*in:(q+1)*in])
				}
			}
			g.add(i, j, fi.scale*fj.scale*s)
		}
	}
}

func dot32(a, b []float32) float64 {
	b = b[:len(a)]
	var s float64
	for i, v := range a {
		s += float64(v) * float64(b[i])
	}
	return s
}

// productGroup is one group aggregated in a product mode: factors at scale
// 1 (B·A is the aggregate ΔW), the rank of each module, and the squared
// truncation error and norm summed over modules.
type productGroup struct {
	tensors     map[string]*adapter.Tensor
	modules     []loraModule
	ranks       []int
	err2, norm2 float64
}

// aggregateProduct runs a strategy on the products ΔW = (α/r)·B·A of a
// group's LoRA modules (Exact or SVD mode); plain tensors go element-wise.
func aggregateProduct(spec strategySpec, group string, keys []string, ms []member, opts Options) (*productGroup, error) {
	mods, plain, err := splitModules(group, keys)
	if err != nil {
		return nil, err
	}
	if err := checkSameShapes(group, plain, ms); err != nil {
		return nil, err
	}
	var ref *adapter.Update
	if !spec.coordinate && opts.Reference != nil && opts.Reference.Groups[group] != nil {
		ref = opts.Reference
	}
	n := len(ms)
	items := make([][]loraFactors, len(mods))
	outs, ins := make([]int, len(mods)), make([]int, len(mods))
	for i, mod := range mods {
		if items[i], outs[i], ins[i], err = moduleFactors(group, mod, ms, ref); err != nil {
			return nil, err
		}
	}
	if err := checkSVDRank(group, items, outs, ins, opts); err != nil {
		return nil, err
	}
	plainXs := elementInputs(plain, ms, ms[0].u)
	var plainRef [][]float32
	if ref != nil {
		if plainRef, err = referenceInputs(ref, group, plain, ms); err != nil {
			return nil, err
		}
	}
	res := &productGroup{tensors: map[string]*adapter.Tensor{}, modules: mods, ranks: make([]int, len(mods))}
	plainOuts := make([][]float32, len(plain))
	for k, key := range plain {
		t := adapter.NewTensor(ms[0].tensors[key].Shape...)
		res.tensors[key] = t
		plainOuts[k] = t.Data
	}
	if spec.coordinate {
		kern, err := coordinateKernel(spec, group, n, opts)
		if err != nil {
			return nil, err
		}
		runCoordinate(kern, plainXs, plainOuts, opts.workers())
		for i, mod := range mods {
			m := denseCoordinate(kern, items[i], outs[i], ins[i], opts.workers())
			guess := 0
			for _, f := range items[i] {
				guess += f.rank
			}
			target := 0
			if opts.LoRAMode == SVD {
				target = opts.Rank
			}
			lr := factorDense(m, outs[i], ins[i], target, guess, moduleRand(opts.Seed, group, mod.name))
			res.store(i, mod, lr, outs[i], ins[i])
		}
		return res, nil
	}
	p := newPopulation(group, ms, ref != nil)
	p.gramFn = func() (*gram, error) {
		size := n
		all := plainXs
		if ref != nil {
			size++
			all = make([][][]float32, len(plainXs))
			for k := range plainXs {
				all[k] = append(append([][]float32(nil), plainXs[k]...), plainRef[k])
			}
		}
		g := newGram(size)
		if len(all) > 0 {
			g = elementGram(all, size, opts.workers())
		}
		spans := make([]span, len(mods))
		for i := range spans {
			spans[i] = span{t: i}
		}
		workers := effectiveWorkers(spans, opts.workers())
		local := make([]*gram, workers)
		for w := range local {
			local[w] = newGram(size)
		}
		runSpans(spans, workers, func(w int, s span) { productInner(local[w], items[s.t], outs[s.t], ins[s.t]) })
		for _, l := range local {
			for e := range g.g {
				g.g[e] += l.g[e]
			}
		}
		return g, nil
	}
	c, err := spec.coef(p, opts)
	if err != nil {
		return nil, err
	}
	if err := checkCoefficients(group, c); err != nil {
		return nil, err
	}
	runCombination(c, plainXs, plainOuts, opts.workers())
	for i, mod := range mods {
		b, a, bigR := stackFactors(c, items[i][:n], outs[i], ins[i])
		lr := lowRank{rank: bigR, b: b, a: a}
		if opts.LoRAMode == SVD {
			rng := moduleRand(opts.Seed, group, mod.name)
			if bigR <= min(outs[i], ins[i]) {
				lr = factorStacked(b, a, outs[i], ins[i], bigR, opts.Rank, rng)
			} else {
				lr = factorDense(denseProduct(b, a, outs[i], ins[i], bigR), outs[i], ins[i], opts.Rank, bigR, rng)
			}
		}
		res.store(i, mod, lr, outs[i], ins[i])
	}
	return res, nil
}

// checkSVDRank refuses an svd rank that no module of the group can have:
// above the largest min(out, in) and the largest input rank, every
// module's factors would only be padded with zeros, out·rank + rank·in
// values each (a mistyped --rank of 10⁸ runs out of memory). A rank up to
// that bound is kept, smaller modules padded, so that the adapter has one
// rank.
func checkSVDRank(group string, items [][]loraFactors, outs, ins []int, opts Options) error {
	if opts.LoRAMode != SVD || opts.Rank == 0 || len(items) == 0 {
		return nil
	}
	bound := 0
	for i, fs := range items {
		bound = max(bound, min(outs[i], ins[i]))
		for _, f := range fs {
			bound = max(bound, f.rank)
		}
	}
	if opts.Rank > bound {
		return fmt.Errorf("%w: svd rank %d exceeds %d, the largest rank a LoRA module of group %s can use (min(out, in) of its largest module, or its largest input rank)",
			ErrBadOption, opts.Rank, bound, group)
	}
	return nil
}

func (res *productGroup) store(i int, mod loraModule, lr lowRank, out, in int) {
	res.tensors[mod.keyA] = &adapter.Tensor{Shape: []int{lr.rank, in}, Data: lr.a}
	res.tensors[mod.keyB] = &adapter.Tensor{Shape: []int{out, lr.rank}, Data: lr.b}
	res.ranks[i] = lr.rank
	res.err2 += lr.err2
	res.norm2 += lr.norm2
}

// stackFactors returns B = [c_1 s_1 B_1 | … ] (out×R) and A = [A_1; …]
// (R×in) over the items with c_i ≠ 0, so that B·A = Σ c_i s_i B_i A_i
// exactly, whatever the ranks r_i.
func stackFactors(c []float64, items []loraFactors, out, in int) (b, a []float32, bigR int) {
	for i, f := range items {
		if c[i] != 0 {
			bigR += f.rank
		}
	}
	b = make([]float32, out*bigR)
	a = make([]float32, 0, bigR*in)
	col := 0
	for i, f := range items {
		if c[i] == 0 {
			continue
		}
		w := c[i] * f.scale
		for row := 0; row < out; row++ {
			src := f.b[row*f.rank : (row+1)*f.rank]
			dst := b[row*bigR+col : row*bigR+col+f.rank]
			for p, v := range src {
				dst[p] = float32(w * float64(v))
			}
		}
		a = append(a, f.a...)
		col += f.rank
	}
	return b, a, bigR
}

// denseProduct is B·A as a dense out×in matrix.
func denseProduct(b, a []float32, out, in, r int) []float32 {
	m := make([]float32, out*in)
	for row := 0; row < out; row++ {
		dst := m[row*in : (row+1)*in]
		for p := 0; p < r; p++ {
			c := b[row*r+p]
			if c == 0 {
				continue
			}
			src := a[p*in : (p+1)*in]
			for col, v := range src {
				dst[col] += c * v
			}
		}
	}
	return m
}

// denseCoordinate applies a coordinate-wise kernel to the members' dense
// products s_i·B_i·A_i. A coordinate-wise statistic of products is not a
// product of anything smaller, so the dense out×in result is formed; rows
// are produced in blocks so that the members' dense rows never all exist
// at once.
func denseCoordinate(kern func([]float32, [][]float32, *orderScratch), items []loraFactors, out, in, workers int) []float32 {
	m := make([]float32, out*in)
	n := len(items)
	rowsPer := max(1, (1<<20)/max(1, n*in))
	var spans []span
	for lo := 0; lo < out; lo += rowsPer {
		spans = append(spans, span{lo: lo, hi: min(lo+rowsPer, out)})
	}
	workers = effectiveWorkers(spans, workers)
	scratch := make([]orderScratch, workers)
	bufs := make([][]float32, workers)
	runSpans(spans, workers, func(w int, s span) {
		rows := s.hi - s.lo
		if cap(bufs[w]) < n*rows*in {
			bufs[w] = make([]float32, n*rowsPer*in)
		}
		buf := bufs[w][:n*rows*in]
		xs := make([][]float32, n)
		for i, f := range items {
			x := buf[i*rows*in : (i+1)*rows*in]
			for e := range x {
				x[e] = 0
			}
			for row := s.lo; row < s.hi; row++ {
				dst := x[(row-s.lo)*in : (row-s.lo+1)*in]
				for p := 0; p < f.rank; p++ {
					c := float32(f.scale) * f.b[row*f.rank+p]
					if c == 0 {
						continue
					}
					src := f.a[p*in : (p+1)*in]
					for col, v := range src {
						dst[col] += c * v
					}
				}
			}
			xs[i] = x
		}
		kern(m[s.lo*in:s.hi*in], xs, &scratch[w])
	})
	return m
}

// moduleRand is the seeded source of one module's range finder, so that
// every node computes bit-identical factors from the same inputs.
func moduleRand(seed uint64, group, module string) *rand.Rand {
	h := uint64(14695981039346656037)
	for _, c := range []byte(strings.Join([]string{group, module}, "/")) {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return rand.New(rand.NewPCG(seed, h))
}
