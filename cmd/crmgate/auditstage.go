package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crmgate/crmgate/admin"
	"github.com/crmgate/crmgate/audit"
	"github.com/crmgate/crmgate/audit/alert"
	"github.com/crmgate/crmgate/audit/remote"
	"github.com/crmgate/crmgate/audit/trail"
	"github.com/crmgate/crmgate/config"
)

// auditStage is the wired audit trail: the pipeline with its sinks, the
// alert rules and the alert pipeline, nil without an audit section.
type auditStage struct {
	trail  *trail.Trail
	main   *audit.Pipeline
	alerts *audit.Pipeline // nil without alert sinks
}

// startAudit builds the audit pipeline and its sinks, the alert engine and
// the pipeline of the alert sinks, and starts delivering. A sink that
// cannot be reached is not an error: its events wait in the spool.
func startAudit(f *config.File, log *slog.Logger, reg prometheus.Registerer, adm *admin.Server) (*auditStage, error) {
	if f.Audit == nil {
		return nil, nil
	}
	alog := log.With("component", "audit")
	sinks, err := remoteSinks(f.Audit.Syslog, f.Audit.HTTP, alog)
	if err != nil {
		return nil, fmt.Errorf("audit.%w", err)
	}
	p, err := audit.New(f.Audit.Config, audit.Options{Sinks: sinks, Logger: alog, Registerer: reg, Version: version})
	if err != nil {
		closeSinks(sinks)
		return nil, fmt.Errorf("audit: %w", err)
	}
	st := &auditStage{main: p}
	var eng *alert.Engine
	if f.Alerts != nil {
		if eng, err = alert.New(f.Alerts.Config, time.Now, reg); err != nil {
			_ = p.Close()
			return nil, fmt.Errorf("alerts: %w", err)
		}
		if len(f.Alerts.Syslog)+len(f.Alerts.Webhook) > 0 {
			if st.alerts, err = alertPipeline(f, alog); err != nil {
				_ = p.Close()
				return nil, err
			}
		}
	}
	var alertOut trail.Pipeline
	if st.alerts != nil {
		alertOut = st.alerts
	}
	st.trail = trail.New(p, eng, alertOut, alog)
	p.Start()
	if st.alerts != nil {
		st.alerts.Start()
	}
	adm.AddCheck("audit", func(context.Context) error {
		if !p.Accepting() {
			return errors.New("the audit spool is full: requests are refused until it drains")
		}
		return nil
	})
	adm.SetEvents(st.trail.Admin)
	adm.SetEventFeed(dashboardFeed{st.trail})
	st.trail.ConfigLoaded(f.Source.Name, f.Source.SHA256, version)
	return st, nil
}

// alertPipeline delivers alert events to the alert sinks, through a spool
// of its own next to the audit spool. When that spool is full, alerts are
// dropped and counted: a paging webhook that is down must not stop the
// gateway (the alerts are in the audit trail as well).
func alertPipeline(f *config.File, log *slog.Logger) (*audit.Pipeline, error) {
	sinks, err := remoteSinks(f.Alerts.Syslog, f.Alerts.Webhook, log)
	if err != nil {
		return nil, fmt.Errorf("alerts.%w", err)
	}
	cfg := audit.Config{Spool: audit.SpoolConfig{
		Dir: filepath.Join(f.Audit.Spool.Dir, "alerts"), MaxBytes: max(f.Audit.Spool.MaxBytes/16, 1<<20), OnFull: audit.OnFullDrop,
	}}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		closeSinks(sinks)
		return nil, fmt.Errorf("alerts: %w", err)
	}
	// No metrics of its own: the audit pipeline's names are taken, and
	// alert deliveries are few.
	p, err := audit.New(cfg, audit.Options{Sinks: sinks, Logger: log.With("pipeline", "alerts"), Version: version})
	if err != nil {
		closeSinks(sinks)
		return nil, fmt.Errorf("alerts: %w", err)
	}
	return p, nil
}

// remoteSinks builds the syslog and HTTP sinks of a configuration list.
// Each is named in the pipeline (metrics, its spool folder) by its kind
// and position, e.g. http-0, with its configured name in logs.
func remoteSinks(syslogs []remote.SyslogConfig, https []remote.HTTPConfig, log *slog.Logger) ([]audit.Sink, error) {
	var sinks []audit.Sink
	for i, c := range syslogs {
		s, err := remote.NewSyslog(c, log)
		if err != nil {
			closeSinks(sinks)
			return nil, fmt.Errorf("syslog[%d]: %w", i, err)
		}
		sinks = append(sinks, namedSink{s, fmt.Sprintf("syslog-%d", i)})
	}
	for i, c := range https {
		s, err := remote.NewHTTP(c, log)
		if err != nil {
			closeSinks(sinks)
			return nil, fmt.Errorf("http[%d]: %w", i, err)
		}
		sinks = append(sinks, namedSink{s, fmt.Sprintf("http-%d", i)})
	}
	return sinks, nil
}

// namedSink gives a sink the name the pipeline knows it by.
type namedSink struct {
	audit.Sink
	name string
}

func (n namedSink) Name() string { return n.name }

func closeSinks(sinks []audit.Sink) {
	for _, s := range sinks {
		_ = s.Close()
	}
}

// close delivers what is queued (within the configured close timeout;
// the rest stays in the spool for the next start) and closes the sinks.
func (st *auditStage) close() {
	if st == nil {
		return
	}
	if st.alerts != nil {
		_ = st.alerts.Close()
	}
	_ = st.main.Close()
}

// dashboardFeed shows the trail's latest events on the admin dashboard.
type dashboardFeed struct{ t *trail.Trail }

func (f dashboardFeed) Recent(limit int) []admin.FeedEvent {
	events := f.t.Recent(limit)
	out := make([]admin.FeedEvent, len(events))
	for i, e := range events {
		subject := e.Subject.ID
		if subject == "" {
			subject = e.Subject.APIKeyID
		}
		out[i] = admin.FeedEvent{Time: e.Time, Type: string(e.Type), Severity: severityName(e.Severity), Subject: subject,
			ClientIP: e.ClientIP, Route: e.RouteID, Method: e.Method, Path: e.Path, Message: e.Message, Status: e.Status}
		if out[i].Message == "" && e.Reason != "" {
			out[i].Message = e.Reason
		}
	}
	return out
}

func severityName(s audit.Severity) string {
	switch s {
	case audit.SeverityLow:
		return "low"
	case audit.SeverityMedium:
		return "medium"
	case audit.SeverityHigh:
		return "high"
	case audit.SeverityCritical:
		return "critical"
	default:
		return "info"
	}
}
