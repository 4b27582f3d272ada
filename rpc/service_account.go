package rpc

import (
	"context"
	"time"
	"unicode/utf8"

	"github.com/apikeyd/apikeyd/scope"
	"github.com/apikeyd/apikeyd/store"
)

// MaxDescriptionLen is the longest description, in characters.
const MaxDescriptionLen = 65535

// ServiceAccountInfo is a service account as service_account.* methods
// return it.
type ServiceAccountInfo struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Active      bool      `json:"active"`
	Created     time.Time `json:"created"`
	// Keys is the number of keys the service account holds.
	Keys int `json:"keys"`
}

func serviceAccountInfo(sa store.ServiceAccount) ServiceAccountInfo {
	return ServiceAccountInfo{Name: sa.Name, Description: sa.Description, Active: sa.Active, Created: sa.Created, Keys: sa.Keys}
}

type serviceAccountCreateParams struct {
	Name        string `json:"name" rpc:"required" schema:"identity_name"`
	Description string `json:"description" schema:"description"`
	Active      *bool  `json:"active"`
}

type serviceAccountUpdateParams struct {
	Name        string  `json:"name" rpc:"required" schema:"identity_name"`
	Description *string `json:"description" schema:"description"`
	Active      *bool   `json:"active"`
}

func registerServiceAccount(s *Server) {
	h := serviceAccountHandlers{store: s.store}
	s.Register(Typed(Method{Name: "service_account.create", Access: scope.Manage, AccountKeysOnly: true, Mutates: true, Summary: "Create a service account in this account."}, h.create))
	s.Register(Typed(Method{Name: "service_account.info", Access: scope.Manage, AccountKeysOnly: true, Summary: "Describe a service account."}, h.info))
	s.Register(Typed(Method{Name: "service_account.list", Access: scope.Manage, AccountKeysOnly: true, Summary: "List the service accounts of this account."}, h.list))
	s.Register(Typed(Method{Name: "service_account.update", Access: scope.Manage, AccountKeysOnly: true, Mutates: true, Summary: "Change a service account's description or active flag."}, h.update))
	s.Register(Typed(Method{Name: "service_account.delete", Access: scope.Manage, AccountKeysOnly: true, Mutates: true, Summary: "Delete a service account and the keys it holds."}, h.delete))
}

type serviceAccountHandlers struct{ store *store.Store }

func (h serviceAccountHandlers) create(ctx context.Context, p serviceAccountCreateParams) (ServiceAccountInfo, error) {
	if err := validIdentityName("name", p.Name); err != nil {
		return ServiceAccountInfo{}, err
	}
	if err := validDescription(p.Description); err != nil {
		return ServiceAccountInfo{}, err
	}
	active := p.Active == nil || *p.Active
	sa, err := h.store.CreateServiceAccount(ctx, caller(ctx).Account, p.Name, p.Description, active)
	return serviceAccountInfo(sa), err
}

func (h serviceAccountHandlers) info(ctx context.Context, p accountNameParams) (ServiceAccountInfo, error) {
	if err := validIdentityName("name", p.Name); err != nil {
		return ServiceAccountInfo{}, err
	}
	sa, err := h.store.ServiceAccount(caller(ctx).Account, p.Name)
	return serviceAccountInfo(sa), err
}

func (h serviceAccountHandlers) list(ctx context.Context, _ noParams) ([]ServiceAccountInfo, error) {
	sas, err := h.store.ServiceAccounts(caller(ctx).Account)
	if err != nil {
		return nil, err
	}
	out := make([]ServiceAccountInfo, len(sas))
	for i, sa := range sas {
		out[i] = serviceAccountInfo(sa)
	}
	return out, nil
}

func (h serviceAccountHandlers) update(ctx context.Context, p serviceAccountUpdateParams) (ServiceAccountInfo, error) {
	if err := validIdentityName("name", p.Name); err != nil {
		return ServiceAccountInfo{}, err
	}
	if p.Description != nil {
		if err := validDescription(*p.Description); err != nil {
			return ServiceAccountInfo{}, err
		}
	}
	// Switching a service account off or on stops or revives its keys:
	// each must lie within the caller, judged in the writing transaction.
	me := caller(ctx)
	sa, err := h.store.UpdateServiceAccount(ctx, me.Account, p.Name, p.Description, p.Active, heldWithin(me, h.store.Now()))
	return serviceAccountInfo(sa), err
}

func (h serviceAccountHandlers) delete(ctx context.Context, p accountNameParams) (struct{}, error) {
	if err := validIdentityName("name", p.Name); err != nil {
		return struct{}{}, err
	}
	me := caller(ctx)
	return struct{}{}, h.store.DeleteServiceAccount(ctx, me.Account, p.Name, heldWithin(me, h.store.Now()))
}

func validDescription(d string) error {
	if n := utf8.RuneCountInString(d); n > MaxDescriptionLen {
		return InvalidParam("description", "must be at most %d characters, got %d", MaxDescriptionLen, n)
	}
	return nil
}
