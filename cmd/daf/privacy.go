package main

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dafnet/daf/privacy"
	"github.com/spf13/cobra"
)

// daf privacy epsilon | sigma: the accountant and the Gaussian mechanism
// from the command line, for planning a federation's privacy parameters.

func init() {
	privacyCmd := &cobra.Command{
		Use:   "privacy",
		Short: "Privacy arithmetic: ε of a noisy training run, σ for an (ε, δ) release",
		RunE:  unknownSubcommand,
	}
	privacyCmd.AddCommand(newPrivacyEpsilonCmd(), newPrivacySigmaCmd())
	rootCmd.AddCommand(privacyCmd)
}

func newPrivacyEpsilonCmd() *cobra.Command {
	var (
		z, q, delta float64
		steps       int
		orders      string
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "epsilon --noise-multiplier Z --sampling-rate Q --steps T --delta D [--orders LIST] [--json]",
		Short: "ε after T releases of the Poisson-subsampled Gaussian mechanism (RDP accountant)",
		Long: `Composes T releases of the Gaussian mechanism with noise multiplier Z (σ divided by
the L2 sensitivity), each taking part with probability Q, in Rényi DP, and converts
the total into (ε, δ)-DP with the conversion of Balle et al. 2020 (as Opacus and
dp_accounting do). The default orders are those of TensorFlow Privacy's
compute_dp_sgd_privacy: 1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5, 5…63, 128, 256, 512.
ε is never below 2⁻⁵² after a step: a smaller bound means the steps are (0, δ)-DP
(docs/PRIVACY.md). So little noise that ε is unbounded at every order exits 2.`,
		Example: "  daf privacy epsilon --noise-multiplier 1.3 --sampling-rate 0.0025 --steps 6000 --delta 1e-5",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFinitePositive("--noise-multiplier", z); err != nil {
				return err
			}
			if math.IsNaN(q) || q <= 0 || q > 1 {
				return badInputf("--sampling-rate %v: want 0 < q ≤ 1", q)
			}
			if steps < 1 {
				return badInputf("--steps %d: want at least 1", steps)
			}
			if err := checkDelta(delta); err != nil {
				return err
			}
			var orderList []float64
			if cmd.Flags().Changed("orders") {
				var err error
				if orderList, err = parseOrders(orders); err != nil {
					return badInputf("--orders: %v", err)
				}
			}
			acc := privacy.NewAccountant(orderList)
			if err := acc.Compose(z, q, steps); err != nil {
				return badInput(err)
			}
			eps, order := acc.Epsilon(delta)
			// So little noise leaves the RDP beyond float64 at every
			// order: there is no finite guarantee to print.
			if math.IsInf(eps, 1) {
				return badInputf("--noise-multiplier %v: ε is unbounded at every RDP order (too little noise for a finite guarantee)", z)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(struct {
					Epsilon   float64 `json:"epsilon"`
					BestOrder float64 `json:"best_order"`
				}{eps, order})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ε = %.6g at δ = %g (best RDP order %g) after %d steps, noise multiplier %g, sampling rate %g\n",
				eps, delta, order, steps, z, q)
			return nil
		},
	}
	f := cmd.Flags()
	f.Float64Var(&z, "noise-multiplier", 0, "noise standard deviation divided by the L2 sensitivity (> 0)")
	f.Float64Var(&q, "sampling-rate", 0, "probability that a release takes part in a step, in (0, 1]")
	f.IntVar(&steps, "steps", 0, "number of steps (releases), at least 1")
	f.Float64Var(&delta, "delta", 0, "target δ, in (0, 1)")
	f.StringVar(&orders, "orders", "", "comma-separated RDP orders, each > 1 (default: the DESIGN §3 list)")
	f.BoolVar(&asJSON, "json", false, `print {"epsilon": E, "best_order": A}`)
	for _, name := range []string{"noise-multiplier", "sampling-rate", "steps", "delta"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func newPrivacySigmaCmd() *cobra.Command {
	var (
		eps, delta, sens float64
		asJSON           bool
	)
	cmd := &cobra.Command{
		Use:   "sigma --epsilon E --delta D [--sensitivity S] [--json]",
		Short: "σ of the analytic Gaussian mechanism for one (ε, δ) release",
		Long: `Prints the smallest noise standard deviation σ that makes one release of a function
with L2 sensitivity S (ε, δ)-differentially private, from the exact condition of the
analytic Gaussian mechanism (Balle and Wang 2018). Valid for every ε > 0, unlike the
classic σ = S·√(2 ln(1.25/δ))/ε, which holds only for ε < 1 and is always larger.`,
		Example: "  daf privacy sigma --epsilon 1 --delta 1e-5 --sensitivity 1",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFinitePositive("--epsilon", eps); err != nil {
				return err
			}
			if err := checkDelta(delta); err != nil {
				return err
			}
			if err := checkFinitePositive("--sensitivity", sens); err != nil {
				return err
			}
			sigma, err := privacy.AnalyticGaussianSigma(eps, delta, sens)
			if err != nil {
				return badInputf("--epsilon %v, --delta %v, --sensitivity %v: %v", eps, delta, sens, err)
			}
			if asJSON {
				return json.NewEncoder(cmd.OutOrStdout()).Encode(struct {
					Sigma     float64 `json:"sigma"`
					Mechanism string  `json:"mechanism"`
				}{sigma, "analytic"})
			}
			fmt.Fprintf(cmd.OutOrStdout(), "σ = %.6g (analytic Gaussian mechanism) for ε = %g, δ = %g, sensitivity %g\n", sigma, eps, delta, sens)
			return nil
		},
	}
	f := cmd.Flags()
	f.Float64Var(&eps, "epsilon", 0, "ε of the release, > 0")
	f.Float64Var(&delta, "delta", 0, "δ of the release, in (0, 1)")
	f.Float64Var(&sens, "sensitivity", 1, "L2 sensitivity of the released function (the clip bound), > 0")
	f.BoolVar(&asJSON, "json", false, `print {"sigma": S, "mechanism": "analytic"}`)
	for _, name := range []string{"epsilon", "delta"} {
		_ = cmd.MarkFlagRequired(name)
	}
	return cmd
}

func checkFinitePositive(flag string, v float64) error {
	if math.IsNaN(v) || math.IsInf(v, 0) || v <= 0 {
		return badInputf("%s %v: want a finite number > 0", flag, v)
	}
	return nil
}

func checkDelta(d float64) error {
	if !(d > 0 && d < 1) {
		return badInputf("--delta %v: want 0 < δ < 1", d)
	}
	return nil
}

// parseOrders reads a comma-separated list of RDP orders.
func parseOrders(s string) ([]float64, error) {
	var out []float64
	for i, field := range strings.Split(s, ",") {
		field = strings.TrimSpace(field)
		if field == "" {
			return nil, fmt.Errorf("order #%d is empty", i+1)
		}
		v, err := strconv.ParseFloat(field, 64)
		if err != nil {
			return nil, fmt.Errorf("order #%d %q is not a number", i+1, field)
		}
		out = append(out, v)
	}
	if err := privacy.ValidateOrders(out); err != nil {
		return nil, err
	}
	return out, nil
}
