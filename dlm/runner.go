package dlm

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// seqJob is one sequence of a batch: its clean bytes, its time, which bank
// adapts it, which positions are masked, and how its loss is weighted.
type seqJob struct {
	target []byte // SeqLen clean bytes
	t      int
	bucket int
	bank   int // index into the runner's banks; -1 = base only
	masked []int32
	weight float32 // scale of this sequence's Σ CE in the loss being minimised
	loss   float64 // Σ CE over masked positions, filled by the run
}

// runner executes batches on all cores. Gradients are summed per chunk of
// consecutive jobs and the chunks are added in order, so the result is the
// same bit for bit whatever the number of cores or the scheduling.
type runner struct {
	base  *Base
	works []*seqWork
	// per chunk gradient buffers, grown on demand
	bankGrads [][]*loraParams
	baseGrads []*params
}

// maxChunks bounds the gradient buffers; more chunks than cores only helps
// load balance.
const maxChunks = 8

func newRunner(b *Base) *runner {
	n := runtime.GOMAXPROCS(0)
	r := &runner{base: b}
	for range n {
		r.works = append(r.works, newSeqWork(b.Config))
	}
	return r
}

func chunkBounds(jobs, chunks, c int) (int, int) {
	return c * jobs / chunks, (c + 1) * jobs / chunks
}

// run processes jobs. With banks set, bank gradients are summed into
// bankGrad (one per bank) when non-nil; with baseGrad non-nil the base
// weights' gradient is summed into it. With neither, run only evaluates.
func (r *runner) run(jobs []seqJob, banks []*loraParams, bankGrad []*loraParams, baseGrad *params) {
	if len(jobs) == 0 {
		return
	}
	c := r.base.Config
	chunks := min(len(jobs), maxChunks)
	wantGrad := bankGrad != nil || baseGrad != nil
	if bankGrad != nil {
		for len(r.bankGrads) < chunks {
			var gs []*loraParams
			r.bankGrads = append(r.bankGrads, gs)
		}
		for ch := 0; ch < chunks; ch++ {
			for len(r.bankGrads[ch]) < len(banks) {
				r.bankGrads[ch] = append(r.bankGrads[ch], newLoRA(c, nil))
			}
			for _, g := range r.bankGrads[ch][:len(banks)] {
				clear(g.flat)
			}
		}
	}
	if baseGrad != nil {
		for len(r.baseGrads) < chunks {
			r.baseGrads = append(r.baseGrads, gradView(c, nil))
		}
		for _, g := range r.baseGrads[:chunks] {
			clear(g.flat)
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, w := range r.works[:min(len(r.works), chunks)] {
		wg.Add(1)
		go func(w *seqWork) {
			defer wg.Done()
			for {
				ch := int(next.Add(1) - 1)
				if ch >= chunks {
					return
				}
				lo, hi := chunkBounds(len(jobs), chunks, ch)
				for j := lo; j < hi; j++ {
					job := &jobs[j]
					var bank, dbank *loraParams
					if job.bank >= 0 {
						bank = banks[job.bank]
						if bankGrad != nil {
							dbank = r.bankGrads[ch][job.bank]
						}
					}
					var dp *params
					if baseGrad != nil {
						dp = r.baseGrads[ch]
					}
					w.load(job)
					w.forward(r.base.p, bank)
					job.loss = w.lossAndGrad(job.target, job.weight, wantGrad)
					if wantGrad && len(job.masked) > 0 {
						w.backward(r.base.p, bank, dbank, dp)
					}
				}
			}
		}(w)
	}
	wg.Wait()
	for ch := 0; ch < chunks; ch++ {
		if bankGrad != nil {
			for i, g := range bankGrad {
				if g == nil {
					continue
				}
				src := r.bankGrads[ch][i].flat
				for k, v := range src {
					g.flat[k] += v
				}
			}
		}
		if baseGrad != nil {
			src := r.baseGrads[ch].flat
			for k, v := range src {
				baseGrad.flat[k] += v
			}
		}
	}
}

// load copies a job's masked input into the workspace.
func (w *seqWork) load(job *seqJob) {
	for i, v := range job.target {
		w.tokens[i] = int32(v)
	}
	for _, pos := range job.masked {
		w.tokens[pos] = MaskToken
	}
	w.masked = append(w.masked[:0], job.masked...)
	w.bucket = job.bucket
}
