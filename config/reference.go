package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/crmgate/crmgate/secret"
)

// Reference returns the Markdown table of every configuration key, with its
// type and description, generated from the Go types so that the documented
// reference cannot drift from what the loader accepts.
func Reference() string {
	var b strings.Builder
	b.WriteString("| key | type | description |\n| --- | --- | --- |\n")
	refRows(&b, reflect.TypeFor[File](), "")
	return b.String()
}

func refRows(b *strings.Builder, t reflect.Type, prefix string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if f.Anonymous && (name == "" || opts == "inline") {
			refRows(b, f.Type, prefix)
			continue
		}
		if name == "" || name == "-" {
			continue
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		desc := description(f.Tag)
		ft := f.Type
		switch {
		case ft == reflect.TypeFor[time.Duration]() || ft == reflect.TypeFor[secret.Ref]():
			fmt.Fprintf(b, "| `%s` | %s | %s |\n", key, typeName(ft), desc)
		case ft.Kind() == reflect.Struct:
			fmt.Fprintf(b, "| `%s` | object | %s |\n", key, desc)
			refRows(b, ft, key)
		case ft.Kind() == reflect.Pointer && ft.Elem().Kind() == reflect.Struct:
			fmt.Fprintf(b, "| `%s` | object, optional | %s |\n", key, desc)
			refRows(b, ft.Elem(), key)
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
			fmt.Fprintf(b, "| `%s` | map of name → object | %s |\n", key, desc)
			refRows(b, ft.Elem(), key+".NAME")
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			fmt.Fprintf(b, "| `%s` | list of objects | %s |\n", key, desc)
			refRows(b, ft.Elem(), key+"[]")
		default:
			fmt.Fprintf(b, "| `%s` | %s | %s |\n", key, typeName(ft), desc)
		}
	}
}

func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeFor[time.Duration]():
		return "duration"
	case t == reflect.TypeFor[secret.Ref]():
		return "secret reference"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "integer"
	case reflect.Slice:
		return "list of " + typeName(t.Elem()) + "s"
	case reflect.Map:
		return "map of " + typeName(t.Key()) + " → " + typeName(t.Elem())
	}
	return t.Kind().String()
}

// description reads a field's jsonschema_description tag (or the older
// description= item of its jsonschema tag), escaped for a Markdown table.
func description(tag reflect.StructTag) string {
	d := tag.Get("jsonschema_description")
	if d == "" {
		for _, item := range strings.Split(tag.Get("jsonschema"), ",") {
			if v, ok := strings.CutPrefix(item, "description="); ok {
				d = v
			}
		}
	}
	return strings.ReplaceAll(d, "|", "\\|")
}
