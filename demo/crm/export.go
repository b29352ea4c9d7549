package crm

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Export bounds. The count bound keeps a typo from streaming for an hour;
// the byte bound is the same idea for ?bytes=.
const (
	maxExportCount = 5_000_000
	maxExportBytes = 4 << 30
	// exportFlushBytes is how much output is buffered before it is pushed
	// to the client, so a slow client sees steady progress and the server
	// holds at most this much per export.
	exportFlushBytes = 256 << 10
)

// exportPlan is a parsed export request.
type exportPlan struct {
	count int   // items to emit at most
	bytes int64 // stop once this much was written; 0 means no byte target
	csv   bool
}

// parseExport reads ?count=, ?bytes= and ?format=. With neither count nor
// bytes it exports as many items as were seeded; with only bytes it emits
// items until the output reaches about that size (overshooting by less than
// one item), still bounded by maxExportCount.
func (s *Server) parseExport(r *http.Request) (exportPlan, error) {
	q := r.URL.Query()
	p := exportPlan{count: s.cfg.Contacts}
	if v := q.Get("bytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || n > maxExportBytes {
			return p, badRequest("bytes must be an integer between 1 and " + strconv.FormatInt(maxExportBytes, 10))
		}
		p.bytes, p.count = n, maxExportCount
	}
	if v := q.Get("count"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > maxExportCount {
			return p, badRequest("count must be an integer between 0 and " + strconv.Itoa(maxExportCount))
		}
		p.count = n
	}
	switch q.Get("format") {
	case "", "json":
	case "csv":
		p.csv = true
	default:
		return p, badRequest("format must be json or csv")
	}
	return p, nil
}

// exportContacts streams contacts generated from the seed and the item
// index, never from the store: item i is the contact originally seeded with
// id i+1 (or, past the seeded count, one more like it), and later edits are
// not reflected, like a nightly warehouse extract. Memory stays constant
// whatever the size: one item and one flush window at a time.
func (s *Server) exportContacts(w http.ResponseWriter, r *http.Request) error {
	p, err := s.parseExport(r)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	if p.csv {
		h.Set("Content-Type", "text/csv; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="contacts.csv"`)
	} else {
		h.Set("Content-Type", "application/json; charset=utf-8")
		h.Set("Content-Disposition", `attachment; filename="contacts.json"`)
	}
	w.WriteHeader(http.StatusOK)

	out := &exportWriter{rc: http.NewResponseController(w), bw: bufio.NewWriterSize(w, exportFlushBytes)}
	var items int
	if p.csv {
		items, err = streamCSV(r, out, s.cfg.Seed, p)
	} else {
		items, err = streamJSON(r, out, s.cfg.Seed, p)
	}
	if err == nil {
		err = out.flush()
	}
	if err != nil {
		// Headers are gone; all that is left is to stop and say why.
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "crm export aborted",
			slog.Int("items", items), slog.Int64("bytes", out.n), slog.Any("error", err))
	}
	return nil
}

// streamJSON writes {"items":[...]} one json.Encoder call per item.
func streamJSON(r *http.Request, out *exportWriter, seed int64, p exportPlan) (int, error) {
	const open, sep, closing = `{"items":[` + "\n", ",", "]}\n"
	if _, err := io.WriteString(out, open); err != nil {
		return 0, err
	}
	gen := newGenerator(seed)
	enc := json.NewEncoder(out)
	i := 0
	for ; i < p.count && !p.full(out.n+int64(len(closing))); i++ {
		if i > 0 {
			if _, err := io.WriteString(out, sep); err != nil {
				return i, err
			}
		}
		if err := enc.Encode(gen.contact(i)); err != nil {
			return i, err
		}
		if err := out.maybeFlush(r, i); err != nil {
			return i, err
		}
	}
	_, err := io.WriteString(out, closing)
	return i, err
}

// streamCSV writes a header row and one row per item, the columns in the
// JSON field order.
func streamCSV(r *http.Request, out *exportWriter, seed int64, p exportPlan) (int, error) {
	cw := csv.NewWriter(out)
	if err := cw.Write([]string{"id", "name", "email", "phone", "company", "owner", "ssn", "credit_card", "notes", "created_at", "updated_at"}); err != nil {
		return 0, err
	}
	gen := newGenerator(seed)
	row := make([]string, 11)
	i := 0
	for ; i < p.count && !p.full(out.n); i++ {
		c := gen.contact(i)
		row[0], row[1], row[2], row[3] = strconv.Itoa(c.ID), c.Name, c.Email, c.Phone
		row[4], row[5], row[6], row[7] = c.Company, c.Owner, c.SSN, c.CreditCard
		row[8], row[9], row[10] = c.Notes, c.CreatedAt.Format(time.RFC3339), c.UpdatedAt.Format(time.RFC3339)
		if err := cw.Write(row); err != nil {
			return i, err
		}
		// csv.Writer buffers too; push its rows down on the same cadence
		// so out.n (and the byte target) stays close to the truth.
		if i%64 == 63 {
			cw.Flush()
			if err := cw.Error(); err != nil {
				return i, err
			}
		}
		if err := out.maybeFlush(r, i); err != nil {
			return i, err
		}
	}
	cw.Flush()
	return i, cw.Error()
}

// full reports whether an export that has written n bytes reached its
// byte target.
func (p exportPlan) full(n int64) bool { return p.bytes > 0 && n >= p.bytes }

// exportWriter counts what the export produced and pushes it to the client
// every exportFlushBytes.
type exportWriter struct {
	rc        *http.ResponseController
	bw        *bufio.Writer
	n         int64 // bytes written by the export so far
	lastFlush int64
}

func (e *exportWriter) Write(p []byte) (int, error) {
	n, err := e.bw.Write(p)
	e.n += int64(n)
	return n, err
}

// maybeFlush flushes when a window's worth accumulated, and every 1024
// items checks whether the client is still there: writes into a buffer
// would not notice a client that left.
func (e *exportWriter) maybeFlush(r *http.Request, item int) error {
	if item%1024 == 1023 {
		if err := r.Context().Err(); err != nil {
			return err
		}
	}
	if e.n-e.lastFlush < exportFlushBytes {
		return nil
	}
	return e.flush()
}

func (e *exportWriter) flush() error {
	e.lastFlush = e.n
	if err := e.bw.Flush(); err != nil {
		return err
	}
	return e.rc.Flush()
}
