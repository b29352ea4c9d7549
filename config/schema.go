package config

import (
	"encoding/json"
	"reflect"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/crmgate/crmgate/secret"
)

// Schema returns the JSON Schema of the configuration file, generated from
// the Go types, for editors and CI linters.
func Schema() ([]byte, error) {
	r := &jsonschema.Reflector{
		FieldNameTag:               "yaml",
		RequiredFromJSONSchemaTags: true,
		DoNotReference:             true, // inline: several packages name their type Config
		ExpandedStruct:             true,
		Mapper: func(t reflect.Type) *jsonschema.Schema {
			switch t {
			case reflect.TypeFor[time.Duration]():
				return &jsonschema.Schema{Type: "string", Pattern: `^-?([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`,
					Description: "A duration such as 500ms, 10s, 5m or 8760h."}
			case reflect.TypeFor[secret.Ref]():
				return &jsonschema.Schema{Type: "string", Pattern: `^(env:[^=\s]+|file:/.+)$`,
					Description: "A secret reference: env:NAME or file:/absolute/path. Literal secrets are refused."}
			}
			return nil
		},
	}
	s := r.Reflect(&File{})
	s.ID = "https://crmgate.dev/schema/config.json"
	s.Title = "crmgate configuration"
	return json.MarshalIndent(s, "", "  ")
}
