package privacy

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dafnet/daf/adapter"
)

// Pattern is what promotion moves between tiers: a bank update with the
// distinct nodes (or users) that contributed to it, when it was created
// and the categories it is tagged with.
type Pattern struct {
	ID           string
	Update       *adapter.Update
	Tier         Tier
	Contributors []string
	CreatedAt    time.Time
	Categories   []string
}

// DistinctContributors counts the different non-empty contributor ids: the
// k of k-anonymity. The same node listed twice counts once.
func (p Pattern) DistinctContributors() int {
	seen := map[string]bool{}
	for _, c := range p.Contributors {
		if c != "" {
			seen[c] = true
		}
	}
	return len(seen)
}

// ConditionKind is the kind of a promotion condition (the seed's
// PromotionCondition variants).
type ConditionKind int

const (
	// CondMinimumUsers: the pattern has at least N distinct contributors.
	CondMinimumUsers ConditionKind = iota + 1
	// CondAgeThreshold: the pattern is at least this old.
	CondAgeThreshold
	// CondCategoryMatch: the pattern carries one of these categories.
	CondCategoryMatch
	// CondExplicit: someone approved this promotion by hand.
	CondExplicit
)

// Condition is one promotion condition; build it with MinimumUsers,
// AgeThreshold, CategoryMatch or Explicit.
type Condition struct {
	Kind       ConditionKind
	MinUsers   int
	MinAge     time.Duration
	Categories []string
}

// MinimumUsers matches a pattern seen by at least n distinct contributors
// (k-anonymity; federation.privacy.min_k_anonymity, default 5).
func MinimumUsers(n int) Condition { return Condition{Kind: CondMinimumUsers, MinUsers: n} }

// AgeThreshold matches a pattern at least d old.
func AgeThreshold(d time.Duration) Condition { return Condition{Kind: CondAgeThreshold, MinAge: d} }

// CategoryMatch matches a pattern tagged with one of the categories.
func CategoryMatch(categories ...string) Condition {
	return Condition{Kind: CondCategoryMatch, Categories: append([]string(nil), categories...)}
}

// Explicit matches only a promotion approved by hand (Promoter.Approve).
func Explicit() Condition { return Condition{Kind: CondExplicit} }

// PromotionRule promotes a pattern that meets Condition to Target, a more
// open tier. With RequiresConsent, the promotion also needs a recorded
// consent for that pattern and target.
type PromotionRule struct {
	Name            string
	Condition       Condition
	Target          Tier
	RequiresConsent bool
}

// Validate checks the rule's name, target and condition parameters.
func (r PromotionRule) Validate() error {
	if r.Name == "" {
		return fmt.Errorf("%w: rule without a name", ErrBadRule)
	}
	if r.Target != Group && r.Target != Tenant && r.Target != Public {
		return fmt.Errorf("%w: rule %q: target %v (want group, tenant or public)", ErrBadRule, r.Name, r.Target)
	}
	c := r.Condition
	switch c.Kind {
	case CondMinimumUsers:
		if c.MinUsers < 1 {
			return fmt.Errorf("%w: rule %q: minimum users %d (want ≥ 1)", ErrBadRule, r.Name, c.MinUsers)
		}
	case CondAgeThreshold:
		if c.MinAge <= 0 {
			return fmt.Errorf("%w: rule %q: age threshold %v (want > 0)", ErrBadRule, r.Name, c.MinAge)
		}
	case CondCategoryMatch:
		if len(c.Categories) == 0 || slices.Contains(c.Categories, "") {
			return fmt.Errorf("%w: rule %q: category list %q (want non-empty names)", ErrBadRule, r.Name, c.Categories)
		}
	case CondExplicit:
	default:
		return fmt.Errorf("%w: rule %q: unknown condition kind %d", ErrBadRule, r.Name, c.Kind)
	}
	return nil
}

// DefaultPromotionRules is the rule set a node starts with: a pattern seen
// by at least minK distinct contributors may go public, with consent.
func DefaultPromotionRules(minK int) []PromotionRule {
	return []PromotionRule{{Name: "k-anonymity", Condition: MinimumUsers(minK), Target: Public, RequiresConsent: true}}
}

// Decision is one promotion or refusal, as recorded in the log.
type Decision struct {
	PatternID string
	Rule      string // empty when no rule applied
	From      Tier
	Target    Tier
	Promoted  bool
	Reason    string
	At        time.Time
}

// Promoter applies promotion rules in order (the seed's check_promotion):
// the first rule whose condition holds, whose target is more open than the
// pattern's tier and whose consent requirement is met promotes the
// pattern. Every evaluation, promotion or refusal, is recorded with its
// reason. It does not read the clock: callers pass now. Safe for
// concurrent use.
type Promoter struct {
	mu        sync.Mutex
	rules     []PromotionRule
	consents  map[promotionKey]string
	approvals map[promotionKey]string
	log       []Decision
}

type promotionKey struct {
	pattern string
	target  Tier
}

// NewPromoter validates the rules and returns a promoter applying them in
// the order given.
func NewPromoter(rules []PromotionRule) (*Promoter, error) {
	for i, r := range rules {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("promotion rule #%d: %w", i+1, err)
		}
	}
	return &Promoter{
		rules:     append([]PromotionRule(nil), rules...),
		consents:  map[promotionKey]string{},
		approvals: map[promotionKey]string{},
	}, nil
}

// RecordConsent records that by consented to promoting the pattern to
// target.
func (p *Promoter) RecordConsent(patternID string, target Tier, by string) error {
	if patternID == "" || by == "" {
		return fmt.Errorf("%w: consent needs a pattern id and who gave it", ErrBadRule)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.consents[promotionKey{patternID, target}] = by
	return nil
}

// Approve records a manual approval (the Explicit condition) of promoting
// the pattern to target.
func (p *Promoter) Approve(patternID string, target Tier, by string) error {
	if patternID == "" || by == "" {
		return fmt.Errorf("%w: approval needs a pattern id and who gave it", ErrBadRule)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.approvals[promotionKey{patternID, target}] = by
	return nil
}

// Check evaluates the rules for pat at time now and returns the decision:
// the promotion if a rule allows one, otherwise a refusal whose reason
// lists why each rule did not apply. Each rule's outcome is logged.
func (p *Promoter) Check(pat Pattern, now time.Time) Decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	refuse := func(rule string, target Tier, reason string) Decision {
		d := Decision{PatternID: pat.ID, Rule: rule, From: pat.Tier, Target: target, Reason: reason, At: now}
		p.log = append(p.log, d)
		return d
	}
	if pat.ID == "" {
		return refuse("", pat.Tier, "pattern has no id")
	}
	if pat.Tier < Private || pat.Tier > Public {
		return refuse("", pat.Tier, fmt.Sprintf("pattern in unknown %v", pat.Tier))
	}
	var reasons []string
	for _, r := range p.rules {
		if r.Target <= pat.Tier {
			reasons = append(reasons, r.Name+": "+refuse(r.Name, r.Target, fmt.Sprintf("target %v is not more open than the pattern's tier %v", r.Target, pat.Tier)).Reason)
			continue
		}
		if ok, why := p.conditionHolds(r, pat, now); !ok {
			reasons = append(reasons, r.Name+": "+refuse(r.Name, r.Target, why).Reason)
			continue
		}
		if r.RequiresConsent {
			if _, ok := p.consents[promotionKey{pat.ID, r.Target}]; !ok {
				reasons = append(reasons, r.Name+": "+refuse(r.Name, r.Target, fmt.Sprintf("rule requires consent and none is recorded for %v", r.Target)).Reason)
				continue
			}
		}
		d := Decision{PatternID: pat.ID, Rule: r.Name, From: pat.Tier, Target: r.Target, Promoted: true, At: now,
			Reason: p.promotionReason(r, pat, now)}
		p.log = append(p.log, d)
		return d
	}
	if len(p.rules) == 0 {
		return refuse("", pat.Tier, "no promotion rules")
	}
	return Decision{PatternID: pat.ID, From: pat.Tier, Target: pat.Tier, At: now,
		Reason: "no rule promotes it: " + strings.Join(reasons, "; ")}
}

func (p *Promoter) conditionHolds(r PromotionRule, pat Pattern, now time.Time) (bool, string) {
	c := r.Condition
	switch c.Kind {
	case CondMinimumUsers:
		if k := pat.DistinctContributors(); k < c.MinUsers {
			return false, fmt.Sprintf("%d distinct contributors, fewer than %d", k, c.MinUsers)
		}
	case CondAgeThreshold:
		if pat.CreatedAt.IsZero() {
			return false, "pattern has no creation time"
		}
		if age := now.Sub(pat.CreatedAt); age < c.MinAge {
			return false, fmt.Sprintf("age %v, younger than %v", age, c.MinAge)
		}
	case CondCategoryMatch:
		for _, cat := range pat.Categories {
			if slices.Contains(c.Categories, cat) {
				return true, ""
			}
		}
		return false, fmt.Sprintf("categories %q match none of %q", pat.Categories, c.Categories)
	case CondExplicit:
		if _, ok := p.approvals[promotionKey{pat.ID, r.Target}]; !ok {
			return false, fmt.Sprintf("no explicit approval recorded for %v", r.Target)
		}
	}
	return true, ""
}

func (p *Promoter) promotionReason(r PromotionRule, pat Pattern, now time.Time) string {
	var why string
	switch r.Condition.Kind {
	case CondMinimumUsers:
		why = fmt.Sprintf("%d distinct contributors ≥ %d", pat.DistinctContributors(), r.Condition.MinUsers)
	case CondAgeThreshold:
		why = fmt.Sprintf("age %v ≥ %v", now.Sub(pat.CreatedAt), r.Condition.MinAge)
	case CondCategoryMatch:
		why = fmt.Sprintf("categories %q match %q", pat.Categories, r.Condition.Categories)
	case CondExplicit:
		why = "approved by " + p.approvals[promotionKey{pat.ID, r.Target}]
	}
	if r.RequiresConsent {
		why += "; consent by " + p.consents[promotionKey{pat.ID, r.Target}]
	}
	return why
}

// Log returns every decision recorded since the last TakeLog, oldest
// first.
func (p *Promoter) Log() []Decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Decision(nil), p.log...)
}

// TakeLog returns the recorded decisions and clears them, for a caller that
// persists the log (a long-running node would otherwise hold every
// decision in memory).
func (p *Promoter) TakeLog() []Decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.log
	p.log = nil
	return out
}
