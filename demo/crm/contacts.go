package crm

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"
)

// maxBodyBytes bounds a contact create or update body.
const maxBodyBytes = 1 << 20

func (s *Server) listContacts(w http.ResponseWriter, r *http.Request) error {
	p, err := parsePagination(r)
	if err != nil {
		return err
	}
	items, total := s.contacts.list(r.URL.Query().Get("q"), p.offset(), p.perPage)
	writeJSON(w, http.StatusOK, listBody[Contact]{Items: items, Total: total, Page: p.page, PerPage: p.perPage})
	return nil
}

func (s *Server) getContact(w http.ResponseWriter, r *http.Request) error {
	id, err := contactID(r)
	if err != nil {
		return err
	}
	c, ok := s.contacts.get(id)
	if !ok {
		return errContactNotFound
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) createContact(w http.ResponseWriter, r *http.Request) error {
	in, err := decodeContact(w, r)
	if err != nil {
		return err
	}
	if u := s.user(r); in.Owner == "" && s.isUser(u) {
		in.Owner = u
	}
	if fields := s.validate(in, true); len(fields) > 0 {
		return invalid(fields)
	}
	now := s.now().UTC().Truncate(time.Second)
	c := s.contacts.create(in.apply(Contact{CreatedAt: now, UpdatedAt: now}))
	w.Header().Set("Location", "/api/contacts/"+strconv.Itoa(c.ID))
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) updateContact(w http.ResponseWriter, r *http.Request) error {
	id, err := contactID(r)
	if err != nil {
		return err
	}
	in, err := decodeContact(w, r)
	if err != nil {
		return err
	}
	if fields := s.validate(in, false); len(fields) > 0 {
		return invalid(fields)
	}
	now := s.now().UTC().Truncate(time.Second)
	c, ok := s.contacts.update(id, func(old Contact) Contact {
		if in.Owner == "" {
			in.Owner = old.Owner
		}
		c := in.apply(old)
		c.UpdatedAt = now
		return c
	})
	if !ok {
		return errContactNotFound
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) deleteContact(w http.ResponseWriter, r *http.Request) error {
	id, err := contactID(r)
	if err != nil {
		return err
	}
	if !s.contacts.delete(id) {
		return errContactNotFound
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

var errContactNotFound = &apiError{Status: http.StatusNotFound, Public: "contact not found"}

// contactID parses the {id} path value: a positive decimal integer.
func contactID(r *http.Request) (int, error) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil || id < 1 {
		return 0, badRequest("id must be a positive integer")
	}
	return id, nil
}

// contactInput is the writable part of a contact. Server-owned fields (id,
// created_at, updated_at) in a request body are ignored, as are unknown
// fields: legacy clients send whatever they have.
type contactInput struct {
	Name       string `json:"name"`
	Email      string `json:"email"`
	Phone      string `json:"phone"`
	Company    string `json:"company"`
	Owner      string `json:"owner"`
	SSN        string `json:"ssn"`
	CreditCard string `json:"credit_card"`
	Notes      string `json:"notes"`
}

// apply returns c with every editable field replaced by in's.
func (in contactInput) apply(c Contact) Contact {
	c.Name, c.Email, c.Phone, c.Company = in.Name, in.Email, in.Phone, in.Company
	c.Owner, c.SSN, c.CreditCard, c.Notes = in.Owner, in.SSN, in.CreditCard, in.Notes
	return c
}

// decodeContact reads one JSON object of at most maxBodyBytes.
func decodeContact(w http.ResponseWriter, r *http.Request) (contactInput, error) {
	var in contactInput
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	err := dec.Decode(&in)
	if err == nil {
		// A second value (or trailing garbage) means the body was not
		// one JSON object.
		if err = dec.Decode(new(json.RawMessage)); err == io.EOF {
			return in, nil
		}
		if err == nil {
			err = errors.New("more than one JSON value")
		}
	}
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooBig):
		return in, &apiError{Status: http.StatusRequestEntityTooLarge, Public: "request body too large", Err: err}
	case errors.As(err, &typeErr) && typeErr.Field != "":
		return in, invalid(map[string]string{typeErr.Field: "must be a " + typeErr.Type.String()})
	case errors.Is(err, io.EOF):
		return in, badRequest("request body is empty")
	default:
		return in, &apiError{Status: http.StatusBadRequest, Public: "invalid JSON", Err: err}
	}
}

func invalid(fields map[string]string) *apiError {
	return &apiError{Status: http.StatusUnprocessableEntity, Public: "validation failed", Fields: fields}
}
