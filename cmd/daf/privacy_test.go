package main

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// runDaf runs the CLI in-process and returns its exit code, stdout and
// stderr. Flags are reset first: cobra keeps values between executions.
func runDaf(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var reset func(c *cobra.Command)
	reset = func(c *cobra.Command) {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			_ = f.Value.Set(f.DefValue)
			f.Changed = false
		})
		for _, sub := range c.Commands() {
			reset(sub)
		}
	}
	reset(rootCmd)
	var out bytes.Buffer
	rootCmd.SetOut(&out)
	defer rootCmd.SetOut(nil)

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	oldErr := os.Stderr
	os.Stderr = w
	code := run(args)
	os.Stderr = oldErr
	w.Close()
	var errBuf bytes.Buffer
	_, _ = errBuf.ReadFrom(r)
	return code, out.String(), errBuf.String()
}

func TestPrivacyEpsilonJSONPublished(t *testing.T) {
	code, out, errOut := runDaf(t, "privacy", "epsilon", "--noise-multiplier", "1.3", "--sampling-rate", "0.0025",
		"--steps", "6000", "--delta", "1e-5", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.HasPrefix(out, `{"epsilon":`) {
		t.Errorf("JSON must start with the epsilon key: %s", out)
	}
	var got map[string]float64
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if len(got) != 2 || math.Abs(got["epsilon"]-0.7242234026109595)/0.7242234026109595 > 1e-4 || got["best_order"] != 19 {
		t.Errorf("got %v, want epsilon ≈ 0.72422, best_order 19", got)
	}
}

func TestPrivacyEpsilonCustomOrders(t *testing.T) {
	// Without subsampling the RDP of T steps is T·α/(2z²); at the single
	// order 2 with z=1, T=10: rdp = 10, ε = 10 + log(1/2) - (log δ + log 2).
	code, out, errOut := runDaf(t, "privacy", "epsilon", "--noise-multiplier", "1", "--sampling-rate", "1",
		"--steps", "10", "--delta", "1e-5", "--orders", "2", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got map[string]float64
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	want := 10 + math.Log(0.5) - (math.Log(1e-5) + math.Log(2))
	if math.Abs(got["epsilon"]-want) > 1e-12 || got["best_order"] != 2 {
		t.Errorf("got %v, want epsilon %v at order 2", got, want)
	}
}

func TestPrivacySigmaJSON(t *testing.T) {
	code, out, errOut := runDaf(t, "privacy", "sigma", "--epsilon", "1", "--delta", "1e-5", "--sensitivity", "2", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Sigma     float64 `json:"sigma"`
		Mechanism string  `json:"mechanism"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	// Balle & Wang's calibration at ε=1, δ=1e-5 gives σ ≈ 3.7306 per unit
	// of sensitivity.
	if got.Mechanism != "analytic" || math.Abs(got.Sigma-2*3.73063163) > 1e-6 {
		t.Errorf("got %+v, want sigma ≈ 7.46126, mechanism analytic", got)
	}
	var keys map[string]any
	if err := json.Unmarshal([]byte(out), &keys); err != nil || len(keys) != 2 || !strings.HasPrefix(out, `{"sigma":`) {
		t.Errorf("want exactly {\"sigma\":S,\"mechanism\":\"analytic\"}, got %s", out)
	}
}

func TestPrivacyBadInputExitsTwoNamingTheFlag(t *testing.T) {
	eps := []string{"privacy", "epsilon", "--noise-multiplier", "1", "--sampling-rate", "0.5", "--steps", "10", "--delta", "1e-5"}
	with := func(base []string, flag, value string) []string {
		out := append([]string(nil), base...)
		for i := range out {
			if out[i] == flag {
				out[i+1] = value
				return out
			}
		}
		return append(out, flag, value)
	}
	sigma := []string{"privacy", "sigma", "--epsilon", "1", "--delta", "1e-5"}
	cases := []struct {
		args []string
		flag string
	}{
		{with(eps, "--noise-multiplier", "0"), "--noise-multiplier"},
		{with(eps, "--noise-multiplier", "NaN"), "--noise-multiplier"},
		{with(eps, "--noise-multiplier", "Inf"), "--noise-multiplier"},
		{with(eps, "--sampling-rate", "0"), "--sampling-rate"},
		{with(eps, "--sampling-rate", "1.01"), "--sampling-rate"},
		{with(eps, "--sampling-rate", "NaN"), "--sampling-rate"},
		{with(eps, "--steps", "0"), "--steps"},
		{with(eps, "--steps", "-3"), "--steps"},
		{with(eps, "--delta", "0"), "--delta"},
		{with(eps, "--delta", "1"), "--delta"},
		{with(eps, "--delta", "NaN"), "--delta"},
		{with(eps, "--orders", "2,1"), "--orders"},
		{with(eps, "--orders", "0.5"), "--orders"},
		{with(eps, "--orders", "2,,3"), "--orders"},
		{with(eps, "--orders", "Inf"), "--orders"},
		{with(sigma, "--epsilon", "0"), "--epsilon"},
		{with(sigma, "--epsilon", "-1"), "--epsilon"},
		{with(sigma, "--epsilon", "NaN"), "--epsilon"},
		{with(sigma, "--epsilon", "+Inf"), "--epsilon"},
		{with(sigma, "--delta", "1.5"), "--delta"},
		{with(sigma, "--delta", "-1e-5"), "--delta"},
		{with(sigma, "--sensitivity", "0"), "--sensitivity"},
		{with(sigma, "--sensitivity", "NaN"), "--sensitivity"},
		{[]string{"privacy", "sigma", "--delta", "1e-5"}, "epsilon"},
		{[]string{"privacy", "sigma", "--epsilon", "1"}, "delta"},
		{[]string{"privacy", "epsilon", "--noise-multiplier", "1", "--sampling-rate", "1", "--delta", "1e-5"}, "steps"},
		{[]string{"privacy", "epsilon", "--sampling-rate", "1", "--steps", "1", "--delta", "1e-5"}, "noise-multiplier"},
		{[]string{"privacy", "epsilon", "--noise-multiplier", "1", "--steps", "1", "--delta", "1e-5"}, "sampling-rate"},
		{[]string{"privacy", "epsilon", "--noise-multiplier", "1", "--sampling-rate", "1", "--steps", "1"}, "delta"},
		{with(eps, "--steps", "1e9"), "--steps"},
		{with(eps, "--noise-multiplier", "-Inf"), "--noise-multiplier"},
		{with(eps, "--sampling-rate", "-0.5"), "--sampling-rate"},
		{with(eps, "--delta", "Inf"), "--delta"},
		{with(sigma, "--sensitivity", "-Inf"), "--sensitivity"},
		// Valid numbers whose answer is beyond float64: no finite ε for
		// so little noise, no finite σ for so large a sensitivity or so
		// small an (ε, δ). Text and JSON alike.
		{with(with(eps, "--noise-multiplier", "1e-200"), "--sampling-rate", "1"), "--noise-multiplier"},
		{append(with(with(eps, "--noise-multiplier", "1e-200"), "--sampling-rate", "1"), "--json"), "--noise-multiplier"},
		{append(with(eps, "--noise-multiplier", "1e-160"), "--json"), "--noise-multiplier"},
		{append(with(sigma, "--sensitivity", "1e308"), "--json"), "--sensitivity"},
		{with(sigma, "--sensitivity", "1e308"), "--sensitivity"},
		{append(with(with(sigma, "--epsilon", "1e-300"), "--delta", "1e-320"), "--json"), "--delta"},
	}
	for _, c := range cases {
		code, _, errOut := runDaf(t, c.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", c.args, code, errOut)
		}
		if !strings.Contains(errOut, c.flag) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%v: stderr %q should be one line naming %s", c.args, errOut, c.flag)
		}
	}
}

// FuzzParseOrders: the order list never panics the parser, and a list it
// accepts holds only valid orders.
func FuzzParseOrders(f *testing.F) {
	for _, s := range []string{"2", "1.25,1.5,2,64", " 3 , 4 ", "1", "", ",", "NaN", "1e5", "2,x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		orders, err := parseOrders(s)
		if err != nil {
			return
		}
		for _, a := range orders {
			if !(a > 1 && a <= 1e5) {
				t.Fatalf("%q: accepted order %v", s, a)
			}
		}
	})
}
