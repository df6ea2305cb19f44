package privacy

import (
	"errors"
	"testing"

	"github.com/dafnet/daf/adapter"
)

func TestCanReceive(t *testing.T) {
	g1 := Scope{Group, "g1"}
	g2 := Scope{Group, "g2"}
	acme := Scope{Tenant, "acme"}
	pub := Scope{Tier: Public}
	cases := []struct {
		name   string
		member []Scope
		update Scope
		want   bool
	}{
		{"group member", []Scope{g1}, g1, true},
		{"other group", []Scope{g2}, g1, false},
		{"same id, other tier", []Scope{{Tenant, "g1"}}, g1, false},
		{"tenant member", []Scope{g1, acme}, acme, true},
		{"tenant non-member", []Scope{g1, pub}, acme, false},
		{"public member", []Scope{pub}, pub, true},
		{"public id ignored", []Scope{{Public, "x"}}, Scope{Public, "y"}, true},
		{"public non-member", []Scope{acme}, pub, false},
		{"no memberships", nil, g1, false},
		{"private never", []Scope{{Tier: Private}}, Scope{Tier: Private}, false},
		{"private never, public peer", []Scope{pub}, Scope{Tier: Private}, false},
		{"group without id", []Scope{{Tier: Group}}, Scope{Tier: Group}, false},
		{"unknown tier", []Scope{{Tier(7), "x"}}, Scope{Tier(7), "x"}, false},
	}
	for _, c := range cases {
		if got := CanReceive(c.member, c.update); got != c.want {
			t.Errorf("%s: CanReceive(%v, %v) = %v, want %v", c.name, c.member, c.update, got, c.want)
		}
	}
}

func TestAllowsAggregation(t *testing.T) {
	cases := []struct {
		local, update Scope
		want          bool
	}{
		{Scope{Group, "g1"}, Scope{Group, "g1"}, true},
		{Scope{Group, "g1"}, Scope{Group, "g2"}, false},
		{Scope{Group, "g1"}, Scope{Tenant, "g1"}, false},
		{Scope{Tenant, "acme"}, Scope{Tenant, "acme"}, true},
		{Scope{Tenant, "acme"}, Scope{Tier: Public}, false},
		{Scope{Tier: Public}, Scope{Tenant, "acme"}, false},
		{Scope{Tier: Public}, Scope{Tier: Public}, true},
		{Scope{Tier: Private}, Scope{Tier: Private}, false},
		{Scope{Tier: Public}, Scope{Tier: Private}, false},
		{Scope{Tier: Group}, Scope{Tier: Group}, false},
	}
	for _, c := range cases {
		if got := AllowsAggregation(c.local, c.update); got != c.want {
			t.Errorf("AllowsAggregation(%v, %v) = %v, want %v", c.local, c.update, got, c.want)
		}
	}
}

func TestScopeOf(t *testing.T) {
	u := adapter.New()
	u.Meta.Node, u.Meta.Tier, u.Meta.Scope = "n1", "group", "g1"
	if s, err := ScopeOf(u); err != nil || s != (Scope{Group, "g1"}) || s.String() != "group:g1" {
		t.Errorf("group: %v %v", s, err)
	}
	u.Meta.Tier, u.Meta.Scope = "public", "ignored"
	if s, err := ScopeOf(u); err != nil || s != (Scope{Tier: Public}) || s.String() != "public" {
		t.Errorf("public: %v %v", s, err)
	}
	for _, c := range [][2]string{{"tenant", ""}, {"secret", "x"}, {"", ""}} {
		u.Meta.Tier, u.Meta.Scope = c[0], c[1]
		if _, err := ScopeOf(u); !errors.Is(err, ErrScope) {
			t.Errorf("tier %q scope %q: %v", c[0], c[1], err)
		}
	}
}
