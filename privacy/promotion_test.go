package privacy

import (
	"errors"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func pattern(tier Tier, contributors []string, age time.Duration, cats ...string) Pattern {
	return Pattern{ID: "p1", Tier: tier, Contributors: contributors, CreatedAt: t0.Add(-age), Categories: cats}
}

func TestPromotionConditions(t *testing.T) {
	five := []string{"a", "b", "c", "d", "e"}
	cases := []struct {
		name    string
		rule    PromotionRule
		pat     Pattern
		consent bool
		approve bool
		want    bool
		reason  string
	}{
		{"k met", PromotionRule{"k", MinimumUsers(5), Public, false}, pattern(Tenant, five, 0), false, false, true, "5 distinct contributors ≥ 5"},
		{"k counts distinct", PromotionRule{"k", MinimumUsers(5), Public, false}, pattern(Tenant, []string{"a", "a", "b", "c", "d", ""}, 0), false, false, false, "4 distinct contributors, fewer than 5"},
		{"k needs consent", PromotionRule{"k", MinimumUsers(5), Public, true}, pattern(Tenant, five, 0), false, false, false, "requires consent"},
		{"k with consent", PromotionRule{"k", MinimumUsers(5), Public, true}, pattern(Tenant, five, 0), true, false, true, "consent by owner"},
		{"age met", PromotionRule{"old", AgeThreshold(24 * time.Hour), Tenant, false}, pattern(Group, nil, 48*time.Hour), false, false, true, "≥ 24h"},
		{"age young", PromotionRule{"old", AgeThreshold(24 * time.Hour), Tenant, false}, pattern(Group, nil, time.Hour), false, false, false, "younger than 24h"},
		{"age unknown", PromotionRule{"old", AgeThreshold(time.Hour), Tenant, false}, Pattern{ID: "p1", Tier: Group}, false, false, false, "no creation time"},
		{"category", PromotionRule{"cat", CategoryMatch("grammar", "style"), Public, false}, pattern(Tenant, nil, 0, "style"), false, false, true, "match"},
		{"category miss", PromotionRule{"cat", CategoryMatch("grammar"), Public, false}, pattern(Tenant, nil, 0, "medical"), false, false, false, "match none"},
		{"explicit missing", PromotionRule{"manual", Explicit(), Tenant, false}, pattern(Group, nil, 0), false, false, false, "no explicit approval"},
		{"explicit given", PromotionRule{"manual", Explicit(), Tenant, false}, pattern(Group, nil, 0), false, true, true, "approved by admin"},
		{"not a promotion", PromotionRule{"k", MinimumUsers(1), Tenant, false}, pattern(Public, five, 0), false, false, false, "not more open"},
		{"same tier", PromotionRule{"k", MinimumUsers(1), Tenant, false}, pattern(Tenant, five, 0), false, false, false, "not more open"},
	}
	for _, c := range cases {
		p, err := NewPromoter([]PromotionRule{c.rule})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.consent {
			_ = p.RecordConsent("p1", c.rule.Target, "owner")
		}
		if c.approve {
			_ = p.Approve("p1", c.rule.Target, "admin")
		}
		d := p.Check(c.pat, t0)
		if d.Promoted != c.want || !strings.Contains(d.Reason, c.reason) {
			t.Errorf("%s: %+v, want promoted=%v with reason containing %q", c.name, d, c.want, c.reason)
		}
		if c.want && d.Target != c.rule.Target {
			t.Errorf("%s: target %v", c.name, d.Target)
		}
		if log := p.Log(); len(log) != 1 || log[0].Promoted != c.want || log[0].Rule != c.rule.Name {
			t.Errorf("%s: log %+v", c.name, log)
		}
	}
}

func TestPromotionFirstMatchingRuleAndLog(t *testing.T) {
	p, err := NewPromoter(append([]PromotionRule{
		{"manual", Explicit(), Public, false},
	}, DefaultPromotionRules(5)...))
	if err != nil {
		t.Fatal(err)
	}
	pat := pattern(Tenant, []string{"a", "b", "c", "d", "e", "f"}, 0)
	d := p.Check(pat, t0)
	if d.Promoted || !strings.Contains(d.Reason, "manual: no explicit approval") || !strings.Contains(d.Reason, "k-anonymity: rule requires consent") {
		t.Errorf("without consent: %+v", d)
	}
	_ = p.RecordConsent("p1", Public, "owner")
	d = p.Check(pat, t0.Add(time.Minute))
	if !d.Promoted || d.Rule != "k-anonymity" || d.Target != Public || !d.At.Equal(t0.Add(time.Minute)) {
		t.Errorf("with consent: %+v", d)
	}
	log := p.TakeLog()
	// Every rule evaluated is logged: two refusals, then a refusal by the
	// first rule and the promotion by the second.
	if len(log) != 4 || log[0].Rule != "manual" || log[1].Rule != "k-anonymity" || log[1].Promoted || log[2].Promoted || !log[3].Promoted {
		t.Errorf("log %+v", log)
	}
	if len(p.Log()) != 0 {
		t.Error("TakeLog did not clear the log")
	}
}

func TestPromotionRuleValidation(t *testing.T) {
	bad := []PromotionRule{
		{"", MinimumUsers(5), Public, false},
		{"k", MinimumUsers(0), Public, false},
		{"age", AgeThreshold(0), Public, false},
		{"cat", CategoryMatch(), Public, false},
		{"cat", CategoryMatch("a", ""), Public, false},
		{"private", MinimumUsers(5), Private, false},
		{"kind", Condition{Kind: 99}, Public, false},
	}
	for _, r := range bad {
		if _, err := NewPromoter([]PromotionRule{r}); !errors.Is(err, ErrBadRule) {
			t.Errorf("%+v: %v", r, err)
		}
	}
	p, _ := NewPromoter(nil)
	if d := p.Check(pattern(Group, nil, 0), t0); d.Promoted || d.Reason != "no promotion rules" {
		t.Errorf("no rules: %+v", d)
	}
	if err := p.RecordConsent("", Public, "x"); !errors.Is(err, ErrBadRule) {
		t.Errorf("consent without pattern: %v", err)
	}
}

// Consent is per pattern and per target: a consent for another pattern or
// another tier never lets a consent-requiring rule promote, and every
// check leaves at least one logged decision with a reason.
func TestPromotionConsentIsScopedProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		tiers := []Tier{Group, Tenant, Public}
		var rules []PromotionRule
		for i := range rapid.IntRange(1, 4).Draw(t, "rules") {
			c := rapid.SampledFrom([]Condition{MinimumUsers(2), AgeThreshold(time.Hour), CategoryMatch("a"), Explicit()}).Draw(t, "cond")
			rules = append(rules, PromotionRule{Name: "r" + string(rune('0'+i)), Condition: c,
				Target: rapid.SampledFrom(tiers).Draw(t, "target"), RequiresConsent: true})
		}
		p, err := NewPromoter(rules)
		if err != nil {
			t.Fatal(err)
		}
		consented := map[[2]string]bool{}
		for range rapid.IntRange(0, 4).Draw(t, "consents") {
			id := rapid.SampledFrom([]string{"p1", "p2"}).Draw(t, "consent pattern")
			tier := rapid.SampledFrom(tiers).Draw(t, "consent tier")
			_ = p.RecordConsent(id, tier, "owner")
			consented[[2]string{id, tier.String()}] = true
			_ = p.Approve(id, rapid.SampledFrom(tiers).Draw(t, "approval tier"), "admin")
		}
		pat := Pattern{ID: "p1", Tier: rapid.SampledFrom([]Tier{Private, Group, Tenant}).Draw(t, "from"),
			Contributors: []string{"x", "y", "z"}, CreatedAt: t0.Add(-2 * time.Hour), Categories: []string{"a"}}
		before := len(p.Log())
		d := p.Check(pat, t0)
		log := p.Log()[before:]
		if len(log) == 0 {
			t.Fatal("a check left no decision in the log")
		}
		for _, e := range log {
			if e.Reason == "" {
				t.Fatalf("decision without a reason: %+v", e)
			}
		}
		if d.Promoted && !consented[[2]string{"p1", d.Target.String()}] {
			t.Fatalf("promoted to %v without a consent for (p1, %v): %+v", d.Target, d.Target, d)
		}
		if d.Promoted && d.Target <= pat.Tier {
			t.Fatalf("promotion to a tier not more open: %+v", d)
		}
	})
}
