package rpc

import (
	"context"
	"encoding/json"
	"net"
	"time"

	"github.com/apikeyd/apikeyd/rpc/internal/jsonwire"
	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
)

// audit records in the store's audit trail every call of a method that
// mutates (success or failure), and counts every call that fails with no
// key known (failed authentications, lockouts, refused logins): those are
// written as one record per source, method, outcome and minute, so that
// anonymous traffic costs bounded storage at any rate. Reads that succeed
// are not recorded: the log has them.
//
// A mutation's record goes into the transaction of its first write that
// commits (store.CallAudit): one durable commit for the change and its
// record, which commit together or not at all. A call that fails, or
// writes nothing to the store, is recorded on its own once it returns.
func (s *Server) audit(next handlerFunc) handlerFunc {
	return func(ctx context.Context, c *call) (json.RawMessage, error) {
		var note *auditNote // only open methods, which run with no key, need one
		if c.method != nil && c.method.Open {
			note = &auditNote{source: s.sourceIP(&c.exchange)}
			ctx = context.WithValue(ctx, auditNoteKey{}, note)
		}
		var inTx *store.CallAudit
		if c.method != nil && c.method.Mutates {
			inTx = store.NewCallAudit(func() (store.AuditRecord, bool) {
				r := s.auditRecord(c, note, "ok")
				return r, r.Account != ""
			})
			ctx = store.WithCallAudit(ctx, inTx)
		}
		res, err := next(ctx, c)
		if err == nil && inTx != nil && inTx.Written() {
			return res, nil
		}
		outcome := "ok"
		if err != nil {
			outcome = toError(err).ID
		}
		// A call that failed with no key known (a missing or bad key, a
		// failed or refused login, bad input to an open method) may come
		// from anyone at any rate: it is counted, not recorded alone.
		anonymous := err != nil && c.key == nil
		// Calls refused by the key's own rate limit or quota are logged,
		// not recorded: a limit must also limit the writes a key causes.
		overLimit := outcome == ErrIDRateLimited || outcome == ErrIDQuotaExhausted
		if overLimit || !anonymous && (c.method == nil || !c.method.Mutates) {
			return res, err
		}
		r := s.auditRecord(c, note, outcome)
		if anonymous {
			s.store.AuditFailure(r)
			return res, err
		}
		// A call whose change committed (and was recorded "ok" with it)
		// but that failed afterwards is recorded again with its error.
		if aerr := s.store.Audit(r); aerr != nil {
			s.log.Error().Err(aerr).Str("method", r.Method).Msg("audit record lost")
		}
		return res, err
	}
}

// auditRecord is the audit record of call c with the given outcome: who
// made it (the key, or what an open method noted), from where, and what
// it named.
func (s *Server) auditRecord(c *call, note *auditNote, outcome string) store.AuditRecord {
	r := store.AuditRecord{
		SourceIP: s.sourceIP(&c.exchange),
		Method:   c.method.nameOrUnknown(),
		Outcome:  outcome,
	}
	if c.key == nil && note == nil {
		return r // anonymous: only the source, method and outcome count
	}
	r.Target = auditTarget(c)
	if c.key != nil {
		r.Account, r.Actor = c.key.Account, c.key.ID
	}
	if note != nil && note.account != "" {
		r.Account, r.Actor = note.account, note.actor
	}
	return r
}

// auditNote lets an open method, which runs with no key, name the account
// its record belongs to and the actor once it knows them (a login, once it
// succeeds). It also tells the method the client's address.
type auditNote struct{ account, actor, source string }

type auditNoteKey struct{}

// callSource is the client address of an open method's call ("" for
// others): the address logins are throttled by.
func callSource(ctx context.Context) string {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		return n.source
	}
	return ""
}

func noteAuditAccount(ctx context.Context, account, actor string) {
	if n, ok := ctx.Value(auditNoteKey{}).(*auditNote); ok {
		n.account, n.actor = account, actor
	}
}

// auditTarget is what the call named: an id, a name or a user name. A
// secret passed as an id is never recorded, nor anything not shaped like an
// id or a name (a password typed into a user name field, say).
func auditTarget(c *call) string {
	if c.method == nil || c.params == nil {
		return ""
	}
	for _, p := range []string{"id", "delete_key", "name", "username"} {
		v, ok := jsonwire.RawString(c.params.Get(p))
		if !ok {
			continue
		}
		switch {
		case store.IsSecret(v):
			return "(a key, named by its secret)"
		case store.IsKeyID(v), validIdentityName(p, v) == nil, p == "username" && validLoginName(v) == nil:
			return v
		default:
			return "(malformed)"
		}
	}
	return ""
}

func (s *Server) sourceIP(ex *exchange) string {
	if ip := s.clientIP(ex); ip.IsValid() {
		return ip.String()
	}
	if h, _, err := net.SplitHostPort(ex.remote); err == nil {
		return h
	}
	return ex.remote
}

// AuditEntry is one record of audit.list.
type AuditEntry struct {
	Seq      uint64    `json:"seq"`
	Time     time.Time `json:"time"`
	Account  string    `json:"account"`
	Actor    string    `json:"actor"`
	SourceIP string    `json:"source_ip"`
	Method   string    `json:"method"`
	Target   string    `json:"target"`
	Outcome  string    `json:"outcome"`
	// Count is how many calls the record stands for: failed
	// authentications are counted per source, method, outcome and minute.
	Count uint64 `json:"count"`
}

// AuditPage is audit.list's reply: records oldest first, and the cursor
// for the next page in "next" (absent on the last page).
type AuditPage struct {
	Records []AuditEntry `json:"records"`
	Next    uint64       `json:"next,omitempty"`
}

type auditListParams struct {
	Since   string `json:"since" schema:"time"`
	Until   string `json:"until" schema:"time"`
	Method  string `json:"method"`
	Outcome string `json:"outcome"`
	After   uint64 `json:"after" schema:"audit_after"`
	Limit   int    `json:"limit" schema:"audit_limit"`
}

// MaxAuditPage is the most records one audit.list call returns.
const MaxAuditPage = 1000

func registerAudit(s *Server) {
	s.Register(Typed(Method{Name: "audit.list", Access: scope.Manage, AccountKeysOnly: true,
		Summary: "List audit records of this account (every account, for the operator)."},
		func(ctx context.Context, p auditListParams) (AuditPage, error) {
			me := caller(ctx)
			q := store.AuditQuery{Account: me.Account, AllAccounts: me.Account == store.OperatorAccount,
				Method: p.Method, Outcome: p.Outcome, After: p.After, Limit: p.Limit}
			var err error
			if q.Since, err = parseTime("since", p.Since); err != nil {
				return AuditPage{}, err
			}
			if q.Until, err = parseTime("until", p.Until); err != nil {
				return AuditPage{}, err
			}
			if p.Limit < 0 || p.Limit > MaxAuditPage {
				return AuditPage{}, InvalidParam("limit", "must be 1 to %d (0 or absent means 100)", MaxAuditPage)
			}
			recs, next, err := s.store.AuditRecords(q)
			if err != nil {
				return AuditPage{}, err
			}
			page := AuditPage{Records: make([]AuditEntry, len(recs)), Next: next}
			for i, r := range recs {
				page.Records[i] = AuditEntry(r)
			}
			return page, nil
		}))
}

func parseTime(field, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, InvalidParam(field, "must be an RFC 3339 time like 2026-01-02T15:04:05Z")
	}
	return t, nil
}
