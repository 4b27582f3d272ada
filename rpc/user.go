package rpc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
)

// Password limits, in characters.
const (
	MinPasswordLen = 8
	MaxPasswordLen = 256
)

// UserInfo is a user as user.* methods return it. Never a password or hash.
// Name is the user's name within its account; Login, "<name>@<account>",
// is what the user logs in with (a legacy user's is its name).
type UserInfo struct {
	Name    string    `json:"name"`
	Login   string    `json:"login"`
	Created time.Time `json:"created"`
}

type userParams struct {
	Name     string `json:"name" rpc:"required" schema:"identity_name"`
	Password string `json:"password" rpc:"required" schema:"password"`
}

type userNameParams struct {
	Name string `json:"name" rpc:"required" schema:"identity_name"`
}

type loginParams struct {
	Username    string `json:"username" rpc:"required"`
	Password    string `json:"password" rpc:"required"`
	AccessLevel string `json:"access_level" rpc:"required" schema:"access_level"`
	Comment     string `json:"comment" schema:"comment"`
	// ExpiresAt, when set, makes a key that stops working then: a key made
	// for one session need not outlive it.
	ExpiresAt string `json:"expires_at" schema:"login_expiry"`
}

type userAPIKeysParams struct {
	Username string `json:"username" schema:"identity_name"`
}

type deleteAPIKeyParams struct {
	DeleteKey string `json:"delete_key" rpc:"required" schema:"key_ref"`
}

// FilebinKey is one key in user.apikeys and user.delete_apikey replies,
// in filebin's shape; "key" holds the public id, never the secret.
type FilebinKey struct {
	Key         string    `json:"key"`
	Created     time.Time `json:"created"`
	Comment     string    `json:"comment"`
	AccessLevel string    `json:"access_level"`
}

func registerUser(s *Server) {
	h := userHandlers{store: s.store}
	s.Register(Typed(Method{Name: "user.create", Access: scope.Manage, AccountKeysOnly: true, Mutates: true, Summary: "Create a user in this account."}, h.create))
	s.Register(Typed(Method{Name: "user.delete", Access: scope.Manage, AccountKeysOnly: true, Mutates: true, Summary: "Delete a user of this account and the keys it holds."}, h.delete))
	s.Register(Typed(Method{Name: "user.list", Access: scope.Manage, AccountKeysOnly: true, Summary: "List the users of this account."}, h.list))
	s.Register(Typed(Method{Name: "user.set_password", Access: scope.Manage, AccountKeysOnly: true, Mutates: true, Summary: "Set a user's password."}, h.setPassword))
	s.Register(Typed(Method{Name: "user.create_apikey", Access: scope.Manage, Open: true, Mutates: true,
		Summary: "Log in with a user name and password and get a new key."}, h.createAPIKey))
	// filebin's "apikey" access level (READ, CREATE, UPDATE, DELETE) lists
	// and deletes its own user's keys: for a key held by a user or service
	// account, which reaches only its own holder's keys here, these two are
	// READ and DELETE; for a key of the account itself, managing keys is
	// MANAGE.
	s.Register(Typed(Method{Name: "user.apikeys", Access: scope.Manage, HeldAccess: scope.Read, Summary: "List the keys a user holds."}, h.apikeys))
	s.Register(Typed(Method{Name: "user.delete_apikey", Access: scope.Manage, HeldAccess: scope.Delete, Mutates: true, Summary: "Delete a key a user holds."}, h.deleteAPIKey))
	s.Register(Typed(Method{Name: "user.unlock", Access: scope.Manage, AccountKeysOnly: true, Mutates: true,
		Summary: "Clear a user's login throttling, from every address."}, h.unlock))
}

type userHandlers struct{ store *store.Store }

// loginCeiling is the widest key a login can get: access level full.
var loginCeiling = scope.Scopes{Access: scope.AccessLevels["full"]}

var errLoginEscalation = Errorf(CodeForbidden, ErrIDEscalation,
	"a user's password yields keys up to access level full that never expire, held by the user: only a key of the account itself, with no limits, no expiry and scopes that cover access level full, may create users or set passwords")

// mayHandOutLogins refuses callers that could, through a password they
// set, get a key wider than themselves in any way (scopes, validity,
// limits), or outside their holder: only keys of the account itself may,
// and the widest key the password logs in to must lie within them.
func mayHandOutLogins(me *store.Key, now time.Time) error {
	if within(me, store.Key{Scopes: loginCeiling}, now, asResult) != nil {
		return errLoginEscalation
	}
	return nil
}

func (h userHandlers) create(ctx context.Context, p userParams) (UserInfo, error) {
	if err := validIdentityName("name", p.Name); err != nil {
		return UserInfo{}, err
	}
	if err := validPassword(p.Password); err != nil {
		return UserInfo{}, err
	}
	if err := mayHandOutLogins(caller(ctx), h.store.Now()); err != nil {
		return UserInfo{}, err
	}
	u, err := h.store.CreateUser(ctx, caller(ctx).Account, p.Name, p.Password)
	if err != nil {
		return UserInfo{}, err
	}
	return userInfo(u), nil
}

func (h userHandlers) delete(ctx context.Context, p userNameParams) (struct{}, error) {
	if err := validIdentityName("name", p.Name); err != nil {
		return struct{}{}, err
	}
	me := caller(ctx)
	return struct{}{}, h.store.DeleteUser(ctx, me.Account, p.Name, heldWithin(me, h.store.Now()))
}

func (h userHandlers) list(ctx context.Context, _ noParams) ([]UserInfo, error) {
	users, err := h.store.Users(caller(ctx).Account)
	if err != nil {
		return nil, err
	}
	out := make([]UserInfo, len(users))
	for i, u := range users {
		out[i] = userInfo(u)
	}
	return out, nil
}

func (h userHandlers) setPassword(ctx context.Context, p userParams) (struct{}, error) {
	if err := validIdentityName("name", p.Name); err != nil {
		return struct{}{}, err
	}
	if err := validPassword(p.Password); err != nil {
		return struct{}{}, err
	}
	if err := mayHandOutLogins(caller(ctx), h.store.Now()); err != nil {
		return struct{}{}, err
	}
	return struct{}{}, h.store.SetPassword(ctx, caller(ctx).Account, p.Name, p.Password)
}

func userInfo(u store.User) UserInfo {
	return UserInfo{Name: u.Name, Login: u.Login, Created: u.Created}
}

// unlock clears the login throttling of a user of this account, as setting
// its password does; it needs the same authority.
func (h userHandlers) unlock(ctx context.Context, p userNameParams) (UserInfo, error) {
	if err := validIdentityName("name", p.Name); err != nil {
		return UserInfo{}, err
	}
	if err := mayHandOutLogins(caller(ctx), h.store.Now()); err != nil {
		return UserInfo{}, err
	}
	u, err := h.store.UnlockUser(caller(ctx).Account, p.Name)
	if err != nil {
		return UserInfo{}, err
	}
	return userInfo(u), nil
}

var errLoginFailed = Errorf(CodeUnauthenticated, ErrIDLoginFailed, "wrong user name or password")

// createAPIKey is filebin's user/create_apikey: the one method callable
// without a key. Bad input is refused before any password is hashed; every
// failed login then costs the same and counts toward a lockout.
func (h userHandlers) createAPIKey(ctx context.Context, p loginParams) (NewKeyInfo, error) {
	access, ok := scope.AccessLevels[p.AccessLevel]
	if !ok {
		return NewKeyInfo{}, InvalidParam("access_level", "must be one of %s", strings.Join(slices.Sorted(maps.Keys(scope.AccessLevels)), ", "))
	}
	if err := validComment(p.Comment); err != nil {
		return NewKeyInfo{}, err
	}
	_, expiresAt, err := validTimes(h.store.Now(), "", p.ExpiresAt, time.Time{}, time.Time{})
	if err != nil {
		return NewKeyInfo{}, err
	}
	if validLoginName(p.Username) != nil || p.Password == "" || len(p.Password) > 4*MaxPasswordLen {
		return NewKeyInfo{}, errLoginFailed // never hashed: cannot be right
	}
	u, err := h.store.Login(ctx, p.Username, p.Password, callSource(ctx))
	var locked *store.LockedError
	switch {
	case errors.As(err, &locked):
		secs := int(math.Ceil(locked.RetryAfter.Seconds()))
		return NewKeyInfo{}, &Error{Code: CodeRateLimited, ID: ErrIDLoginLocked, RetryAfterMs: max(locked.RetryAfter.Milliseconds(), 1),
			Message: fmt.Sprintf("too many failed logins for this user name from this address, or from all; try again in %d seconds", max(secs, 1))}
	case errors.Is(err, store.ErrLoginFailed):
		return NewKeyInfo{}, errLoginFailed
	case errors.Is(err, store.ErrBusy):
		e := Errorf(CodeRateLimited, ErrIDBusy, "too many logins at once; try again shortly")
		e.RetryAfterMs = 1000
		return NewKeyInfo{}, e
	case err != nil:
		return NewKeyInfo{}, err
	}
	noteAuditAccount(ctx, u.Account, store.UserOwner(u.Login)) // the login goes in the user's account's trail
	k, secret, err := h.store.CreateKey(ctx, store.NewKey{
		Account:   u.Account,
		Scopes:    scope.Scopes{Access: slices.Sorted(slices.Values(access))},
		Comment:   p.Comment,
		Owner:     store.UserOwner(u.Login),
		ExpiresAt: expiresAt,
	})
	if err != nil {
		return NewKeyInfo{}, err
	}
	return NewKeyInfo{KeyInfo: keyInfo(k), Key: secret}, nil
}

// apikeys lists the keys of a user: the user whose key calls, or, for a key
// of the account itself, the user named.
func (h userHandlers) apikeys(ctx context.Context, p userAPIKeysParams) (map[string]map[string]FilebinKey, error) {
	owner, err := h.ownerFor(ctx, p.Username)
	if err != nil {
		return nil, err
	}
	me := caller(ctx)
	keys, err := h.store.KeysOf(me.Account, owner)
	if err != nil {
		return nil, err
	}
	out := map[string]FilebinKey{}
	for _, k := range keys {
		out[k.ID] = filebinKey(k)
	}
	return map[string]map[string]FilebinKey{"apikeys": out}, nil
}

// deleteAPIKey deletes a key the calling key's user holds (or, for a key of
// the account itself, any key of the account it covers).
func (h userHandlers) deleteAPIKey(ctx context.Context, p deleteAPIKeyParams) (map[string]map[string]FilebinKey, error) {
	if err := validRef(p.DeleteKey); err != nil {
		return nil, InvalidParam("delete_key", "must be a key id or a key (32 lowercase hex digits)")
	}
	me := caller(ctx)
	// A key name, or a holder and a key name, passes validRef: it names
	// the key as it does for apikey.delete.
	ref, err := apikeyHandlers{store: h.store}.resolve(me, p.DeleteKey)
	if err != nil {
		return nil, err
	}
	// A key of a user or service account acts here on its own holder's
	// keys only: within hides the others.
	now := h.store.Now()
	var deleted store.Key
	err = h.store.DeleteKey(ctx, me.Account, ref, func(target store.Key) error {
		if err := within(me, target, now, asTarget); err != nil {
			return err
		}
		deleted = target
		return nil
	})
	if err != nil {
		return nil, err
	}
	return map[string]map[string]FilebinKey{"deleted_keys": {deleted.ID: filebinKey(deleted)}}, nil
}

var errOtherUsersKeys = Errorf(CodeForbidden, ErrIDEscalation, "a key held by a user or service account may list only its own holder's keys")

// ownerFor is the owner whose keys user.apikeys lists: username is a user
// name within the caller's account. For a key of the account itself, a
// user the account does not have is user_not_found.
func (h userHandlers) ownerFor(ctx context.Context, username string) (string, error) {
	me := caller(ctx)
	if me.Owner != "" {
		// username may be the short name or, as filebin clients send it,
		// the login name (for a user stored before login names, either
		// form of it).
		if username == "" {
			return me.Owner, nil
		}
		name, account, qualified := strings.Cut(username, "@")
		if qualified && account != me.Account || h.userOwner(me.Account, name) != me.Owner {
			return "", errOtherUsersKeys
		}
		return me.Owner, nil
	}
	if username == "" {
		return "", InvalidParam("username", "is required with a key that no user holds")
	}
	if err := validIdentityName("username", username); err != nil {
		return "", err
	}
	u, err := h.store.UserByName(me.Account, username)
	if err != nil {
		return "", err // user_not_found for a user the account does not have
	}
	return store.UserOwner(u.Login), nil
}

// userOwner is the owner of the keys of user name of account; for a user
// that does not exist, an owner that holds no keys.
func (h userHandlers) userOwner(account, name string) string {
	if u, err := h.store.UserByName(account, name); err == nil {
		return store.UserOwner(u.Login)
	}
	return store.UserOwner(store.LoginName(name, account))
}

// validLoginName checks a login name: "<name>@<account>", or the name of
// a legacy user.
func validLoginName(login string) error {
	name, account, ok := strings.Cut(login, "@")
	if err := validIdentityName("username", name); err != nil {
		return err
	}
	if ok {
		return validIdentityName("username", account)
	}
	return nil
}

func filebinKey(k store.Key) FilebinKey {
	level := "custom"
	for name, preset := range scope.AccessLevels {
		if slices.Equal(k.Scopes.Access, slices.Sorted(slices.Values(preset))) && len(k.Scopes.Method) == 0 && len(k.Scopes.Name) == 0 {
			level = name
		}
	}
	return FilebinKey{Key: k.ID, Created: k.Created, Comment: k.Comment, AccessLevel: level}
}

func validPassword(pw string) error {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinPasswordLen:
		return InvalidParam("password", "must be at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen:
		return InvalidParam("password", "must be at most %d characters", MaxPasswordLen)
	}
	return nil
}
