// Package privacy holds the privacy tiers and their membership rules,
// clipping and Gaussian mechanisms, the RDP accountant and the per-node
// privacy ledger, and the promotion rules between tiers. It does no I/O:
// the ledger persists through a small storage interface. docs/PRIVACY.md
// gives the threat model.
package privacy
