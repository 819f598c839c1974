package journal

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/poolrelay/poolrelay/internal/atomicfile"
	"github.com/poolrelay/poolrelay/internal/clock"
	"github.com/poolrelay/poolrelay/ledger/event"
)

// Options configure Open.
type Options struct {
	// Clock stamps records. Required.
	Clock clock.Clock
	// Log receives the torn-tail warning and write failures. Use
	// logging.Nop(), never a zero Logger, when there is nothing to log to.
	Log zerolog.Logger
	// Visit, if set, is called for every verified record during Open, in
	// order; the ledger uses it to replay cheques. An error aborts Open.
	Visit func(*Record) error
}

// Recovery is what Open found.
type Recovery struct {
	// Records is the number of verified records (before any ERROR entry
	// that Open appended).
	Records uint64
	// Torn is set when a torn tail was found, truncated and journalled.
	Torn *Torn
	// Created is true when the file did not exist.
	Created bool
}

// Pos identifies an appended record.
type Pos struct {
	Index uint64
	Hash  Hash
	// gen is the journal's generation when the record was added: a failed
	// write takes the records not yet durable back and starts a new one,
	// so an index of an older generation may name another record now.
	gen uint64
}

// RetryInterval is how often a degraded journal tries to write again: a
// second brings appends back soon after space returns, and one small write
// and fsync a second costs a failing disk nothing.
const RetryInterval = time.Second

// stillFailingEvery rate-limits the log while the journal stays degraded.
const stillFailingEvery = time.Minute

// Health is the journal's writing state.
type Health struct {
	// Degraded is true while the journal cannot write; Since when that
	// started and Reason the error that started it.
	Degraded bool
	Since    time.Time
	Reason   string
	// Degradations counts the episodes since Open; Lost the records taken
	// back by a failed write (added, never durable, nothing acknowledged on
	// them) and Refused those not accepted while degraded, over all of
	// them. Each episode ends with a gap record that says how many.
	Degradations, Lost, Refused uint64
}

// sparseEvery is the spacing of the in-memory offset index: Records and
// Tail start reading at most this many records before where they need to.
const sparseEvery = 1024

// mark is an entry of the sparse offset index: where record Index starts and
// the hash before it.
type mark struct {
	Index  uint64
	Offset int64
	Prev   Hash
}

// Journal is an open journal. Its methods are safe for concurrent use.
type Journal struct {
	// Immutable after Open.
	f       backing
	path    string
	hdr     header
	genesis Hash
	clock   clock.Clock
	log     zerolog.Logger
	kick    chan struct{}
	done    chan struct{}

	mu sync.Mutex
	// flushed is signalled (with mu) whenever a flush ends.
	flushed *sync.Cond
	// next is the index the next record gets; head the last record's hash;
	// end the file offset where it goes.
	next uint64
	head Hash
	end  int64
	// pending holds encoded records not yet written; they start at pendingOff
	// and their batch field is pendingFirst.
	pending      []byte
	pendingOff   int64
	pendingFirst uint64
	spare        []byte
	flushing     bool
	// synced is the last durable record, syncedEnd the durable file size.
	synced    Pos
	syncedEnd int64
	sparse    []mark
	// err is sticky: after a failure the file could not be cut back to
	// its durable end, nothing more is accepted, since what reached the
	// disk is unknown.
	err    error
	closed bool
	// gen counts the failed writes (see Pos). degraded is set while the
	// journal cannot write: adds are refused and the flusher retries;
	// lostErr is what waiters on a record taken back get.
	gen      uint64
	degraded error
	lostErr  error
	health   Health
	// episodeLost and episodeRefused count this episode's records for the
	// gap record; lastWarn rate-limits the log while it lasts.
	episodeLost, episodeRefused uint64
	lastWarn                    time.Time
}

// Open opens the journal at path, creating it if needed, verifies the whole
// chain, repairs and reports a torn tail, and takes an exclusive lock on the
// file. A broken chain fails with ErrBroken.
func Open(path string, o Options) (*Journal, Recovery, error) {
	var rec Recovery
	if o.Clock == nil {
		return nil, rec, errors.New("journal: Options.Clock is nil")
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := create(path, o.Clock); err != nil {
			return nil, rec, err
		}
		rec.Created = true
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, rec, fmt.Errorf("journal: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, rec, fmt.Errorf("%w: %s", ErrLocked, path)
		}
		return nil, rec, fmt.Errorf("journal: lock %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, rec, fmt.Errorf("journal: %w", err)
	}
	j, err := load(f, st.Size(), path, o, &rec)
	if err != nil {
		f.Close()
		return nil, rec, err
	}
	go j.flusher()
	return j, rec, nil
}

// OpenMemory returns a new, empty journal held in memory: the same chain,
// records and group commit, with nothing durable. It is for simulations
// that run thousands of ledgers in one process (package sim); a relay
// never uses it.
func OpenMemory(o Options) (*Journal, Recovery, error) {
	rec := Recovery{Created: true}
	if o.Clock == nil {
		return nil, rec, errors.New("journal: Options.Clock is nil")
	}
	h := header{Created: o.Clock.Now().UnixNano()}
	if _, err := rand.Read(h.ID[:]); err != nil {
		return nil, rec, fmt.Errorf("journal: %w", err)
	}
	m := &memFile{b: h.encode()}
	j, err := load(m, int64(len(m.b)), "memory", o, &rec)
	if err != nil {
		return nil, rec, err
	}
	go j.flusher()
	return j, rec, nil
}

// backing is what a journal is kept in: its file, or memory.
type backing interface {
	io.ReaderAt
	io.WriterAt
	Truncate(size int64) error
	Sync() error
	Close() error
}

// datasync makes the data written so far durable (fdatasync on a file).
func datasync(b backing) error {
	if f, ok := b.(*os.File); ok {
		return unix.Fdatasync(int(f.Fd()))
	}
	return b.Sync()
}

// memFile is a backing in memory.
type memFile struct {
	mu sync.Mutex
	b  []byte
}

func (m *memFile) ReadAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if off >= int64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *memFile) WriteAt(p []byte, off int64) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if end := off + int64(len(p)); end > int64(len(m.b)) {
		m.b = append(m.b, make([]byte, end-int64(len(m.b)))...)
	}
	return copy(m.b[off:], p), nil
}

func (m *memFile) Truncate(size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if size < int64(len(m.b)) {
		m.b = m.b[:size]
	}
	return nil
}

func (m *memFile) Sync() error  { return nil }
func (m *memFile) Close() error { return nil }

// create writes a new journal holding only the header, atomically: a crash
// leaves either no journal or a complete header, never a partial one.
func create(path string, c clock.Clock) error {
	h := header{Created: c.Now().UnixNano()}
	if _, err := rand.Read(h.ID[:]); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := atomicfile.WriteFile(path, h.encode(), atomicfile.Options{}); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

func load(f backing, size int64, path string, o Options, rec *Recovery) (*Journal, error) {
	hb := make([]byte, headerSize)
	if _, err := f.ReadAt(hb, 0); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadHeader, path, err)
	}
	hdr, err := decodeHeader(hb)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	j := &Journal{f: f, path: path, hdr: hdr, genesis: hdr.genesis(), clock: o.Clock, log: o.Log,
		kick: make(chan struct{}, 1), done: make(chan struct{})}
	j.flushed = sync.NewCond(&j.mu)
	start := position{Offset: int64(headerSize), Next: 1, Head: j.genesis}
	j.sparse = append(j.sparse, mark{Index: 1, Offset: start.Offset, Prev: start.Head})
	p, torn, err := scan(f, size, start, func(r *Record) error {
		if r.Index%sparseEvery == 1 && r.Index > 1 {
			j.sparse = append(j.sparse, mark{Index: r.Index, Offset: r.Offset, Prev: r.Prev})
		}
		rec.Records++
		if o.Visit != nil {
			return o.Visit(r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", err, path)
	}
	j.next, j.head, j.end = p.Next, p.Head, p.Offset
	j.synced, j.syncedEnd = Pos{Index: p.Next - 1, Hash: p.Head}, p.Offset
	if torn != nil {
		rec.Torn = torn
		if err := j.repair(torn); err != nil {
			return nil, err
		}
	}
	return j, nil
}

// repair replaces a torn tail by an ERROR entry describing it. The entry is
// written over the start of the damage and made durable before the file is
// cut after it, so a crash at any point leaves either the damage (found
// again next time) or the entry, never neither. Intact records of the torn
// batch are defaced first: after a crash between the write and the cut, one
// of them could otherwise start right after the ERROR entry and read as a
// chain break.
func (j *Journal) repair(t *Torn) error {
	for _, off := range t.intact {
		if _, err := j.f.WriteAt(make([]byte, len(recMagic)), off); err != nil {
			return fmt.Errorf("journal: repair: %w", err)
		}
	}
	j.log.Warn().Int64("offset", t.Offset).Int64("bytes", t.Bytes).Uint64("first_lost", t.FirstLost).
		Str("reason", t.Reason).Msg("journal: torn tail discarded and recorded")
	body, err := event.Marshal(event.Error, &event.Text{Note: "journal: " + t.String()})
	if err != nil {
		return err
	}
	r := Record{Index: j.next, Batch: j.next, Time: j.clock.Now().UnixNano(), Type: event.Error, Prev: j.head, Body: body}
	b := appendRecord(nil, &r)
	if _, err := j.f.WriteAt(b, t.Offset); err != nil {
		return fmt.Errorf("journal: repair: %w", err)
	}
	if err := datasync(j.f); err != nil {
		return fmt.Errorf("journal: repair: %w", err)
	}
	end := t.Offset + int64(len(b))
	if err := j.f.Truncate(end); err != nil {
		return fmt.Errorf("journal: repair: %w", err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("journal: repair: %w", err)
	}
	j.noteMark(r.Index, t.Offset, r.Prev)
	j.next, j.head, j.end = r.Index+1, r.Hash, end
	j.synced, j.syncedEnd = Pos{Index: r.Index, Hash: r.Hash}, end
	return nil
}

func (j *Journal) noteMark(index uint64, off int64, prev Hash) {
	if index%sparseEvery == 1 && index > 1 {
		j.sparse = append(j.sparse, mark{Index: index, Offset: off, Prev: prev})
	}
}

// Path is the journal's file name.
func (j *Journal) Path() string { return j.path }

// ID is the journal's random identity, fixed at creation.
func (j *Journal) ID() [16]byte { return j.hdr.ID }

// Append adds a record and returns once it is durable (written and
// fdatasync'ed). Concurrent appenders share fsyncs: while one batch is being
// synced, new records gather into the next, which one of their appenders
// writes and syncs for all of them.
func (j *Journal) Append(t event.Type, body []byte) (Pos, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	p, err := j.addLocked(t, body)
	if err != nil {
		return p, err
	}
	return p, j.waitLocked(p.Index, p.gen)
}

// AppendEvent marshals b as the body of a record of type t and appends it.
func (j *Journal) AppendEvent(t event.Type, b event.Body) (Pos, error) {
	body, err := event.Marshal(t, b)
	if err != nil {
		return Pos{}, err
	}
	return j.Append(t, body)
}

// Submit adds a record without waiting for it to be durable: a background
// flush makes it so within about one fsync, in order with everything else.
// Use it for entries nothing is acknowledged on (audit of decisions already
// taken); use Append, or Sync afterwards, when something is.
func (j *Journal) Submit(t event.Type, body []byte) (Pos, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	p, err := j.addLocked(t, body)
	if err == nil {
		// Under mu, so that Close cannot close the channel in between; the
		// send never blocks.
		select {
		case j.kick <- struct{}{}:
		default:
		}
	}
	return p, err
}

// SubmitEvent marshals b and submits it.
func (j *Journal) SubmitEvent(t event.Type, b event.Body) (Pos, error) {
	body, err := event.Marshal(t, b)
	if err != nil {
		return Pos{}, err
	}
	return j.Submit(t, body)
}

// Sync returns once every record added so far is durable. Records a failed
// write took back are not waited for: use Wait for a record that must be.
func (j *Journal) Sync() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return ErrClosed
	}
	return j.waitLocked(j.next-1, j.gen)
}

// Wait returns once the record at p (from Submit) and those before it are
// durable, or an error wrapping ErrDegraded if a failed write took it back:
// then it was never written and must not be acknowledged.
func (j *Journal) Wait(p Pos) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed && j.synced.Index < p.Index {
		return ErrClosed
	}
	return j.waitLocked(p.Index, p.gen)
}

func (j *Journal) addLocked(t event.Type, body []byte) (Pos, error) {
	switch {
	case j.closed:
		return Pos{}, ErrClosed
	case j.err != nil:
		return Pos{}, j.err
	case j.degraded != nil:
		j.health.Refused++
		j.episodeRefused++
		return Pos{}, j.degraded
	case len(body) > MaxBody:
		return Pos{}, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(body))
	case t == 0:
		return Pos{}, errors.New("journal: type 0")
	}
	if len(j.pending) == 0 {
		j.pendingOff, j.pendingFirst = j.end, j.next
	}
	r := Record{Index: j.next, Batch: j.pendingFirst, Time: j.clock.Now().UnixNano(), Type: t, Prev: j.head, Body: body}
	j.pending = appendRecord(j.pending, &r)
	j.noteMark(r.Index, j.end, r.Prev)
	j.next, j.head, j.end = r.Index+1, r.Hash, j.end+r.Size()
	return Pos{Index: r.Index, Hash: r.Hash, gen: j.gen}, nil
}

// waitLocked returns once record index of generation gen is durable,
// flushing if no one else is.
func (j *Journal) waitLocked(index, gen uint64) error {
	for {
		switch {
		case j.gen != gen:
			// Taken back by a failed write: whatever has this index now
			// is another record.
			return j.lostErr
		case j.synced.Index >= index:
			return nil
		case j.err != nil:
			return j.err
		case j.degraded != nil:
			return j.degraded
		case j.flushing:
			j.flushed.Wait()
		default:
			j.flushLocked()
		}
	}
}

// flushLocked writes and syncs the pending batch, releasing mu during the
// I/O so that appenders can gather the next batch meanwhile.
func (j *Journal) flushLocked() {
	if len(j.pending) == 0 {
		return
	}
	buf, off := j.pending, j.pendingOff
	last := Pos{Index: j.next - 1, Hash: j.head}
	j.pending, j.spare = j.spare[:0], nil
	j.flushing = true
	j.mu.Unlock()

	_, err := j.f.WriteAt(buf, off)
	if err == nil {
		err = datasync(j.f)
	}

	j.mu.Lock()
	j.flushing = false
	if cap(buf) <= 1<<20 {
		j.spare = buf[:0]
	}
	if err != nil {
		j.failLocked(fmt.Errorf("journal: write at %d: %w", off, err))
	} else {
		j.synced, j.syncedEnd = last, off+int64(len(buf))
	}
	j.flushed.Broadcast()
}

// failLocked handles a failed write or fsync. What reached the disk past the
// last durable record is unknown, and a retried fsync may "succeed" without
// the data, so the file is cut back to its durable end and synced, and every
// record not yet durable is taken back (its appenders get an error; nothing
// was acknowledged on them). The journal is then degraded: it refuses
// records until a retry (the flusher's, every RetryInterval) writes a gap
// record, and a stop meanwhile leaves no torn tail. Only when the cut itself
// fails does the journal stop for good, as the file's end is then unknown.
func (j *Journal) failLocked(err error) {
	if terr := j.cutLocked(); terr != nil {
		j.err = fmt.Errorf("%w; cutting back to the last durable record: %v", err, terr)
		j.log.Error().Err(j.err).Msg("journal: write failed and the file could not be cut back; no further appends")
		return
	}
	lost := j.next - 1 - j.synced.Index
	j.next, j.head, j.end = j.synced.Index+1, j.synced.Hash, j.syncedEnd
	j.pending = j.pending[:0]
	for len(j.sparse) > 1 && j.sparse[len(j.sparse)-1].Index > j.synced.Index {
		j.sparse = j.sparse[:len(j.sparse)-1]
	}
	j.gen++
	j.lostErr = fmt.Errorf("%w: record not written: %v", ErrDegraded, err)
	j.health.Lost += lost
	j.episodeLost += lost
	if j.degraded == nil {
		now := j.clock.Now()
		j.degraded = fmt.Errorf("%w: %v", ErrDegraded, err)
		j.health.Degraded, j.health.Since, j.health.Reason = true, now, err.Error()
		j.health.Degradations++
		j.lastWarn = now
		j.log.Error().Err(err).Uint64("records_lost", lost).
			Msg("journal: cannot write; refusing records (nothing is acknowledged on them) and retrying every second")
	}
}

// cutLocked truncates the file to the durable end and syncs it.
func (j *Journal) cutLocked() error {
	if err := j.f.Truncate(j.syncedEnd); err != nil {
		return err
	}
	return datasync(j.f)
}

// recoverLocked tries to leave the degraded state by writing the gap record:
// an ERROR entry saying how long the journal could not write, why, and how
// many records were taken back or refused meanwhile. It runs under mu, I/O
// included: appenders are refused anyway until it succeeds.
func (j *Journal) recoverLocked() {
	now := j.clock.Now()
	note := fmt.Sprintf("journal: gap: could not write from %s to %s (%s); %d records not written (%d taken back unacknowledged, %d refused)",
		j.health.Since.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano), j.health.Reason,
		j.episodeLost+j.episodeRefused, j.episodeLost, j.episodeRefused)
	body, err := event.Marshal(event.Error, &event.Text{Note: note})
	if err != nil {
		return
	}
	r := Record{Index: j.next, Batch: j.next, Time: now.UnixNano(), Type: event.Error, Prev: j.head, Body: body}
	b := appendRecord(nil, &r)
	_, err = j.f.WriteAt(b, j.end)
	if err == nil {
		err = datasync(j.f)
	}
	if err != nil {
		if terr := j.cutLocked(); terr != nil {
			j.err = fmt.Errorf("journal: retry: %v; cutting back: %v", err, terr)
			j.log.Error().Err(j.err).Msg("journal: the file could not be cut back; no further appends")
			return
		}
		if now.Sub(j.lastWarn) >= stillFailingEvery {
			j.lastWarn = now
			j.log.Warn().Err(err).Time("since", j.health.Since).Uint64("records_refused", j.episodeRefused).
				Msg("journal: still cannot write")
		}
		return
	}
	j.noteMark(r.Index, j.end, r.Prev)
	j.next, j.head, j.end = r.Index+1, r.Hash, j.end+int64(len(b))
	j.synced, j.syncedEnd = Pos{Index: r.Index, Hash: r.Hash}, j.end
	j.log.Warn().Dur("after", now.Sub(j.health.Since)).Uint64("records_lost", j.episodeLost).
		Uint64("records_refused", j.episodeRefused).Uint64("gap_record", r.Index).Msg("journal: writing again; the gap is recorded")
	j.degraded = nil
	j.health.Degraded, j.health.Since, j.health.Reason = false, time.Time{}, ""
	j.episodeLost, j.episodeRefused = 0, 0
	j.flushed.Broadcast()
}

// flusher makes submitted records durable in the background, and retries a
// degraded journal every RetryInterval.
func (j *Journal) flusher() {
	defer close(j.done)
	t := time.NewTicker(RetryInterval)
	defer t.Stop()
	for {
		select {
		case _, ok := <-j.kick:
			if !ok {
				return
			}
			j.mu.Lock()
			if j.err == nil && j.degraded == nil {
				_ = j.waitLocked(j.next-1, j.gen)
			}
			j.mu.Unlock()
		case <-t.C:
			j.mu.Lock()
			if j.err == nil && j.degraded != nil && !j.closed {
				j.recoverLocked()
			}
			j.mu.Unlock()
		}
	}
}

// Health reports whether the journal writes, and what it lost while it
// could not.
func (j *Journal) Health() Health {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.health
}

// Head is the last durable record: what SignHead signs and heartbeats carry.
// Index 0 means the journal is empty.
func (j *Journal) Head() Head {
	j.mu.Lock()
	defer j.mu.Unlock()
	return Head{ID: j.hdr.ID, Index: j.synced.Index, Hash: j.synced.Hash}
}

// Err returns the sticky write error, or the degraded state's, if any.
func (j *Journal) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	return j.degraded
}

// Close makes everything added durable and closes the file. A degraded
// journal tries once more to record its gap; either way the file ends on a
// whole record.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	err := j.waitLocked(j.next-1, j.gen)
	if j.err == nil && j.degraded != nil {
		j.recoverLocked()
		err = j.degraded
	}
	j.closed = true
	close(j.kick)
	j.mu.Unlock()
	<-j.done
	if cerr := j.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("journal: %w", cerr)
	}
	return err
}

// Records calls fn for each durable record from index from (1 for all) to
// the durable head, verifying the chain as it reads. It reads the file with
// positioned reads, so it runs beside appenders.
func (j *Journal) Records(from uint64, fn func(*Record) error) error {
	j.mu.Lock()
	end, last := j.syncedEnd, j.synced.Index
	i := len(j.sparse) - 1
	for i > 0 && j.sparse[i].Index > max(from, 1) {
		i--
	}
	m := j.sparse[i]
	j.mu.Unlock()
	if from > last {
		return nil
	}
	start := position{Offset: m.Offset, Next: m.Index, Head: m.Prev}
	_, torn, err := scan(j.f, end, start, func(r *Record) error {
		if r.Index < from {
			return nil
		}
		return fn(r)
	})
	if err == nil && torn != nil {
		// The durable region was verified at Open; damage now means the
		// file changed under us.
		err = fmt.Errorf("%w: durable record %d damaged since open (%s)", ErrBroken, torn.FirstLost, torn.Reason)
	}
	return err
}

// Tail returns copies of the last n durable records, oldest first.
func (j *Journal) Tail(n int) ([]Record, error) {
	if n <= 0 {
		return nil, nil
	}
	last := j.Head().Index
	from := uint64(1)
	if last > uint64(n) {
		from = last - uint64(n) + 1
	}
	out := make([]Record, 0, min(uint64(n), last))
	err := j.Records(from, func(r *Record) error {
		c := *r
		c.Body = append([]byte(nil), r.Body...)
		out = append(out, c)
		return nil
	})
	return out, err
}

// Summary is the result of Verify.
type Summary struct {
	ID      [16]byte
	Records uint64
	Head    Hash
	// Torn is set when the file ends in a damaged tail. Verify does not
	// repair it; opening the journal for writing does.
	Torn *Torn
}

// Verify checks the journal file at path without modifying or locking it
// (for `pool_relay journal verify`, and safe beside a running relay, whose
// unsynced last batch may show as a torn tail). fn, if not nil, sees each
// record; it serves tail and export.
func Verify(path string, fn func(*Record) error) (Summary, error) {
	var s Summary
	f, err := os.Open(path)
	if err != nil {
		return s, fmt.Errorf("journal: %w", err)
	}
	defer f.Close()
	hb := make([]byte, headerSize)
	if _, err := io.ReadFull(f, hb); err != nil {
		return s, fmt.Errorf("%w: %s: %v", ErrBadHeader, path, err)
	}
	hdr, err := decodeHeader(hb)
	if err != nil {
		return s, err
	}
	st, err := f.Stat()
	if err != nil {
		return s, fmt.Errorf("journal: %w", err)
	}
	s.ID = hdr.ID
	p, torn, err := scan(f, st.Size(), position{Offset: int64(headerSize), Next: 1, Head: hdr.genesis()}, fn)
	s.Records, s.Head, s.Torn = p.Next-1, p.Head, torn
	return s, err
}
