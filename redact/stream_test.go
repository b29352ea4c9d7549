package redact

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestWriterLifecycle(t *testing.T) {
	p := mustCompile(t, []Rule{{Path: "$.a", Action: ActionRemove}}, nil)
	var dst bytes.Buffer
	w := p.NewWriter(&dst)
	if _, err := w.Write([]byte(`{"a":1,"b":`)); err != nil {
		t.Fatal(err)
	}
	if dst.Len() != 0 {
		t.Errorf("Write passed on %q below BufferBytes", dst.String())
	}
	if err := w.Flush(); err != nil || dst.String() != `{"b":` {
		t.Errorf("Flush() = %v, output %q", err, dst.String())
	}
	if _, err := w.Write([]byte(`2}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil || dst.String() != `{"b":2}` {
		t.Errorf("Close() = %v, output %q", err, dst.String())
	}
	if _, err := w.Write([]byte(" ")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}

	// An error is final.
	w = p.NewWriter(io.Discard)
	if _, err := w.Write([]byte(`{"a" 1}`)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Write = %v", err)
	}
	if _, err := w.Write([]byte(`{}`)); !errors.Is(err, ErrMalformed) {
		t.Errorf("Write after an error = %v", err)
	}
	if err := w.Close(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Close after an error = %v", err)
	}
}

func TestWriterDestinationError(t *testing.T) {
	p := mustCompile(t, nil, nil)
	boom := errors.New("client went away")
	_, err := p.Transform(errWriter{boom}, strings.NewReader(`{"a":"`+strings.Repeat("x", 100_000)+`"}`))
	if !errors.Is(err, boom) {
		t.Errorf("Transform = %v, want the destination's error", err)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

func TestReader(t *testing.T) {
	p, err := Compile([]Rule{{Path: "$..ssn", Action: ActionRemove}}, nil, Options{BufferBytes: 64})
	if err != nil {
		t.Fatal(err)
	}
	in := `[` + strings.Repeat(`{"ssn":"1","n":"abcdefgh"},`, 1000) + `{}]`
	want := `[` + strings.Repeat(`{"n":"abcdefgh"},`, 1000) + `{}]`
	src := &closeRecorder{Reader: iotest.HalfReader(strings.NewReader(in))}
	r := p.NewReader(src)
	if err := r.Prefetch(); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(iotest.OneByteReader(r))
	if err != nil || string(out) != want {
		t.Fatalf("ReadAll = %v, %d bytes", err, len(out))
	}
	if err := r.Close(); err != nil || !src.closed {
		t.Errorf("Close() = %v, source closed %v", err, src.closed)
	}
	if st := r.Stats(); st.Redacted[0] != 1000 || st.BytesIn != int64(len(in)) || st.BytesOut != int64(len(want)) {
		t.Errorf("Stats() = %+v", st)
	}

	// The source's error comes through; so does a cut body's.
	boom := errors.New("upstream reset")
	r = p.NewReader(io.MultiReader(strings.NewReader(`{"a":`), iotest.ErrReader(boom)))
	if _, err := io.ReadAll(r); !errors.Is(err, boom) {
		t.Errorf("ReadAll = %v, want the source's error", err)
	}
	r = p.NewReader(strings.NewReader(`{"a":[1,2`))
	if out, err := io.ReadAll(r); !errors.Is(err, ErrMalformed) || len(out) != 0 {
		t.Errorf("ReadAll of a cut body = %q, %v", out, err)
	}
	// Past BufferBytes output streams; an error after that ends the read.
	r = p.NewReader(iotest.OneByteReader(strings.NewReader(`[` + strings.Repeat(`"abcdefgh",`, 100) + `x]`)))
	out, err = io.ReadAll(r)
	if !errors.Is(err, ErrMalformed) || len(out) == 0 || !strings.HasPrefix(`[`+strings.Repeat(`"abcdefgh",`, 100), string(out)) {
		t.Errorf("ReadAll = %d bytes, %v", len(out), err)
	}
}

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// One Program serves concurrent transforms (run with -race).
func TestConcurrentTransforms(t *testing.T) {
	p := sampleProgram(t)
	want, _, err := transformAll(t, p, sample)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			for range 50 {
				var dst bytes.Buffer
				if _, err := p.Transform(&dst, iotest.HalfReader(strings.NewReader(sample))); err != nil || dst.String() != want {
					errs <- errors.New("concurrent transform differs")
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// Released buffers go to the next Reader: nothing of one response shows
// in another's output, a released Reader reads nothing more, and Stats
// read before Release stay right.
func TestReaderRelease(t *testing.T) {
	p, err := Compile([]Rule{{Path: "$..ssn", Action: ActionRemove}}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	secret := `{"ssn":"078-05-1120","notes":"` + strings.Repeat("confidential ", 250) + `"}`
	r := p.NewReader(strings.NewReader(secret))
	if _, err := io.ReadAll(r); err != nil {
		t.Fatal(err)
	}
	st := r.Stats()
	r.Release()
	if n, err := r.Read(make([]byte, 10)); n != 0 || err == nil {
		t.Errorf("Read after Release = %d, %v", n, err)
	}
	if st.Redacted[0] != 1 {
		t.Errorf("Stats before Release = %+v", st)
	}
	for range 50 {
		r := p.NewReader(strings.NewReader(`{"a":1}`))
		out, err := io.ReadAll(r)
		r.Release()
		if err != nil || string(out) != `{"a":1}` {
			t.Fatalf("a later response = %q, %v", out, err)
		}
	}
}

// Len states the output's length once a body smaller than BufferBytes
// was read whole by Prefetch, and nothing for a larger, streamed body or
// a broken one.
func TestReaderLen(t *testing.T) {
	p, err := Compile([]Rule{{Path: "$..ssn", Action: ActionRemove}}, nil, Options{BufferBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	small := p.NewReader(strings.NewReader(`{"name":"Ann","ssn":"078-05-1120"}`))
	if err := small.Prefetch(); err != nil {
		t.Fatal(err)
	}
	n, ok := small.Len()
	out, err := io.ReadAll(small)
	if err != nil || !ok || n != len(out) || string(out) != `{"name":"Ann"}` {
		t.Errorf("small body: Len = %d, %v; output %q (%d bytes), %v", n, ok, out, len(out), err)
	}
	large := p.NewReader(strings.NewReader(`{"notes":"` + strings.Repeat("x", 4096) + `"}`))
	if err := large.Prefetch(); err != nil {
		t.Fatal(err)
	}
	if n, ok := large.Len(); ok {
		t.Errorf("a body larger than BufferBytes, not read whole: Len = %d, true", n)
	}
	broken := p.NewReader(strings.NewReader(`{"ssn":"078-05-1120",`))
	if err := broken.Prefetch(); err == nil {
		t.Fatal("a truncated body prefetched without error")
	}
	if n, ok := broken.Len(); ok {
		t.Errorf("broken body: Len = %d, true", n)
	}
}
