// Package scope decides whether an API key may make a call.
//
// It owns the Scopes type (a key's restrictions, listed by type), their
// validation and normalisation, Check, which applies Memset's rules to one
// call, Covers, the subset test of scopes, and Within, which decides "no
// escalation" on a key's whole Authority: scopes, validity window, limits and
// holder. It does no I/O and knows nothing of JSON-RPC or storage: callers
// describe a call as a Call, or a key as an Authority, and get back nil or an
// error that says why it was denied.
package scope
