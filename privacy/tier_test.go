package privacy

import "testing"

func TestTierNamesRoundTrip(t *testing.T) {
	for _, tier := range []Tier{Private, Group, Tenant, Public} {
		got, err := ParseTier(tier.String())
		if err != nil || got != tier {
			t.Errorf("%v: ParseTier(%q) = %v, %v", int(tier), tier.String(), got, err)
		}
	}
	if !(Private < Group && Group < Tenant && Tenant < Public) {
		t.Error("tiers must run from closed to open")
	}
	for _, s := range []string{"", "Public", "pub", "secret"} {
		if _, err := ParseTier(s); err == nil {
			t.Errorf("ParseTier(%q) accepted", s)
		}
	}
	if s := Tier(9).String(); s != "tier(9)" {
		t.Errorf("unknown tier prints %q", s)
	}
}
