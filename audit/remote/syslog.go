package remote

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/crmgate/crmgate/fielderr"
)

// Syslog ships events as RFC 5424 messages over one TCP connection, TLS by
// default (RFC 5425), each framed by octet counting ("LEN SP MSG"). A
// message is
//
//	<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - BOM{event JSON}
//
// where PRI combines the configured facility with a severity mapped from
// the event's OCSF severity_id, TIMESTAMP is the event's time, MSGID is its
// unmapped.event_type when that is a valid MSGID and "-" otherwise, and
// structured data is always "-": the event itself is the payload.
//
// RFC 5425 has no acknowledgements. Write returns once the bytes are with
// the kernel; a receiver that dies after that loses them, and a batch cut
// short by a broken connection is retried whole, so the receiver may see
// the first events twice (dedupe on metadata.uid). A connection the
// receiver closed is noticed before the next batch, which then goes out on
// a new connection.
type Syslog struct {
	name     string
	addr     string
	tls      *tls.Config // nil for plain TCP
	facility int
	header   []byte // " HOSTNAME APP-NAME PROCID "
	bom      bool
	maxMsg   int
	dialTO   time.Duration
	writeTO  time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu     sync.Mutex // serialises Write and Close
	conn   net.Conn
	dead   chan struct{} // closed when the receiver ends conn
	closed bool
	buf    []byte
}

var _ interface {
	Write(context.Context, [][]byte) error
	Name() string
	Close() error
} = (*Syslog)(nil)

// NewSyslog builds the sink from a validated configuration: it reads the
// TLS files but connects nowhere until the first Write. A nil logger
// discards.
func NewSyslog(cfg SyslogConfig, logger *slog.Logger) (*Syslog, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	fac, ok := facilities[cfg.Facility]
	if !ok {
		return nil, fielderr.New("facility", "%q is not a facility", cfg.Facility)
	}
	host := cfg.Hostname
	if host == "" {
		host, _ = os.Hostname()
		if !printUSASCII(host, 255) {
			host = "-"
		}
	}
	s := &Syslog{
		name:     cfg.Name,
		addr:     cfg.Address,
		facility: fac,
		header:   []byte(" " + host + " " + cfg.AppName + " " + strconv.Itoa(os.Getpid()) + " "),
		bom:      !cfg.OmitBOM,
		maxMsg:   cfg.MaxMessageBytes,
		dialTO:   cfg.DialTimeout,
		writeTO:  cfg.WriteTimeout,
		log:      logger.With("sink", cfg.Name),
		now:      time.Now,
	}
	if s.name == "" {
		s.name = "syslog:" + cfg.Address
	}
	if cfg.Transport != TransportTCP {
		tc, err := cfg.TLS.build()
		if err != nil {
			return nil, fielderr.Prefix("tls", err)
		}
		s.tls = tc
	}
	return s, nil
}

// Name returns the configured name, by default syslog:ADDRESS.
func (s *Syslog) Name() string { return s.name }

// Write sends the batch in order on the current connection, dialling one
// first if there is none or the receiver closed it. Any error drops the
// connection, so that the next Write starts on a new one. Every event is
// checked before anything is sent (see EventError).
func (s *Syslog) Write(ctx context.Context, batch [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	buf := s.buf[:0]
	for i, ev := range batch {
		var err error
		if buf, err = s.appendFrame(buf, ev); err != nil {
			var ee *EventError
			if errors.As(err, &ee) {
				ee.Index = i
			}
			return err
		}
	}
	if cap(buf) <= 4<<20 {
		s.buf = buf // reuse, unless one huge batch would pin the memory
	}
	if len(buf) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	conn, err := s.connect(ctx)
	if err != nil {
		return fmt.Errorf("%s: connect: %w", s.name, err)
	}
	if err := s.send(ctx, conn, buf); err != nil {
		s.drop()
		s.log.Warn("audit syslog write failed; the connection is dropped and the batch will be retried", "error", err)
		return fmt.Errorf("%s: write: %w", s.name, err)
	}
	return nil
}

// appendFrame appends one octet-counted message to buf.
func (s *Syslog) appendFrame(buf, ev []byte) ([]byte, error) {
	m, err := parseEvent(ev)
	if err != nil {
		return buf, &EventError{Size: len(ev), Err: err}
	}
	var hdr [160]byte
	h := appendSyslogHeader(hdr[:0], s.facility, m, s.now, s.header)
	bom := s.bom && utf8.Valid(ev)
	n := len(h) + len(ev)
	if bom {
		n += len(utf8BOM)
	}
	if n > s.maxMsg {
		return buf, &EventError{Size: n, Err: fmt.Errorf("%w: %d bytes, max_message_bytes is %d", ErrEventTooLarge, n, s.maxMsg)}
	}
	buf = strconv.AppendInt(buf, int64(n), 10)
	buf = append(buf, ' ')
	buf = append(buf, h...)
	if bom {
		buf = append(buf, utf8BOM...)
	}
	return append(buf, ev...), nil
}

const utf8BOM = "\xef\xbb\xbf"

// appendSyslogHeader appends "<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID
// MSGID - " (RFC 5424 §6.2); header holds " HOSTNAME APP-NAME PROCID ".
func appendSyslogHeader(b []byte, facility int, m eventMeta, now func() time.Time, header []byte) []byte {
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(facility*8+syslogSeverity(m.SeverityID)), 10)
	b = append(b, ">1 "...)
	b = m.eventTime(now).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, header...)
	if t := m.Unmapped.EventType; printUSASCII(t, 32) {
		b = append(b, t...)
	} else {
		b = append(b, '-')
	}
	return append(b, " - "...)
}

// syslogSeverity maps an OCSF severity_id to an RFC 5424 severity.
func syslogSeverity(id int) int {
	switch id {
	case 1: // Informational
		return 6 // Informational
	case 2: // Low
		return 5 // Notice
	case 3: // Medium
		return 4 // Warning
	case 4: // High
		return 3 // Error
	case 5: // Critical
		return 2 // Critical
	case 6: // Fatal
		return 1 // Alert
	}
	return 6 // Unknown, Other and anything else: Informational
}

// connect returns the live connection or dials a new one.
func (s *Syslog) connect(ctx context.Context) (net.Conn, error) {
	if s.conn != nil {
		select {
		case <-s.dead:
			s.log.Info("audit syslog receiver closed the connection; reconnecting")
			s.drop()
		default:
			return s.conn, nil
		}
	}
	dctx, cancel := context.WithTimeout(ctx, s.dialTO)
	defer cancel()
	nd := &net.Dialer{}
	var conn net.Conn
	var err error
	if s.tls != nil {
		conn, err = (&tls.Dialer{NetDialer: nd, Config: s.tls}).DialContext(dctx, "tcp", s.addr)
	} else {
		conn, err = nd.DialContext(dctx, "tcp", s.addr)
	}
	if err != nil {
		return nil, err
	}
	// A syslog receiver never speaks (RFC 5425 §4.2), so a read returns
	// only when it closes the connection or the connection breaks: a
	// write into such a connection could vanish without an error.
	dead := make(chan struct{})
	go func() {
		defer close(dead)
		var b [512]byte
		for {
			if _, err := conn.Read(b[:]); err != nil {
				return
			}
		}
	}()
	s.conn, s.dead = conn, dead
	return conn, nil
}

// send writes buf in chunks, each under its own write deadline, and gives
// up as soon as ctx is done.
func (s *Syslog) send(ctx context.Context, conn net.Conn, buf []byte) error {
	stop := context.AfterFunc(ctx, func() { conn.SetWriteDeadline(time.Unix(1, 0)) })
	defer stop()
	const chunk = 64 << 10
	for len(buf) > 0 {
		n := min(len(buf), chunk)
		conn.SetWriteDeadline(time.Now().Add(s.writeTO))
		// Checked after setting the deadline: AfterFunc's past deadline
		// either comes later and wins, or ctx is already done here.
		if err := ctx.Err(); err != nil {
			return err
		}
		w, err := conn.Write(buf[:n])
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		buf = buf[w:]
	}
	return nil
}

// drop closes the connection, if any.
func (s *Syslog) drop() {
	if s.conn != nil {
		s.conn.Close()
		s.conn, s.dead = nil, nil
	}
}

// Close closes the connection; later Writes return ErrClosed. It waits for
// a Write in progress, which write_timeout bounds.
func (s *Syslog) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.drop()
	return nil
}
