package node

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/dafnet/daf/adapter"
)

// Trainer is what a node asks of local training. The node calls Train once
// per round with the adapters it currently holds (nil before its first
// aggregate) and releases what comes back; Evaluate reports held-out
// metrics of an adapter (for logs and status, never for aggregation).
//
// Train returns a delta update (daf.kind=delta) with Meta.Samples (the
// number of training examples behind it, used as the aggregation weight)
// and Meta.Quality (per-group quality, used by the quality-weighted
// strategy) filled in. The node sets Meta.Node, Meta.Round, Meta.Tier and
// Meta.Scope itself.
type Trainer interface {
	Train(ctx context.Context, round uint64, current *adapter.Update) (*adapter.Update, error)
	Evaluate(ctx context.Context, current *adapter.Update) (map[string]float64, error)
}

// TrainerFactory builds a node's trainer once its data directory is known
// (a trainer may keep its own state there). cmd/daf uses one to plug the
// built-in reference-model trainer in behind --train-data.
type TrainerFactory func(dataDir string) (Trainer, error)

// ErrNoUpdate is returned by a trainer that has nothing to contribute this
// round (no data yet, an external trainer that did not deliver in time).
// The node then takes part in the round without releasing.
var ErrNoUpdate = errors.New("trainer has no update for this round")

// checkTrained validates what a trainer returned before it goes anywhere.
func checkTrained(u *adapter.Update, round uint64) error {
	if u == nil {
		return fmt.Errorf("round %d: trainer returned no update", round)
	}
	if len(u.Groups) == 0 {
		return fmt.Errorf("round %d: trainer returned an update without tensors", round)
	}
	if math.IsNaN(u.Meta.Samples) || math.IsInf(u.Meta.Samples, 0) || u.Meta.Samples <= 0 {
		return fmt.Errorf("round %d: trainer update has sample count %v (want a finite value > 0)", round, u.Meta.Samples)
	}
	if err := u.CheckFinite(); err != nil {
		return fmt.Errorf("round %d: trainer update: %w", round, err)
	}
	return nil
}
