package audit

import (
	"encoding/json"
	"github.com/crmgate/crmgate/internal/jsonstr"
	"strconv"
	"sync/atomic"
	"time"
)

// encoder turns events into OCSF JSON objects on the caller's goroutine.
// It writes by hand, in a fixed field order, because encoding/json's
// reflection costs more than the whole of Emit's budget.
type encoder struct {
	product  string // the product version, metadata.product.version
	instance string // random per process: the prefix of every metadata.uid
	seq      atomic.Uint64
	pseudo   *pseudonymiser // nil: identifiers are recorded as they are
	now      func() time.Time
}

// appendEvent appends e as one JSON object without a newline. The result
// never holds a raw newline: strings are escaped.
func (enc *encoder) appendEvent(b []byte, e *Event) []byte {
	m, ok := mappings[e.Type]
	if !ok {
		m = unknownMapping
	}
	t := e.Time
	if t.IsZero() {
		t = enc.now()
	}
	activity := m.activity
	switch {
	case m.class == ClassHTTPActivity:
		activity = httpActivity(e.Method)
	case e.Type == TypeAdminAction:
		activity = adminActivity(e.Action)
	}
	sev := e.Severity
	if sev == SeverityDefault {
		sev = m.severity
		if e.Type == TypeHTTPRequest && e.Decision.Evaluated && !e.Decision.Allow {
			sev = SeverityLow
		}
	}
	status := e.Outcome
	if status == OutcomeDefault {
		status = m.outcome
		if status == OutcomeDefault && e.Status > 0 {
			status = OutcomeSuccess
			if e.Status >= 400 {
				status = OutcomeFailure
			}
		}
	}

	b = append(b, `{"time":`...)
	b = strconv.AppendInt(b, t.UnixMilli(), 10)
	b = append(b, `,"class_uid":`...)
	b = strconv.AppendInt(b, int64(m.class), 10)
	b = append(b, `,"category_uid":`...)
	b = strconv.AppendInt(b, int64(categoryOf(m.class)), 10)
	b = append(b, `,"activity_id":`...)
	b = strconv.AppendInt(b, int64(activity), 10)
	b = append(b, `,"type_uid":`...)
	b = strconv.AppendInt(b, int64(m.class)*100+int64(activity), 10)
	b = append(b, `,"severity_id":`...)
	b = strconv.AppendInt(b, int64(sev), 10)
	b = append(b, `,"status_id":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	if e.Decision.Evaluated {
		b = append(b, `,"disposition_id":`...)
		if e.Decision.Allow {
			b = strconv.AppendInt(b, dispositionAllowed, 10)
		} else {
			b = strconv.AppendInt(b, dispositionBlocked, 10)
		}
	}
	if e.Message != "" {
		b = append(b, `,"message":`...)
		b = appendString(b, e.Message)
	}
	if e.Duration > 0 {
		b = append(b, `,"duration":`...)
		b = strconv.AppendInt(b, e.Duration.Milliseconds(), 10)
	}

	b = append(b, `,"metadata":{"version":"`+OCSFVersion+`","product":{"name":"crmgate","vendor_name":"crmgate","version":`...)
	b = appendString(b, enc.product)
	b = append(b, `},"uid":"`...)
	b = append(b, enc.instance...)
	b = append(b, '-')
	b = strconv.AppendUint(b, enc.seq.Add(1), 10)
	b = append(b, '"')
	if e.RequestID != "" {
		b = append(b, `,"correlation_uid":`...)
		b = appendString(b, e.RequestID)
	}
	b = append(b, '}')

	if !e.Subject.empty() || e.SessionIDHash != "" {
		b = append(b, `,"actor":{`...)
		comma := false
		if !e.Subject.empty() {
			b = append(b, `"user":`...)
			b = enc.appendUser(b, &e.Subject)
			comma = true
		}
		if e.SessionIDHash != "" {
			if comma {
				b = append(b, ',')
			}
			b = append(b, `"session":{"uid":`...)
			b = appendString(b, e.SessionIDHash)
			b = append(b, '}')
		}
		b = append(b, '}')
	}
	switch m.class {
	case ClassAuthentication:
		// The authenticated account: the target when there is one
		// (a revoked session's user), else the actor.
		u := &e.Target
		if u.empty() {
			u = &e.Subject
		}
		if !u.empty() {
			b = append(b, `,"user":`...)
			b = enc.appendUser(b, u)
		}
		if e.SessionIDHash != "" {
			b = append(b, `,"session":{"uid":`...)
			b = appendString(b, e.SessionIDHash)
			b = append(b, '}')
		}
	case ClassAccountChange:
		if !e.Target.empty() {
			b = append(b, `,"user":`...)
			b = enc.appendUser(b, &e.Target)
		}
	case ClassAPIActivity:
		b = append(b, `,"api":{"operation":`...)
		b = appendString(b, string(e.Type))
		b = append(b, `,"service":{"name":"crmgate"}}`...)
	}
	if e.ClientIP != "" {
		b = append(b, `,"src_endpoint":{"ip":`...)
		b = appendString(b, e.ClientIP)
		b = append(b, '}')
	}
	if e.Method != "" || e.Path != "" || e.Host != "" || e.UserAgent != "" {
		b = append(b, `,"http_request":{`...)
		b = appendOpenField(b, "http_method", e.Method, false)
		comma := e.Method != ""
		if e.Path != "" || e.Host != "" {
			if comma {
				b = append(b, ',')
			}
			b = append(b, `"url":{`...)
			b = appendOpenField(b, "path", e.Path, false)
			b = appendOpenField(b, "hostname", e.Host, e.Path != "")
			b = append(b, '}')
			comma = true
		}
		b = appendOpenField(b, "user_agent", e.UserAgent, comma)
		comma = comma || e.UserAgent != ""
		b = appendOpenField(b, "uid", e.RequestID, comma)
		b = append(b, '}')
	}
	if e.Status > 0 {
		b = append(b, `,"http_response":{"code":`...)
		b = strconv.AppendInt(b, int64(e.Status), 10)
		b = append(b, `,"length":`...)
		b = strconv.AppendInt(b, e.Bytes, 10)
		b = append(b, '}')
	}

	b = append(b, `,"unmapped":{"type":`...)
	b = appendString(b, string(e.Type))
	b = appendOpenField(b, "route", e.RouteID, true)
	b = appendOpenField(b, "fingerprint", e.Fingerprint, true)
	b = appendOpenField(b, "policy_revision", e.PolicyRevision, true)
	if d := &e.Decision; d.Evaluated {
		b = append(b, `,"decision":{"allow":`...)
		b = strconv.AppendBool(b, d.Allow)
		b = appendOpenField(b, "reason", d.Reason, true)
		b = appendOpenField(b, "step_up", d.StepUp, true)
		b = append(b, `,"redactions":`...)
		b = strconv.AppendInt(b, int64(d.Redactions), 10)
		b = append(b, `,"filtered":`...)
		b = strconv.AppendInt(b, int64(d.Filtered), 10)
		if len(d.Tags) > 0 {
			b = append(b, `,"tags":`...)
			b = appendStrings(b, d.Tags)
		}
		b = append(b, '}')
	}
	if e.Upstream != "" || e.UpstreamStatus != 0 {
		b = append(b, `,"upstream":{"name":`...)
		b = appendString(b, e.Upstream)
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(e.UpstreamStatus), 10)
		b = append(b, '}')
	}
	b = appendOpenField(b, "reason", e.Reason, true)
	b = appendOpenField(b, "action", e.Action, true)
	for _, f := range e.Fields {
		b = append(b, ',')
		b = appendString(b, f.Key)
		b = append(b, ':')
		b = appendValue(b, f.Value)
	}
	return append(b, `}}`...)
}

// appendUser appends an OCSF User object.
func (enc *encoder) appendUser(b []byte, s *Subject) []byte {
	b = append(b, '{')
	comma := false
	if s.ID != "" {
		b = append(b, `"uid":`...)
		b = appendString(b, enc.pseudo.apply(s.ID))
		comma = true
	}
	if s.Name != "" {
		b = appendOpenField(b, "name", enc.pseudo.apply(s.Name), comma)
		comma = true
	}
	if s.Kind != "" {
		b = appendOpenField(b, "type", s.Kind, comma)
		b = append(b, `,"type_id":`...)
		b = strconv.AppendInt(b, int64(userTypeID(s.Kind)), 10)
		comma = true
	}
	if len(s.Roles) > 0 {
		if comma {
			b = append(b, ',')
		}
		b = append(b, `"groups":[`...)
		for i, r := range s.Roles {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendString(b, r)
			b = append(b, '}')
		}
		b = append(b, ']')
		comma = true
	}
	if s.APIKeyID != "" {
		b = appendOpenField(b, "credential_uid", s.APIKeyID, comma)
	}
	return append(b, '}')
}

// appendOpenField appends "key":"value" (preceded by a comma when comma
// is true) unless value is empty.
func appendOpenField(b []byte, key, value string, comma bool) []byte {
	if value == "" {
		return b
	}
	if comma {
		b = append(b, ',')
	}
	b = append(b, '"')
	b = append(b, key...)
	b = append(b, `":`...)
	return appendString(b, value)
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendValue appends a Field value.
func appendValue(b []byte, v any) []byte {
	switch v := v.(type) {
	case string:
		return appendString(b, v)
	case bool:
		return strconv.AppendBool(b, v)
	case int:
		return strconv.AppendInt(b, int64(v), 10)
	case int64:
		return strconv.AppendInt(b, v, 10)
	case uint64:
		return strconv.AppendUint(b, v, 10)
	case int32:
		return strconv.AppendInt(b, int64(v), 10)
	case uint32:
		return strconv.AppendUint(b, uint64(v), 10)
	case []string:
		return appendStrings(b, v)
	case nil:
		return append(b, "null"...)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return appendString(b, "(unencodable: "+err.Error()+")")
	}
	// encoding/json escapes control characters, so raw is one line.
	return append(b, raw...)
}

// appendString appends s as a JSON string (see jsonstr.Append), so that
// the event stays on one line whatever s holds.
func appendString(dst []byte, s string) []byte { return jsonstr.Append(dst, s) }
