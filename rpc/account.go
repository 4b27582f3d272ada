package rpc

import (
	"context"
	"time"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
)

// AccountInfo is an account as account.* methods return it.
type AccountInfo struct {
	Name    string    `json:"name"`
	Comment string    `json:"comment"`
	Created time.Time `json:"created"`
	// Keys is the number of keys in the account.
	Keys int `json:"keys"`
}

// NewAccountInfo is account.create's reply: the account and its first key,
// whose secret is shown this once.
type NewAccountInfo struct {
	AccountInfo
	FirstKey NewKeyInfo `json:"first_key"`
}

func accountInfo(a store.Account) AccountInfo {
	return AccountInfo{Name: a.Name, Comment: a.Comment, Created: a.Created, Keys: a.Keys}
}

type accountNameParams struct {
	Name string `json:"name" rpc:"required" schema:"identity_name"`
}

type accountParams struct {
	Name    string `json:"name" rpc:"required" schema:"identity_name"`
	Comment string `json:"comment" schema:"comment"`
}

func registerAccount(s *Server) {
	h := accountHandlers{store: s.store}
	for _, m := range []Method{
		Typed(Method{Name: "account.create", Mutates: true, Summary: "Create an account and its first key."}, h.create),
		Typed(Method{Name: "account.info", Summary: "Describe an account."}, h.info),
		Typed(Method{Name: "account.list", Summary: "List every account."}, h.list),
		Typed(Method{Name: "account.update", Mutates: true, Summary: "Change an account's comment."}, h.update),
		Typed(Method{Name: "account.delete", Mutates: true, Summary: "Delete an account and every key in it."}, h.delete),
	} {
		m.Access, m.OperatorOnly, m.AccountKeysOnly = scope.Manage, true, true
		s.Register(m)
	}
}

type accountHandlers struct{ store *store.Store }

func (h accountHandlers) create(ctx context.Context, p accountParams) (NewAccountInfo, error) {
	if err := validIdentityName("name", p.Name); err != nil {
		return NewAccountInfo{}, err
	}
	if err := validComment(p.Comment); err != nil {
		return NewAccountInfo{}, err
	}
	// The first key of a new account is unrestricted, unlimited and never
	// expires: it must lie within the caller, as any key a call creates.
	if err := within(caller(ctx), store.Key{}, h.store.Now(), asResult); err != nil {
		return NewAccountInfo{}, err
	}
	a, k, secret, err := h.store.CreateAccount(ctx, p.Name, p.Comment)
	if err != nil {
		return NewAccountInfo{}, err
	}
	return NewAccountInfo{AccountInfo: accountInfo(a), FirstKey: NewKeyInfo{KeyInfo: keyInfo(k), Key: secret}}, nil
}

func (h accountHandlers) info(ctx context.Context, p accountNameParams) (AccountInfo, error) {
	if err := validIdentityName("name", p.Name); err != nil {
		return AccountInfo{}, err
	}
	a, err := h.store.Account(p.Name)
	return accountInfo(a), err
}

func (h accountHandlers) list(ctx context.Context, _ noParams) ([]AccountInfo, error) {
	accounts, err := h.store.Accounts()
	if err != nil {
		return nil, err
	}
	out := make([]AccountInfo, len(accounts))
	for i, a := range accounts {
		out[i] = accountInfo(a)
	}
	return out, nil
}

func (h accountHandlers) update(ctx context.Context, p accountParams) (AccountInfo, error) {
	if err := validIdentityName("name", p.Name); err != nil {
		return AccountInfo{}, err
	}
	if err := validComment(p.Comment); err != nil {
		return AccountInfo{}, err
	}
	a, err := h.store.UpdateAccount(ctx, p.Name, p.Comment)
	return accountInfo(a), err
}

func (h accountHandlers) delete(ctx context.Context, p accountNameParams) (struct{}, error) {
	if err := validIdentityName("name", p.Name); err != nil {
		return struct{}{}, err
	}
	// Every key of the account goes: each must lie within the caller.
	return struct{}{}, h.store.DeleteAccount(ctx, p.Name, accountKeysWithin(caller(ctx), h.store.Now()))
}

// MaxIdentityNameLen is the longest account, user or service account name.
const MaxIdentityNameLen = 64

// validIdentityName checks a name of an account (and later of users and
// service accounts): 1 to 64 characters of [A-Za-z0-9._-].
func validIdentityName(field, name string) error {
	if name == "" || len(name) > MaxIdentityNameLen {
		return InvalidParam(field, "must be 1 to %d characters, got %d", MaxIdentityNameLen, len(name))
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return InvalidParam(field, "may hold only letters, digits, '.', '_' and '-'")
		}
	}
	return nil
}
