package browsertest

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// ParseForm returns the action of the first form on p, resolved against
// p.URL, and the fields a browser would submit for it as the page left
// it: hidden fields included, unchecked boxes, buttons, file inputs,
// disabled controls and unnamed ones left out, as the HTML standard's
// "constructing the entry list" says. It fails the test when p has no
// form.
func ParseForm(t testing.TB, p Page) (action string, fields url.Values) {
	t.Helper()
	f, err := parseForm(p)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return f.action, f.values
}

// form is what submitting a form needs.
type form struct {
	method string // http.MethodGet or http.MethodPost
	action string // absolute
	values url.Values
}

func parseForm(p Page) (form, error) {
	doc, err := html.Parse(strings.NewReader(p.Body))
	if err != nil {
		return form{}, fmt.Errorf("parsing %s: %w", p.URL, err)
	}
	var fn *html.Node
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "form" {
			fn = n
			break
		}
	}
	if fn == nil {
		return form{}, fmt.Errorf("no form on %s (status %d):\n%s", p.URL, p.Status, p.Body)
	}
	ref, err := url.Parse(attr(fn, "action"))
	if err != nil {
		return form{}, fmt.Errorf("form action on %s: %w", p.URL, err)
	}
	f := form{method: http.MethodGet, action: p.URL.ResolveReference(ref).String(), values: url.Values{}}
	// A form without a method, or with one it does not know, is a GET
	// form (HTML standard, "form submission attributes").
	if strings.EqualFold(attr(fn, "method"), "post") {
		f.method = http.MethodPost
	}
	for n := range fn.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		name := attr(n, "name")
		if name == "" || has(n, "disabled") {
			continue
		}
		switch n.Data {
		case "input":
			switch strings.ToLower(attr(n, "type")) {
			case "submit", "button", "image", "reset", "file":
			case "checkbox", "radio":
				if !has(n, "checked") {
					continue
				}
				v, ok := lookup(n, "value")
				if !ok {
					v = "on"
				}
				f.values.Add(name, v)
			default:
				f.values.Add(name, attr(n, "value"))
			}
		case "textarea":
			f.values.Add(name, text(n))
		case "select":
			for _, v := range selected(n) {
				f.values.Add(name, v)
			}
		}
	}
	return f, nil
}

// selected returns the values of a select's selected options: for a
// single select without a selected option, the first option's.
func selected(sel *html.Node) []string {
	var out, first []string
	for n := range sel.Descendants() {
		if n.Type != html.ElementNode || n.Data != "option" || has(n, "disabled") {
			continue
		}
		v, ok := lookup(n, "value")
		if !ok {
			v = strings.Join(strings.Fields(text(n)), " ")
		}
		if first == nil {
			first = []string{v}
		}
		if has(n, "selected") {
			out = append(out, v)
		}
	}
	switch {
	case has(sel, "multiple"):
		return out
	case len(out) > 0:
		return out[len(out)-1:]
	default:
		return first
	}
}

// text returns the text inside n.
func text(n *html.Node) string {
	var sb strings.Builder
	for c := range n.Descendants() {
		if c.Type == html.TextNode {
			sb.WriteString(c.Data)
		}
	}
	return sb.String()
}

func attr(n *html.Node, key string) string {
	v, _ := lookup(n, key)
	return v
}

func has(n *html.Node, key string) bool {
	_, ok := lookup(n, key)
	return ok
}

func lookup(n *html.Node, key string) (string, bool) {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val, true
		}
	}
	return "", false
}
