package server

import (
	"github.com/ferrydev/ferry/internal/audit"
	"github.com/ferrydev/ferry/internal/proto"
	"github.com/ferrydev/ferry/signaling"
	"github.com/ferrydev/ferry/turn"
)

func roleName(r string) string {
	switch r {
	case signaling.RoleSender:
		return "sender"
	case signaling.RoleReceiver:
		return "receiver"
	}
	return ""
}

// observe turns signaling events into metrics and audit records.
func (s *Server) observe(e signaling.Event) {
	m := s.metrics
	rec := audit.Event{Ticket: e.TicketID, Role: roleName(e.Role), User: e.User}
	if e.IP.IsValid() {
		rec.IP = e.IP.String()
	}
	switch e.Kind {
	case signaling.EventRelayed:
		m.Relay.Observe(e.Latency.Seconds())
		return
	case signaling.EventPaired:
		m.Pairing.Observe(e.Latency.Seconds())
		return
	case signaling.EventConnRefused:
		m.Rejected.WithLabelValues("connections").Inc()
		return
	case signaling.EventCreated:
		m.TicketsCreated.Inc()
		rec.Event = audit.TicketCreated
	case signaling.EventJoined:
		m.TicketsJoined.Inc()
		rec.Event = audit.TicketJoined
	case signaling.EventExpired:
		m.TicketsExpired.Inc()
		rec.Event = audit.TicketExpired
	case signaling.EventRejected:
		m.Rejected.WithLabelValues(e.Reason).Inc()
		rec.Event, rec.Reason = audit.TicketRejected, e.Reason
	case signaling.EventWrongKey:
		m.WrongKey.Inc()
		rec.Event = audit.WrongKey
	case signaling.EventResumed:
		m.Resumed.Inc()
		rec.Event = audit.SessionResumed
	case signaling.EventCanceled:
		rec.Event, rec.Reason = audit.TransferCanceled, "before connecting"
	case signaling.EventReport:
		// signaling passes at most one report per role of a ticket, with
		// bytes bounded by what the pairing could have moved (PROTOCOL §2.5).
		rec.Path, rec.Bytes, rec.Files, rec.Names = e.Path, e.Bytes, e.Files, e.Names
		switch e.Outcome {
		case proto.OutcomeCompleted:
			rec.Event = audit.TransferCompleted
		case proto.OutcomeCanceled:
			rec.Event = audit.TransferCanceled
		default:
			rec.Event = audit.TransferFailed
		}
		// Both peers report; metrics count each transfer once, as its sender saw it.
		if e.Role == signaling.RoleSender {
			switch {
			case e.Outcome == proto.OutcomeCompleted && (e.Path == proto.PathDirect || e.Path == proto.PathRelay):
				m.Transfers.WithLabelValues(e.Path).Inc()
				m.TransferBytes.WithLabelValues(e.Path).Add(float64(max(e.Bytes, 0)))
			case e.Outcome == proto.OutcomeCanceled:
				m.Transfers.WithLabelValues("canceled").Inc()
			default:
				m.Transfers.WithLabelValues("failed").Inc()
			}
		}
	default:
		return
	}
	s.audit.Record(rec)
	s.log.Debug("event", "kind", e.Kind, "ticket", e.TicketID, "role", e.Role, "reason", e.Reason)
}

// observeTURN turns relay events into metrics and audit records.
func (s *Server) observeTURN(e turn.Event) {
	switch e.Kind {
	case turn.EventDenied:
		s.metrics.TURNDenied.Inc()
	case turn.EventAuthFailure:
		s.metrics.TURNAuthFailed.WithLabelValues(e.Reason).Inc()
	case turn.EventQuota:
		s.metrics.TURNQuota.WithLabelValues(e.Cap).Inc()
	case turn.EventRevoked:
		s.metrics.TURNRevoked.Inc()
	case turn.EventReleased:
		if e.Bytes > 0 {
			s.audit.Record(audit.Event{Event: audit.RelayReleased, Ticket: e.TicketID, Path: proto.PathRelay, Bytes: e.Bytes})
		}
	}
}
