package dlm

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// tinyConfig is small enough for finite differences over many parameters.
func tinyConfig() ModelConfig {
	return ModelConfig{SeqLen: 8, DModel: 8, Heads: 2, Layers: 2, FF: 12, Rank: 2, Alpha: 4}
}

// randomModel returns a base with weights large enough that every
// nonlinearity is exercised, and a bank with nonzero A and B.
func randomModel(t *testing.T, c ModelConfig, seed uint64) (*Base, *loraParams) {
	t.Helper()
	b, err := newBase(c, seed)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for i := range b.p.flat {
		b.p.flat[i] = float32(rng.NormFloat64() * 0.4)
	}
	b.p.refresh()
	bank := newLoRA(c, nil)
	for i := range bank.flat {
		bank.flat[i] = float32(rng.NormFloat64() * 0.4)
	}
	return b, bank
}

func testJob(c ModelConfig, seed uint64) seqJob {
	rng := rand.New(rand.NewPCG(seed, 2))
	target := make([]byte, c.SeqLen)
	for i := range target {
		target[i] = byte(rng.IntN(256))
	}
	var masked []int32
	for i := 0; i < c.SeqLen; i++ {
		if i%3 != 1 {
			masked = append(masked, int32(i))
		}
	}
	return seqJob{target: target, t: 650, bucket: timeBucket(650), bank: 0, masked: masked, weight: 1}
}

// lossOf runs one forward pass in float32 and returns Σ CE.
func lossOf(b *Base, bank *loraParams, job seqJob) float64 {
	w := newSeqWork(b.Config)
	w.load(&job)
	w.forward(b.p, bank)
	return w.lossAndGrad(job.target, 1, false)
}

// checkGradient compares an analytic derivative with difference quotients
// of f. A ReLU kink within a step of the point makes the quotients that
// straddle it wrong, and float32 rounding makes small steps noisy; so it
// tries central differences at two step sizes and one-sided differences on
// either side, and accepts a match with any. A real backward bug is off in
// all of them.
func checkGradient(t *testing.T, what string, analytic float64, f func(delta float32) float64) {
	t.Helper()
	const h1, h2 = 4e-3, 1.5e-3
	f0 := f(0)
	fp1, fm1, fp2, fm2 := f(h1), f(-h1), f(h2), f(-h2)
	nums := []float64{
		(fp1 - fm1) / (2 * h1),
		(fp2 - fm2) / (2 * h2),
		(fp2 - f0) / h2,
		(f0 - fm2) / h2,
	}
	for _, num := range nums {
		if math.Abs(analytic-num) <= 3e-4+5e-3*math.Abs(num) {
			return
		}
	}
	t.Errorf("%s: analytic %.6g, difference quotients %.6g", what, analytic, nums)
}

func TestLoRAGradientMatchesFiniteDifferences(t *testing.T) {
	c := tinyConfig()
	// The last block computes only the masked rows: check one masked
	// position, most of them, and all of them.
	for _, masked := range [][]int32{{5}, nil, {0, 1, 2, 3, 4, 5, 6, 7}} {
		job := testJob(c, 4)
		if masked != nil {
			job.masked = masked
		}
		t.Run(fmt.Sprint(len(job.masked), "masked"), func(t *testing.T) { checkLoRAGradient(t, c, job) })
	}
}

func checkLoRAGradient(t *testing.T, c ModelConfig, job seqJob) {
	b, bank := randomModel(t, c, 3)
	r := newRunner(b)
	grad := newLoRA(c, nil)
	jobs := []seqJob{job}
	r.run(jobs, []*loraParams{bank}, []*loraParams{grad}, nil)
	// Zero gradients would match zero difference quotients whatever the
	// backward pass does: every factor of every module, the MLP's and the
	// head's included, must have a live gradient in both A and B.
	for _, f := range grad.all {
		if allZero(f.a) || allZero(f.bt) {
			t.Fatalf("%s: the gradient of A or B is identically zero", loraKey(f.layer, f.module, "A"))
		}
	}
	checked := 0
	for i := range bank.flat {
		orig := bank.flat[i]
		checkGradient(t, fmt.Sprintf("bank[%d]", i), float64(grad.flat[i]), func(delta float32) float64 {
			bank.flat[i] = orig + delta
			defer func() { bank.flat[i] = orig }()
			return lossOf(b, bank, job)
		})
		checked++
	}
	if checked != loraSize(c) {
		t.Fatalf("checked %d of %d bank parameters", checked, loraSize(c))
	}
}

func TestBaseGradientMatchesFiniteDifferences(t *testing.T) {
	c := tinyConfig()
	b, bank := randomModel(t, c, 5)
	job := testJob(c, 6)
	r := newRunner(b)
	grad := gradView(c, nil)
	r.run([]seqJob{job}, []*loraParams{bank}, nil, grad)
	rng := rand.New(rand.NewPCG(7, 7))
	// Every tensor gets probes, so each layer's backward is covered.
	// Embedding rows the job does not use have zero gradient; probe the
	// used ones (row = token id, neighbour id or position).
	w := newSeqWork(c)
	w.load(&job)
	usedRows := map[string][]int{}
	for i, tok := range w.tokens {
		pv, nx := w.neighbours(i)
		usedRows["embed.tokens"] = append(usedRows["embed.tokens"], int(tok))
		usedRows["embed.prev_tokens"] = append(usedRows["embed.prev_tokens"], pv)
		usedRows["embed.next_tokens"] = append(usedRows["embed.next_tokens"], nx)
	}
	usedRows["embed.timesteps"] = []int{job.bucket}
	for ti, tn := range b.p.tensors {
		for range 6 {
			k := rng.IntN(len(tn.data))
			if rows := usedRows[tn.name]; rows != nil {
				k = rows[rng.IntN(len(rows))]*c.DModel + rng.IntN(c.DModel)
			}
			orig := tn.data[k]
			checkGradient(t, fmt.Sprintf("%s[%d]", tn.name, k), float64(grad.tensors[ti].data[k]), func(delta float32) float64 {
				tn.data[k] = orig + delta
				b.p.refresh()
				defer func() { tn.data[k] = orig; b.p.refresh() }()
				return lossOf(b, bank, job)
			})
		}
	}
}

func allZero(xs []float32) bool {
	for _, v := range xs {
		if v != 0 {
			return false
		}
	}
	return true
}
