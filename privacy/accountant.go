package privacy

import (
	"fmt"
	"math"
)

// DefaultOrders is the RDP order list of DESIGN §3, the one TensorFlow
// Privacy's compute_dp_sgd_privacy uses: published ε values for DP-SGD are
// reproduced exactly with it.
var DefaultOrders = defaultOrders()

func defaultOrders() []float64 {
	orders := []float64{1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5}
	for a := 5; a <= 63; a++ {
		orders = append(orders, float64(a))
	}
	return append(orders, 128, 256, 512)
}

// Accountant composes releases of the (Poisson-)subsampled Gaussian
// mechanism in Rényi DP at a fixed list of orders, and converts the total
// into an (ε, δ) guarantee on demand. Reading ε never changes its state.
// The zero value is not usable; call NewAccountant.
type Accountant struct {
	orders []float64
	rdp    []float64
	steps  int64
}

// NewAccountant returns an accountant at the given RDP orders (nil or empty
// → DefaultOrders). The orders are validated by Compose, so that a bad list
// is reported where it is used.
func NewAccountant(orders []float64) *Accountant {
	if len(orders) == 0 {
		orders = DefaultOrders
	}
	return &Accountant{orders: append([]float64(nil), orders...), rdp: make([]float64, len(orders))}
}

// Orders returns a copy of the accountant's RDP orders.
func (a *Accountant) Orders() []float64 { return append([]float64(nil), a.orders...) }

// RDP returns a copy of the composed RDP at each order.
func (a *Accountant) RDP() []float64 { return append([]float64(nil), a.rdp...) }

// Steps is the number of noisy steps composed so far.
func (a *Accountant) Steps() int64 { return a.steps }

// Clone returns an independent copy.
func (a *Accountant) Clone() *Accountant {
	return &Accountant{orders: a.Orders(), rdp: a.RDP(), steps: a.steps}
}

// Compose adds steps releases of the Gaussian mechanism with the given
// noise multiplier (σ divided by the L2 sensitivity), each taking part with
// probability samplingRate (Poisson sampling; 1 when every release
// happens). On error the state is unchanged.
func (a *Accountant) Compose(noiseMultiplier, samplingRate float64, steps int) error {
	if err := ValidateOrders(a.orders); err != nil {
		return err
	}
	if err := checkMechanism(noiseMultiplier, samplingRate); err != nil {
		return err
	}
	if steps < 1 {
		return fmt.Errorf("%w: steps = %d (want ≥ 1)", ErrBadParameter, steps)
	}
	a.addSteps(stepRDP(a.orders, noiseMultiplier, samplingRate), steps)
	return nil
}

// stepRDP is the RDP of one step at each order.
func stepRDP(orders []float64, noiseMultiplier, samplingRate float64) []float64 {
	out := make([]float64, len(orders))
	for i, order := range orders {
		out[i] = rdpSubsampledGaussian(samplingRate, noiseMultiplier, order)
	}
	return out
}

// addSteps composes steps releases whose one-step RDP is step.
func (a *Accountant) addSteps(step []float64, steps int) {
	for i := range a.rdp {
		a.rdp[i] += float64(steps) * step[i]
	}
	a.steps += int64(steps)
}

func checkMechanism(noiseMultiplier, samplingRate float64) error {
	if math.IsNaN(noiseMultiplier) || math.IsInf(noiseMultiplier, 0) || noiseMultiplier <= 0 {
		return fmt.Errorf("%w: noise multiplier = %v (want a finite value > 0)", ErrBadParameter, noiseMultiplier)
	}
	if math.IsNaN(samplingRate) || samplingRate <= 0 || samplingRate > 1 {
		return fmt.Errorf("%w: sampling rate = %v (want 0 < q ≤ 1)", ErrBadParameter, samplingRate)
	}
	return nil
}

// Epsilon returns the ε of the composed releases at the given δ and the
// RDP order that attains it. Before any release it is 0 (order 0). For a δ
// outside (0, 1) no guarantee can be stated and it returns +Inf.
func (a *Accountant) Epsilon(delta float64) (eps, bestOrder float64) {
	if !(delta > 0 && delta < 1) {
		return math.Inf(1), 0
	}
	if a.steps == 0 {
		return 0, 0
	}
	return epsilonFromRDP(a.orders, a.rdp, delta)
}
