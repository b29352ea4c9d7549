package crm

import (
	"math"
	"net/http"
	"strconv"
)

// Pagination bounds shared by every list endpoint.
const (
	defaultPerPage = 50
	maxPerPage     = 500
)

// listBody is the envelope of every list response.
type listBody[T any] struct {
	Items   []T `json:"items"`
	Total   int `json:"total"`
	Page    int `json:"page"`
	PerPage int `json:"per_page"`
}

// pagination is a parsed ?page=&per_page= pair.
type pagination struct {
	page, perPage int
}

// offset is the zero-based index of the page's first item, saturating
// instead of overflowing for absurd page numbers.
func (p pagination) offset() int {
	if p.page-1 > math.MaxInt/p.perPage {
		return math.MaxInt
	}
	return (p.page - 1) * p.perPage
}

// parsePagination reads page (default 1) and per_page (default 50). A
// per_page above 500 is clamped, as many legacy APIs do silently; the
// response's per_page shows the value used. Non-numeric or non-positive
// values are rejected.
func parsePagination(r *http.Request) (pagination, error) {
	q := r.URL.Query()
	p := pagination{page: 1, perPage: defaultPerPage}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, badRequest("page must be a positive integer")
		}
		p.page = n
	}
	if v := q.Get("per_page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, badRequest("per_page must be a positive integer")
		}
		p.perPage = min(n, maxPerPage)
	}
	return p, nil
}

// pageOf returns p's window of all, never nil so it renders as [].
func pageOf[T any](all []T, p pagination) listBody[T] {
	lo := min(p.offset(), len(all))
	hi := lo + min(p.perPage, len(all)-lo)
	items := make([]T, hi-lo)
	copy(items, all[lo:hi])
	return listBody[T]{Items: items, Total: len(all), Page: p.page, PerPage: p.perPage}
}

func (s *Server) listDeals(w http.ResponseWriter, r *http.Request) error {
	p, err := parsePagination(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageOf(s.deals, p))
	return nil
}

func (s *Server) listInvoices(w http.ResponseWriter, r *http.Request) error {
	p, err := parsePagination(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageOf(s.invoices, p))
	return nil
}

func (s *Server) listAdminUsers(w http.ResponseWriter, r *http.Request) error {
	p, err := parsePagination(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageOf(s.users, p))
	return nil
}
