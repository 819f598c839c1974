package handshake

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"time"
)

// The puzzle: find an 8-byte solution such that
//
//	SHA-256(puzzleTag || cookie || client ephemeral || solution)
//
// starts with difficulty zero bits. The cookie makes every puzzle fresh (it
// depends on the client's address, INIT and time bucket), so solutions cannot
// be computed ahead or shared; checking one costs the server one SHA-256.
const puzzleInputSize = len(puzzleTag) + CookieSize + 32 + 8

type puzzleInput [puzzleInputSize]byte

func newPuzzleInput(cookie *[CookieSize]byte, eph *[32]byte) (p puzzleInput) {
	n := copy(p[:], puzzleTag)
	n += copy(p[n:], cookie[:])
	copy(p[n:], eph[:])
	return p
}

// ok reports whether solution solves the puzzle at difficulty.
func (p *puzzleInput) ok(solution uint64, difficulty uint8) bool {
	if difficulty == 0 {
		return true
	}
	binary.BigEndian.PutUint64(p[puzzleInputSize-8:], solution)
	h := sha256.Sum256(p[:])
	return leadingZeros(&h) >= int(difficulty)
}

func leadingZeros(h *[32]byte) int {
	// MaxDifficulty is 32, so the first 8 bytes always decide.
	return bits.LeadingZeros64(binary.BigEndian.Uint64(h[:8]))
}

// solve searches solutions from 0 upwards. The expected cost is 2^difficulty
// hashes; MaxDifficulty bounds it.
func (p *puzzleInput) solve(difficulty uint8) uint64 {
	for s := uint64(0); ; s++ {
		if p.ok(s, difficulty) {
			return s
		}
	}
}

// PuzzleConfig sets how hard the puzzle is. It can be changed while the
// Responder runs (SetPuzzle).
//
// The Responder estimates the INIT rate and, while it stays at or below
// FloodRate, asks for Base bits. Above FloodRate it asks for Flood bits plus
// one more per doubling of the rate beyond FloodRate, up to Max: each extra
// bit halves how many RESPONSEs a flooder's CPU can complete, so the
// X25519 work the flood can force stays level as the flood grows. The
// estimate rises within one 100 ms slot of a flood starting and decays with
// HalfLife after it ends.
type PuzzleConfig struct {
	// Base is the difficulty when not under flood (0: no puzzle).
	Base uint8
	// Flood is the difficulty once the INIT rate exceeds FloodRate.
	Flood uint8
	// Max caps the difficulty; at most MaxDifficulty.
	Max uint8
	// FloodRate is the INIT rate, per second, above which the server
	// considers itself flooded. Around the rate at which it can complete
	// handshakes (a few thousand per core) is a sensible value.
	FloodRate float64
	// HalfLife is how fast the rate estimate decays once INITs slow down.
	HalfLife time.Duration
}

// DefaultPuzzleConfig: no puzzle in normal operation; under flood 2^16
// hashes (about 10 ms of a client core) rising to 2^24.
func DefaultPuzzleConfig() PuzzleConfig {
	return PuzzleConfig{Base: 0, Flood: 16, Max: 24, FloodRate: 2000, HalfLife: 10 * time.Second}
}

// Validate reports inconsistent settings.
func (c PuzzleConfig) Validate() error {
	var errs []error
	if c.Max > MaxDifficulty {
		errs = append(errs, fmt.Errorf("max %d above %d", c.Max, MaxDifficulty))
	}
	if c.Base > c.Max || c.Flood > c.Max {
		errs = append(errs, fmt.Errorf("base %d and flood %d must not exceed max %d", c.Base, c.Flood, c.Max))
	}
	if c.Flood < c.Base {
		errs = append(errs, fmt.Errorf("flood %d below base %d", c.Flood, c.Base))
	}
	if !(c.FloodRate > 0) || math.IsInf(c.FloodRate, 0) {
		errs = append(errs, fmt.Errorf("flood rate %v must be a positive number", c.FloodRate))
	}
	if c.HalfLife <= 0 {
		errs = append(errs, fmt.Errorf("half-life %v must be positive", c.HalfLife))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("handshake: puzzle config: %w", err)
	}
	return nil
}

// rateSlot is the estimator's measuring interval: short enough to react to
// a flood within a tenth of a second, long enough that a slot at 2,000 INIT/s
// holds 200 of them.
const rateSlot = 100 * time.Millisecond

// rateEstimator tracks the INIT rate: counts per slot, an exponentially
// weighted average, and a jump straight up to any slot faster than the
// flood rate.
type rateEstimator struct {
	slotStart time.Time
	count     uint64
	rate      float64 // INITs per second
}

// observe counts one INIT at now and reports whether a slot closed (and the
// rate may have changed).
func (e *rateEstimator) observe(now time.Time, c *PuzzleConfig) bool {
	closed := false
	if d := now.Sub(e.slotStart); d >= rateSlot {
		n := int64(d / rateSlot)
		inst := float64(e.count) / rateSlot.Seconds()
		decay := math.Exp2(-rateSlot.Seconds() / c.HalfLife.Seconds())
		if inst > e.rate && inst > c.FloodRate {
			// A flood is believed at once; below the flood rate the
			// average moves smoothly (one INIT in a 100 ms slot is not a
			// rate of 10/s).
			e.rate = inst
		} else {
			e.rate = e.rate*decay + inst*(1-decay)
		}
		if n > 1 {
			e.rate *= math.Pow(decay, float64(n-1)) // empty slots since
		}
		e.slotStart = e.slotStart.Add(time.Duration(n) * rateSlot)
		e.count = 0
		closed = true
	} else if d < 0 {
		e.slotStart = now // the clock went backwards: start a new slot
	}
	e.count++
	return closed
}

// difficultyFor maps a rate to a difficulty under c.
func (c *PuzzleConfig) difficultyFor(rate float64) uint8 {
	if rate <= c.FloodRate {
		return c.Base
	}
	d := float64(c.Flood) + math.Floor(math.Log2(rate/c.FloodRate))
	return uint8(min(d, float64(c.Max)))
}
