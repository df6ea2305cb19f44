package dlm_test

import (
	"github.com/dafnet/daf/dlm"
	"github.com/dafnet/daf/node"
)

// The built-in trainer plugs into a node behind --train-data.
var _ node.Trainer = (*dlm.Trainer)(nil)
