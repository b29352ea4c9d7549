package crm

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// decodeExport reads a JSON export token by token, as a client of a huge
// export would, checking its shape and returning the item count. keep
// receives each item; it may be nil.
func decodeExport(t testing.TB, r io.Reader, keep func(i int, c Contact)) int {
	t.Helper()
	dec := json.NewDecoder(r)
	expect := func(want json.Token) {
		t.Helper()
		tok, err := dec.Token()
		if err != nil || tok != want {
			t.Fatalf("export token = %v (err %v), want %v", tok, err, want)
		}
	}
	expect(json.Delim('{'))
	expect("items")
	expect(json.Delim('['))
	n := 0
	for dec.More() {
		var c Contact
		if err := dec.Decode(&c); err != nil {
			t.Fatalf("export item %d: %v", n, err)
		}
		if keep != nil {
			keep(n, c)
		}
		n++
	}
	expect(json.Delim(']'))
	expect(json.Delim('}'))
	if tok, err := dec.Token(); err != io.EOF {
		t.Fatalf("after the export: token %v, err %v, want io.EOF", tok, err)
	}
	return n
}

func TestExportJSON(t *testing.T) {
	s := newTestServer(t, Config{Contacts: 40, Seed: 5})
	tests := []struct {
		name      string
		query     string
		wantCount int
	}{
		{"default is the seeded count", "", 40},
		{"explicit json", "?format=json", 40},
		{"zero", "?count=0", 0},
		{"one", "?count=1", 1},
		{"more than seeded", "?count=3000", 3000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := request{method: "GET", target: "/api/export/contacts" + tt.query}.do(t, s.Handler())
			if rec.Code != http.StatusOK {
				t.Fatalf("GET export%s status = %d, want 200; body %s", tt.query, rec.Code, rec.Body)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json; charset=utf-8" {
				t.Errorf("Content-Type = %q, want application/json; charset=utf-8", got)
			}
			gen := newGenerator(5)
			n := decodeExport(t, rec.Body, func(i int, c Contact) {
				if want := gen.contact(i); !cmp.Equal(c, want) {
					t.Fatalf("item %d mismatch (-got +want):\n%s", i, cmp.Diff(c, want))
				}
			})
			if n != tt.wantCount {
				t.Errorf("GET export%s items = %d, want %d", tt.query, n, tt.wantCount)
			}
		})
	}

	t.Run("first items are the seeded contacts", func(t *testing.T) {
		seeded := decode[listBody[Contact]](t, request{method: "GET", target: "/api/contacts?per_page=500"}.do(t, s.Handler())).Items
		var exported []Contact
		decodeExport(t, request{method: "GET", target: "/api/export/contacts"}.do(t, s.Handler()).Body, func(_ int, c Contact) {
			exported = append(exported, c)
		})
		if diff := cmp.Diff(exported, seeded); diff != "" {
			t.Errorf("export vs /api/contacts (-got +want):\n%s", diff)
		}
	})
}

func TestExportBytes(t *testing.T) {
	h := newTestServer(t, Config{}).Handler()
	// One contact encodes to well under 1 KiB; the export overshoots its
	// target by less than one item.
	const slack = 1024
	tests := []struct {
		name   string
		query  string
		target int
		csv    bool
	}{
		{"json 1 MB", "?bytes=1000000", 1000000, false},
		{"json tiny target still valid", "?bytes=1", 1, false},
		{"csv 1 MB", "?bytes=1000000&format=csv", 1000000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := request{method: "GET", target: "/api/export/contacts" + tt.query}.do(t, h)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET export%s status = %d, want 200", tt.query, rec.Code)
			}
			n := rec.Body.Len()
			// CSV counts bytes below csv.Writer's own 4 KiB buffer.
			lo, hi := tt.target, tt.target+slack
			if tt.csv {
				lo, hi = tt.target-4096, tt.target+4096+slack
			}
			if n < lo || n > hi {
				t.Errorf("GET export%s wrote %d bytes, want %d..%d", tt.query, n, lo, hi)
			}
			if !tt.csv {
				decodeExport(t, rec.Body, nil)
			}
		})
	}
	t.Run("count stops first", func(t *testing.T) {
		rec := request{method: "GET", target: "/api/export/contacts?bytes=1000000&count=3"}.do(t, h)
		if n := decodeExport(t, rec.Body, nil); n != 3 {
			t.Errorf("items = %d, want 3", n)
		}
	})
}

func TestExportCSV(t *testing.T) {
	h := newTestServer(t, Config{Contacts: 25, Seed: 8}).Handler()
	rec := request{method: "GET", target: "/api/export/contacts?format=csv&count=700"}.do(t, h)
	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	if got := rec.Header().Get("Content-Type"); got != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type = %q, want text/csv; charset=utf-8", got)
	}
	rows, err := csv.NewReader(rec.Body).ReadAll()
	if err != nil {
		t.Fatalf("parsing CSV: %v", err)
	}
	if len(rows) != 701 {
		t.Fatalf("rows = %d, want a header and 700 rows", len(rows))
	}
	wantHeader := []string{"id", "name", "email", "phone", "company", "owner", "ssn", "credit_card", "notes", "created_at", "updated_at"}
	if diff := cmp.Diff(rows[0], wantHeader); diff != "" {
		t.Errorf("header mismatch (-got +want):\n%s", diff)
	}
	gen := newGenerator(8)
	for _, i := range []int{0, 1, 24, 25, 699} {
		c := gen.contact(i)
		want := []string{strconv.Itoa(c.ID), c.Name, c.Email, c.Phone, c.Company, c.Owner, c.SSN, c.CreditCard, c.Notes,
			c.CreatedAt.Format(time.RFC3339), c.UpdatedAt.Format(time.RFC3339)}
		if diff := cmp.Diff(rows[i+1], want); diff != "" {
			t.Errorf("row %d mismatch (-got +want):\n%s", i, diff)
		}
	}
}

func TestExportErrors(t *testing.T) {
	h := newTestServer(t, Config{Contacts: 5}).Handler()
	tests := []struct {
		name, query, want string
	}{
		{"negative count", "?count=-1", "count must be an integer between 0 and 5000000"},
		{"count over the limit", "?count=5000001", "count must be an integer between 0 and 5000000"},
		{"count not a number", "?count=lots", "count must be an integer between 0 and 5000000"},
		{"zero bytes", "?bytes=0", "bytes must be an integer between 1 and 4294967296"},
		{"bytes over the limit", "?bytes=4294967297", "bytes must be an integer between 1 and 4294967296"},
		{"bytes not a number", "?bytes=1MB", "bytes must be an integer between 1 and 4294967296"},
		{"unknown format", "?format=xml", "format must be json or csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := request{method: "GET", target: "/api/export/contacts" + tt.query}.do(t, h)
			if rec.Code != http.StatusBadRequest {
				t.Fatalf("GET export%s status = %d, want 400", tt.query, rec.Code)
			}
			if diff := cmp.Diff(decode[errorBody](t, rec), errorBody{Error: tt.want}); diff != "" {
				t.Errorf("GET export%s body mismatch (-got +want):\n%s", tt.query, diff)
			}
		})
	}
}

// heapSampler discards what it is given and records the highest HeapInuse
// seen every sampleEvery bytes.
type heapSampler struct {
	n, next, peak uint64
}

const sampleEvery = 2 << 20

func (h *heapSampler) Write(p []byte) (int, error) {
	h.n += uint64(len(p))
	if h.n >= h.next {
		h.next = h.n + sampleEvery
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peak = max(h.peak, ms.HeapInuse)
	}
	return len(p), nil
}

func TestExportBoundedMemory(t *testing.T) {
	srv := httptest.NewServer(newTestServer(t, Config{}).Handler())
	defer srv.Close()
	const size = 50 << 20
	tests := []struct{ name, query string }{
		{"json", "?bytes=" + strconv.Itoa(size)},
		{"csv", "?format=csv&bytes=" + strconv.Itoa(size)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runtime.GC()
			var before runtime.MemStats
			runtime.ReadMemStats(&before)

			resp, err := http.Get(srv.URL + "/api/export/contacts" + tt.query)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			sampler := &heapSampler{}
			n, err := io.Copy(sampler, resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if n < size {
				t.Fatalf("export%s = %d bytes, want at least %d", tt.query, n, size)
			}
			// Without forcing a collection the sampled heap includes
			// garbage the GC has not reclaimed yet (up to GOGC=100% of the
			// live heap), plus both ends' buffers. A handler that held the
			// document would add its full 50 MB; 16 MB is a generous
			// ceiling that still catches that by a wide margin.
			const bound = 16 << 20
			if growth := int64(sampler.peak) - int64(before.HeapInuse); growth > bound {
				t.Errorf("export of %d MB: HeapInuse grew by %.1f MB, want under %d MB", n>>20, float64(growth)/(1<<20), bound>>20)
			} else {
				t.Logf("export of %d MB: peak HeapInuse growth %.1f MB", n>>20, float64(growth)/(1<<20))
			}
		})
	}
}

// logRecorder is a slog.Handler that delivers record messages on a channel.
type logRecorder struct{ msgs chan string }

func (l logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (l logRecorder) Handle(_ context.Context, r slog.Record) error {
	select {
	case l.msgs <- r.Message:
	default:
	}
	return nil
}
func (l logRecorder) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logRecorder) WithGroup(string) slog.Handler      { return l }

// The export must stop generating when the client disconnects rather than
// produce 5 million items for nobody.
func TestExportStopsWhenClientLeaves(t *testing.T) {
	logs := logRecorder{msgs: make(chan string, 64)}
	srv := httptest.NewServer(New(Config{}, slog.New(logs), fixedClock).Handler())
	defer srv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/export/contacts?count=5000000", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(io.Discard, resp.Body, 1<<20); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()

	timeout := time.After(10 * time.Second)
	for {
		select {
		case msg := <-logs.msgs:
			if msg == "crm export aborted" {
				return
			}
		case <-timeout:
			t.Fatal("export still running 10s after the client left")
		}
	}
}
