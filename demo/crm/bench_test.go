package crm

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func BenchmarkGetContact(b *testing.B) {
	h := newTestServer(b, Config{}).Handler()
	req := httptest.NewRequest("GET", "/api/contacts/42", nil)
	req.Header.Set("X-CRM-User", "alice")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status = %d", rec.Code)
		}
	}
}

func BenchmarkListContacts(b *testing.B) {
	h := newTestServer(b, Config{}).Handler()
	req := httptest.NewRequest("GET", "/api/contacts?page=2&per_page=50", nil)
	req.Header.Set("X-CRM-User", "alice")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status = %d", rec.Code)
		}
	}
}

// discardWriter is a ResponseWriter that drops the body, so the benchmark
// measures generation and encoding, not a recorder's growing buffer.
type discardWriter struct {
	h http.Header
	n int64
}

func (d *discardWriter) Header() http.Header { return d.h }
func (d *discardWriter) WriteHeader(int)     {}
func (d *discardWriter) Write(p []byte) (int, error) {
	d.n += int64(len(p))
	return len(p), nil
}
func (d *discardWriter) Flush() {}

func BenchmarkExport(b *testing.B) {
	for _, format := range []string{"json", "csv"} {
		b.Run(format, func(b *testing.B) {
			h := newTestServer(b, Config{}).Handler()
			req := httptest.NewRequest("GET", "/api/export/contacts?count=1000&format="+format, nil)
			// One run to learn the response size for b.SetBytes.
			w := &discardWriter{h: http.Header{}}
			h.ServeHTTP(w, req)
			b.SetBytes(w.n)
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
			}
		})
	}
}
