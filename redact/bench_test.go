package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// The rules a sales user's contact list gets from the shipped policy.
var (
	shippedRules = []Rule{
		{Path: "$..ssn", Action: ActionRemove},
		{Path: "$..credit_card", Action: ActionMask, KeepLast: 4},
	}
	shippedFilters = []Filter{{Path: "$.items", KeepWhere: map[string]any{"owner": "alice"}}}
)

func shippedProgram(tb testing.TB) *Program {
	tb.Helper()
	p, err := Compile(shippedRules, shippedFilters, Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// contact is a record shaped like the sample CRM's.
type contact struct {
	ID         int       `json:"id"`
	Name       string    `json:"name"`
	Email      string    `json:"email"`
	Phone      string    `json:"phone"`
	Company    string    `json:"company"`
	Owner      string    `json:"owner"`
	SSN        string    `json:"ssn"`
	CreditCard string    `json:"credit_card"`
	Notes      string    `json:"notes"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

var (
	firstNames = []string{"Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken", "Radia", "Tim", "Zoë", "José"}
	lastNames  = []string{"Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "McCarthy", "Hamilton", "Thompson", "Perlman", "Berners-Lee", "Müller"}
	companies  = []string{"Acme Corp", "Globex GmbH", "Initech LLC", "Umbrella plc", "Hooli Inc", "Vandelay Industries", "Stark SA"}
	owners     = []string{"alice", "bob", "carol", "dave"}
	notes      = []string{"Prefers email.", "Call after 5pm; \"urgent\" renewals only.", "Met at the trade fair in Köln.", "Budget approved for Q3.", "Decision maker — loop in legal."}
)

func makeContact(r *rand.Rand, i int) contact {
	first, last := firstNames[r.IntN(len(firstNames))], lastNames[r.IntN(len(lastNames))]
	created := time.Unix(1546300800+r.Int64N(5*365*24*3600), 0).UTC()
	c := contact{
		ID:         i + 1,
		Name:       first + " " + last,
		Email:      strings.ToLower(first+"."+last) + "@example.com",
		Phone:      fmt.Sprintf("+1-%03d-555-%04d", 200+r.IntN(700), r.IntN(10000)),
		Company:    companies[r.IntN(len(companies))],
		Owner:      owners[r.IntN(len(owners))],
		SSN:        fmt.Sprintf("%03d-%02d-%04d", 100+r.IntN(800), 10+r.IntN(89), 1000+r.IntN(9000)),
		CreditCard: fmt.Sprintf("4%015d", r.Int64N(1e15)),
		Notes:      notes[r.IntN(len(notes))],
		CreatedAt:  created,
		UpdatedAt:  created.Add(time.Duration(r.Int64N(400*24*3600)) * time.Second),
	}
	if r.IntN(3) == 0 {
		c.Notes += " " + notes[r.IntN(len(notes))]
	}
	return c
}

// contactsExport writes {"items":[…]} the way the sample CRM's export
// does (one json.Encoder call per item) until it reaches size bytes.
func contactsExport(size int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	var b bytes.Buffer
	b.Grow(size + 4096)
	b.WriteString("{\"items\":[\n")
	enc := json.NewEncoder(&b)
	for i := 0; b.Len() < size; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(makeContact(r, i)); err != nil {
			panic(err)
		}
	}
	b.WriteString("]}\n")
	return b.Bytes()
}

var exports sync.Map // size → []byte, generated once per run

func export(size int) []byte {
	if b, ok := exports.Load(size); ok {
		return b.([]byte)
	}
	b, _ := exports.LoadOrStore(size, contactsExport(size))
	return b.([]byte)
}

func benchTransform(b *testing.B, p *Program, size int) {
	body := export(size)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	defer cpuMetrics(b, len(body))()
	for b.Loop() {
		if _, err := p.Transform(io.Discard, bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuMetrics, deferred around a benchmark loop, reports throughput and
// time per operation in CPU time of the process (garbage collection
// included) besides the wall time: on a machine shared with other work,
// CPU time is what one core does. With GOMAXPROCS=1 it is one core's.
func cpuMetrics(b *testing.B, size int) func() {
	start := cpuTime()
	return func() {
		cpu := cpuTime() - start
		if cpu <= 0 || b.N == 0 {
			return
		}
		if size > 0 {
			b.ReportMetric(float64(size)*float64(b.N)/cpu.Seconds()/1e6, "MB/cpu-s")
		}
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkTransformExport transforms a contacts export with the shipped
// rules: $..ssn removed, $..credit_card masked to the last 4, $.items
// filtered to one owner (a quarter of the rows).
func BenchmarkTransformExport(b *testing.B) {
	p := shippedProgram(b)
	b.Run("10MB", func(b *testing.B) { benchTransform(b, p, 10<<20) })
	b.Run("100MB", func(b *testing.B) { benchTransform(b, p, 100<<20) })
}

// BenchmarkTransformExportVariants transforms the 10 MB export with other
// programs: the rules without the filter (every row written), hashing
// every e-mail address too, and no rules at all (checking and copying).
func BenchmarkTransformExportVariants(b *testing.B) {
	for _, v := range []struct {
		name  string
		rules []Rule
	}{
		{"rules-only", shippedRules},
		{"rules-and-hash", append([]Rule{{Path: "$..email", Action: ActionHash}}, shippedRules...)},
		{"no-rules", nil},
	} {
		p, err := Compile(v.rules, nil, Options{HashKey: testKey})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(v.name, func(b *testing.B) { benchTransform(b, p, 10<<20) })
	}
}

// BenchmarkDecodeAnyBaseline does the same work with encoding/json:
// decode into any, apply the rules to the maps, encode again.
func BenchmarkDecodeAnyBaseline(b *testing.B) {
	for _, size := range []int{10 << 20, 100 << 20} {
		b.Run(fmt.Sprintf("%dMB", size>>20), func(b *testing.B) {
			body := export(size)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			defer cpuMetrics(b, len(body))()
			for b.Loop() {
				if err := baseline(io.Discard, body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// baseline applies the shipped rules with encoding/json.
func baseline(w io.Writer, body []byte) error {
	var doc any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if err := d.Decode(&doc); err != nil {
		return err
	}
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			delete(x, "ssn")
			if cc, ok := x["credit_card"]; ok {
				if s, ok := cc.(string); ok && len([]rune(s)) > 4 {
					r := []rune(s)
					x["credit_card"] = "****" + string(r[len(r)-4:])
				} else {
					x["credit_card"] = "****"
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	if m, ok := doc.(map[string]any); ok {
		if items, ok := m["items"].([]any); ok {
			kept := items[:0]
			for _, it := range items {
				if o, ok := it.(map[string]any); ok && o["owner"] == "alice" {
					kept = append(kept, it)
				}
			}
			m["items"] = kept
		}
	}
	walk(doc)
	return json.NewEncoder(w).Encode(doc)
}

// record2KB is one contact padded with notes to about 2 KB.
func record2KB() []byte {
	c := makeContact(rand.New(rand.NewPCG(3, 4)), 41)
	c.Owner = "alice"
	for len(c.Notes) < 1700 {
		c.Notes += " " + notes[len(c.Notes)%len(notes)]
	}
	b, _ := json.Marshal(c)
	return b
}

// BenchmarkTransformRecord2KB is the cost a single-record response pays:
// compiled once (Compile) and per request (Compile+Transform).
func BenchmarkTransformRecord2KB(b *testing.B) {
	body := record2KB()
	rules := shippedRules
	filters := []Filter{{Path: "$", KeepWhere: map[string]any{"owner": "alice"}}}
	b.Run("Transform", func(b *testing.B) {
		p, err := Compile(rules, filters, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		defer cpuMetrics(b, 0)()
		for b.Loop() {
			if _, err := p.Transform(io.Discard, bytes.NewReader(body)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CompileAndTransform", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		defer cpuMetrics(b, 0)()
		for b.Loop() {
			p, err := Compile(rules, filters, Options{})
			if err != nil {
				b.Fatal(err)
			}
			if _, err := p.Transform(io.Discard, bytes.NewReader(body)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Baseline", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		b.ReportAllocs()
		defer cpuMetrics(b, 0)()
		for b.Loop() {
			if err := baseline(io.Discard, body); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTransformPeakHeap reports the heap a transform of the 100 MB
// export adds, sampled while it runs, with the output going to io.Discard.
func BenchmarkTransformPeakHeap(b *testing.B) {
	body := export(100 << 20)
	p := shippedProgram(b)
	for b.Loop() {
		growth := peakHeapGrowth(b, func() {
			if _, err := p.Transform(io.Discard, bytes.NewReader(body)); err != nil {
				b.Error(err)
			}
		})
		b.ReportMetric(float64(growth)/(1<<20), "peak-heap-MB")
	}
}

// peakHeapGrowth runs f and returns the largest growth of the live heap
// over its value before f, sampled every few milliseconds.
func peakHeapGrowth(tb testing.TB, f func()) uint64 {
	tb.Helper()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	done := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var max uint64
		var s runtime.MemStats
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				peak <- max
				return
			case <-t.C:
				runtime.ReadMemStats(&s)
				if s.HeapAlloc > before && s.HeapAlloc-before > max {
					max = s.HeapAlloc - before
				}
			}
		}
	}()
	f()
	runtime.ReadMemStats(&ms)
	close(done)
	m := <-peak
	if ms.HeapAlloc > before && ms.HeapAlloc-before > m {
		m = ms.HeapAlloc - before
	}
	return m
}

// exportReader streams a contacts export of about size bytes without
// holding it, so that the heap measured is the transform's.
type exportReader struct {
	r    *rand.Rand
	enc  *json.Encoder
	buf  bytes.Buffer
	left int
	i    int
	done bool
}

func newExportReader(size int) *exportReader {
	e := &exportReader{r: rand.New(rand.NewPCG(1, 2)), left: size}
	e.enc = json.NewEncoder(&e.buf)
	e.buf.WriteString("{\"items\":[\n")
	return e
}

func (e *exportReader) Read(p []byte) (int, error) {
	for e.buf.Len() < len(p) && !e.done {
		if e.left <= 0 {
			e.buf.WriteString("]}\n")
			e.done = true
			break
		}
		if e.i > 0 {
			e.buf.WriteByte(',')
		}
		n := e.buf.Len()
		if err := e.enc.Encode(makeContact(e.r, e.i)); err != nil {
			return 0, err
		}
		e.left -= e.buf.Len() - n
		e.i++
	}
	if e.buf.Len() == 0 {
		return 0, io.EOF
	}
	return e.buf.Read(p)
}

// TestPeakHeapGrowth checks that memory does not grow with the body: a
// streamed export larger than the bound adds well under 16 MB of heap
// (BenchmarkTransformPeakHeap measures the 100 MB export).
func TestPeakHeapGrowth(t *testing.T) {
	size := 24 << 20
	if testing.Short() {
		size = 4 << 20
	}
	p := shippedProgram(t)
	var st Stats
	growth := peakHeapGrowth(t, func() {
		var err error
		if st, err = p.Transform(io.Discard, newExportReader(size)); err != nil {
			t.Error(err)
		}
	})
	t.Logf("transformed %d MB (%d rows kept, %d dropped): peak heap growth %.2f MB", st.BytesIn>>20, st.RowsKept, st.RowsDropped, float64(growth)/(1<<20))
	if growth > 16<<20 {
		t.Errorf("peak heap growth %d bytes, want at most 16 MB", growth)
	}
}
