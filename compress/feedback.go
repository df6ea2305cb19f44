package compress

import (
	"fmt"
	"math"
)

// ErrorFeedback keeps, per tensor name, the part of last round's delta that
// quantisation lost, and adds it to the next round's delta before encoding.
// One goroutine owns it; the daemon persists Residual per tensor if it wants
// the feedback to survive a restart.
type ErrorFeedback struct {
	residual map[string][]float32
}

// NewErrorFeedback returns feedback with no residuals.
func NewErrorFeedback() *ErrorFeedback {
	return &ErrorFeedback{residual: map[string][]float32{}}
}

// Encode encodes data plus the residual held for name, then stores the new
// residual (what was meant minus what the receiver will decode). A residual
// of another length (the tensor changed shape) is dropped. data is not
// modified. On error the stored residual is left as it was.
func (fb *ErrorFeedback) Encode(name string, data []float32, opt Options) ([]byte, error) {
	if _, err := scan(data); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	target := append([]float32(nil), data...)
	if r := fb.residual[name]; len(r) == len(data) {
		for i, v := range r {
			target[i] += v
		}
	}
	enc, err := EncodeTensor(target, opt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	sent, err := DecodeTensor(enc, len(target))
	if err != nil {
		return nil, fmt.Errorf("%s: decoding own encoding: %w", name, err)
	}
	for i := range target {
		target[i] -= sent[i]
		if f := float64(target[i]); math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("%s: %w: residual element %d overflowed", name, ErrNonFinite, i)
		}
	}
	fb.residual[name] = target
	return enc, nil
}

// Residual returns the residual held for name (nil if none). The slice is
// the feedback's own; copy it before changing it.
func (fb *ErrorFeedback) Residual(name string) []float32 { return fb.residual[name] }

// SetResidual restores a residual, e.g. from the node's store after a restart.
func (fb *ErrorFeedback) SetResidual(name string, r []float32) error {
	if _, err := scan(r); err != nil {
		return fmt.Errorf("residual %s: %w", name, err)
	}
	fb.residual[name] = append([]float32(nil), r...)
	return nil
}

// Reset forgets every residual.
func (fb *ErrorFeedback) Reset() { clear(fb.residual) }
