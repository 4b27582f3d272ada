package rpc

import (
	"net/http"
	"time"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
)

// backupMethod is the online backup as the access decision sees it: a
// call only a key of the operator account itself may make (no user's or
// service account's key), of access class MANAGE, whose scopes must allow
// it as they would any method of that name. So a restricted operator key
// is refused unless its scopes name "(backup)" or are unrestricted.
var backupMethod = &Method{Name: "(backup)", Access: scope.Manage, OperatorOnly: true, AccountKeysOnly: true}

// ServeBackup answers GET with a consistent copy of the whole data file,
// streamed from one read transaction (store.Store.WriteTo) while calls go
// on. The key comes from the Authorization header, as for ServeHTTP, and
// authorize decides on it as on any call. A refusal is 401 (no key, or an
// unknown, inactive or expired one) or 403 (not an operator key, a held
// key, scopes that deny it) with a JSON-RPC error body, and is audited. A
// store that is not a data file (etcd) has nothing to stream: 404,
// method_not_found, saying how to back it up instead.
// The copy is bounded by the server's write timeout.
func (s *Server) ServeBackup(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		s.writeError(w, r, invalidRequest(ErrIDHTTPMethod, "use HTTP GET"))
		return
	}
	ex := s.newExchange(r)
	k, err := s.keyOf(ex.cred)
	if err == nil {
		err = authorize(k, accessQuery{method: backupMethod, clientIP: s.clientIP(&ex)})
	}
	if err != nil {
		e := toError(err)
		if e.Code == CodeInternalError {
			s.log.Error().Err(err).Str("remote", ex.remote).Msg("backup: look up key")
		} else {
			s.auditBackup(&ex, k, e.ID)
		}
		if HTTPStatus(e) == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", "Bearer")
		}
		s.writeError(w, r, e)
		return
	}
	if err := s.store.Fresh(); err != nil {
		// A node that cannot vouch for its copy backs up no old truth.
		e := toError(err)
		s.auditBackup(&ex, k, e.ID)
		s.writeError(w, r, e)
		return
	}
	s.auditBackup(&ex, k, "ok")
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="apikeyd-backup.db"`)
	w.Header().Set("Cache-Control", "no-store")
	start := time.Now()
	n, werr := s.store.WriteTo(w)
	ev := s.log.Info()
	if werr != nil {
		ev = s.log.Error().Err(werr)
	}
	ev.Str("key_id", k.ID).Str("account", k.Account).Int64("bytes", n).
		Dur("duration", time.Since(start)).Msg("backup")
}

// auditBackup records a backup, taken or refused, as a call would be.
func (s *Server) auditBackup(ex *exchange, k *store.Key, outcome string) {
	r := store.AuditRecord{SourceIP: s.sourceIP(ex), Method: backupMethod.Name, Outcome: outcome}
	if k == nil {
		s.store.AuditFailure(r)
		return
	}
	r.Account, r.Actor = k.Account, k.ID
	if err := s.store.Audit(r); err != nil {
		s.log.Error().Err(err).Msg("audit record lost")
	}
}
