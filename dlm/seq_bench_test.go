package dlm

import (
	"testing"
)

// BenchmarkSequence is one sequence's forward and backward pass (bank
// gradient only) on one core: the unit of work the runner schedules.
func BenchmarkSequence(b *testing.B) {
	c := DefaultConfig()
	base, err := newBase(c, 1)
	if err != nil {
		b.Fatal(err)
	}
	bank := newLoRA(c, nil)
	grad := newLoRA(c, nil)
	w := newSeqWork(c)
	data := randomText(4096, 1)
	job := seqJob{target: data[:c.SeqLen], t: 500, bucket: timeBucket(500), weight: 0.01}
	for i := 0; i < c.SeqLen; i += 2 {
		job.masked = append(job.masked, int32(i))
	}
	for b.Loop() {
		w.load(&job)
		w.forward(base.p, bank)
		w.lossAndGrad(job.target, job.weight, true)
		w.backward(base.p, bank, grad, nil)
	}
	b.ReportMetric(float64(c.SeqLen)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}
