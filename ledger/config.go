package ledger

import (
	"math"
	"path/filepath"
	"time"

	"github.com/poolrelay/poolrelay/internal/confcheck"
	"github.com/poolrelay/poolrelay/ledger/account"
	"github.com/poolrelay/poolrelay/ledger/policy"
	"github.com/poolrelay/poolrelay/ledger/score"
)

// Config is the [ledger] section. Amounts are in ledger units; with the
// default prices one unit is one byte relayed.
type Config struct {
	// JournalFile and StoreFile default to files in the node's data_dir.
	JournalFile string `toml:"journal_file"`
	StoreFile   string `toml:"store_file"`

	// Our prices for relaying a peer's traffic (the initiator pays).
	PricePerPacket        uint64 `toml:"price_per_packet"`
	PricePerByte          uint64 `toml:"price_per_byte"`
	ControlPricePerPacket uint64 `toml:"control_price_per_packet"`
	ControlPricePerByte   uint64 `toml:"control_price_per_byte"`
	// MaxPeerPriceFactor refuses a peer whose announced price exceeds ours
	// by more than this factor (per component; components we price at 0
	// are not capped). 0 disables the check.
	MaxPeerPriceFactor uint64 `toml:"max_peer_price_factor"`

	// PaymentThreshold is the debt at which a peer in good standing must pay.
	PaymentThreshold uint64 `toml:"payment_threshold"`
	// DisconnectThreshold is where such a peer is choked (about +25%).
	DisconnectThreshold uint64 `toml:"disconnect_threshold"`
	// EarlySettlementPercent: we pay a peer once we owe this percentage of
	// its announced payment threshold.
	EarlySettlementPercent uint64 `toml:"early_settlement_percent"`
	// MinPaymentThreshold is the smallest payment threshold accepted from
	// a peer.
	MinPaymentThreshold uint64 `toml:"min_payment_threshold"`
	// ForgivePerSecond is the debt forgiven per second of connection; 0 is off.
	ForgivePerSecond uint64 `toml:"forgive_per_second"`
	// InitialCredit is the disconnect limit of a peer that never paid.
	InitialCredit uint64 `toml:"initial_credit"`
	// CreditGrowthPercent: each unit a peer settles raises its limit by
	// this percentage of a unit, up to DisconnectThreshold.
	CreditGrowthPercent uint64 `toml:"credit_growth_percent"`
	// DisconnectGrace is how long a choked peer stays connected.
	DisconnectGrace time.Duration `toml:"disconnect_grace"`

	// ChequeRetryMin and ChequeRetryMax bound the jittered exponential
	// backoff between sends of an unacknowledged cheque.
	ChequeRetryMin time.Duration `toml:"cheque_retry_min"`
	ChequeRetryMax time.Duration `toml:"cheque_retry_max"`
	// CheckpointInterval is how often balances are written to the store.
	CheckpointInterval time.Duration `toml:"checkpoint_interval"`

	// ScoreHalfVolume is the traffic with a peer, in bytes both ways, over
	// which the weight of its earlier traffic in the generosity score halves.
	// The score ages with traffic only: an idle peer keeps its score.
	ScoreHalfVolume uint64 `toml:"score_half_volume"`
	// ClassTick is how often classes are re-decided.
	ClassTick time.Duration `toml:"class_tick"`
	// ClassHysteresisPercent is the margin past a class boundary needed to
	// change class.
	ClassHysteresisPercent uint64 `toml:"class_hysteresis_percent"`
	// ScorePriorBytes weighs the prior of the score.
	ScorePriorBytes uint64 `toml:"score_prior_bytes"`
	// NewcomerScore is the score of a peer without traffic.
	NewcomerScore float64 `toml:"newcomer_score"`

	// MismatchTolerancePercent, MismatchSlackBytes and MismatchSlackPackets
	// are the band within which a peer's signed counters may differ from ours.
	MismatchTolerancePercent float64 `toml:"mismatch_tolerance_percent"`
	MismatchSlackBytes       uint64  `toml:"mismatch_slack_bytes"`
	MismatchSlackPackets     uint64  `toml:"mismatch_slack_packets"`

	// ReconcileMaxCharge bounds what a restart's reconciliation may adopt
	// from a peer's signed counters, in price units, for each direction
	// (what the peer owes us, what we owe it): traffic charged since the
	// last checkpoint is lost on kill -9, and the peer's lifetime counters
	// say how much. It should cover what one checkpoint_interval of the
	// link's traffic costs; a larger difference is journalled as a
	// MISMATCH and nothing of it is adopted. 0 adopts nothing.
	ReconcileMaxCharge uint64 `toml:"reconcile_max_charge"`
}

// DefaultConfig returns the defaults documented in configs/default.toml.
func DefaultConfig() Config {
	return Config{
		PricePerPacket:           64,
		PricePerByte:             1,
		ControlPricePerPacket:    64,
		ControlPricePerByte:      0,
		MaxPeerPriceFactor:       4,
		PaymentThreshold:         1_000_000_000,
		DisconnectThreshold:      1_250_000_000,
		EarlySettlementPercent:   50,
		MinPaymentThreshold:      10_000_000,
		ForgivePerSecond:         0,
		InitialCredit:            125_000_000,
		CreditGrowthPercent:      100,
		DisconnectGrace:          30 * time.Second,
		ChequeRetryMin:           time.Second,
		ChequeRetryMax:           30 * time.Second,
		CheckpointInterval:       time.Second,
		ScoreHalfVolume:          256 << 20,
		ClassTick:                10 * time.Second,
		ClassHysteresisPercent:   10,
		ScorePriorBytes:          1 << 20,
		NewcomerScore:            0.25,
		MismatchTolerancePercent: 2,
		MismatchSlackBytes:       1 << 20,
		MismatchSlackPackets:     1024,
		ReconcileMaxCharge:       10_000_000,
	}
}

// JournalPath and StorePath resolve the file names against dataDir.
func (c Config) JournalPath(dataDir string) string {
	return orIn(c.JournalFile, dataDir, "journal.pjr")
}

// StorePath is the bbolt file.
func (c Config) StorePath(dataDir string) string { return orIn(c.StoreFile, dataDir, "ledger.db") }

func orIn(p, dir, name string) string {
	if p != "" {
		return p
	}
	return filepath.Join(dir, name)
}

// Validate checks the [ledger] section.
func (c Config) Validate(errs confcheck.Errors) {
	for _, f := range []struct{ key, v string }{{"journal_file", c.JournalFile}, {"store_file", c.StoreFile}} {
		if f.v != "" && !filepath.IsAbs(f.v) {
			errs.Addf(f.key, "%q must be an absolute path, or empty for the data_dir default", f.v)
		}
	}
	if c.JournalFile != "" && c.JournalFile == c.StoreFile {
		errs.Addf("store_file", "must differ from journal_file")
	}
	if c.PaymentThreshold == 0 {
		errs.Addf("payment_threshold", "must be positive")
	}
	if c.DisconnectThreshold <= c.PaymentThreshold {
		errs.Addf("disconnect_threshold", "%d must be beyond payment_threshold %d (about +25%%)", c.DisconnectThreshold, c.PaymentThreshold)
	}
	if c.EarlySettlementPercent == 0 || c.EarlySettlementPercent > 100 {
		errs.Addf("early_settlement_percent", "%d: use 1 to 100 (50 pays at half the peer's threshold)", c.EarlySettlementPercent)
	}
	if c.MinPaymentThreshold > c.PaymentThreshold {
		errs.Addf("min_payment_threshold", "%d is above our own payment_threshold %d", c.MinPaymentThreshold, c.PaymentThreshold)
	}
	if c.InitialCredit == 0 || c.InitialCredit > c.DisconnectThreshold {
		errs.Addf("initial_credit", "%d: use 1 to disconnect_threshold (%d)", c.InitialCredit, c.DisconnectThreshold)
	} else if c.DisconnectThreshold > 0 && c.policy().Limits(0).Payment < c.MinPaymentThreshold {
		errs.Addf("initial_credit", "%d gives a newcomer a payment threshold of %d, below min_payment_threshold %d: a relay like us would refuse it",
			c.InitialCredit, c.policy().Limits(0).Payment, c.MinPaymentThreshold)
	}
	if c.DisconnectGrace < 0 {
		errs.Addf("disconnect_grace", "must not be negative")
	}
	if c.ChequeRetryMin <= 0 || c.ChequeRetryMax < c.ChequeRetryMin {
		errs.Addf("cheque_retry_max", "need 0 < cheque_retry_min (%v) <= cheque_retry_max (%v)", c.ChequeRetryMin, c.ChequeRetryMax)
	}
	if c.CheckpointInterval <= 0 {
		errs.Addf("checkpoint_interval", "must be positive")
	}
	if c.ScoreHalfVolume == 0 {
		errs.Addf("score_half_volume", "must be positive")
	}
	if c.ClassTick <= 0 {
		errs.Addf("class_tick", "must be positive")
	}
	if c.ClassHysteresisPercent >= 50 {
		errs.Addf("class_hysteresis_percent", "%d: use 0 to 49", c.ClassHysteresisPercent)
	}
	if c.ScorePriorBytes == 0 {
		errs.Addf("score_prior_bytes", "must be positive: it keeps the score of a silent peer defined")
	}
	if !(c.NewcomerScore > 0) || c.NewcomerScore > 2 || math.IsInf(c.NewcomerScore, 0) {
		errs.Addf("newcomer_score", "%v: use a score above 0 and at most 2 (the seed's classes start at 0.5, 1.0, 2.0)", c.NewcomerScore)
	}
	if !(c.MismatchTolerancePercent >= 0) || c.MismatchTolerancePercent > 100 {
		errs.Addf("mismatch_tolerance_percent", "%v: use 0 to 100", c.MismatchTolerancePercent)
	}
}

func (c Config) prices() account.Prices {
	return account.Prices{Packet: c.PricePerPacket, Byte: c.PricePerByte,
		ControlPacket: c.ControlPricePerPacket, ControlByte: c.ControlPricePerByte}
}

func (c Config) limits() account.Limits {
	p := c.prices()
	f := c.MaxPeerPriceFactor
	capOf := func(ours uint64) uint64 {
		if f == 0 || ours == 0 {
			return 0
		}
		if ours > math.MaxUint64/f {
			return math.MaxUint64
		}
		return ours * f
	}
	return account.Limits{MinPayment: c.MinPaymentThreshold, MaxPrices: account.Prices{
		Packet: capOf(p.Packet), Byte: capOf(p.Byte), ControlPacket: capOf(p.ControlPacket), ControlByte: capOf(p.ControlByte)}}
}

func (c Config) policy() policy.Config {
	return policy.Config{Payment: c.PaymentThreshold, Disconnect: c.DisconnectThreshold,
		InitialCredit: c.InitialCredit, GrowthPercent: c.CreditGrowthPercent, Grace: c.DisconnectGrace}
}

func (c Config) score() score.Config {
	return score.Config{HalfVolume: float64(c.ScoreHalfVolume), Hysteresis: float64(c.ClassHysteresisPercent) / 100,
		PriorBytes: float64(c.ScorePriorBytes), NewcomerScore: c.NewcomerScore}
}

func (c Config) band() score.Band {
	return score.Band{Fraction: c.MismatchTolerancePercent / 100, SlackBytes: c.MismatchSlackBytes,
		SlackPackets: c.MismatchSlackPackets}
}
