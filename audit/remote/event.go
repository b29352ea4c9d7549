package remote

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// eventMeta is what the sinks read from an OCSF event: the few fields that
// go into a syslog header or a template placeholder. Unknown fields are
// skipped without being decoded.
type eventMeta struct {
	SeverityID int   `json:"severity_id"`
	TimeMS     int64 `json:"time"` // OCSF: milliseconds since the Unix epoch
	Metadata   struct {
		UID string `json:"uid"`
	} `json:"metadata"`
	Unmapped struct {
		EventType string `json:"event_type"`
	} `json:"unmapped"`
}

// parseEvent checks that ev is one JSON object and reads its metadata. The
// decoder validates the whole input before it fills anything, so a
// malformed event can never be embedded in a body as it is.
func parseEvent(ev []byte) (eventMeta, error) {
	var m eventMeta
	b := bytes.TrimLeft(ev, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return m, ErrInvalidEvent
	}
	if err := json.Unmarshal(ev, &m); err != nil {
		// Wrong types of known fields (a string severity_id) are the
		// producer's business, not a reason to refuse the event.
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) {
			return eventMeta{}, fmt.Errorf("%w: %v", ErrInvalidEvent, err)
		}
	}
	return m, nil
}

// maxEventMS is the last millisecond whose nanoseconds fit an int64
// (2262-04-11), which also keeps RFC 5424's four-digit year.
const maxEventMS = (1<<63 - 1) / int64(time.Millisecond)

// eventTime is the event's own time, or now when it carries none or one
// that no receiver could represent.
func (m eventMeta) eventTime(now func() time.Time) time.Time {
	if m.TimeMS > 0 && m.TimeMS <= maxEventMS {
		return time.UnixMilli(m.TimeMS)
	}
	return now()
}

// oneLine returns ev without line breaks: a valid JSON text holds CR and LF
// only as insignificant whitespace (inside strings they are escaped), so a
// pretty-printed event is compacted and any other is returned as is.
func oneLine(ev []byte) []byte {
	if bytes.IndexByte(ev, '\n') < 0 && bytes.IndexByte(ev, '\r') < 0 {
		return ev
	}
	var b bytes.Buffer
	if err := json.Compact(&b, ev); err != nil {
		return ev // unreachable after parseEvent
	}
	return b.Bytes()
}
