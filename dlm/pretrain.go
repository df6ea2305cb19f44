package dlm

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// PretrainConfig drives the training of a base model from scratch.
type PretrainConfig struct {
	Model    ModelConfig
	Steps    int     // optimiser steps
	Batch    int     // sequences per step
	LR       float64 // peak AdamW learning rate (linear warm-up, cosine decay to 10%)
	Warmup   int     // warm-up steps
	ClipGrad float64 // global gradient norm limit
	Seed     uint64
}

// DefaultPretrainConfig is what produced the shipped base (doc.go).
func DefaultPretrainConfig() PretrainConfig {
	return PretrainConfig{Model: DefaultConfig(), Steps: 2000, Batch: 16, LR: 3e-3, Warmup: 100, ClipGrad: 1, Seed: 1}
}

func (c PretrainConfig) validate() error {
	if err := c.Model.Validate(); err != nil {
		return err
	}
	switch {
	case c.Steps < 1:
		return fmt.Errorf("%w: pretraining steps %d < 1", ErrConfig, c.Steps)
	case c.Batch < 1:
		return fmt.Errorf("%w: pretraining batch %d < 1", ErrConfig, c.Batch)
	case math.IsNaN(c.LR) || math.IsInf(c.LR, 0) || c.LR <= 0:
		return fmt.Errorf("%w: pretraining learning rate %v is not a positive finite number", ErrConfig, c.LR)
	case c.Warmup < 0:
		return fmt.Errorf("%w: pretraining warm-up %d < 0", ErrConfig, c.Warmup)
	case math.IsNaN(c.ClipGrad) || math.IsInf(c.ClipGrad, 0) || c.ClipGrad < 0:
		return fmt.Errorf("%w: pretraining clip_grad %v is not a finite number ≥ 0", ErrConfig, c.ClipGrad)
	}
	return nil
}

// lrAt is the learning-rate schedule: linear warm-up, then cosine decay
// from LR to LR/10 at the last step.
func (c PretrainConfig) lrAt(step int) float64 {
	if step < c.Warmup {
		return c.LR * float64(step+1) / float64(c.Warmup)
	}
	span := max(c.Steps-c.Warmup, 1)
	frac := float64(step-c.Warmup) / float64(span)
	return c.LR * (0.1 + 0.9*0.5*(1+math.Cos(math.Pi*frac)))
}

// Pretrain trains a base model on corpus with every weight learning: times
// uniform on [0, MaxT), the loss the mean CE per masked byte of the batch.
// progress (may be nil) sees every step's training loss.
func Pretrain(corpus []byte, cfg PretrainConfig, progress func(step int, loss float64)) (*Base, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	c := cfg.Model
	if err := checkText(corpus, c.SeqLen, "pretraining corpus"); err != nil {
		return nil, err
	}
	b, err := newBase(c, cfg.Seed)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e7))
	r := newRunner(b)
	grad := gradView(c, nil)
	opt := newAdamW(len(b.p.flat))
	jobs := make([]seqJob, cfg.Batch)
	for step := 0; step < cfg.Steps; step++ {
		// Every sequence counts equally (its mean CE per masked byte):
		// weighting every masked byte equally instead would let the
		// heavily masked sequences drown the lightly masked ones, where
		// the model learns to read context.
		for i := range jobs {
			jobs[i] = drawJob(rng, corpus, c.SeqLen, 0, MaxT, -1, true)
			jobs[i].weight = 1 / float32(len(jobs[i].masked)*len(jobs))
		}
		clear(grad.flat)
		r.run(jobs, nil, nil, grad)
		clipNorm(grad.flat, cfg.ClipGrad)
		// No weight decay: a few thousand steps on a model this small
		// underfit, there is nothing to regularise.
		opt.update(b.p.flat, grad.flat, cfg.lrAt(step), 0, nil)
		b.p.refresh()
		var loss float64
		for _, j := range jobs {
			loss += j.loss / float64(len(j.masked)*len(jobs))
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return nil, fmt.Errorf("pretraining diverged at step %d (lower the learning rate)", step)
		}
		if progress != nil {
			progress(step, loss)
		}
	}
	return b, nil
}
