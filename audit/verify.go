package audit

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ProblemKind says what is wrong with a log.
type ProblemKind string

// Problems Verify reports.
const (
	// ProblemMalformed: a line is not in the chain's canonical form
	// (changed by hand, or cut in the middle).
	ProblemMalformed ProblemKind = "malformed"
	// ProblemEdited: a line's content changed: its hash no longer
	// matches the prev of the line after it.
	ProblemEdited ProblemKind = "edited"
	// ProblemDeleted: lines are missing: seq jumps forward.
	ProblemDeleted ProblemKind = "deleted"
	// ProblemInserted: a line was added between two that link to each
	// other.
	ProblemInserted ProblemKind = "inserted"
	// ProblemReordered: lines are out of order, or repeated.
	ProblemReordered ProblemKind = "reordered"
	// ProblemBadSignature: a checkpoint's signature does not verify
	// with the key (lines before it were rewritten with recomputed
	// hashes, or the checkpoint was forged or signed by another key).
	ProblemBadSignature ProblemKind = "bad_signature"
	// ProblemMissingCheckpoint: the last lines are not covered by a
	// signed checkpoint: the log was truncated after its last
	// checkpoint, or the gateway stopped without closing it.
	ProblemMissingCheckpoint ProblemKind = "missing_checkpoint"
)

// Problem is the first broken link Verify found. It is an error.
type Problem struct {
	Kind ProblemKind
	// File and Line (from 1) locate the line at fault.
	File string
	Line int
	// Seq is that line's seq when it could be read.
	Seq    uint64
	Detail string
}

func (p *Problem) Error() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Kind, p.Detail)
}

// Report describes the verified log.
type Report struct {
	Files, Lines, Events, Checkpoints int
	// FirstSeq and LastSeq are the seq of the first and last lines.
	FirstSeq, LastSeq uint64
	// FirstPrev is the prev of the first line: 64 zeros when the log
	// starts at its beginning; otherwise the hash of the last line of
	// segments deleted by retention, which the audit.retention.deleted
	// events account for.
	FirstPrev string
	// LastCheckpoint locates the last signed checkpoint.
	LastCheckpointFile string
	LastCheckpointLine int
	LastCheckpointSeq  uint64
	LastCheckpointTime time.Time
	// Unsigned counts the lines after the last checkpoint.
	Unsigned int
	// Problem is the first broken link, nil when the log is intact.
	Problem *Problem
}

// Verify checks the hash chain and the checkpoint signatures of a file
// sink's segments, given in chain order (see Segments), plain or gzip. It
// returns the report and, when the chain is broken, the *Problem also
// found in Report.Problem; other errors are failures to read.
//
// A log is intact when every line links to the one before it (seq one
// more, prev its hash), every checkpoint's signature verifies with the
// key among keys that its key id names, and the last line is a
// checkpoint. Several keys verify a log whose signing key was rotated:
// the chain runs on across the change, and the checkpoints after it name
// the new key. The first line's prev is not checked unless its seq is 1:
// earlier segments may have been deleted by retention.
func Verify(files []string, keys ...ed25519.PublicKey) (Report, error) {
	var r Report
	if len(keys) == 0 {
		return r, errors.New("audit verify: no public key")
	}
	byID := make(map[string]ed25519.PublicKey, len(keys))
	ids := make([]string, 0, len(keys))
	for _, pub := range keys {
		if len(pub) != ed25519.PublicKeySize {
			return r, errors.New("audit verify: not an Ed25519 public key")
		}
		id := KeyID(pub)
		if _, dup := byID[id]; !dup {
			ids = append(ids, id)
		}
		byID[id] = pub
	}
	it := &lineIter{files: files}
	defer it.close()
	v := verifier{r: &r, keys: byID, keyIDs: strings.Join(ids, ", ")}
	for {
		ln, err := it.next()
		if err != nil {
			return r, err
		}
		if ln == nil {
			break
		}
		if p := v.line(ln, it); p != nil {
			r.Problem = p
			r.Files = it.opened
			return r, p
		}
	}
	r.Files = it.opened
	switch {
	case r.Lines == 0:
		r.Problem = &Problem{Kind: ProblemMissingCheckpoint, File: lastOf(files), Detail: "the log holds no lines"}
	case r.Unsigned > 0:
		r.Problem = &Problem{Kind: ProblemMissingCheckpoint, File: v.last.file, Line: v.last.n, Seq: r.LastSeq,
			Detail: fmt.Sprintf("the last %d line(s), from seq %d, are not covered by a signed checkpoint: the log was truncated after its last checkpoint (%s), or the gateway stopped without closing it", r.Unsigned, r.LastSeq-uint64(r.Unsigned)+1, v.lastCheckpointText())}
	}
	if r.Problem != nil {
		return r, r.Problem
	}
	return r, nil
}

func lastOf(files []string) string {
	if len(files) == 0 {
		return ""
	}
	return files[len(files)-1]
}

type position struct {
	file string
	n    int
}

type verifier struct {
	r           *Report
	keys        map[string]ed25519.PublicKey // by key id
	keyIDs      string                       // the given keys' ids, for messages
	prev, prev2 [sha256.Size]byte            // hashes of the last two lines
	last        position
}

func (v *verifier) lastCheckpointText() string {
	if v.r.Checkpoints == 0 {
		return "there is none"
	}
	return fmt.Sprintf("%s line %d, seq %d", v.r.LastCheckpointFile, v.r.LastCheckpointLine, v.r.LastCheckpointSeq)
}

// line checks one line against the state and advances it.
func (v *verifier) line(ln *rawLine, it *lineIter) *Problem {
	r := v.r
	at := func(kind ProblemKind, pos position, seq uint64, format string, args ...any) *Problem {
		return &Problem{Kind: kind, File: pos.file, Line: pos.n, Seq: seq, Detail: fmt.Sprintf(format, args...)}
	}
	pos := position{ln.file, ln.n}
	if !ln.complete {
		return at(ProblemMalformed, pos, 0, "the line is cut off (no newline): the file was truncated in the middle of a line")
	}
	p, err := parseLine(ln.b)
	if err != nil {
		return at(ProblemMalformed, pos, 0, "%v", err)
	}
	h := sha256.Sum256(ln.b)
	if r.Lines == 0 {
		r.FirstSeq = p.seq
		r.FirstPrev = hex.EncodeToString(p.prev[:])
		if p.seq == 1 && p.prev != genesis {
			return at(ProblemEdited, pos, p.seq, "the first line (seq 1) must have a prev of 64 zeros")
		}
	} else {
		expect := r.LastSeq + 1
		switch {
		case p.seq == expect && p.prev == v.prev:
		case p.seq == expect:
			if next := it.peekParsed(); next != nil && next.seq == p.seq && next.prev == v.prev {
				return at(ProblemInserted, pos, p.seq, "this line (seq %d) was inserted: the line after it has the same seq and links to the line before it", p.seq)
			}
			return at(ProblemEdited, v.last, r.LastSeq, "line %d (seq %d) was changed: its hash does not match the prev of the next line (%s line %d, seq %d)", v.last.n, r.LastSeq, pos.file, pos.n, p.seq)
		case p.seq > expect:
			if next := it.peekParsed(); next != nil && next.seq == expect {
				return at(ProblemReordered, pos, p.seq, "seq %d comes before seq %d: lines were reordered", p.seq, expect)
			}
			return at(ProblemDeleted, pos, p.seq, "seq jumps from %d to %d: %d line(s) before this one were deleted", r.LastSeq, p.seq, p.seq-expect)
		default: // p.seq < expect
			if next := it.peekParsed(); next != nil && next.seq == expect && next.prev == v.prev {
				return at(ProblemInserted, pos, p.seq, "this line (seq %d) was inserted: the line after it links to the line before it", p.seq)
			}
			if p.seq == r.LastSeq && p.prev == v.prev2 {
				return at(ProblemInserted, v.last, r.LastSeq, "line %d was inserted: the next line (%s line %d) has the same seq %d and links to the line before it", v.last.n, pos.file, pos.n, p.seq)
			}
			return at(ProblemReordered, pos, p.seq, "seq goes back from %d to %d: lines were reordered or repeated", r.LastSeq, p.seq)
		}
	}
	if p.isCheckpoint {
		pub, ok := v.keys[p.keyID]
		if !ok {
			return at(ProblemBadSignature, pos, p.seq, "checkpoint signed with key %s, not with a given key (%s)", p.keyID, v.keyIDs)
		}
		msg := checkpointMessage(p.seq, hex.EncodeToString(p.prev[:]), p.timeMS, p.keyID)
		if !ed25519.Verify(pub, msg, p.sig) {
			return at(ProblemBadSignature, pos, p.seq, "the checkpoint's signature does not verify: the lines it covers (since %s) were rewritten, or the checkpoint was forged", v.lastCheckpointText())
		}
		r.Checkpoints++
		r.LastCheckpointFile, r.LastCheckpointLine, r.LastCheckpointSeq = pos.file, pos.n, p.seq
		r.LastCheckpointTime = time.UnixMilli(p.timeMS)
		r.Unsigned = 0
	} else {
		r.Events++
		r.Unsigned++
	}
	r.Lines++
	r.LastSeq = p.seq
	v.prev2, v.prev = v.prev, h
	v.last = pos
	return nil
}

// rawLine is one line as read.
type rawLine struct {
	b        []byte
	file     string
	n        int
	complete bool // ended with a newline
}

// lineIter reads the lines of files in order, with one line of lookahead.
type lineIter struct {
	files  []string
	i      int
	opened int
	rc     io.ReadCloser
	br     *bufio.Reader
	n      int
	peeked *rawLine
	peekE  error
}

func (it *lineIter) close() {
	if it.rc != nil {
		it.rc.Close()
	}
}

func (it *lineIter) next() (*rawLine, error) {
	if it.peeked != nil || it.peekE != nil {
		ln, err := it.peeked, it.peekE
		it.peeked, it.peekE = nil, nil
		return ln, err
	}
	return it.read()
}

// peekParsed parses the next line without consuming it; nil when there is
// none or it does not parse.
func (it *lineIter) peekParsed() *parsedLine {
	if it.peeked == nil && it.peekE == nil {
		it.peeked, it.peekE = it.read()
	}
	if it.peeked == nil || !it.peeked.complete {
		return nil
	}
	p, err := parseLine(it.peeked.b)
	if err != nil {
		return nil
	}
	return &p
}

func (it *lineIter) read() (*rawLine, error) {
	for {
		if it.br == nil {
			if it.i >= len(it.files) {
				return nil, nil
			}
			rc, err := openSegment(it.files[it.i])
			if err != nil {
				return nil, fmt.Errorf("audit verify: %w", err)
			}
			it.rc, it.br, it.n = rc, bufio.NewReaderSize(rc, 256<<10), 0
			it.opened++
		}
		b, err := it.br.ReadBytes('\n')
		if len(b) > 0 {
			it.n++
			ln := &rawLine{file: it.files[it.i], n: it.n, complete: err == nil}
			ln.b = bytes.TrimSuffix(b, []byte{'\n'})
			return ln, nil
		}
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("audit verify: %s: %w", it.files[it.i], err)
		}
		it.rc.Close()
		it.rc, it.br = nil, nil
		it.i++
	}
}
