package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// segmentDigits is the width of the first seq in a closed segment's name,
// so that names sort in chain order.
const segmentDigits = 20

// segmentNaming splits the active file's path into what closed segments
// are named after: dir/stem-<first seq>ext[.gz].
type segmentNaming struct {
	dir, stem, ext string
}

func namingOf(path string) segmentNaming {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	ext := filepath.Ext(base)
	return segmentNaming{dir: filepath.Clean(dir), stem: strings.TrimSuffix(base, ext), ext: ext}
}

func (n segmentNaming) closedName(firstSeq uint64) string {
	return filepath.Join(n.dir, fmt.Sprintf("%s-%0*d%s", n.stem, segmentDigits, firstSeq, n.ext))
}

// closedSegment is one rotated segment on disk.
type closedSegment struct {
	path     string
	firstSeq uint64
	gz       bool
}

// listClosed lists the closed segments of n in chain order; when both
// the plain and the compressed file of one segment exist (compression was
// interrupted after its rename), the compressed one is listed.
func (n segmentNaming) listClosed() ([]closedSegment, error) {
	ents, err := os.ReadDir(n.dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	bySeq := map[uint64]closedSegment{}
	for _, e := range ents {
		name := e.Name()
		gz := strings.HasSuffix(name, ".gz")
		core := strings.TrimSuffix(name, ".gz")
		rest, ok := strings.CutPrefix(core, n.stem+"-")
		if !ok {
			continue
		}
		num, ok := strings.CutSuffix(rest, n.ext)
		if !ok || len(num) != segmentDigits {
			continue
		}
		seq, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			continue
		}
		if old, dup := bySeq[seq]; dup && old.gz {
			continue
		}
		bySeq[seq] = closedSegment{path: filepath.Join(n.dir, name), firstSeq: seq, gz: gz}
	}
	out := make([]closedSegment, 0, len(bySeq))
	for _, s := range bySeq {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b closedSegment) int {
		switch {
		case a.firstSeq < b.firstSeq:
			return -1
		case a.firstSeq > b.firstSeq:
			return 1
		}
		return 0
	})
	return out, nil
}

// Segments lists the files of the file sink whose active file is path, in
// chain order: the closed segments (plain or .gz), then the active file
// if it exists. It is what Verify takes.
func Segments(path string) ([]string, error) {
	n := namingOf(path)
	closed, err := n.listClosed()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range closed {
		out = append(out, s.path)
	}
	if _, err := os.Stat(path); err == nil {
		out = append(out, path)
	}
	return out, nil
}

// openSegment opens a segment for reading, decompressing it when it is
// gzip (by its magic bytes, whatever its name).
func openSegment(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 256<<10)
	magic, _ := br.Peek(2)
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
	}
	return readCloser{br, f.Close}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }

// lastLineOf returns the last complete line of a segment (plain or gzip),
// nil when it has none.
func lastLineOf(path string) ([]byte, error) {
	rc, err := openSegment(path)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	br := bufio.NewReaderSize(rc, 256<<10)
	var last []byte
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// A long line: gather it whole.
			full := append([]byte(nil), line...)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				full = append(full, line...)
			}
			line = full
		}
		if err == nil {
			last = append(last[:0], line[:len(line)-1]...)
			continue
		}
		if err == io.EOF {
			return last, nil
		}
		return nil, err
	}
}

// tailOfFile returns the last complete line of a plain file of the given
// size, reading backwards, and the offset just after it (the size the
// file has without a torn final line).
func tailOfFile(f *os.File, size int64) (line []byte, end int64, err error) {
	const chunk = 64 << 10
	var buf []byte
	pos := size
	for pos > 0 {
		n := int64(chunk)
		if pos < n {
			n = pos
		}
		pos -= n
		b := make([]byte, n)
		if _, err := f.ReadAt(b, pos); err != nil {
			return nil, 0, err
		}
		buf = append(b, buf...)
		// The last newline ends the last complete line.
		last := bytes.LastIndexByte(buf, '\n')
		if last < 0 {
			continue
		}
		start := bytes.LastIndexByte(buf[:last], '\n')
		if start >= 0 || pos == 0 {
			return append([]byte(nil), buf[start+1:last]...), pos + int64(last) + 1, nil
		}
	}
	return nil, 0, nil
}

// firstLineOf returns the first line of a plain file.
func firstLineOf(f *os.File) ([]byte, error) {
	br := bufio.NewReader(io.NewSectionReader(f, 0, 1<<40))
	line, err := br.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	return line[:len(line)-1], nil
}
